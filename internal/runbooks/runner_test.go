package runbooks_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// fakeCluster records calls; the real thing is tested in internal/kube
// against a real API server.
type fakeCluster struct {
	runbooks.Cluster
	calls []string
	skip  bool
	gen   int // the deployment's generation: a spec change moves it
}

// Scale is a deployment at 10 replicas, at generation gen, refusing a
// confirmed change made on another generation as the API server would.
func (f *fakeCluster) Scale(_ context.Context, ns, d string, n int, a runbooks.Apply) (runbooks.Change, error) {
	version := strconv.Itoa(f.gen)
	if f.skip {
		f.calls = append(f.calls, "scale?")
		return runbooks.Change{Summary: "replicas already 15", Skipped: true, Version: version}, nil
	}
	if a.Version != "" && a.Version != version {
		f.calls = append(f.calls, "refused")
		return runbooks.Change{}, fmt.Errorf("generation %s, previewed %s: %w", version, a.Version, runbooks.ErrChanged)
	}
	if a.DryRun {
		f.calls = append(f.calls, "scale?")
		return runbooks.Change{Summary: "replicas 10 → 15", Version: version}, nil
	}
	f.calls = append(f.calls, "scale!")
	return runbooks.Change{Summary: "replicas 10 → 15", Version: version}, nil
}

func (f *fakeCluster) Pods(context.Context, string, string, string) ([]runbooks.PodInfo, error) {
	f.calls = append(f.calls, "pods")
	return []runbooks.PodInfo{{Name: "api-1", Phase: "Running", Restarts: 7, LastState: "OOMKilled (exit 137) at 03:01:02", Limits: "api: memory 256Mi"}}, nil
}

// targetCluster records what a scale was asked to act on.
type targetCluster struct {
	runbooks.Cluster
	target string
}

func (c *targetCluster) Scale(_ context.Context, ns, d string, n int, _ runbooks.Apply) (runbooks.Change, error) {
	c.target = ns + "/" + d
	return runbooks.Change{Summary: "replicas 3 → 15"}, nil
}

type fakeMetrics struct{ samples []runbooks.Sample }

func (f fakeMetrics) Instant(context.Context, string, time.Time) ([]runbooks.Sample, error) {
	return f.samples, nil
}
func (f fakeMetrics) Graph(context.Context, runbooks.GraphSpec) ([]byte, string, error) {
	return nil, "", errors.New("no graphs here")
}

func loadSet(t *testing.T) *runbooks.Set {
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestGuardrails(t *testing.T) {
	set := loadSet(t)
	rb := set.Get("high-error-rate")
	inc := &incidents.Incident{ID: 1}
	operator := incidents.Actor{Name: "<@UOPS>", Source: "slack"}
	guard := runbooks.Guardrails{Operators: []string{"UOPS", "@alice"}, Namespaces: []string{"architect-production"}}
	scale := 14 // "Potential fix — scale up"

	t.Run("not an operator: every destructive step refused with no API call", func(t *testing.T) {
		c := &fakeCluster{}
		r := runbooks.NewRunner(c, nil, guard)
		n := 0
		for _, book := range set.Runbooks() {
			for i, s := range book.Steps {
				if !s.Kind.Destructive() {
					continue
				}
				n++
				res := r.Run(context.Background(), runbooks.Request{Incident: inc, Runbook: book, Step: i + 1, Actor: incidents.Actor{Name: "<@UINTERN>"}})
				if res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "only operators") {
					t.Errorf("%s step %d (%s): %+v", book.Name, i+1, s.Kind, res)
				}
			}
		}
		if n < 8 || len(c.calls) != 0 {
			t.Errorf("%d destructive steps tried, %d API calls", n, len(c.calls))
		}
	})
	t.Run("namespace outside the allow-list: refused with no API call", func(t *testing.T) {
		c := &fakeCluster{}
		elsewhere := *rb
		elsewhere.Params = map[string]string{"namespace": "kube-system", "deployment": "coredns", "service": "x"}
		res := runbooks.NewRunner(c, nil, guard).Run(context.Background(), runbooks.Request{Incident: inc, Runbook: &elsewhere, Step: scale, Actor: operator})
		if res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, `namespace "kube-system"`) || len(c.calls) != 0 {
			t.Errorf("%+v, calls %v", res, c.calls)
		}
	})
	t.Run("alert labels cannot retarget an action", func(t *testing.T) {
		c := &targetCluster{}
		labelled := &incidents.Incident{ID: 3, Labels: map[string]string{"namespace": "kube-system", "deployment": "payments-db"}}
		res := runbooks.NewRunner(c, nil, guard).Run(context.Background(), runbooks.Request{Incident: labelled, Runbook: rb, Step: scale, Actor: operator, Replicas: 15})
		if res.Outcome != runbooks.DryRun || c.target != "architect-production/architect-api" {
			t.Errorf("labels namespace=kube-system deployment=payments-db: %+v, acted on %q (want the runbook's target)", res, c.target)
		}
	})
	t.Run("a target the runbook leaves open is not filled from outside", func(t *testing.T) {
		c := &targetCluster{}
		open := *rb
		open.Params = map[string]string{"namespace": "architect-production"} // no deployment, no service
		labelled := &incidents.Incident{ID: 4, Service: "payments", Labels: map[string]string{"deployment": "payments-db", "service": "payments"}}
		res := runbooks.NewRunner(c, nil, guard).Run(context.Background(), runbooks.Request{Incident: labelled, Runbook: &open, Step: scale, Actor: operator, Replicas: 15})
		if res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "needs deployment") || c.target != "" {
			t.Errorf("%+v, acted on %q", res, c.target)
		}
	})
	t.Run("a confirmation is bound to who asked, and to an open incident", func(t *testing.T) {
		c := &fakeCluster{}
		r := runbooks.NewRunner(c, nil, guard)
		req := runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator, Replicas: 15}
		dry := r.Run(context.Background(), req)
		other := req
		other.Actor, other.Confirm = incidents.Actor{Name: "@alice", Source: "console"}, dry.Token
		if res := r.Run(context.Background(), other); res.Outcome != runbooks.Refused {
			t.Errorf("operator B confirmed operator A's dry run: %+v", res)
		}
		resolved := *inc
		resolved.Status = incidents.Resolved
		late := req
		late.Incident, late.Confirm = &resolved, dry.Token
		if res := r.Run(context.Background(), late); res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "resolved") {
			t.Errorf("a confirmation acted after the incident was resolved: %+v", res)
		}
		if len(c.calls) != 1 {
			t.Errorf("calls %v: only the dry run may have reached the cluster", c.calls)
		}
	})
	t.Run("dry run, confirmation, and a double click acting once", func(t *testing.T) {
		c := &fakeCluster{}
		r := runbooks.NewRunner(c, nil, guard)
		req := runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator, Replicas: 15}
		dry := r.Run(context.Background(), req)
		if dry.Outcome != runbooks.DryRun || dry.Summary != "replicas 10 → 15" || dry.Token == "" {
			t.Fatalf("dry run %+v", dry)
		}
		req.Confirm = dry.Token
		if res := r.Run(context.Background(), req); res.Outcome != runbooks.Confirmed {
			t.Fatalf("confirm %+v", res)
		}
		again := r.Run(context.Background(), req)
		// the dry run, the change itself on the previewed generation
		if again.Outcome != runbooks.Refused || !strings.Contains(again.Summary, "already used") || strings.Join(c.calls, ",") != "scale?,scale!" {
			t.Errorf("second click %+v, calls %v", again, c.calls)
		}
		// A token confirms only what it was given for.
		other := req
		other.Confirm, other.Replicas = r.Run(context.Background(), runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator, Replicas: 15}).Token, 30
		if res := r.Run(context.Background(), other); res.Outcome != runbooks.Refused {
			t.Errorf("a token for 15 replicas confirmed 30: %+v", res)
		}
	})
	t.Run("an object changed since the preview is previewed again, not acted on", func(t *testing.T) {
		c := &fakeCluster{}
		r := runbooks.NewRunner(c, nil, guard)
		req := runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator, Replicas: 15}
		dry := r.Run(context.Background(), req)
		c.gen++ // someone changed its spec meanwhile
		req.Confirm = dry.Token
		res := r.Run(context.Background(), req)
		if res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "changed since the preview") {
			t.Errorf("%+v", res)
		}
		if strings.Join(c.calls, ",") != "scale?,refused" { // the dry run, no change
			t.Errorf("calls %v", c.calls)
		}
	})
	t.Run("nothing to change needs no confirmation", func(t *testing.T) {
		res := runbooks.NewRunner(&fakeCluster{skip: true}, nil, guard).Run(context.Background(), runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator})
		if res.Outcome != runbooks.Skipped || res.Token != "" {
			t.Errorf("%+v", res)
		}
	})
	t.Run("no cluster configured", func(t *testing.T) {
		res := runbooks.NewRunner(nil, nil, guard).Run(context.Background(), runbooks.Request{Incident: inc, Runbook: rb, Step: scale, Actor: operator})
		if res.Outcome != runbooks.Failed || !strings.Contains(res.Summary, "no Kubernetes cluster") {
			t.Errorf("%+v", res)
		}
	})
	t.Run("bad step numbers", func(t *testing.T) {
		for _, n := range []int{0, -1, 99} {
			if res := runbooks.NewRunner(nil, nil, guard).Run(context.Background(), runbooks.Request{Runbook: rb, Step: n}); res.Outcome != runbooks.Refused {
				t.Errorf("step %d: %+v", n, res)
			}
		}
	})
}

func TestReadSteps(t *testing.T) {
	set := loadSet(t)
	metrics := fakeMetrics{samples: []runbooks.Sample{
		{Labels: map[string]string{"status": "500", "path": "/checkout"}, Value: 0.002},
		{Labels: map[string]string{"status": "503", "path": "/search"}, Value: 0.0001},
	}}
	r := runbooks.NewRunner(&fakeCluster{}, metrics, runbooks.Guardrails{})
	res := r.Run(context.Background(), runbooks.Request{Runbook: set.Get("high-error-rate"), Step: 2})
	if res.Outcome != runbooks.OK || !strings.HasPrefix(res.Summary, "🔴 2 series") || res.Lines[0] != "🔴 0.20%  {path=/checkout, status=500}" ||
		!strings.HasPrefix(res.Lines[1], "✅") {
		t.Errorf("promql %+v", res)
	}
	res = r.Run(context.Background(), runbooks.Request{Runbook: set.Get("pod-crashes"), Step: 1})
	if !strings.Contains(res.Summary, "1 OOMKilled") || !strings.Contains(res.Lines[0], "restarts=7") {
		t.Errorf("pod status %+v", res)
	}
	res = r.Run(context.Background(), runbooks.Request{Runbook: set.Get("high-error-rate"), Step: 1})
	if res.Outcome != runbooks.OK || !strings.HasPrefix(res.Summary, "to do by hand: Acknowledge") {
		t.Errorf("manual %+v", res)
	}
	res = r.Run(context.Background(), runbooks.Request{Runbook: set.Get("high-error-rate"), Step: 4})
	if res.Outcome != runbooks.Failed || !strings.Contains(res.Summary, "no graphs here") {
		t.Errorf("graph failure %+v", res)
	}
	// A missing parameter is refused before anything runs.
	res = r.Run(context.Background(), runbooks.Request{Runbook: set.Get("disk-space"), Step: 3})
	if res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "needs instance") {
		t.Errorf("missing param %+v", res)
	}
	// Alert labels fill what the runbook leaves open; they do not override
	// its parameters (unless it names them in from_alert), never the namespace.
	inc := &incidents.Incident{Service: "checkout", Labels: map[string]string{"deployment": "checkout-api", "namespace": "kube-system", "instance": "node-1:9100"}}
	p := runbooks.Params(set.Get("high-error-rate"), inc)
	if p["deployment"] != "architect-api" || p["namespace"] != "architect-production" || p["service"] != "architect-api" || p["instance"] != "node-1:9100" {
		t.Errorf("params %v", p)
	}
	open := *set.Get("high-error-rate")
	open.FromAlert = []string{"deployment", "namespace"}
	if p := runbooks.Params(&open, inc); p["deployment"] != "checkout-api" || p["namespace"] != "architect-production" {
		t.Errorf("from_alert params %v", p)
	}
}
