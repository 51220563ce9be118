package incidents_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

var start = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func TestRemindSchedule(t *testing.T) {
	inc, _, err := incidents.Declare(incidents.Declaration{Title: "API down", Signals: incidents.Signals{Explicit: incidents.P1}}, incidents.Actor{Name: "@a", Source: "console"}, start)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		after     time.Duration
		want      bool
		reminders int
		next      time.Duration
	}{
		{4*time.Minute + 59*time.Second, false, 0, 5 * time.Minute},
		{5 * time.Minute, true, 1, 10 * time.Minute},
		{7 * time.Minute, false, 1, 10 * time.Minute},
		{10 * time.Minute, true, 2, 15 * time.Minute},
		// Down for a long while: one reminder, then the next boundary.
		{47 * time.Minute, true, 9, 50 * time.Minute},
	}
	for _, s := range steps {
		_, ok := inc.Remind(start.Add(s.after))
		next, pending := inc.NextReminder()
		if ok != s.want || inc.Reminders != s.reminders || !pending || !next.Equal(start.Add(s.next)) {
			t.Fatalf("at +%s: reminded %v (want %v), count %d (want %d), next +%s (want +%s)",
				s.after, ok, s.want, inc.Reminders, s.reminders, next.Sub(start), s.next)
		}
	}
	if _, err := inc.Ack(incidents.Actor{Name: "@b", Source: "console"}, start.Add(48*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := inc.Remind(start.Add(10 * time.Hour)); ok {
		t.Error("an acknowledged incident was re-announced")
	}
}

type recorder chan incidents.Event

func (r recorder) Notify(_ context.Context, _ *incidents.Incident, events []incidents.Event) {
	for _, ev := range events {
		if ev.Kind == incidents.EventReminder {
			r <- ev
		}
	}
}

func openService(t *testing.T, path string, clock incidents.Clock, n incidents.Notifier) (*incidents.Service, *boltstore.Store) {
	t.Helper()
	store, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return incidents.NewService(incidents.Config{Store: store, Clock: clock, Notifiers: []incidents.Notifier{n}}), store
}

func TestRunRemindersReannouncesUntilAcked(t *testing.T) {
	clock := incidents.NewManualClock(start)
	got := make(recorder, 10)
	svc, _ := openService(t, filepath.Join(t.TempDir(), "s.db"), clock, got)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.RunReminders(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	alice := incidents.Actor{Name: "@alice", Source: "console"}
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: "API completely unavailable"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		// The loop has planned its timer for the next deadline once a waiter
		// for it exists; then the clock passes the deadline.
		if !clock.WaitForWaiters(1, done) {
			t.Fatal("reminder loop stopped")
		}
		clock.Advance(5 * time.Minute)
		ev := <-got
		if ev.Incident != inc.ID || ev.Fields["reminder"] != string(rune('0'+i)) || ev.Actor != "sitrep" {
			t.Fatalf("reminder %d: %+v", i, ev)
		}
	}
	if _, err := svc.Ack(ctx, inc.ID, alice); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if n, next, err := svc.RemindDue(ctx); err != nil || n != 0 || !next.IsZero() {
		t.Fatalf("after ack: %d reminders, next %v, %v", n, next, err)
	}
	count := 0
	svc.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventReminder {
			count++
		}
		return nil
	})
	if count != 2 {
		t.Errorf("timeline has %d reminders, want 2", count)
	}
}

func TestRemindersSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	clock := incidents.NewManualClock(start)
	got := make(recorder, 10)
	svc, store := openService(t, path, clock, got)
	ctx := context.Background()
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: "error rate 50%"}, incidents.Actor{Name: "@a", Source: "console"})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Severity != incidents.P2 {
		t.Fatalf("severity %s", inc.Severity)
	}
	store.Close() // the bot stops before the deadline...

	clock.Advance(40 * time.Minute) // ...and comes back after two intervals of 15m passed
	svc2, _ := openService(t, path, clock, got)
	n, next, err := svc2.RemindDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("after restart: %d reminders, %v", n, err)
	}
	if want := start.Add(45 * time.Minute); !next.Equal(want) {
		t.Errorf("next reminder at %s, want %s", next, want)
	}
	if ev := <-got; ev.Fields["reminder"] != "2" {
		t.Errorf("reminder %+v", ev)
	}
	if n, _, _ := svc2.RemindDue(ctx); n != 0 {
		t.Errorf("a second scan at the same time sent %d more", n)
	}
}
