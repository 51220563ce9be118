package kube_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/kube"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// router wires the command router to a real store, the shipped runbooks and
// a runner acting on the real cluster as the ServiceAccount.
func router(t testing.TB, c *kube.Client) *commands.Router {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet})
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{Namespaces: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	r := commands.NewRouter(svc, quiet)
	r.UseRunbooks(set)
	r.UseRunner(runbooks.NewRunner(c, nil, runbooks.Guardrails{Operators: []string{"@ops"}, Namespaces: []string{ns}}))
	return r
}

func say(r *commands.Router, who, text string) commands.Reply {
	return r.Handle(context.Background(), commands.Request{Actor: incidents.Actor{Name: who, Source: "console"}, Text: text})
}

// TestRunbookStepsEndToEnd: click through the High Error Rate runbook's
// scale step against the real cluster: refused for a non-operator, a dry
// run showing the effect, the confirmation acting once, all on the timeline.
func TestRunbookStepsEndToEnd(t *testing.T) {
	cp, c := setup(t)
	r := router(t, c)
	if rep := say(r, "@ops", "declare P2 Checkout error rate above 5%"); rep.Incident == nil || rep.Incident.Links["runbook"] != "high-error-rate" {
		t.Fatalf("declare: %+v", rep)
	}
	if rep := say(r, "@ops", "step 1 high-error-rate 6"); !strings.Contains(rep.Fields[0].Value, "ok — 2 revisions of architect-production/architect-api") {
		t.Errorf("history step: %+v", rep.Fields)
	}
	if rep := say(r, "@intern", "step 1 high-error-rate 14"); !strings.Contains(rep.Fields[0].Value, "refused — @intern may not run") {
		t.Errorf("non-operator: %+v", rep.Fields)
	}
	dry := say(r, "@ops", "step 1 high-error-rate 14 replicas=12")
	if !strings.Contains(dry.Fields[0].Value, "dry-run — replicas 10 → 12") || len(dry.Buttons) != 1 || !strings.HasPrefix(dry.Buttons[0].Label, "Confirm") {
		t.Fatalf("dry run: %+v %+v", dry.Fields, dry.Buttons)
	}
	replicas := func() int32 {
		d, _ := cp.client.AppsV1().Deployments(ns).Get(context.Background(), "architect-api", metav1.GetOptions{})
		return *d.Spec.Replicas
	}
	if replicas() != 10 {
		t.Fatal("the dry run changed the deployment")
	}
	confirm := dry.Buttons[0].Command
	if rep := say(r, "@ops", confirm); !strings.Contains(rep.Fields[0].Value, "confirmed — replicas 10 → 12") || replicas() != 12 {
		t.Fatalf("confirm: %+v, replicas %d", rep.Fields, replicas())
	}
	if rep := say(r, "@ops", confirm); !strings.Contains(rep.Fields[0].Value, "already used") {
		t.Errorf("double click: %+v", rep.Fields)
	}
	// Restart, then roll back: "previous" is the release before (3.1.0),
	// and the preview offers the other revision, the 3.2.0 before the
	// restart, which the confirmation then goes to.
	restart := say(r, "@ops", "step 1 high-error-rate 13")
	if rep := say(r, "@ops", restart.Buttons[0].Command); !strings.Contains(rep.Fields[0].Value, "confirmed — restart of architect-production/architect-api: 12 pods replaced in a rolling update") {
		t.Fatalf("restart: %+v", rep.Fields)
	}
	waitFor(t, "the restart's revision 3", func() bool { return current(t, cp) == "3" })
	back := say(r, "@ops", "step 1 high-error-rate 12")
	if !strings.Contains(back.Fields[0].Value, "dry-run — image architect-api:3.2.0 → architect-api:3.1.0 (revision 3 → 1)") {
		t.Fatalf("roll back: %+v", back.Fields)
	}
	var other string
	for _, b := range back.Buttons {
		if strings.HasPrefix(b.Label, "Preview revision 2 · architect-api:3.2.0 · ") {
			other = b.Command
		}
	}
	if other != "step INC-1 high-error-rate 12 revision=2" {
		t.Fatalf("no choice of revision 2: %+v", back.Buttons)
	}
	pick := say(r, "@ops", other)
	if !strings.Contains(pick.Fields[0].Value, "dry-run — image architect-api:3.2.0 → architect-api:3.2.0 (revision 3 → 2)") || !strings.HasSuffix(pick.Buttons[0].Command, " revision=2") {
		t.Fatalf("revision 2: %+v %+v", pick.Fields, pick.Buttons)
	}
	if rep := say(r, "@ops", pick.Buttons[0].Command); !strings.Contains(rep.Fields[0].Value, "confirmed — image architect-api:3.2.0 → architect-api:3.2.0 (revision 3 → 2)") {
		t.Fatalf("confirm revision 2: %+v", rep.Fields)
	}
	waitFor(t, "revision 2's template back", func() bool {
		d, _ := cp.client.AppsV1().Deployments(ns).Get(context.Background(), "architect-api", metav1.GetOptions{})
		return d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" && current(t, cp) == "4"
	})
	if rep := say(r, "@ops", "step 1 high-error-rate 12 revision=x"); !rep.Error || !strings.Contains(rep.Text, "revision=x: a revision number") {
		t.Errorf("a bad revision: %+v", rep)
	}
	// In the terminal, a bare number answers the [revision=N] prompt.
	if rep := say(r, "@ops", "step 1 high-error-rate 12 1"); !strings.Contains(rep.Fields[0].Value, "dry-run — image architect-api:3.2.0 → architect-api:3.1.0 (revision 4 → 1") {
		t.Errorf("a bare revision number: %+v", rep.Fields)
	}

	// A switch to a colour with no ready pods: warned beside the result,
	// and the confirmation asks again with the warning.
	sw := say(r, "@ops", "step 1 blue-green-rollback 2")
	var warned bool
	for _, f := range sw.Fields {
		warned = warned || f.Label == "⚠️ Warning" && strings.Contains(f.Value, "selects no ready pods")
	}
	if !warned || !strings.HasPrefix(sw.Buttons[0].Label, "Confirm anyway: ") || !strings.HasPrefix(sw.Buttons[0].Confirm, "⚠️ deployment=architect-api-blue selects no ready pods") ||
		!strings.Contains(sw.Buttons[0].Confirm, "anyway?") || len([]rune(sw.Buttons[0].Confirm)) > 300 { // Slack's confirm dialog shows 300
		t.Errorf("switch to an empty colour: %+v %+v", sw.Fields, sw.Buttons)
	}

	// In a drill, the confirmation says the change is real.
	say(r, "@ops", "declare --drill P2 Game day: checkout error rate above 5%")
	if drill := say(r, "@ops", "step 2 high-error-rate 14 replicas=16"); len(drill.Buttons) == 0 || !strings.HasPrefix(drill.Buttons[0].Confirm, "🧪 DRILL — the change is real. ") {
		t.Errorf("a drill's confirmation: %+v", drill.Buttons)
	}

	tl := say(r, "@ops", "timeline 1")
	steps := 0
	for _, l := range tl.Lines {
		if strings.Contains(l, "runbook_step: High Error Rate") {
			steps++
		}
	}
	if steps != 11 {
		t.Errorf("%d runbook steps on the timeline, want 11:\n%s", steps, strings.Join(tl.Lines, "\n"))
	}
}

// BenchmarkStepEndToEnd: one click on a runbook step (the command, the
// runner, the real API server as the ServiceAccount, the timeline write and
// the reply): rollout history, and the scale step's dry run.
func BenchmarkStepEndToEnd(b *testing.B) {
	_, c := setup(b)
	r := router(b, c)
	say(r, "@ops", "declare P2 Checkout error rate above 5%")
	for _, bc := range []struct{ name, text string }{{"history", "step 1 high-error-rate 6"}, {"scale-dry-run", "step 1 high-error-rate 14 replicas=12"}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if rep := say(r, "@ops", bc.text); rep.Error || strings.Contains(rep.Fields[0].Value, "failed") {
					b.Fatalf("%+v", rep)
				}
			}
		})
	}
}

func loadShipped(t testing.TB) *runbooks.Set {
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{Namespaces: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func itoa(n int) string { return strconv.Itoa(n) }
