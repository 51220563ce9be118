package boltstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

func TestApply(t *testing.T) {
	s := mustOpenStore(t, "")
	link := incidents.Link{System: "alertmanager", Ref: `{}:{alertname="HighErrorRate"}`}
	creates := 0
	create := func() (*incidents.Incident, []incidents.Event, error) {
		creates++
		inc, events, err := incidents.Declare(incidents.Declaration{Title: "HighErrorRate",
			Links: map[string]string{link.System: link.Ref}}, incidents.Actor{Name: "Alertmanager", Source: "alertmanager"}, t0)
		return inc, events, err
	}
	w := incidents.Write{Link: link, OpenOnly: true, Create: create, Change: memoNote("firing")}
	res, err := s.Apply(ctx, w)
	if err != nil || !res.Created || res.Incident.ID != 1 || len(res.Events) != 2 {
		t.Fatalf("first write: %+v %v", res, err)
	}
	res, err = s.Apply(ctx, w) // found by its link: changed, not created
	if err != nil || res.Created || res.Incident.ID != 1 || len(res.Events) != 1 {
		t.Fatalf("second write: %+v %v", res, err)
	}
	// Once per dedup key.
	w.Dedup = "event-1"
	if res, _ = s.Apply(ctx, w); res.Duplicate || len(res.Events) != 1 {
		t.Fatalf("first dedup write: %+v", res)
	}
	if res, _ = s.Apply(ctx, w); !res.Duplicate || len(res.Events) != 0 {
		t.Fatalf("repeated dedup write: %+v", res)
	}
	if n := len(timeline(t, s, 1)); n != 4 {
		t.Errorf("timeline has %d events, want 4", n)
	}
	// A resolved incident does not count with OpenOnly: a new one is made and the link moves.
	s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Resolve("", alice, t0) })
	w.Dedup = ""
	if res, _ = s.Apply(ctx, w); !res.Created || res.Incident.ID != 2 {
		t.Fatalf("after resolve: %+v", res)
	}
	if id, _ := s.ByLink(ctx, link.System, link.Ref); id != 2 {
		t.Errorf("link points at %d", id)
	}
	// Without Create, a missing link is an error; a failing change writes nothing, not even the key.
	if _, err := s.Apply(ctx, incidents.Write{Link: incidents.Link{System: "pagerduty", Ref: "PX"}, Change: memoNote("x")}); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("missing link: %v", err)
	}
	boom := errors.New("boom")
	bad := incidents.Write{ID: 2, Dedup: "event-2", Change: func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error) { return nil, boom }}
	if _, err := s.Apply(ctx, bad); !errors.Is(err, boom) {
		t.Errorf("failing change: %v", err)
	}
	if res, _ := s.Apply(ctx, incidents.Write{ID: 2, Dedup: "event-2", Change: memoNote("retried")}); res.Duplicate || len(res.Events) != 1 {
		t.Errorf("the key of a failed write was kept: %+v", res)
	}
}

func TestApplyConcurrentUpsertsMakeOneIncident(t *testing.T) {
	s := mustOpenStore(t, "")
	link := incidents.Link{System: "alertmanager", Ref: "group-1"}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Apply(ctx, incidents.Write{Link: link, OpenOnly: true, Change: memoNote("alert"),
				Create: func() (*incidents.Incident, []incidents.Event, error) {
					return incidents.Declare(incidents.Declaration{Title: "g", Links: map[string]string{link.System: link.Ref}}, alice, t0)
				}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	all, _ := s.List(ctx, incidents.Filter{All: true})
	if len(all) != 1 {
		t.Fatalf("%d incidents for one group", len(all))
	}
	notes := 0
	for _, ev := range timeline(t, s, 1) {
		if ev.Kind == incidents.EventNote {
			notes++
		}
	}
	if notes != 20 { // the first write created the incident and noted, the other 19 noted
		t.Errorf("%d notes, want 20", notes)
	}
}

func memoNote(text string) func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error) {
	return func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
		return inc.AddNote(text, alice, t0)
	}
}

func TestMemoKeepsStateBesideTheIncident(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	observe := func(fp, status string) int {
		res, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(i *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
			return i.ObserveAlert(incidents.Alert{Fingerprint: fp, Name: "A", Status: status, StartsAt: t0}, m, alice, t0)
		}})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Events)
	}
	for i := 0; i < 300; i++ {
		if observe(fmt.Sprint(i), "firing") != 1 {
			t.Fatalf("alert %d not recorded", i)
		}
	}
	if observe("7", "firing") != 0 {
		t.Error("a repeated state was recorded again")
	}
	observe("7", "resolved")
	got, _ := s.Get(ctx, inc.ID)
	if got.AlertsFiring() != 299 {
		t.Errorf("%d firing, want 299", got.AlertsFiring())
	}
	b, _ := json.Marshal(got)
	if len(b) > 2000 {
		t.Errorf("the incident grew with its alerts: %d bytes", len(b))
	}
}

// TestDedupKeysAreSwept: expired keys are forgotten by the periodic sweep —
// all of them, more than one transaction's worth — and live ones kept.
func TestDedupKeysAreSwept(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	if _, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "live", Change: memoNote("x")}); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.SeedDedup(s, 25000, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := boltstore.SweepDedup(s, time.Now()); err != nil || n != 0 {
		t.Fatalf("a sweep now forgot %d keys (%v): all are live", n, err)
	}
	if n, err := boltstore.SweepDedup(s, time.Now().Add(2*time.Hour)); err != nil || n != 25000 {
		t.Errorf("a sweep after the seeded keys expired forgot %d of 25000 (%v)", n, err)
	}
	if res, _ := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "live", Change: memoNote("x")}); !res.Duplicate {
		t.Error("the live key was swept")
	}
}

// TestTheSweeperForgetsExpiredKeys: SweepDedupEvery, as the bot runs it,
// forgets keys that expired while it ran and keeps the live one.
func TestTheSweeperForgetsExpiredKeys(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	if _, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "live", Change: memoNote("x")}); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.SeedDedup(s, 100, time.Now().Add(-time.Second)); err != nil { // expired already
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- s.SweepDedupEvery(c, 10*time.Millisecond) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if boltstore.DedupLen(s) == 1 { // the live key alone
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper left expired keys for 10 s")
		}
	}
	cancel()
	if err := <-ended; err != nil {
		t.Fatalf("the sweeper ended with %v", err)
	}
	if res, _ := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "live", Change: memoNote("x")}); !res.Duplicate {
		t.Error("the live key was swept")
	}
}

// TestAProbeAnswersARepeatWhileAWriteHoldsTheLock: a repeat that changes
// nothing (Probe) is answered from a read transaction while another write
// holds the write lock; a probed write that does change something is
// stored once, in the write path.
func TestAProbeAnswersARepeatWhileAWriteHoldsTheLock(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	entered, release := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
			close(entered)
			<-release // holding the write lock
			return inc.AddNote("slow write", alice, t0)
		}})
		blocked <- err
	}()
	<-entered
	repeat := incidents.Write{ID: inc.ID, Probe: true, Change: func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error) { return nil, nil }}
	if res, err := s.Apply(ctx, repeat); err != nil || res.Incident == nil || res.Incident.ID != inc.ID || len(res.Events) != 0 {
		t.Fatalf("the repeat: %+v %v", res, err)
	}
	close(release) // reached only because the repeat did not wait for the lock
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	// A probed write that changes something: its memo write ends the
	// probe, and the write path stores it once.
	calls := 0
	res, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Probe: true, Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
		calls++
		if err := m.Set("alert/a1", "firing"); err != nil {
			return nil, err
		}
		return inc.AddNote("alert a1 firing", alice, t0)
	}})
	if err != nil || len(res.Events) != 1 || calls != 2 {
		t.Fatalf("a real change: %+v %v, change ran %d times (probe, then write)", res, err, calls)
	}
	notes := 0
	for _, ev := range timeline(t, s, inc.ID) {
		if ev.Kind == incidents.EventNote && ev.Message == "alert a1 firing" {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("the change is on the timeline %d times", notes)
	}
}
