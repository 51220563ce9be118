package telemetry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/telemetry"
)

func TestMetricsFollowTheLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := telemetry.New(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	who := incidents.Actor{Name: "@a", Source: "console"}
	// One incident already open when Sitrep starts.
	old, _, _ := incidents.Declare(incidents.Declaration{Title: "old", Signals: incidents.Signals{Explicit: incidents.P3}}, who, t0)
	m.Seed([]*incidents.Incident{old})

	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "API down"}, who, t0)
	apply := func(events []incidents.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		m.Notify(context.Background(), inc, events)
	}
	apply(events, nil)
	apply(inc.Ack(who, t0.Add(2*time.Minute)))
	apply(inc.ChangeSeverity(incidents.P2, "one region", who, t0.Add(3*time.Minute)))
	apply(inc.Resolve("", who, t0.Add(time.Hour)))
	apply(inc.ChangeSeverity(incidents.P1, "it was worse", who, t0.Add(2*time.Hour))) // resolved: open unchanged
	apply(inc.Reopen("", who, t0.Add(3*time.Hour)))
	apply(inc.Record(incidents.EventRunbookStep, "High Error Rate · 2", map[string]string{"runbook": "high-error-rate", "outcome": "ok"}, who, t0.Add(4*time.Hour)))
	// A drill changes no figure: declared, acknowledged and open on a game day.
	drill, drillEvents, _ := incidents.Declare(incidents.Declaration{Title: "game day", Drill: true, Signals: incidents.Signals{Explicit: incidents.P1}}, who, t0)
	m.Notify(context.Background(), drill, drillEvents)
	ackEvents, _ := drill.Ack(who, t0.Add(time.Minute))
	m.Notify(context.Background(), drill, ackEvents)
	m.Seed([]*incidents.Incident{old, inc, drill}) // a restart's seed leaves it out too

	checks := []struct {
		name, metric, sev string
		want              float64
	}{
		{"declared P1", "sitrep_incidents_declared_total", "P1", 1},
		{"declared P2", "sitrep_incidents_declared_total", "P2", 0},
		{"open P1 (reopened)", "sitrep_incidents_open", "P1", 1},
		{"open P2", "sitrep_incidents_open", "P2", 0},
		{"open P3 (seeded)", "sitrep_incidents_open", "P3", 1},
	}
	for _, c := range checks {
		if got := value(t, reg, c.metric, c.sev); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "sitrep_runbook_steps_total"); n != 1 {
		t.Errorf("%d runbook step series, want 1", n)
	}
	if n := testutil.CollectAndCount(reg, "sitrep_time_to_acknowledge_seconds"); n != 4 {
		t.Errorf("%d ack histograms, want one per severity", n)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			h := metric.GetHistogram()
			if h == nil || metric.GetLabel()[0].GetValue() == "" {
				continue
			}
			sev := metric.GetLabel()[0].GetValue()
			switch {
			case mf.GetName() == "sitrep_time_to_acknowledge_seconds" && sev == "P1":
				if h.GetSampleCount() != 1 || h.GetSampleSum() != 120 {
					t.Errorf("TTA P1: %d samples, sum %v", h.GetSampleCount(), h.GetSampleSum())
				}
			case mf.GetName() == "sitrep_time_to_resolve_seconds" && sev == "P2":
				if h.GetSampleCount() != 1 || h.GetSampleSum() != 3600 {
					t.Errorf("TTR P2: %d samples, sum %v", h.GetSampleCount(), h.GetSampleSum())
				}
			}
		}
	}
}

// value reads one severity's series of a counter or gauge.
func value(t *testing.T, reg *prometheus.Registry, name, sev string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && m.GetLabel()[0].GetValue() == sev {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{severity=%q}", name, sev)
	return 0
}

// TestPrivateIncidentsAreCountedWithoutTheirTitle: /metrics counts a
// private incident like any other, and nothing of it but its severity
// reaches the exposition.
func TestPrivateIncidentsAreCountedWithoutTheirTitle(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	who := incidents.Actor{Name: "@a", Source: "console"}
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "Customer data exposed", Private: true, Service: "payroll", Signals: incidents.Signals{Explicit: incidents.P1}}, who, t0)
	m.Notify(context.Background(), inc, events)
	if got := value(t, reg, "sitrep_incidents_declared_total", "P1"); got != 1 {
		t.Errorf("declared P1 = %v", got)
	}
	var out strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		out.WriteString(mf.String())
	}
	if s := out.String(); strings.Contains(s, "Customer") || strings.Contains(s, "payroll") {
		t.Errorf("the exposition names the private incident:\n%s", s)
	}
}
