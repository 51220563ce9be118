package boltstore_test

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/postmortem"
)

// peakHeap is an io.Writer that samples the live heap every so many writes.
type peakHeap struct {
	writes, every int
	peak          uint64
}

func (p *peakHeap) Write(b []byte) (int, error) {
	if p.writes++; p.writes%p.every == 0 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		p.peak = max(p.peak, m.HeapInuse)
	}
	return len(b), nil
}

func longIncident(tb testing.TB, n int) (*boltstore.Store, *incidents.Incident) {
	s := mustOpenStore(tb, "")
	inc := mustDeclare(tb, s, "a very long incident")
	ev, _ := inc.AddNote("#impact another line of a long incident, with some text to make it a realistic size", alice, t0)
	if err := boltstore.SeedEvents(s, inc.ID, n, ev[0]); err != nil {
		tb.Fatal(err)
	}
	return s, inc
}

// TestPostmortemStreamsLongTimelines exports 100,000 events and checks the
// live heap stays far below what holding the timeline would take.
func TestPostmortemStreamsLongTimelines(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	s, inc := longIncident(t, 100000)
	for _, format := range []string{"md", "json"} {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		w := &peakHeap{every: 2}
		if err := postmortem.Write(context.Background(), w, s, inc, postmortem.Options{Format: format}); err != nil {
			t.Fatal(err)
		}
		extra := int64(w.peak) - int64(base.HeapInuse)
		t.Logf("%s: peak heap %d MB above the start", format, extra>>20)
		if extra > 50<<20 {
			t.Errorf("%s export of 100,000 events held %d MB", format, extra>>20)
		}
	}
}

// BenchmarkPostmortem100k: one export of a 100,000-event incident.
func BenchmarkPostmortem100k(b *testing.B) {
	s, inc := longIncident(b, 100000)
	for _, format := range []string{"md", "json"} {
		b.Run(format, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := postmortem.Write(context.Background(), io.Discard, s, inc, postmortem.Options{Format: format}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
