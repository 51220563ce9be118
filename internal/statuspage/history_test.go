package statuspage_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/statuspage"
)

func emptyPage(t *testing.T, start time.Time) (*incidents.Service, *incidents.ManualClock, func() *statuspage.Page) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := incidents.NewManualClock(start)
	svc := incidents.NewService(incidents.Config{Store: store, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	return svc, clock, func() *statuspage.Page {
		p, err := statuspage.Build(ctx, svc, "Acme", []string{"checkout"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func days(c statuspage.Component, s statuspage.State) int {
	n := 0
	for _, d := range c.Days {
		if d.State == s {
			n++
		}
	}
	return n
}

// TestThePageShowsWhatWasPublished: the impact is the one published (a
// severity changed inside afterwards changes nothing public), bars follow
// the published stretches only (not the gap between a resolution and a
// later re-publication), an incident declared long ago and published
// recently is there, and a service that is not a component is not named.
func TestThePageShowsWhatWasPublished(t *testing.T) {
	svc, clock, build := emptyPage(t, t0.Add(-100*24*time.Hour))
	must := func(_ *incidents.Incident, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	old, _ := svc.Declare(ctx, incidents.Declaration{Title: "old one", Service: "checkout", Signals: incidents.Signals{Explicit: incidents.P3}}, alice)
	clock.Advance(70 * 24 * time.Hour) // 30 days ago
	must(svc.Publish(ctx, old.ID, incidents.Investigating, "Checkout is slow.", -1, alice))
	clock.Advance(time.Hour)
	must(svc.Publish(ctx, old.ID, incidents.Resolved, "Fixed.", -1, alice))
	clock.Advance(20 * 24 * time.Hour) // 10 days ago: it came back
	must(svc.Publish(ctx, old.ID, incidents.Identified, "Slow again.", -1, alice))
	clock.Advance(time.Hour)
	must(svc.Publish(ctx, old.ID, incidents.Resolved, "Fixed for good.", -1, alice))
	internal, _ := svc.Declare(ctx, incidents.Declaration{Title: "db", Service: "payments-db-primary-eu1", Signals: incidents.Signals{Explicit: incidents.P4}}, alice)
	must(svc.Publish(ctx, internal.ID, incidents.Investigating, "Some payments are slow.", -1, alice))
	clock.Advance(10*24*time.Hour - 2*time.Hour)

	p := build()
	if len(p.Past) != 1 || p.Past[0].Key != "INC-1" || len(p.Active) != 1 {
		t.Fatalf("past %+v active %+v", p.Past, p.Active)
	}
	if c := p.Components[0]; days(c, statuspage.Degraded) != 2 || c.State != statuspage.Operational {
		t.Errorf("checkout: %d degraded days (want the two published stretches), state %s", days(c, statuspage.Degraded), c.State.Label())
	}
	if a := p.Active[0]; a.Component != "" || a.Impact != statuspage.Degraded {
		t.Errorf("the internal service's incident: component %q impact %s", a.Component, a.Impact.Label())
	}
	// a severity changed inside, after publishing: the page keeps what was published
	must(svc.ChangeSeverity(ctx, internal.ID, incidents.P1, "worse than we thought", alice))
	if a := build().Active[0]; a.Impact != statuspage.Degraded {
		t.Errorf("an unpublished severity change reached the page: %s", a.Impact.Label())
	}
	must(svc.Publish(ctx, internal.ID, incidents.Identified, "Most payments fail.", -1, alice))
	if a := build().Active[0]; a.Impact != statuspage.Major {
		t.Errorf("after publishing under P1: %s", a.Impact.Label())
	}
}

// TestAQuietPageKeepsItsETag: with nothing published the page is the same
// from one request to the next, so caches answer it.
func TestAQuietPageKeepsItsETag(t *testing.T) {
	svc, clock, _ := emptyPage(t, t0)
	srv := httptest.NewServer(statuspage.Handler(statuspage.Config{Source: svc, Components: []string{"api"}}))
	defer srv.Close()
	var tags []string
	for _, path := range []string{"/status", "/status", "/status.json", "/status.json"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tags = append(tags, resp.Header.Get("ETag"))
		clock.Advance(time.Minute)
	}
	if tags[0] != tags[1] || tags[2] != tags[3] {
		t.Errorf("ETags of a quiet page moved: %q", tags)
	}
}

// TestOneDeadSubscriberHoldsUpNoOne: a subscriber that is down does not
// keep the others from any update, and is retried on its own.
func TestOneDeadSubscriberHoldsUpNoOne(t *testing.T) {
	good, goodSrv := newSubscriber(t, 0)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 503) }))
	defer dead.Close()
	urls := []string{dead.URL, goodSrv.URL}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{Subscriptions: statuspage.Subscriptions(urls)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet})
	n := statuspage.NewNotifier(statuspage.NotifierConfig{URLs: urls, Secret: secret, Service: svc, Outbox: store, Logger: quiet,
		Effects: effects.Config{RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}})
	runCtx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { n.Start(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	inc, _ := svc.Declare(ctx, incidents.Declaration{Title: "checkout"}, alice)
	for _, st := range []incidents.Status{incidents.Investigating, incidents.Identified, incidents.Resolved} {
		if _, err := svc.Publish(ctx, inc.ID, st, "update "+string(st), -1, alice); err != nil {
			t.Fatal(err)
		}
	}
	good.wait(t, 3)
	good.mu.Lock()
	defer good.mu.Unlock()
	if got := good.order[2].Status; got != "resolved" || !strings.HasSuffix(good.order[2].ID, "-3") {
		t.Errorf("last delivery %+v", good.order[2])
	}
}
