package pagerduty_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

// restServer is a PagerDuty REST API that records calls and can fail.
type restServer struct {
	mu    sync.Mutex
	calls []restCall
	fail  int // answer this many calls with 500 first
	got   chan restCall
}

type restCall struct {
	Method, Path, From string
	Body               map[string]any
}

func newREST(t *testing.T) (*restServer, *httptest.Server) {
	r := &restServer{got: make(chan restCall, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		c := restCall{Method: req.Method, Path: req.URL.Path, From: req.Header.Get("From")}
		json.Unmarshal(b, &c.Body)
		r.mu.Lock()
		failing := r.fail > 0
		if failing {
			r.fail--
		}
		r.calls = append(r.calls, c)
		r.mu.Unlock()
		if failing {
			http.Error(w, `{"error":{"message":"unavailable"}}`, 500)
			return
		}
		if req.Header.Get("Authorization") != "Token token=pd-api-token" {
			http.Error(w, `{"error":{"message":"unauthorized"}}`, 401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if req.Method == http.MethodPost {
			io.WriteString(w, `{"note":{"id":"N1","content":"x"}}`)
		} else {
			io.WriteString(w, `{"incidents":[]}`)
		}
		r.got <- c
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func startSync(t *testing.T, f *fixture, apiURL string) {
	startSyncStoppable(t, f, apiURL)
}

func waitFor(t *testing.T, c chan restCall) restCall {
	t.Helper()
	select {
	case call := <-c:
		return call
	case <-time.After(30 * time.Second):
		t.Fatal("PagerDuty was not called")
	}
	return restCall{}
}

func TestSitrepChangesReachPagerDutyWithoutEcho(t *testing.T) {
	f := newFixture(t)
	rest, srv := newREST(t)
	startSync(t, f, srv.URL)
	ctx := context.Background()
	f.signed(t, sample(t, "zulip_triggered_v3.json", "PFQZPSY"))
	alice := incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}

	f.svc.Ack(ctx, 1, alice)
	ack := waitFor(t, rest.got)
	if ack.Method != "PUT" || ack.Path != "/incidents" || ack.From != "sitrep@example.com" {
		t.Errorf("ack call %+v", ack)
	}
	if b, _ := json.Marshal(ack.Body); string(b) != `{"incidents":[{"id":"PFQZPSY","status":"acknowledged","type":"incident"}]}` {
		t.Errorf("ack body %s", b)
	}
	f.svc.AddNote(ctx, 1, "Running KILL on long-running queries from the reporting-service.", alice)
	note := waitFor(t, rest.got)
	if note.Method != "POST" || note.Path != "/incidents/PFQZPSY/notes" || note.From != "sitrep@example.com" {
		t.Errorf("note call %+v", note)
	}
	// PagerDuty sends back webhooks for both changes: recorded once, not acted on again.
	f.signed(t, sample(t, "zulip_acknowledged_v3.json", "PFQZPSY"))
	f.signed(t, sample(t, "zulip_annotated_v3.json", "PFQZPSY"))
	f.svc.Resolve(ctx, 1, "fixed", alice)
	resolve := waitFor(t, rest.got)
	if resolve.Body["incidents"].([]any)[0].(map[string]any)["status"] != "resolved" {
		t.Errorf("resolve call %+v", resolve)
	}
	// The echo of the resolution changes nothing and calls nothing.
	f.signed(t, sample(t, "zulip_resolved_v3.json", "PFQZPSY"))
	counts := map[incidents.EventKind]int{}
	for _, ev := range f.timeline(t, 1) {
		counts[ev.Kind]++
	}
	if counts[incidents.EventAcknowledged] != 1 || counts[incidents.EventNote] != 1 || counts[incidents.EventResolved] != 1 {
		t.Errorf("timeline counts %v", counts)
	}
	rest.mu.Lock()
	defer rest.mu.Unlock()
	if len(rest.calls) != 3 {
		t.Errorf("%d calls to PagerDuty, want 3: %+v", len(rest.calls), rest.calls)
	}
}

func TestPagerDutyDownIsRetriedAndOnTheTimeline(t *testing.T) {
	f := newFixture(t)
	rest, srv := newREST(t)
	rest.fail = 2
	startSync(t, f, srv.URL)
	ctx := context.Background()
	f.signed(t, sample(t, "zulip_triggered_v3.json", "PX"))
	if _, err := f.svc.Ack(ctx, 1, incidents.Actor{Name: "@bob", Source: "slack"}); err != nil {
		t.Fatal(err) // the Sitrep change stands whatever PagerDuty says
	}
	waitFor(t, rest.got) // the third try succeeds
	var synced, failed int
	deadline := time.Now().Add(30 * time.Second)
	for synced == 0 && time.Now().Before(deadline) { // the success is recorded just after the call
		synced, failed = 0, 0
		for _, ev := range f.timeline(t, 1) {
			switch ev.Kind {
			case incidents.EventSynced:
				synced++
			case incidents.EventSyncFailed:
				failed++
			}
		}
		time.Sleep(time.Millisecond)
	}
	if failed != 1 || synced != 1 {
		t.Errorf("timeline has %d sync_failed and %d synced events, want 1 and 1", failed, synced)
	}
	inc, _ := f.svc.Get(ctx, 1)
	if !inc.Acked() {
		t.Error("the acknowledgement was lost")
	}
}

// TestPagerDutyDownAcrossARestart: PagerDuty's API is down when someone
// acknowledges in Sitrep, and Sitrep restarts before it is back. The
// acknowledgement was stored with the change, so after the restart it
// reaches PagerDuty — once.
func TestPagerDutyDownAcrossARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	f := newFixtureAt(t, path)
	rest, srv := newREST(t)
	rest.mu.Lock()
	rest.fail = 1 << 30 // down until told otherwise
	rest.mu.Unlock()
	ctx := context.Background()
	f.signed(t, sample(t, "zulip_triggered_v3.json", "PDOWN"))
	stop := startSyncStoppable(t, f, srv.URL)
	if _, err := f.svc.Ack(ctx, 1, incidents.Actor{Name: "@bob", Source: "slack"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PagerDuty refusing the acknowledgement once", func() bool {
		rest.mu.Lock()
		defer rest.mu.Unlock()
		return len(rest.calls) > 0
	})
	stop()
	f.close()

	rest.mu.Lock()
	rest.fail, rest.calls = 0, nil
	rest.mu.Unlock()
	f = newFixtureAt(t, path)
	startSync(t, f, srv.URL)
	ack := waitFor(t, rest.got)
	if ack.Body["incidents"].([]any)[0].(map[string]any)["status"] != "acknowledged" {
		t.Fatalf("after the restart PagerDuty got %+v", ack)
	}
	eventually(t, "the synced event", func() bool {
		for _, ev := range f.timeline(t, 1) {
			if ev.Kind == incidents.EventSynced {
				return true
			}
		}
		return false
	})
	rest.mu.Lock()
	defer rest.mu.Unlock()
	if len(rest.calls) != 1 {
		t.Errorf("%d calls to PagerDuty after the restart, want the acknowledgement once", len(rest.calls))
	}
}

// startSyncStoppable is startSync with the stop in the test's hands.
func startSyncStoppable(t *testing.T, f *fixture, apiURL string) (stop func()) {
	s := pagerduty.NewSync(pagerduty.SyncConfig{Token: "pd-api-token", From: "sitrep@example.com", APIURL: apiURL,
		Service: f.svc, Outbox: f.store, Logger: slog.New(slog.DiscardHandler),
		Effects: effects.Config{RetryBase: time.Millisecond, RetryMax: 50 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Start(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing the test after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
