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

// TestABurstWaitsForMoreWritersAndALoneWriteNever: a write that finds no
// commit under way commits at once, never pausing. A writer that queued
// behind a commit of more than one writer, leading fewer than that, pauses
// and hears of each writer that arrives; they commit with it in one group,
// one fsync where there were several. A leader that finds as many waiting
// does not pause.
func TestABurstWaitsForMoreWritersAndALoneWriteNever(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "storm")
	base := len(timeline(t, s, inc.ID))
	var pauses atomic.Int64
	var during atomic.Value // func(arrived <-chan struct{}): what arrives while a leader pauses
	during.Store(func(<-chan struct{}) {})
	boltstore.PauseCommits(s, func(arrived <-chan struct{}) {
		pauses.Add(1)
		during.Swap(func(<-chan struct{}) {}).(func(<-chan struct{}))(arrived) // once
	})
	var notes atomic.Int64
	note := func(text string) error {
		notes.Add(1)
		_, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: memoNote(text)})
		return err
	}
	queued := func(n int) { // until n writes wait for the next group
		for deadline := time.Now().Add(time.Minute); boltstore.Queued(s) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				panic(fmt.Sprintf("%d writes queued, want %d", boltstore.Queued(s), n))
			}
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	later := func(f func() error) { // a write of its own goroutine
		wg.Go(func() {
			if err := f(); err != nil {
				failed.Store(err)
			}
		})
	}
	// nothing is a repeat's change: it writes nothing.
	nothing := func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error) { return nil, nil }
	// hold is a write whose change waits for release once it runs; held,
	// one that adds a note.
	hold := func(change func(*incidents.Incident, incidents.Memo) ([]incidents.Event, error)) (chan struct{}, chan struct{}) {
		in, out := make(chan struct{}), make(chan struct{})
		later(func() error {
			_, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
				close(in)
				<-out
				return change(inc, m)
			}})
			return err
		})
		return in, out
	}
	held := func(text string) (chan struct{}, chan struct{}) {
		notes.Add(1)
		return hold(memoNote(text))
	}
	check := func(what string, groups, pauses0 int64, wantGroups, wantPauses int64) {
		t.Helper()
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		}
		if n, p := int64(boltstore.Groups(s))-groups, pauses.Load()-pauses0; n != wantGroups || p != wantPauses {
			t.Errorf("%s: %d groups, %d pauses; want %d and %d", what, n, p, wantGroups, wantPauses)
		}
	}
	mark := func() (int64, int64) { return int64(boltstore.Groups(s)), pauses.Load() }

	groups, pauses0 := mark()
	for i := range 5 {
		if err := note(fmt.Sprint("alone ", i)); err != nil {
			t.Fatal(err)
		}
	}
	check("5 writes one after another", groups, pauses0, 5, 0)

	// A commits alone while B and C queue behind it; B leads them (its
	// last group had one: no pause) and holds its commit while D queues.
	// D queued behind a group of two and leads one: it pauses, and the
	// three arriving in its pause commit in its group.
	groups, pauses0 = mark()
	insideA, releaseA := held("A")
	<-insideA
	insideB, releaseB := held("B")
	queued(1)
	later(func() error { return note("C") })
	queued(2)
	close(releaseA)
	<-insideB
	during.Store(func(arrived <-chan struct{}) {
		for i := range 3 {
			later(func() error { return note(fmt.Sprint("arrived ", i)) })
		}
		queued(4) // the leader and the three
		select {
		case <-arrived:
		default:
			t.Error("3 writers queued for a waiting leader, and it was not told")
		}
	})
	later(func() error { return note("D") })
	queued(1)
	close(releaseB)
	check("A alone, B and C, then D and 3 arriving in its pause", groups, pauses0, 3, 1)

	// Writers that all arrived at once: a group of three, and three more
	// already waiting when it ends. Their leader does not pause, and a
	// write after them finds no commit under way and does not either.
	insideF, releaseF := held("first")
	<-insideF
	insideX, releaseX := held("x0")
	queued(1)
	for i := 1; i < 3; i++ {
		later(func() error { return note(fmt.Sprint("x", i)) })
	}
	queued(3)
	groups, pauses0 = mark()
	close(releaseF) // x0 leads x0–x2 (the last group had one: no pause)
	<-insideX
	for i := range 3 {
		later(func() error { return note(fmt.Sprint("y", i)) })
	}
	queued(3)
	close(releaseX) // y0 leads y0–y2: as many as the last group, waiting
	wg.Wait()
	if err := note("after"); err != nil {
		t.Fatal(err)
	}
	check("three waiting for a leader after a group of three, then one alone", groups, pauses0, 3, 0)

	// Repeats that write nothing: a group of three of them behind a held
	// write, the first holding its turn while D queues. D queued behind a
	// group that wrote nothing and does not pause: it saves no fsync.
	insideF, releaseF = held("before the repeats")
	<-insideF
	insideR, releaseR := hold(nothing)
	queued(1)
	for range 2 {
		later(func() error {
			_, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: nothing})
			return err
		})
	}
	queued(3)
	groups, pauses0 = mark()
	close(releaseF)
	<-insideR
	later(func() error { return note("D after the repeats") })
	queued(1)
	close(releaseR)
	check("a write queued behind three repeats", groups, pauses0, 2, 0)

	if n, want := len(timeline(t, s, inc.ID)), base+int(notes.Load()); n != want {
		t.Errorf("timeline has %d events, want %d: %d notes", n, want, notes.Load())
	}
}

// TestAWaitingLeaderStopsWhileWritersKeepComing: writers arriving without
// a pause never keep a leader waiting past commitDelay, and it stops once
// they stop coming.
func TestAWaitingLeaderStopsWhileWritersKeepComing(t *testing.T) {
	for _, keepComing := range []bool{true, false} {
		arrived, stop, done := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go func() {
			for keepComing {
				select {
				case arrived <- struct{}{}:
				case <-stop:
					return
				}
			}
		}()
		go func() { boltstore.WaitForWriters(arrived); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("writers arriving: %v; the leader still waits after a minute", keepComing)
		}
		close(stop)
	}
}
