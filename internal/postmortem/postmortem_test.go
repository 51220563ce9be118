package postmortem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/postmortem"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture is an incident that went through every kind of event, at fixed times.
func fixture(t *testing.T) (*incidents.Service, *incidents.Incident) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := incidents.NewManualClock(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))
	svc := incidents.NewService(incidents.Config{Store: store, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	alice := incidents.Actor{Name: "<@UALICE>", Source: "slack"}
	bob := incidents.Actor{Name: "@bob", Source: "console"}
	pd := incidents.Actor{Name: "Jane Doe", Source: "pagerduty"}
	am := incidents.Actor{Name: "Alertmanager", Source: "alertmanager"}
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: "Checkout error rate | above 5%", Description: "EU customers cannot pay",
		Service: "checkout", Signals: incidents.Signals{Explicit: incidents.P2}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration, f func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error)) {
		t.Helper()
		clock.Advance(d)
		if _, _, err := svc.Change(ctx, inc.ID, f); err != nil {
			t.Fatal(err)
		}
	}
	step(10*time.Second, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.OpenWarRoom("C1", "inc-1-checkout-error-rate-above-5", "C1/1.1", incidents.System, now)
	})
	alert := func(d time.Duration, a incidents.Alert, also func(i *incidents.Incident, now time.Time) []incidents.Event) {
		t.Helper()
		clock.Advance(d)
		_, err := svc.Apply(ctx, func(now time.Time) incidents.Write {
			return incidents.Write{ID: inc.ID, Change: func(i *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
				a.StartsAt = now.Add(-3 * time.Minute)
				evs, err := i.ObserveAlert(a, m, am, now)
				if also != nil {
					evs = append(evs, also(i, now)...)
				}
				return evs, err
			}}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	alert(20*time.Second, incidents.Alert{Fingerprint: "f1", Name: "HighErrorRate", Status: "firing", Summary: "High error rate: 7%",
		URL: "http://prometheus:9090/graph?g0.expr=rate"}, nil)
	step(4*time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) { return i.Ack(pd, now) })
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) { return i.Unacknowledge(pd, now) })
	step(16*time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		r, _ := i.Remind(now)
		return r, nil
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) { return i.Ack(alice, now) })
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.Record(incidents.EventEscalated, "escalated in PagerDuty to Jane Doe", nil, pd, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.Record(incidents.EventSyncFailed, "PagerDuty did not take the acknowledgement (503); retrying", nil, incidents.System, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.Record(incidents.EventSynced, "acknowledgement sent to PagerDuty PX1", nil, incidents.System, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.ChangeSeverity(incidents.P1, "every region affected", alice, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.AssignRole(incidents.Comms, "@carol", alice, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.ReachPhase(incidents.Communicate, alice, now)
	})
	for _, n := range []string{"#impact 18% of checkouts failed for 40 minutes", "#cause the 3.2.0 connection pool was sized 10, not 100",
		"#factor no alert on pool saturation", "#lesson canary should watch pool waits", "plain note, no tag"} {
		step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) { return i.AddNote(n, bob, now) })
	}
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.PinMessage(incidents.Pin{Ref: "C1/2.2", Author: "<@UDAVE>", Text: "rolling back to 3.1.0", Permalink: "https://acme.slack.com/archives/C1/p22"}, alice, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.ChangeStatus(incidents.Identified, "bad deploy 3.2.0", alice, now)
	})
	step(5*time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.ChangeStatus(incidents.Monitoring, "rolled back, error rate falling", alice, now)
	})
	alert(2*time.Minute, incidents.Alert{Fingerprint: "f1", Name: "HighErrorRate", Status: "resolved"}, func(i *incidents.Incident, now time.Time) []incidents.Event {
		more, _ := i.Record(incidents.EventAlertsResolved, "every alert of the group has resolved", nil, am, now)
		return more
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.AddAction("alert on connection pool saturation", "@bob", alice, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.AddAction("size the pool from load tests", "", alice, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.CompleteAction(1, bob, now)
	})
	step(time.Minute, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.Resolve("rolled back to 3.1.0", alice, now)
	})
	step(time.Hour, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.MarkPostmortem("md", alice, now)
	})
	inc, _ = svc.Get(ctx, inc.ID)
	return svc, inc
}

func golden(t *testing.T, name string, got []byte) {
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./internal/postmortem -update if intended):\n%s", name, got)
	}
}

func TestGoldenMarkdownAndJSON(t *testing.T) {
	svc, inc := fixture(t)
	budget := &slo.Budget{Target: 0.9995, Window: 30 * 24 * time.Hour, WindowSeconds: (30 * 24 * time.Hour).Seconds(), BudgetMinutes: 21.6, ConsumedPercent: 37.5, FailedRequests: 1234}
	var md, js bytes.Buffer
	if err := postmortem.Write(context.Background(), &md, svc, inc, postmortem.Options{Format: "md", Budget: budget}); err != nil {
		t.Fatal(err)
	}
	golden(t, "postmortem.md", md.Bytes())
	if err := postmortem.Write(context.Background(), &js, svc, inc, postmortem.Options{Format: "json", Budget: budget}); err != nil {
		t.Fatal(err)
	}
	golden(t, "postmortem.json", js.Bytes())
	var parsed map[string]any
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil {
		t.Fatalf("the JSON export does not parse: %v", err)
	}
	// Every event is in both, and the tagged notes are sorted into their sections.
	n := int(parsed["timeline_events"].(float64))
	if len(parsed["timeline"].([]any)) != n || strings.Count(md.String(), "\n| 2026-11-26 ") != n {
		t.Errorf("timeline: %d events, %d in JSON", n, len(parsed["timeline"].([]any)))
	}
	for _, want := range []string{"## Root cause\n\n- the 3.2.0 connection pool", "## Contributing factors\n\n- no alert on pool saturation",
		"## Lessons learned\n\n- canary should watch", "- 18% of checkouts failed", "| 1 | alert on connection pool saturation | @bob | done |",
		"Checkout error rate \\| above 5%", "HighErrorRate firing: High error rate: 7% — query: http://prometheus"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if err := postmortem.Write(context.Background(), &js, svc, inc, postmortem.Options{Format: "pdf"}); incidents.ErrorCode(err) != incidents.EInvalid {
		t.Errorf("unknown format: %v", err)
	}
}

func TestMeasure(t *testing.T) {
	_, inc := fixture(t)
	m := postmortem.Measure(inc)
	// Declared 03:00; first acknowledged 03:04:30 (by Jane Doe in PagerDuty; unacknowledged
	// at 03:05:30, acknowledged again 03:22:30); monitoring at 03:40:30; resolved 03:46:30.
	if m.Acknowledge != 4*time.Minute+30*time.Second || m.AckedBy != "Jane Doe" || m.Mitigate != 40*time.Minute+30*time.Second || m.Resolve != 46*time.Minute+30*time.Second {
		t.Errorf("measured %+v", m)
	}
}

// TestMarkdownCarriesNoMarkupFromOutside: raw HTML, images and links in a
// title, a note or an action item render as the text they are.
func TestMarkdownCarriesNoMarkupFromOutside(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := incidents.NewService(incidents.Config{Store: store, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	who := incidents.Actor{Name: "Eve <script>", Source: "pagerduty"}
	hostile := `<img src=x onerror=alert(1)> ![t](http://evil.example/pixel.png) [ok](javascript:alert(1)) <http://evil.example>`
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: hostile, Description: hostile}, who)
	if err != nil {
		t.Fatal(err)
	}
	if inc, err = svc.AddNote(ctx, inc.ID, "#cause "+hostile, who); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := postmortem.Write(ctx, &md, svc, inc, postmortem.Options{Format: "md"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<img", "<script", "![t](", "[ok](", "<http"} {
		if strings.Contains(md.String(), bad) {
			t.Errorf("the Markdown carries %q:\n%s", bad, md.String())
		}
	}
	if !strings.Contains(md.String(), `&lt;img src=x onerror=alert(1)> !\[t\](http://evil.example/pixel.png)`) {
		t.Errorf("the text is not shown as it is:\n%s", md.String())
	}
}
