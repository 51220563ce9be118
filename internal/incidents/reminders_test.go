package incidents_test

import (
	"context"
	"path/filepath"
	"strings"
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
	if evs, ok := inc.Remind(start.Add(10 * time.Hour)); ok && evs[0].Kind != incidents.EventNudge {
		t.Errorf("an acknowledged incident was re-announced: %+v", evs)
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
	clock.Advance(time.Hour) // acknowledged at 10m, no update by 1h10m: one nudge (the loop's or this tick's), the next 30m later
	if _, _, err := svc.RemindDue(ctx); err != nil {
		t.Fatal(err)
	}
	nudged := 0
	svc.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventNudge {
			nudged++
		}
		return nil
	})
	if after, _ := svc.Get(ctx, inc.ID); nudged != 1 {
		t.Fatalf("after ack: %d nudges, want 1", nudged)
	} else if next, _ := after.NextReminder(); !next.Equal(start.Add(100 * time.Minute)) {
		t.Fatalf("after ack: next %v, want +100m", next)
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

// TestUpdateNudges: an acknowledged P2 with no status update is nudged an
// hour after its declaration and every hour after; an update silences it
// for an hour; a restart in between (the store opened again) sends what is
// due once, not a burst; a P4 is never nudged.
func TestUpdateNudges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	clock := incidents.NewManualClock(start)
	nudges := func(svc *incidents.Service, id int64) []incidents.Event {
		var out []incidents.Event
		svc.Timeline(context.Background(), id, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventNudge {
				out = append(out, ev)
			}
			return nil
		})
		return out
	}
	ctx := context.Background()
	svc, store := openService(t, path, clock, make(recorder, 100))
	alice := incidents.Actor{Name: "@alice", Source: "console"}
	inc, err := svc.Declare(ctx, incidents.Declaration{Title: "Checkout degraded", Lead: "@bob", Signals: incidents.Signals{Explicit: incidents.P2}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	low, _ := svc.Declare(ctx, incidents.Declaration{Title: "Typo on the about page", Signals: incidents.Signals{Explicit: incidents.P4}}, alice)
	for _, id := range []int64{inc.ID, low.ID} {
		if _, err := svc.Ack(ctx, id, alice); err != nil {
			t.Fatal(err)
		}
	}
	tick := func(after time.Duration) int {
		t.Helper()
		clock.Advance(start.Add(after).Sub(clock.Now()))
		n, _, err := svc.RemindDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tick(59 * time.Minute); n != 0 {
		t.Errorf("nudged before the hour: %d", n)
	}
	if n := tick(61 * time.Minute); n != 1 {
		t.Fatalf("at 1h01m: %d nudges, want 1", n)
	}
	ev := nudges(svc, inc.ID)[0]
	if want := "INC-1 has had no status update for 1h01m since it was declared (P2 incidents get one every 1h): @bob, post one for the people waiting"; ev.Message != want || ev.Actor != "sitrep" {
		t.Errorf("nudge %q\nwant  %q", ev.Message, want)
	}
	if n := tick(90 * time.Minute); n != 0 {
		t.Errorf("a second nudge within the hour: %d", n)
	}
	// An update silences it; the next nudge is an hour after the update.
	clock.Advance(start.Add(100 * time.Minute).Sub(clock.Now()))
	if _, _, err := svc.Change(ctx, inc.ID, func(i *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return i.ChangeStatus(incidents.Investigating, "rolling back 3.2.0", alice, now)
	}); err != nil {
		t.Fatalf("an update with the same status: %v", err)
	}
	if n := tick(159 * time.Minute); n != 0 {
		t.Errorf("nudged within an hour of the update: %d", n)
	}
	// Sitrep is down from 2h30m to 6h: opened again, one nudge, not three.
	store.Close()
	svc, store = openService(t, path, clock, make(recorder, 100))
	if n := tick(6 * time.Hour); n != 1 {
		t.Errorf("after a restart at 6h: %d nudges, want 1", n)
	}
	if got := nudges(svc, inc.ID); len(got) != 2 || got[1].Fields["nudge"] != "1" || !strings.Contains(got[1].Message, "no status update for 4h20m since the last one") {
		t.Errorf("nudges %+v", got)
	}
	if n := len(nudges(svc, low.ID)); n != 0 {
		t.Errorf("a P4 was nudged %d times", n)
	}
	// Restarted with a cadence set otherwise, P4 every 2h: the due index is
	// filed again for it, and the P4 is nudged.
	incidents.SetUpdateCadence(map[incidents.Severity]time.Duration{incidents.P4: 2 * time.Hour})
	defer incidents.SetUpdateCadence(nil)
	store.Close()
	svc, _ = openService(t, path, clock, make(recorder, 100))
	if tick(6*time.Hour + time.Minute); len(nudges(svc, low.ID)) != 1 {
		t.Errorf("P4 every 2h: %d nudges", len(nudges(svc, low.ID)))
	}
}

func TestParseUpdateCadence(t *testing.T) {
	m, err := incidents.ParseUpdateCadence("P1=15m, P2=2h,P4=off")
	if err != nil || m[incidents.P1] != 15*time.Minute || m[incidents.P2] != 2*time.Hour || m[incidents.P4] != 0 || len(m) != 3 {
		t.Errorf("%v %v", m, err)
	}
	for _, bad := range []string{"P1", "P9=1h", "P1=soon", "P1=10s"} {
		if _, err := incidents.ParseUpdateCadence(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// TestNudgesCountFromTheLastSignOfLife: an acknowledgement long after the
// declaration, a severity change after nudges and a reopening each start
// the cadence where they happened, not from the declaration.
func TestNudgesCountFromTheLastSignOfLife(t *testing.T) {
	who := incidents.Actor{Name: "@a", Source: "console"}
	next := func(inc *incidents.Incident) time.Duration {
		t.Helper()
		at, ok := inc.NextReminder()
		if !ok {
			t.Fatal("no reminder due")
		}
		return at.Sub(start)
	}
	inc, _, _ := incidents.Declare(incidents.Declaration{Title: "Checkout degraded", Signals: incidents.Signals{Explicit: incidents.P2}}, who, start)
	inc.Ack(who, start.Add(3*time.Hour)) // acknowledged late: nudged an hour later, not at once
	if got := next(inc); got != 4*time.Hour {
		t.Errorf("after a late ack: next at +%s, want +4h", got)
	}
	inc.Remind(start.Add(4 * time.Hour))
	inc.ChangeSeverity(incidents.P3, "one endpoint", who, start.Add(4*time.Hour+time.Minute))
	if got := next(inc); got != 8*time.Hour { // the last nudge + P3's 4h
		t.Errorf("after a downgrade: next at +%s, want +8h", got)
	}
	inc.Resolve("fixed", who, start.Add(5*time.Hour))
	inc.Reopen("back", who, start.Add(10*time.Hour))
	inc.Ack(who, start.Add(10*time.Hour))
	if got := next(inc); got != 14*time.Hour {
		t.Errorf("after reopening: next at +%s, want +14h", got)
	}
	evs, _ := inc.Remind(start.Add(14 * time.Hour))
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "for 4h since it was reopened") {
		t.Errorf("nudge after reopening: %+v", evs)
	}
}

// TestAMessageDeclaresOneIncident: two declarations from the same message
// (two people's forms, submitted at once) make one incident.
func TestAMessageDeclaresOneIncident(t *testing.T) {
	svc, _ := openService(t, filepath.Join(t.TempDir(), "s.db"), incidents.NewManualClock(start), make(recorder, 10))
	from := &incidents.Origin{Ref: "C1/1764126000.000100", Author: "<@U9>", Text: "checkout 502s"}
	ids := make(chan int64, 2)
	for _, who := range []string{"<@U1>", "<@U2>"} {
		go func() {
			inc, err := svc.Declare(context.Background(), incidents.Declaration{Title: "Checkout 502s", Origin: from, Request: "env-" + who}, incidents.Actor{Name: who, Source: "slack"})
			if err != nil {
				t.Error(err)
				ids <- 0
				return
			}
			ids <- inc.ID
		}()
	}
	if a, b := <-ids, <-ids; a != b || a == 0 {
		t.Errorf("incidents %d and %d from one message", a, b)
	}
}
