package pagerduty_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
	"github.com/sitrep-oncall/sitrep/internal/tally"
)

var secret = []byte("whsec-test-secret")

type fixture struct {
	store *boltstore.Store
	close func()
	svc   *incidents.Service
	srv   *httptest.Server
}

func newFixture(t testing.TB, notifiers ...incidents.Notifier) *fixture {
	t.Helper()
	return newFixtureAt(t, filepath.Join(t.TempDir(), "s.db"), notifiers...)
}

// newFixtureAt opens the store at path (with the sync's outbox subscription)
// and serves the receiver on it; close ends both (a restart opens it again).
func newFixtureAt(t testing.TB, path string, notifiers ...incidents.Notifier) *fixture {
	t.Helper()
	store, err := boltstore.Open(path, boltstore.Options{Subscriptions: []incidents.Subscription{pagerduty.Subscription()}})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet, Notifiers: notifiers})
	srv := httptest.NewServer(pagerduty.NewReceiver(svc, []string{"old-secret", string(secret)}, quiet))
	f := &fixture{svc: svc, srv: srv, store: store}
	var once sync.Once
	f.close = func() { once.Do(func() { srv.Close(); store.Close() }) }
	t.Cleanup(f.close)
	return f
}

// sample loads a PagerDuty sample and points it at PagerDuty incident pd.
func sample(t testing.TB, name, pd string) []byte {
	var m map[string]any
	if err := json.Unmarshal(read(t, name), &m); err != nil {
		t.Fatal(err)
	}
	m["event"].(map[string]any)["occurred_at"] = time.Now().UTC().Format(time.RFC3339) // delivered now
	data := m["event"].(map[string]any)["data"].(map[string]any)
	if inc, ok := data["incident"].(map[string]any); ok {
		inc["id"] = pd
	} else {
		data["id"] = pd
	}
	b, _ := json.Marshal(m)
	return b
}

func (f *fixture) post(t testing.TB, body []byte, signature string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	if signature != "" {
		req.Header.Set(pagerduty.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func (f *fixture) signed(t testing.TB, body []byte) (int, map[string]any) {
	return f.post(t, body, pagerduty.Sign(body, secret))
}

func (f *fixture) timeline(t testing.TB, id int64) []incidents.Event {
	var out []incidents.Event
	if err := f.svc.Timeline(context.Background(), id, func(ev incidents.Event) error { out = append(out, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLifecycleFromPagerDuty(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code, out := f.signed(t, sample(t, "zulip_triggered_v3.json", "PFQZPSY"))
	if code != http.StatusAccepted || out["incident"] != "INC-1" {
		t.Fatalf("triggered: %d %v", code, out)
	}
	inc, _ := f.svc.Get(ctx, 1)
	if inc.Title != "Test Incident 3" || inc.Severity != incidents.P2 || inc.SeverityReason != "PagerDuty urgency high → P2 High" ||
		inc.Links["pagerduty"] != "PFQZPSY" || inc.Links["pagerduty_url"] != "https://pig208.pagerduty.com/incidents/PFQZPSY" ||
		inc.Service != "pig208" || inc.Source != "pagerduty" || inc.Lead() != "" {
		t.Errorf("declared from PagerDuty: %+v", inc)
	}
	steps := []struct {
		file string
		kind incidents.EventKind
	}{
		{"zulip_acknowledged_v3.json", incidents.EventAcknowledged},
		{"zulip_priority_updated_v3.json", incidents.EventSeverityChanged}, // P2 → P2: no change
		{"pdocs_overview_priority_updated_v3.json", incidents.EventSeverityChanged},
		{"zulip_escalated_v3.json", incidents.EventEscalated},
		{"zulip_annotated_v3.json", incidents.EventNote},
		{"zulip_resolved_v3.json", incidents.EventResolved},
	}
	for _, s := range steps {
		if code, out := f.signed(t, sample(t, s.file, "PFQZPSY")); code != http.StatusAccepted || out["incident"] != "INC-1" {
			t.Fatalf("%s: %d %v", s.file, code, out)
		}
	}
	inc, _ = f.svc.Get(ctx, 1)
	if inc.Open() || inc.Severity != incidents.P1 || inc.AckedBy == "" || inc.Lead() != inc.AckedBy {
		t.Errorf("after the lifecycle: %+v", inc)
	}
	var kinds []string
	for _, ev := range f.timeline(t, 1) {
		kinds = append(kinds, string(ev.Kind))
		if ev.Kind != incidents.EventPhaseReached && ev.Source != "pagerduty" {
			t.Errorf("event %s has source %q", ev.Kind, ev.Source)
		}
	}
	got := strings.Join(kinds, " ")
	want := "declared acknowledged role_assigned phase_reached severity_changed phase_reached escalated note resolved phase_reached"
	if got != want {
		t.Errorf("timeline\n got %s\nwant %s", got, want)
	}
}

func TestRedeliveryActsOnce(t *testing.T) {
	f := newFixture(t)
	f.signed(t, sample(t, "zulip_triggered_v3.json", "P1"))
	note := sample(t, "zulip_annotated_v3.json", "P1")
	for i := 0; i < 3; i++ {
		code, out := f.signed(t, note)
		if code != http.StatusAccepted || out["duplicate"] != (i > 0) {
			t.Fatalf("delivery %d: %d %v", i, code, out)
		}
	}
	// The triggered event redelivered does not declare twice either.
	f.signed(t, sample(t, "zulip_triggered_v3.json", "P1"))
	all, _ := f.svc.List(context.Background(), incidents.Filter{All: true})
	if n := len(f.timeline(t, 1)); n != 2 || len(all) != 1 {
		t.Errorf("%d events, %d incidents after redeliveries", n, len(all))
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	body := sample(t, "zulip_triggered_v3.json", "P1")
	big := append([]byte(`{"event":{"id":"x","event_type":"incident.triggered","data":{"id":"P","title":"`), bytes.Repeat([]byte("a"), pagerduty.MaxBody)...)
	big = append(big, []byte(`"}}}`)...)
	tests := []struct {
		name string
		body []byte
		sig  string
		code int
	}{
		{"unsigned", body, "", 401},
		{"mis-signed", body, pagerduty.Sign(body, []byte("wrong")), 401},
		{"signed for another body", body, pagerduty.Sign([]byte("{}"), secret), 401},
		{"over 1 MiB", big, pagerduty.Sign(big, secret), 413},
		{"malformed", []byte(`{"event":`), pagerduty.Sign([]byte(`{"event":`), secret), 400},
		{"unknown type", []byte(`{"event":{"id":"e9","event_type":"service.updated","data":{"id":"S1"}}}`), "", 202},
		{"an acknowledgement before its trigger", sample(t, "zulip_acknowledged_v3.json", "PNEVERSEEN"), "", 202},
		{"rotation: old secret", body, pagerduty.Sign(body, []byte("old-secret")), 202},
	}
	var c tally.Count
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" && tt.code == 202 {
				sig = pagerduty.Sign(tt.body, secret)
			}
			code, out := f.post(t, tt.body, sig)
			if code != tt.code {
				t.Errorf("%d %v, want %d", code, out, tt.code)
			}
			c.Try(code/100 == 2)
		})
	}
	all, _ := f.svc.List(context.Background(), incidents.Filter{All: true})
	if len(all) != 2 { // the rotation case, and the incident the early acknowledgement carried
		t.Errorf("%d incidents after the refusals", len(all))
		c.Lost = 2 - min(len(all), 2)
	}
	c.Report(t)
	resp, _ := http.Get(f.srv.URL)
	if resp.StatusCode != 405 {
		t.Errorf("GET = %d", resp.StatusCode)
	}
}

// TestNotesNeverRefused: an empty note from PagerDuty is answered 2xx and
// recorded as nothing (it used to get 503 forever, then be dropped); a note
// of 5,000 bytes is kept whole.
func TestNotesNeverRefused(t *testing.T) {
	f := newFixture(t)
	f.signed(t, sample(t, "zulip_triggered_v3.json", "PNOTE"))
	note := func(content string) []byte {
		var m map[string]any
		json.Unmarshal(sample(t, "zulip_annotated_v3.json", "PNOTE"), &m)
		ev := m["event"].(map[string]any)
		ev["id"] = "note-" + fmt.Sprint(len(content))
		ev["data"].(map[string]any)["content"] = content
		b, _ := json.Marshal(m)
		return b
	}
	var c tally.Count
	for _, content := range []string{"", "   ", strings.Repeat("long note ", 500)} {
		code, out := f.signed(t, note(content))
		if code/100 != 2 {
			t.Errorf("a note of %d bytes: %d %v", len(content), code, out)
		}
		c.Try(code/100 == 2)
	}
	var notes []string
	for _, ev := range f.timeline(t, 1) {
		if ev.Kind == incidents.EventNote {
			notes = append(notes, ev.Message)
		}
	}
	if len(notes) != 1 || len(notes[0]) != len(strings.TrimSpace(strings.Repeat("long note ", 500))) {
		t.Errorf("notes on the timeline: %d (want the long one, whole)", len(notes))
		c.Lost = 1
	}
	c.Report(t) // the two empty notes are accepted and rightly record nothing
}

// TestOldEventsAreNotReplayed: a captured, validly signed event sent again
// after its dedup key expired is acknowledged (so nothing retries it) and
// not applied.
func TestOldEventsAreNotReplayed(t *testing.T) {
	f := newFixture(t)
	var m map[string]any
	json.Unmarshal(sample(t, "zulip_triggered_v3.json", "POLD"), &m)
	m["event"].(map[string]any)["occurred_at"] = time.Now().Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339)
	body, _ := json.Marshal(m)
	code, out := f.signed(t, body)
	if code != 202 || !strings.Contains(fmt.Sprint(out["ignored"]), "replay") {
		t.Errorf("an 8-day-old event: %d %v", code, out)
	}
	if all, _ := f.svc.List(context.Background(), incidents.Filter{All: true}); len(all) != 0 {
		t.Errorf("the old event declared %d incidents", len(all))
	}
}

// TestPriorityNamesOfTheAccountsOwn: SEV1 is P1; a priority name Sitrep
// does not know ("Urgent") keeps the severity instead of falling to the P3
// default.
func TestPriorityNamesOfTheAccountsOwn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signed(t, sample(t, "zulip_triggered_v3.json", "PSEV")) // urgency high: P2
	priority := func(id, name string) []byte {
		var m map[string]any
		json.Unmarshal(sample(t, "pdocs_overview_priority_updated_v3.json", "PSEV"), &m)
		ev := m["event"].(map[string]any)
		ev["id"] = id
		data := ev["data"].(map[string]any)
		if inc, ok := data["incident"].(map[string]any); ok {
			data = inc
		}
		data["priority"] = map[string]any{"id": "PQ", "type": "priority_reference", "summary": name}
		b, _ := json.Marshal(m)
		return b
	}
	for _, tt := range []struct {
		name string
		want incidents.Severity
	}{{"Urgent", incidents.P2}, {"SEV1", incidents.P1}, {"Sev 3", incidents.P3}, {"whatever-we-call-it", incidents.P3}} {
		if code, out := f.signed(t, priority("prio-"+tt.name, tt.name)); code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", tt.name, code, out)
		}
		if inc, _ := f.svc.Get(ctx, 1); inc.Severity != tt.want {
			t.Errorf("after priority %q: %s (%s), want %s", tt.name, inc.Severity, inc.SeverityReason, tt.want)
		}
	}
}

// TestEventsBeforeTheirTrigger: PagerDuty does not promise order. An
// acknowledgement that comes before its trigger declares the incident it
// carries and acknowledges it; the trigger then finds it (one incident, no
// reminders for an acknowledged one). A resolve for an incident never seen
// opens nothing.
func TestEventsBeforeTheirTrigger(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if code, out := f.signed(t, sample(t, "zulip_acknowledged_v3.json", "PEARLY")); code != http.StatusAccepted || out["incident"] != "INC-1" {
		t.Fatalf("early acknowledgement: %d %v", code, out)
	}
	if code, out := f.signed(t, sample(t, "zulip_triggered_v3.json", "PEARLY")); code != http.StatusAccepted || out["incident"] != "INC-1" {
		t.Fatalf("the trigger after it: %d %v", code, out)
	}
	all, _ := f.svc.List(ctx, incidents.Filter{All: true})
	if len(all) != 1 || !all[0].Acked() || all[0].Links["pagerduty"] != "PEARLY" {
		t.Fatalf("incidents %+v", all)
	}
	if code, out := f.signed(t, sample(t, "zulip_resolved_v3.json", "PNEVER")); code != http.StatusAccepted || out["ignored"] == nil {
		t.Errorf("a resolve for an unseen incident: %d %v", code, out)
	}
	if all, _ := f.svc.List(ctx, incidents.Filter{All: true}); len(all) != 1 {
		t.Errorf("%d incidents after the unseen resolve", len(all))
	}
}

// reid gives a sample event a new PagerDuty event id (a different delivery).
func reid(t testing.TB, body []byte, id string) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["event"].(map[string]any)["id"] = id
	b, _ := json.Marshal(m)
	return b
}

// TestAMergedDuplicatesPagesLandOnTheSurvivor: after a merge, PagerDuty
// events for the duplicate's PagerDuty incident land on the survivor; its
// notes are added, but its resolution (Sitrep's own, echoed back, or
// someone's in PagerDuty) is recorded without resolving the survivor.
func TestAMergedDuplicatesPagesLandOnTheSurvivor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signed(t, reid(t, sample(t, "zulip_triggered_v3.json", "PAAAAAA"), "E1"))
	f.signed(t, reid(t, sample(t, "zulip_triggered_v3.json", "PBBBBBB"), "E2"))
	if _, _, err := f.svc.Merge(ctx, 2, 1, incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}); err != nil {
		t.Fatal(err)
	}
	for i, file := range []string{"zulip_resolved_v3.json", "zulip_annotated_v3.json", "zulip_acknowledged_v3.json"} {
		if code, out := f.signed(t, reid(t, sample(t, file, "PBBBBBB"), fmt.Sprint("E", 10+i))); code != http.StatusAccepted || out["incident"] != "INC-1" {
			t.Fatalf("%s: %d %v", file, code, out)
		}
	}
	inc, _ := f.svc.Get(ctx, 1)
	if !inc.Open() || inc.Acked() {
		t.Errorf("the survivor took the duplicate's resolution or acknowledgement: %+v", inc)
	}
	var kinds []string
	for _, ev := range f.timeline(t, 1)[1:] {
		kinds = append(kinds, string(ev.Kind))
	}
	if got := strings.Join(kinds, " "); got != "merged_in duplicate_update note duplicate_update" {
		t.Errorf("survivor timeline: %s", got)
	}
	// its own PagerDuty incident still moves it
	f.signed(t, reid(t, sample(t, "zulip_resolved_v3.json", "PAAAAAA"), "E20"))
	if inc, _ := f.svc.Get(ctx, 1); inc.Open() {
		t.Error("the survivor's own resolution did not resolve it")
	}
}
