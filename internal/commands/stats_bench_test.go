package commands_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// BenchmarkStatsWindow: stats over the last day, week and 30 days of a
// store holding 90 days of 20 incidents a day (each declared, acknowledged
// and resolved) after a year of 20,000 older ones. ns/incident is the cost
// per incident in the window: flat across the windows when stats is
// proportional to the window, not to the history.
func BenchmarkStatsWindow(b *testing.B) {
	const perDay, days, old = 20, 90, 20000
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "sitrep.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	start := t0.Add(-(days + 400) * 24 * time.Hour)
	clock := incidents.NewManualClock(start)
	svc := incidents.NewService(incidents.Config{Store: store, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	declare := func(i int, every time.Duration) {
		inc, err := svc.Declare(ctx, incidents.Declaration{Title: fmt.Sprint("incident ", i)}, alice)
		if err == nil {
			clock.Advance(2 * time.Minute)
			_, err = svc.Ack(ctx, inc.ID, alice)
		}
		if err == nil {
			clock.Advance(20 * time.Minute)
			_, err = svc.Resolve(ctx, inc.ID, "fixed", alice)
		}
		if err != nil {
			b.Fatal(err)
		}
		clock.Advance(every - 22*time.Minute)
	}
	for i := range old { // a year before the 90 days
		declare(i, 400*24*time.Hour/old)
	}
	clock.Advance(t0.Add(-days * 24 * time.Hour).Sub(clock.Now()))
	for i := range perDay * days {
		declare(i, 24*time.Hour/perDay)
	}
	now := clock.Now()
	for _, window := range []int{1, 7, 30} {
		b.Run(fmt.Sprintf("%dd", window), func(b *testing.B) {
			var in int
			for b.Loop() {
				s, err := commands.Stats(ctx, svc, now.Add(-time.Duration(window)*24*time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				in = s.Total
			}
			if in < perDay*window-1 || in > perDay*window+1 {
				b.Fatalf("%d incidents in %d days, want %d", in, window, perDay*window)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(in), "ns/incident")
		})
	}
}
