package statuspage_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/statuspage"
)

const secret = "status-webhook-secret-for-tests"

// subscriber is a webhook subscriber that checks every signature and
// counts deliveries by id; fail makes it answer 503 that many times first.
type subscriber struct {
	mu      sync.Mutex
	got     map[string]int
	order   []statuspage.Delivery
	bad     int
	fail    int
	changed chan struct{}
}

func newSubscriber(t *testing.T, fail int) (*subscriber, *httptest.Server) {
	s := &subscriber{got: map[string]int{}, fail: fail, changed: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(statuspage.TimestampHeader), 10, 64)
		s.mu.Lock()
		defer s.mu.Unlock()
		defer func() { s.changed <- struct{}{} }()
		if !hmac.Equal([]byte(r.Header.Get(statuspage.SignatureHeader)), []byte(statuspage.Sign([]byte(secret), ts, body))) || time.Since(time.Unix(ts, 0)) > time.Minute {
			s.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if s.fail > 0 {
			s.fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var d statuspage.Delivery
		json.Unmarshal(body, &d)
		if d.ID != r.Header.Get(statuspage.DeliveryHeader) {
			s.bad++
		}
		s.got[d.ID]++
		s.order = append(s.order, d)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *subscriber) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		s.mu.Lock()
		done := len(s.order) >= n
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("waiting for %d deliveries: %d", n, len(s.order))
		}
	}
}

// TestSubscribersGetEachUpdateOnceSignedAcrossARestart: each public update
// reaches each subscriber once, signed; a subscriber that is down is
// retried without the other one hearing twice; an update published while
// Sitrep is stopped is delivered after the restart, and nothing before it
// again.
func TestSubscribersGetEachUpdateOnceSignedAcrossARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	good, goodSrv := newSubscriber(t, 0)
	flaky, flakySrv := newSubscriber(t, 2)
	quiet := slog.New(slog.DiscardHandler)
	urls := []string{goodSrv.URL, flakySrv.URL}
	open := func() (*boltstore.Store, *incidents.Service, func()) {
		store, err := boltstore.Open(path, boltstore.Options{Subscriptions: statuspage.Subscriptions(urls)})
		if err != nil {
			t.Fatal(err)
		}
		svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet})
		n := statuspage.NewNotifier(statuspage.NotifierConfig{URLs: urls, Secret: secret, Service: svc, Outbox: store, Logger: quiet,
			Effects: effects.Config{RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}})
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { n.Start(ctx); close(done) }()
		return store, svc, func() { cancel(); <-done; store.Close() }
	}
	store, svc, stop := open()
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: "checkout errors", Service: "checkout"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Publish(ctx, inc.ID, incidents.Investigating, "Some payments fail; we are on it.", -1, alice); err != nil {
		t.Fatal(err)
	}
	good.wait(t, 1)
	flaky.wait(t, 1) // after two 503s
	stop()

	// Published while no notifier runs: waits in the outbox.
	store2, err := boltstore.Open(path, boltstore.Options{Subscriptions: statuspage.Subscriptions(urls)})
	if err != nil {
		t.Fatal(err)
	}
	svc2 := incidents.NewService(incidents.Config{Store: store2, Logger: quiet})
	if _, err := svc2.Publish(ctx, inc.ID, incidents.Resolved, "Payments work again.", -1, alice); err != nil {
		t.Fatal(err)
	}
	store2.Close()
	_ = store

	_, _, stop = open()
	defer stop()
	good.wait(t, 2)
	flaky.wait(t, 2)
	for name, s := range map[string]*subscriber{"good": good, "flaky": flaky} {
		s.mu.Lock()
		if s.bad != 0 || len(s.got) != 2 || len(s.order) != 2 || s.order[1].Status != "resolved" || s.order[1].Message != "Payments work again." || s.order[0].Title != "checkout errors" {
			t.Errorf("%s: %d bad, got %v, order %+v", name, s.bad, s.got, s.order)
		}
		for id, n := range s.got {
			if n != 1 {
				t.Errorf("%s got %s %d times", name, id, n)
			}
		}
		s.mu.Unlock()
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
