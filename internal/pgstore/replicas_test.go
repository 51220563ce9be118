package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/storetest"
)

func replicas(t *testing.T, n int) ([]*pgstore.Store, string) {
	t.Helper()
	url, err := cluster.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*pgstore.Store
	for range n {
		s, err := pgstore.Open(context.Background(), url, pgstore.Options{Subscriptions: storetest.Subscriptions})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out, url
}

// TestClaimsAreExclusiveAndFenced: one replica works an incident's effects
// at a time; when it is gone (closed, or its heartbeat lapsed) another takes
// over, and the first one's late writes are refused.
func TestClaimsAreExclusiveAndFenced(t *testing.T) {
	ctx := context.Background()
	rs, url := replicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "x"}, incidents.Actor{Name: "@a", Source: "console"}, time.Now())
	if err := a.Create(ctx, inc, events); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Claim(ctx, "header", 1); !ok || err != nil {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, _ := a.Claim(ctx, "header", 1); !ok {
		t.Error("a lost its own claim")
	}
	if _, ok, err := b.Claim(ctx, "header", 1); ok || err != nil {
		t.Errorf("b took a live claim: %v %v", ok, err)
	}
	if p, _ := b.Pending(ctx, "header"); len(p) != 0 {
		t.Errorf("b sees a's claimed effects: %+v", p)
	}
	pending, _ := a.Pending(ctx, "header")
	if len(pending) != 1 {
		t.Fatalf("a's pending %+v", pending)
	}
	// a's heartbeat lapses (a stalled process): b takes over, a's writes are fenced
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE replicas SET until = now() - interval '1 second' WHERE owner = $1`, a.Owner()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Claim(ctx, "header", 1); !ok || err != nil {
		t.Fatalf("b did not take over a lapsed claim: %v %v", ok, err)
	}
	if err := a.SaveEffect(ctx, pending[0]); !errors.Is(err, pgstore.ErrNotClaimed) {
		t.Errorf("a's late save: %v", err)
	}
	if err := a.FinishEffect(ctx, pending[0]); !errors.Is(err, pgstore.ErrNotClaimed) {
		t.Errorf("a's late finish: %v", err)
	}
	// b leaves cleanly: c takes over at once
	b.Close()
	if _, ok, err := c.Claim(ctx, "header", 1); !ok || err != nil {
		t.Errorf("c after b left: %v %v", ok, err)
	}
	if err := c.FinishEffect(ctx, pending[0]); err != nil {
		t.Error(err)
	}
}

// TestTwoReplicasRunEachEffectOnce: two runners on two replicas of one
// database share the work; every effect runs once; when one replica stops
// in the middle, the other finishes what it left.
func TestTwoReplicasRunEachEffectOnce(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	var mu sync.Mutex
	ran := map[[2]int64]int{}
	by := map[string]int{}
	who := map[[2]int64][]string{}
	quiet := slog.New(slog.DiscardHandler)
	start := func(s *pgstore.Store, slow bool) func() {
		rctx, cancel := context.WithCancel(ctx)
		r := effects.New(effects.Config{Consumer: "echo", Outbox: s, Logger: quiet, Workers: 4, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
			Handle: func(ctx context.Context, e *incidents.Effect, _ func() error) error {
				if slow {
					time.Sleep(20 * time.Millisecond) // a replica that is slow
				}
				mu.Lock()
				ran[[2]int64{e.Incident, int64(e.Seq)}]++
				who[[2]int64{e.Incident, int64(e.Seq)}] = append(who[[2]int64{e.Incident, int64(e.Seq)}], s.Owner()+fmt.Sprintf(" attempt %d at %s", e.Attempts, time.Now().Format("05.000")))
				by[s.Owner()]++
				mu.Unlock()
				return nil
			}})
		done := make(chan struct{})
		go func() { r.Start(rctx); close(done) }()
		return func() { cancel(); <-done }
	}
	stopA := start(rs[0], true)
	stopB := start(rs[1], false)
	defer stopB()
	const n = 30
	for i := range n {
		inc, events, _ := incidents.Declare(incidents.Declaration{Title: "x"}, incidents.Actor{Name: "@a", Source: "console"}, time.Now())
		s := rs[i%2]
		if i > n/2 {
			s = rs[1] // A is gone
		}
		if err := s.Create(ctx, inc, events); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
			return inc.ChangeStatus(incidents.Identified, "found it", incidents.Actor{Name: "@a", Source: "console"}, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			stopA() // replica A stops in the middle
			rs[0].Close()
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		done := len(ran)
		mu.Unlock()
		if p, _ := rs[1].Pending(ctx, "echo"); done == n && len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d effects done", done, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, c := range ran {
		if c != 1 {
			t.Errorf("effect %v ran %d times: %v", k, c, who[k])
		}
	}
	t.Logf("work shared: %v", by)
}

// TestRemindersFireOnceAcrossReplicas: two replicas' reminder loops at the
// same moment send one reminder, not two (the due check is inside the
// incident's transaction).
func TestRemindersFireOnceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	clock := incidents.NewManualClock(at)
	quiet := slog.New(slog.DiscardHandler)
	a := incidents.NewService(incidents.Config{Store: rs[0], Clock: clock, Logger: quiet})
	b := incidents.NewService(incidents.Config{Store: rs[1], Clock: clock, Logger: quiet})
	if _, err := a.Declare(ctx, incidents.Declaration{Title: "api down", Signals: incidents.Signals{Explicit: incidents.P1}}, incidents.Actor{Name: "@a", Source: "console"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Minute) // past P1's 5 minutes
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i, svc := range []*incidents.Service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, _, err := svc.RemindDue(ctx)
			if err != nil {
				t.Error(err)
			}
			sent[i] = n
		}()
	}
	wg.Wait()
	reminders := 0
	rs[0].Timeline(ctx, 1, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventReminder {
			reminders++
		}
		return nil
	})
	if reminders != 1 || sent[0]+sent[1] != 1 {
		t.Errorf("%d reminders on the timeline, %v sent, want one", reminders, sent)
	}
}

// TestAClaimReturnsWhatIsLeft: a replica that read an incident's effects
// before another did them gets, when it then claims the incident, only what
// is left — never the list it read before (the effect would run twice).
func TestAClaimReturnsWhatIsLeft(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	a, b := rs[0], rs[1]
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "x"}, incidents.Actor{Name: "@a", Source: "console"}, time.Now())
	a.Create(ctx, inc, events)
	a.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		return inc.ChangeStatus(incidents.Identified, "found", incidents.Actor{Name: "@a", Source: "console"}, time.Now())
	})
	stale, _ := b.Pending(ctx, "echo") // b reads first
	if len(stale) != 1 {
		t.Fatalf("pending %+v", stale)
	}
	fresh, held, err := a.Claim(ctx, "echo", 1) // a claims, does it, finishes (its claim goes with the last effect)
	if !held || err != nil || len(fresh) != 1 {
		t.Fatalf("a: %v %v %+v", held, err, fresh)
	}
	if err := a.FinishEffect(ctx, fresh[0]); err != nil {
		t.Fatal(err)
	}
	left, held, err := b.Claim(ctx, "echo", 1) // b, with its stale list, claims now
	if err != nil || !held || len(left) != 0 {
		t.Errorf("b's claim: %v %v, %d effects left (want none: a did it)", held, err, len(left))
	}
}
