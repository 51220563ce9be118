package boltstore_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

func ids(list []*incidents.Incident) []int64 {
	var out []int64
	for _, inc := range list {
		out = append(out, inc.ID)
	}
	return out
}

// TestDueAndOpenIndexes: the due index says what a reminder tick must look
// at and when the next is due, the open index what list shows; both follow
// acknowledgements, resolutions and reopenings, and a file without them
// (written before they existed) gets them at its next writable open.
func TestDueAndOpenIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := mustOpenStore(t, path)
	for _, sev := range []incidents.Severity{incidents.P1, incidents.P2, incidents.P3} {
		inc, events, _ := incidents.Declare(incidents.Declaration{Title: "x", Signals: incidents.Signals{Explicit: sev}}, alice, t0)
		if err := s.Create(ctx, inc, events); err != nil {
			t.Fatal(err)
		}
	}
	check := func(at time.Time, wantDue []int64, wantNext time.Time, wantOpen []int64) {
		t.Helper()
		due, next, err := s.Due(ctx, at)
		if err != nil || !slices.Equal(due, wantDue) || !next.Equal(wantNext) {
			t.Errorf("Due(%s) = %v, next %s, %v; want %v, next %s", at.Format("15:04"), due, next.Format("15:04"), err, wantDue, wantNext.Format("15:04"))
		}
		open, err := s.List(ctx, incidents.Filter{})
		if err != nil || !slices.Equal(ids(open), wantOpen) {
			t.Errorf("open: %v %v, want %v", ids(open), err, wantOpen)
		}
	}
	// P1 due after 5m, P2 after 15m, P3 after 1h.
	check(t0.Add(time.Minute), nil, t0.Add(5*time.Minute), []int64{3, 2, 1})
	check(t0.Add(20*time.Minute), []int64{1, 2}, t0.Add(time.Hour), []int64{3, 2, 1})
	s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Ack(alice, t0) })
	s.Update(ctx, 3, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Resolve("", alice, t0) })
	// INC-3 resolved: off the open index; due now for its postmortem
	// follow-up. INC-1 acknowledged: due for a status update nudge 30m after
	// its declaration (P1's cadence).
	inc3, _ := s.Get(ctx, 3)
	followUp, _ := inc3.NextReminder()
	nudge := t0.Add(30 * time.Minute)
	if followUp.Before(nudge) {
		nudge = followUp
	}
	check(t0.Add(20*time.Minute), []int64{2}, nudge, []int64{2, 1})
	nudge = t0.Add(30 * time.Minute)
	s.Update(ctx, 3, func(inc *incidents.Incident) ([]incidents.Event, error) {
		return inc.Reopen("back", alice, t0.Add(time.Minute))
	})
	check(t0.Add(20*time.Minute), []int64{2}, nudge, []int64{3, 2, 1})

	// A window of declarations: the declared index.
	late, events, _ := incidents.Declare(incidents.Declaration{Title: "later"}, alice, t0.Add(48*time.Hour))
	if err := s.Create(ctx, late, events); err != nil {
		t.Fatal(err)
	}
	window := func() []int64 {
		got, err := s.List(ctx, incidents.Filter{All: true, Since: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return ids(got)
	}
	if got := window(); !slices.Equal(got, []int64{4}) {
		t.Errorf("declared since t0+1h: %v, want [4]", got)
	}

	// A file from before the indexes: rebuilt at the next open, the same answers.
	if err := boltstore.DropAttention(s); err != nil {
		t.Fatal(err)
	}
	if got := window(); !slices.Equal(got, []int64{4}) { // no index yet: the scan answers the same
		t.Errorf("declared since t0+1h, scanning: %v, want [4]", got)
	}
	s.Close()
	s = mustOpenStore(t, path)
	check(t0.Add(20*time.Minute), []int64{2}, nudge, []int64{4, 3, 2, 1})
	if got := window(); !slices.Equal(got, []int64{4}) {
		t.Errorf("declared since t0+1h, rebuilt: %v, want [4]", got)
	}
}

// BenchmarkHistory: the routine operations — a reminder tick, list, show,
// a webhook's change, a declaration, a note, the read of stats 30d — on
// stores of 10,000 and 100,000 incidents next to one of 1,100, all three
// with the same 1,000 open (the rest resolved a year ago), interleaved;
// x-bare is the ratio, 1 when history costs nothing. The -scan runs drop
// the indexes first: the cost before them.
func BenchmarkHistory(b *testing.B) {
	const open = 1000
	stores := map[string]*incidents.Service{}
	service := func(n int, scan bool) *incidents.Service { // seeded once for all the runs that use it
		key := fmt.Sprint(n, scan)
		if svc, ok := stores[key]; ok {
			return svc
		}
		s := mustOpenStore(b, filepath.Join(b.TempDir(), fmt.Sprintf("h%s.db", key)))
		err := boltstore.SeedIncidents(s, n, func(i int) (*incidents.Incident, []incidents.Event) {
			at := t0
			if i >= open {
				at = t0.Add(-400*24*time.Hour + time.Duration(i)*time.Second) // last year
			}
			inc, events, _ := incidents.Declare(incidents.Declaration{Title: fmt.Sprintf("incident %d", i)}, alice, at)
			inc.Links = map[string]string{"pagerduty": fmt.Sprintf("P%d", i)}
			if i >= open {
				inc.AckedAt, inc.FirstAckedAt, inc.Status, inc.ResolvedAt = t0, t0, incidents.Resolved, t0.Add(time.Hour)
				inc.FollowUps = []string{"document", "review"}
			}
			return inc, events
		})
		if scan {
			err = errors.Join(err, boltstore.DropAttention(s))
		}
		if err != nil {
			b.Fatal(err)
		}
		clock := incidents.NewManualClock(t0.Add(2 * time.Minute))
		svc := incidents.NewService(incidents.Config{Store: s, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
		stores[key] = svc
		return svc
	}
	var seq atomic.Int64
	run := func(op string, svc *incidents.Service) func() error {
		return func() error {
			switch op {
			case "tick":
				_, _, err := svc.RemindDue(ctx)
				return err
			case "list":
				l, err := svc.List(ctx, incidents.Filter{})
				if err == nil && len(l) != open {
					return fmt.Errorf("%d open", len(l))
				}
				return err
			case "window": // what stats 30d reads
				l, err := svc.List(ctx, incidents.Filter{All: true, Since: t0.Add(-30 * 24 * time.Hour)})
				if err == nil && len(l) < open {
					return fmt.Errorf("%d in the window", len(l))
				}
				return err
			case "show":
				if _, err := svc.Get(ctx, 500); err != nil {
					return err
				}
				return svc.Timeline(ctx, 500, func(incidents.Event) error { return nil })
			case "apply": // a PagerDuty note found through its link, with its dedup key
				n := seq.Add(1)
				_, err := svc.Apply(ctx, func(now time.Time) incidents.Write {
					return incidents.Write{Dedup: fmt.Sprint("pd:", n), Link: incidents.Link{System: "pagerduty", Ref: "P300"},
						Change: func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
							return inc.AddNote(fmt.Sprint("note ", n), alice, now)
						}}
				})
				return err
			case "declare":
				_, err := svc.Declare(ctx, incidents.Declaration{Title: "checkout is down"}, alice)
				return err
			}
			_, err := svc.AddNote(ctx, 700, "pods restarting", alice)
			return err
		}
	}
	for _, name := range []string{"tick", "list", "show", "window", "apply", "declare", "note", "tick-scan", "list-scan", "window-scan"} {
		op, scan := strings.CutSuffix(name, "-scan")
		for _, n := range []int{10000, 100000} {
			if scan && n > 10000 {
				continue // a scan of 100,000 is the point of the indexes
			}
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				interleave(b, run(op, service(n, scan)), run(op, service(open+100, scan)))
			})
		}
	}
}
