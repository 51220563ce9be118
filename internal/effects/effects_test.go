package effects_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The runner against a real bbolt outbox: effects written by the store with
// their events, worked off in order, retried, refused, coalesced.

var sub = incidents.Subscription{
	Consumer: "test",
	Events:   func(_ *incidents.Incident, ev incidents.Event) bool { return ev.Kind == incidents.EventNote },
	Changes:  func(_ *incidents.Incident, ev incidents.Event) bool { return true },
}

type fixture struct {
	store *boltstore.Store
	svc   *incidents.Service
	mu    sync.Mutex
	done  []string // "INC-1 note a", "INC-1 changed"
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{Subscriptions: []incidents.Subscription{sub}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &fixture{store: store, svc: incidents.NewService(incidents.Config{Store: store, Logger: slog.New(slog.DiscardHandler)})}
}

func (f *fixture) run(t *testing.T, handle effects.Handler, refused func(context.Context, incidents.Effect, error)) (stop func()) {
	r := effects.New(effects.Config{Consumer: "test", Outbox: f.store, Handle: handle, Refused: refused,
		RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { r.Start(ctx); close(finished) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-finished }) }
	t.Cleanup(stop)
	return stop
}

func (f *fixture) record(e *incidents.Effect) {
	what := "changed"
	if !e.Changed() {
		what = "note " + e.Event.Message
	}
	f.mu.Lock()
	f.done = append(f.done, incidents.FormatID(e.Incident)+" "+what)
	f.mu.Unlock()
}

func (f *fixture) pending(t *testing.T) int {
	p, err := f.store.Pending(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

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

var alice = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}

func TestEffectsRunInOrderPerIncidentAndRetryUntilDone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, title := range []string{"one", "two"} {
		if _, err := f.svc.Declare(ctx, incidents.Declaration{Title: title}, alice); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		f.svc.AddNote(ctx, 1, n, alice)
	}
	f.svc.AddNote(ctx, 2, "x", alice)
	failures := map[string]int{"b": 3} // note b fails three times, then works
	var mu sync.Mutex
	f.run(t, func(ctx context.Context, e *incidents.Effect, _ func() error) error {
		mu.Lock()
		defer mu.Unlock()
		if !e.Changed() && failures[e.Event.Message] > 0 {
			failures[e.Event.Message]--
			return errors.New("slack is down")
		}
		f.record(e)
		return nil
	}, nil)
	eventually(t, "every effect done", func() bool { return f.pending(t) == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	var one []string
	for _, d := range f.done {
		if d[:5] == "INC-1" {
			one = append(one, d)
		}
	}
	want := []string{"INC-1 note a", "INC-1 note b", "INC-1 note c", "INC-1 changed"}
	if len(one) != len(want) {
		t.Fatalf("INC-1's effects %q, want %q", one, want)
	}
	for i := range want {
		if one[i] != want[i] {
			t.Fatalf("INC-1's effects %q, want %q (in order, the failing one blocking only its own incident)", one, want)
		}
	}
}

func TestRefusedEffectIsReportedAndRemoved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.Declare(ctx, incidents.Declaration{Title: "one"}, alice)
	f.svc.AddNote(ctx, 1, "refused", alice)
	f.svc.AddNote(ctx, 1, "after", alice)
	var refused []string
	var mu sync.Mutex
	f.run(t, func(ctx context.Context, e *incidents.Effect, _ func() error) error {
		if !e.Changed() && e.Event.Message == "refused" {
			return effects.Permanent(errors.New("channel_not_found"))
		}
		f.record(e)
		return nil
	}, func(_ context.Context, e incidents.Effect, err error) {
		mu.Lock()
		refused = append(refused, e.Event.Message+": "+err.Error())
		mu.Unlock()
	})
	eventually(t, "every effect done", func() bool { return f.pending(t) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 1 || refused[0] != "refused: channel_not_found" {
		t.Errorf("refused %q", refused)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.done) != 2 || f.done[0] != "INC-1 note after" {
		t.Errorf("done %q: the refusal must not stop the next effect", f.done)
	}
}

// TestChangesCoalesce: many changes while one "changed" effect runs make
// one more run, not one per change; progress saved by a handler survives.
func TestChangesCoalesce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.Declare(ctx, incidents.Declaration{Title: "one"}, alice)
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	runs := 0
	var mu sync.Mutex
	f.run(t, func(ctx context.Context, e *incidents.Effect, save func() error) error {
		if !e.Changed() {
			return nil
		}
		mu.Lock()
		runs++
		first := runs == 1
		mu.Unlock()
		if first {
			started <- struct{}{}
			<-release
		}
		return nil
	}, nil)
	<-started
	for i := 0; i < 20; i++ { // marked again while the first run is under way
		f.svc.ChangeStatus(ctx, 1, incidents.Identified, "", alice)
		f.svc.ChangeStatus(ctx, 1, incidents.Investigating, "", alice)
	}
	close(release)
	eventually(t, "the outbox drained", func() bool { return f.pending(t) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 {
		t.Errorf("the changed effect ran %d times for 41 changes, want 2 (the one under way, then the latest state)", runs)
	}
}

// TestStopLeavesTheRestPending: a runner stopped while Slack is down keeps
// its effects in the store; the next runner finishes them.
func TestStopLeavesTheRestPending(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.Declare(ctx, incidents.Declaration{Title: "one"}, alice)
	f.svc.AddNote(ctx, 1, "a", alice)
	attempts := make(chan struct{}, 100)
	stop := f.run(t, func(context.Context, *incidents.Effect, func() error) error {
		attempts <- struct{}{}
		return errors.New("down")
	}, nil)
	<-attempts
	stop()
	if n := f.pending(t); n != 2 {
		t.Fatalf("%d effects pending after the stop, want 2", n)
	}
	f.run(t, func(_ context.Context, e *incidents.Effect, _ func() error) error { f.record(e); return nil }, nil)
	eventually(t, "the next runner finishing them", func() bool { return f.pending(t) == 0 })
}

// TestRefusedChangeWritesNoEffect: a transition that refuses writes no
// event and so no effect — effects exist only for stored events.
func TestRefusedChangeWritesNoEffect(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.Declare(ctx, incidents.Declaration{Title: "one"}, alice)
	before := f.pending(t)
	if _, err := f.svc.AddNote(ctx, 1, "", alice); err == nil {
		t.Fatal("an empty note was accepted")
	}
	if _, err := f.svc.Ack(ctx, 1, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Ack(ctx, 1, alice); err == nil {
		t.Fatal("a second ack was accepted")
	}
	if after := f.pending(t); after != before {
		t.Errorf("%d effects pending, want %d (the ack only re-marks the changed effect)", after, before)
	}
}

// failingOutbox is the real store whose FinishEffect fails until healed
// (a disk that is full, then has room again).
type failingOutbox struct {
	*boltstore.Store
	healed atomic.Bool
	tries  atomic.Int64
}

func (f *failingOutbox) FinishEffect(ctx context.Context, e incidents.Effect) error {
	f.tries.Add(1)
	if !f.healed.Load() {
		return errors.New("file too large")
	}
	return f.Store.FinishEffect(ctx, e)
}

// TestDoneButNotRemovedIsNotDoneAgain: an effect done while the store
// cannot remove it (disk full) is not run again — not in a hot loop while
// the store fails, not once it heals: only its removal is retried.
func TestDoneButNotRemovedIsNotDoneAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.Declare(ctx, incidents.Declaration{Title: "one"}, alice)
	f.svc.AddNote(ctx, 1, "announce", alice)
	out := &failingOutbox{Store: f.store}
	var calls atomic.Int64
	r := effects.New(effects.Config{Consumer: "test", Outbox: out, RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Handle: func(_ context.Context, e *incidents.Effect, _ func() error) error {
			if !e.Changed() {
				calls.Add(1)
			}
			return nil
		}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Start(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, "a few failed removals", func() bool { return out.tries.Load() >= 5 })
	out.healed.Store(true)
	eventually(t, "the outbox drained", func() bool { return f.pending(t) == 0 })
	if n := calls.Load(); n != 1 {
		t.Errorf("the note's effect ran %d times, want once (its removal failed, not its work)", n)
	}
}
