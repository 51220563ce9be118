package boltstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// together runs n calls of fn at once (released by one barrier) and waits.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// TestNoOpsNeverRerunAGroup: 200 writes at once, half of them changing
// nothing (a repeated dedup key, a change with no events), as in an
// Alertmanager storm that re-sends whole groups. Every change function runs
// once: with DB.Batch a no-op's sentinel error rolled the whole batch back
// and re-ran it (100 real changes ran about 5,000 times).
func TestNoOpsNeverRerunAGroup(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	if _, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: "seen", Change: memoNote("first")}); err != nil {
		t.Fatal(err)
	}
	base := len(timeline(t, s, inc.ID))
	var real, noop atomic.Int64
	errs := make([]error, 200)
	dups := atomic.Int64{}
	together(200, func(i int) {
		w := incidents.Write{ID: inc.ID}
		switch i % 4 {
		case 0, 2: // a real change
			w.Dedup = fmt.Sprintf("event-%d", i)
			w.Change = func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
				real.Add(1)
				return inc.AddNote(fmt.Sprintf("note %d", i), alice, t0)
			}
		case 1: // changes nothing
			w.Change = func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error) { noop.Add(1); return nil, nil }
		case 3: // a redelivery
			w.Dedup = "seen"
			w.Change = memoNote("never")
		}
		res, err := s.Apply(ctx, w)
		if res.Duplicate {
			dups.Add(1)
		}
		errs[i] = err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if real.Load() != 100 || noop.Load() != 50 || dups.Load() != 50 {
		t.Errorf("100 changes ran %d times, 50 no-ops %d times; %d of 50 redeliveries seen as such", real.Load(), noop.Load(), dups.Load())
	}
	if n := len(timeline(t, s, inc.ID)); n != base+100 {
		t.Errorf("timeline has %d events, want %d", n, base+100)
	}
}

// TestAFailingWriteFailsAlone: writes that fail in a group get their own
// error and leave nothing behind; the others of their group commit.
func TestAFailingWriteFailsAlone(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "mixed")
	base := len(timeline(t, s, inc.ID))
	boom := errors.New("boom")
	errs := make([]error, 60)
	together(60, func(i int) {
		_, errs[i] = s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: fmt.Sprintf("e%d", i), Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
			if i%5 == 0 {
				m.Set("wrote-then-failed", "x") // rolled back with its failure
				return nil, boom
			}
			return inc.AddNote(fmt.Sprintf("note %d", i), alice, t0)
		}})
	})
	for i, err := range errs {
		if (i%5 == 0) != errors.Is(err, boom) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if n := len(timeline(t, s, inc.ID)); n != base+48 {
		t.Errorf("timeline has %d events, want %d", n, base+48)
	}
	if v, _ := memoGet(s, inc.ID, "wrote-then-failed"); v != "" {
		t.Error("a failed write's memo entry was committed")
	}
	for i := 0; i < 60; i += 5 { // a failed write's dedup key was not kept: the retry applies
		if res, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Dedup: fmt.Sprintf("e%d", i), Change: memoNote("retry")}); err != nil || res.Duplicate {
			t.Errorf("retry of %d: %+v %v", i, res, err)
		}
	}
}

// memoGet reads one memo entry of an incident.
func memoGet(s *boltstore.Store, id int64, key string) (string, error) {
	var v string
	_, err := s.Apply(ctx, incidents.Write{ID: id, Change: func(_ *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
		v = m.Get(key)
		return nil, nil
	}})
	return v, err
}

// TestDamagedPagesUnderConcurrentWrites: every page of a real database
// damaged in turn (zeroed; garbled under its header), then 20 reads and
// writes at once. (An impossible element count in a page header can still
// make bbolt allocate without bound: not covered.) Each write succeeds or fails with
// ErrDamaged (or a domain error); none ends the process. A garbled page
// sent bbolt to an address outside its mapping: a fault (SIGSEGV) that ended
// the process until damaged turned faults into panics; and with DB.Batch a
// panic in a batch's commit ran on bbolt's timer goroutine, where nothing
// could recover it.
func TestDamagedPagesUnderConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := boltstore.Open(good, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		inc := mustDeclare(t, s, fmt.Sprintf("incident %d with a title long enough to fill pages", i))
		s.Update(ctx, inc.ID, note(fmt.Sprintf("note %d on the timeline of incident %d", i, i)))
	}
	s.Close()
	pristine, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	failed := 0
	rng := rand.New(rand.NewPCG(7, 9))
	for i := 0; (2+i/2+1)*page <= len(pristine); i++ {
		pg := 2 + i/2
		bad := append([]byte(nil), pristine...)
		body := bad[pg*page : (pg+1)*page]
		if i%2 == 0 { // zeroed; or the header kept and the rest garbled
			clear(body)
		} else {
			for j := 16; j < page; j++ {
				body[j] = byte(rng.IntN(256))
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d-%d.db", pg, i%2))
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			failed++
			continue // refused at open, in one error: what the cmd/bot test checks
		}
		errs := make([]error, 20)
		together(20, func(i int) {
			if i%2 == 0 { // reads too: every incident and a timeline
				_, errs[i] = s.List(ctx, incidents.Filter{All: true})
				if errs[i] == nil {
					errs[i] = s.Timeline(ctx, int64(i%150+1), func(incidents.Event) error { return nil })
				}
				return
			}
			_, errs[i] = s.Apply(ctx, incidents.Write{ID: int64(i%150 + 1), Dedup: fmt.Sprintf("d%d", i), Change: memoNote("after the damage")})
		})
		for _, err := range errs {
			var domain *incidents.Error
			if err != nil && !errors.Is(err, boltstore.ErrDamaged) && !errors.As(err, &domain) {
				t.Errorf("page %d zeroed: %v", pg, err)
			}
			if err != nil {
				failed++
			}
		}
		s.Close()
	}
	if failed == 0 {
		t.Fatal("no zeroed page was noticed: the test proves nothing")
	}
	t.Logf("%d opens or writes on zeroed pages failed cleanly", failed)
}

// TestAGroupKeepsOnlyWhatWasStored: writes at once on one incident, in
// groups that keep it decoded between writes. Each write sees the incident
// as the stored writes before it left it: a write that changes it and then
// stores nothing (no events, or an error) leaves no trace, and every stored
// change is kept exactly once.
func TestAGroupKeepsOnlyWhatWasStored(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	base := len(timeline(t, s, inc.ID))
	errs := make([]error, 300)
	together(300, func(i int) {
		w := incidents.Write{ID: inc.ID}
		refused := errors.New("refused")
		switch i % 3 {
		case 0: // stored
			w.Change = func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
				inc.Pins = append(inc.Pins, fmt.Sprint(i))
				return inc.AddNote(fmt.Sprintf("note %d", i), alice, t0)
			}
		case 1: // changed in place, nothing stored
			w.Change = func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
				inc.Title, inc.Pins = "polluted", append(inc.Pins, "ghost")
				return nil, nil
			}
		case 2: // changed in place, then failed
			w.Change = func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
				inc.Title, inc.Pins = "polluted", append(inc.Pins, "failed")
				return nil, refused
			}
		}
		res, err := s.Apply(ctx, w)
		if i%3 == 2 {
			if !errors.Is(err, refused) {
				errs[i] = fmt.Errorf("write %d: %v, want its own error", i, err)
			}
			return
		}
		if err == nil && i%3 == 0 && !slices.Contains(res.Incident.Pins, fmt.Sprint(i)) {
			err = fmt.Errorf("write %d: its result lacks its own change: %v", i, res.Incident.Pins)
		}
		errs[i] = err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := 0; i < 300; i += 3 {
		want[fmt.Sprint(i)] = true
	}
	for _, p := range got.Pins {
		if !want[p] {
			t.Errorf("stored pin %q: not a stored write's, or twice", p)
		}
		delete(want, p)
	}
	if len(want) > 0 || got.Title != "storm" {
		t.Errorf("title %q; %d stored changes missing", got.Title, len(want))
	}
	if n := len(timeline(t, s, inc.ID)); n != base+100 {
		t.Errorf("timeline has %d events, want %d", n, base+100)
	}
}

// TestABurstWaitsForMoreWritersAndALoneWriteNever: a write alone commits
// at once, never pausing; once a group has been shared (a burst is on), the
// next leader pauses, and the writes that arrive meanwhile commit with it
// in one group — one fsync where there were several.
func TestABurstWaitsForMoreWritersAndALoneWriteNever(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	base := len(timeline(t, s, inc.ID))
	var pauses atomic.Int64
	during := func() {} // what arrives while a leader pauses
	boltstore.PauseCommits(s, func() { pauses.Add(1); during() })
	note := func(text string) error {
		_, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: memoNote(text)})
		return err
	}
	queued := func(n int) { // until n writes wait for the next group
		for deadline := time.Now().Add(time.Minute); boltstore.Queued(s) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", boltstore.Queued(s), n)
			}
		}
	}

	groups := boltstore.Groups(s)
	for i := range 5 {
		if err := note(fmt.Sprint("alone ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := boltstore.Groups(s) - groups; pauses.Load() != 0 || n != 5 {
		t.Fatalf("5 writes one after another: %d pauses, %d groups; want none and 5", pauses.Load(), n)
	}

	// A shared group: a write holds its commit until two more queue.
	errs := make([]error, 3)
	inside, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errs[0] = s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
			close(inside)
			<-release
			return inc.AddNote("held", alice, t0)
		}})
	})
	<-inside
	for i := 1; i < 3; i++ {
		wg.Go(func() { errs[i] = note(fmt.Sprint("behind ", i)) })
	}
	queued(2)
	close(release)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// The burst is on: the next leader pauses, and three writes arriving
	// in its pause commit in its group.
	groups, pauses0 := boltstore.Groups(s), pauses.Load()
	arrived := make([]error, 3)
	during = func() {
		for i := range 3 {
			wg.Go(func() { arrived[i] = note(fmt.Sprint("arrived ", i)) })
		}
		queued(3)
	}
	if err := note("leader"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(arrived...); err != nil {
		t.Fatal(err)
	}
	if n, p := boltstore.Groups(s)-groups, pauses.Load()-pauses0; n != 1 || p != 1 {
		t.Errorf("a leader and 3 writes arriving in its pause: %d groups, %d pauses; want 1 and 1", n, p)
	}

	// The next write pauses once (the last group was shared), finds no
	// one, and commits alone; the one after it does not pause.
	during = func() {}
	pauses0 = pauses.Load()
	for i := range 2 {
		if err := note(fmt.Sprint("after ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if p := pauses.Load() - pauses0; p != 1 {
		t.Errorf("two writes one after another after a burst: %d pauses, want 1", p)
	}
	if n := len(timeline(t, s, inc.ID)); n != base+14 {
		t.Errorf("timeline has %d events, want %d: the 14 notes", n, base+14)
	}
}
