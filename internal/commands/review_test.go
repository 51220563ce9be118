package commands_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/telemetry"
)

func TestActionItemsAndPostmortem(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 Checkout error rate above 5%")
	f.clock.Advance(3 * time.Minute)
	f.ok(t, "", "ack 1")
	f.ok(t, "", "note 1 #cause pool sized 10 #factor no saturation alert")
	if r := f.ok(t, "", "action 1 alert on pool saturation @bob"); !strings.Contains(r.Text, "action item #1 on INC-1: alert on pool saturation (owner @bob)") {
		t.Errorf("action: %q", r.Text)
	}
	f.ok(t, "", "action 1 size the pool from load tests")
	f.ok(t, "", "actions 1 done 1")
	r := f.ok(t, "", "actions 1")
	if len(r.Lines) != 2 || r.Lines[0] != "#1 [done] alert on pool saturation (owner @bob)" || r.Lines[1] != "#2 [open] size the pool from load tests (no owner yet)" {
		t.Errorf("actions: %q", r.Lines)
	}
	for text, want := range map[string]string{
		"actions 1 done 1": "already done", "actions 1 done 9": "no action item 9", "actions 1 done x": "not an action item number",
		"actions 1 finish 1": "actions done <n>", "action 1": "needs text", "postmortem 1 pdf": `unknown format "pdf"`,
		"slo": "no Prometheus configured", "stats 3w": "not a period", "stats 0d": "not a period",
	} {
		if r := f.do(t, "", text); !r.Error || !strings.Contains(r.Text, want) {
			t.Errorf("%q → %q, want %q", text, r.Text, want)
		}
	}
	f.clock.Advance(40 * time.Minute)
	f.ok(t, "", "resolve 1 rolled back")
	r = f.ok(t, "", "postmortem 1")
	if r.File == nil || r.File.Name != "INC-1-postmortem.md" || !strings.Contains(string(r.File.Content), "## Root cause\n\n- pool sized 10") ||
		!strings.Contains(string(r.File.Content), "| 1 | alert on pool saturation | @bob | done |") {
		t.Fatalf("postmortem reply %+v", r)
	}
	if inc, _ := f.store.Get(ctx, 1); inc.Phase != incidents.Document {
		t.Errorf("phase after the postmortem: %s", inc.Phase)
	}
	r = f.ok(t, "", "postmortem 1 json")
	var doc map[string]any
	if err := json.Unmarshal(r.File.Content, &doc); err != nil || doc["incident"].(map[string]any)["id"] != "INC-1" {
		t.Errorf("json postmortem: %v", err)
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	for _, title := range []string{"P1 API down", "P1 db down", "P2 errors", "P4 typo"} {
		f.ok(t, "", "declare "+title)
	}
	f.clock.Advance(2 * time.Minute)
	f.ok(t, "", "ack 1")
	f.clock.Advance(8 * time.Minute)
	f.ok(t, "", "ack 2")
	f.clock.Advance(50 * time.Minute)
	f.ok(t, "", "resolve 1")
	r := f.ok(t, "", "stats 30d")
	if r.Text != "4 incidents in the last 30d:" {
		t.Errorf("stats: %q", r.Text)
	}
	p1 := r.Lines[1]
	// P1: acked after 2m and 10m (median 2m, p90 10m); one resolved after 1h.
	if !strings.HasPrefix(p1, "P1       2  2m / 10m") || !strings.Contains(p1, "1h / 1h") {
		t.Errorf("P1 line %q", p1)
	}
	if !strings.HasPrefix(r.Lines[3], "P3       0") || !strings.Contains(r.Lines[len(r.Lines)-1], "Runbooks used: none yet") {
		t.Errorf("lines %q", r.Lines)
	}
	if r := f.ok(t, "", "stats 1d12h"); r.Text != "4 incidents in the last 1d12h:" { // the same durations as the configuration
		t.Errorf("stats 1d12h: %q", r.Text)
	}
	f.clock.Advance(31 * 24 * time.Hour)
	if r := f.ok(t, "", "stats"); r.Text != "0 incidents in the last 30d:" {
		t.Errorf("after a month: %q", r.Text)
	}
}

// TestAcknowledgementSurvivesReopening: declared P2, acknowledged after 5m,
// resolved, reopened, raised to P1 and resolved again. show still names the
// acknowledgement; stats and /metrics both count MTTA 5m under P2 (the
// severity when it was acknowledged) and a resolution under each of P2 and P1.
func TestAcknowledgementSurvivesReopening(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, metrics)
	f.ok(t, "", "declare P2 checkout errors")
	f.clock.Advance(5 * time.Minute)
	f.ok(t, "", "ack 1")
	f.clock.Advance(15 * time.Minute)
	f.ok(t, "", "resolve 1 rolled back")
	f.clock.Advance(10 * time.Minute)
	f.ok(t, "", "reopen 1 errors are back")
	f.ok(t, "", "severity 1 P1 every region now")
	f.clock.Advance(10 * time.Minute)
	f.ok(t, "", "resolve 1 fixed for good")

	show := f.ok(t, "", "show 1")
	for _, fl := range show.Fields {
		if fl.Label == "Ack deadline" && fl.Value != "acknowledged by @alice at 03:05 UTC, before it was reopened" {
			t.Errorf("show says %q", fl.Value)
		}
	}
	lines := f.ok(t, "", "stats").Lines
	if !strings.HasPrefix(lines[2], "P2       1  5m / 5m") || !strings.Contains(lines[2], "20m / 20m") {
		t.Errorf("P2 line %q", lines[2])
	}
	if !strings.HasPrefix(lines[1], "P1       0  — ") || !strings.Contains(lines[1], "40m / 40m") {
		t.Errorf("P1 line %q", lines[1])
	}
	// /metrics carries the same.
	families, _ := reg.Gather()
	got := map[string]string{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = fmt.Sprintf("%d×%gs", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	want := map[string]string{
		"sitrep_time_to_acknowledge_seconds/P2": "1×300s",
		"sitrep_time_to_resolve_seconds/P2":     "1×1200s", "sitrep_time_to_resolve_seconds/P1": "1×2400s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != "0×0s" {
			t.Errorf("%s = %q, want nothing observed", k, v)
		}
	}
}
