package boltstore_test

import (
	"errors"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// TestUpdateAllIsOneTransaction: a change to two incidents is stored whole
// or not at all, a survivor's aliases are indexed, and the duplicate that
// keeps the same links in its record cannot take them back from the index.
func TestUpdateAllIsOneTransaction(t *testing.T) {
	s := mustOpenStore(t, "")
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "dup", Links: map[string]string{"alertmanager": "g1"}}, alice, t0)
	if err := s.Create(ctx, inc, events); err != nil {
		t.Fatal(err)
	}
	mustDeclare(t, s, "survivor")
	count := func(id int64) int {
		n := 0
		s.Timeline(ctx, id, func(incidents.Event) error { n++; return nil })
		return n
	}
	before1, before2 := count(1), count(2)

	boom := errors.New("boom")
	_, _, err := s.UpdateAll(ctx, []int64{1, 2}, func(incs []*incidents.Incident) ([][]incidents.Event, error) {
		d, i, err := incidents.Merge(incs[0], incs[1], alice, t0)
		if err != nil {
			t.Fatal(err)
		}
		return [][]incidents.Event{d, i}, boom
	})
	if !errors.Is(err, boom) || count(1) != before1 || count(2) != before2 {
		t.Fatalf("a failed change wrote: %v %d %d", err, count(1), count(2))
	}
	if got, _ := s.Get(ctx, 1); got.MergedInto != 0 || !got.Open() {
		t.Fatalf("dup changed: %+v", got)
	}
	if _, _, err := s.UpdateAll(ctx, []int64{1, 1}, nil); incidents.ErrorMessage(err) == "" {
		t.Errorf("the same incident twice: %v", err)
	}
	if _, _, err := s.UpdateAll(ctx, []int64{1, 9}, nil); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("a missing incident: %v", err)
	}
	incs, evs, err := s.UpdateAll(ctx, []int64{1, 2}, func(incs []*incidents.Incident) ([][]incidents.Event, error) {
		return [][]incidents.Event{nil, nil}, nil
	})
	if err != nil || len(incs) != 2 || len(evs) != 2 || len(evs[0])+len(evs[1]) != 0 {
		t.Errorf("no-op: %v %v %v", incs, evs, err)
	}

	_, evs, err = s.UpdateAll(ctx, []int64{1, 2}, func(incs []*incidents.Incident) ([][]incidents.Event, error) {
		d, i, err := incidents.Merge(incs[0], incs[1], alice, t0)
		return [][]incidents.Event{d, i}, err
	})
	if err != nil || count(1) != before1+len(evs[0]) || count(2) != before2+1 {
		t.Fatalf("merge: %v", err)
	}
	if id, err := s.ByLink(ctx, "alertmanager", "g1"); err != nil || id != 2 {
		t.Errorf("alias → %d %v", id, err)
	}
	// the duplicate's record changes its links later: the survivor keeps the alias
	if _, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		delete(inc.Links, "alertmanager")
		return inc.Record(incidents.EventNote, "links cleaned", nil, alice, t0)
	}); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ByLink(ctx, "alertmanager", "g1"); err != nil || id != 2 {
		t.Errorf("after the duplicate's change, alias → %d %v", id, err)
	}
	// reopened from disk: the index is stored, not remembered
	path := s.Path()
	s.Close()
	s2, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if id, err := s2.ByLink(ctx, "alertmanager", "g1"); err != nil || id != 2 {
		t.Errorf("reopened: alias → %d %v", id, err)
	}
}

// TestMergeLeavesARefiredGroupWithItsIncident: a resolved incident's
// alert group that fired again into a new incident stays with the new one
// when the old one is merged somewhere else.
func TestMergeLeavesARefiredGroupWithItsIncident(t *testing.T) {
	s := mustOpenStore(t, "")
	old, events, _ := incidents.Declare(incidents.Declaration{Title: "old", Links: map[string]string{"alertmanager": "G"}}, alice, t0)
	s.Create(ctx, old, events)
	s.Update(ctx, old.ID, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Resolve("", alice, t0) })
	again, events, _ := incidents.Declare(incidents.Declaration{Title: "fired again", Links: map[string]string{"alertmanager": "G"}}, alice, t0)
	s.Create(ctx, again, events) // the index now gives G to INC-2
	mustDeclare(t, s, "survivor")
	if _, _, err := s.UpdateAll(ctx, []int64{1, 3}, func(incs []*incidents.Incident) ([][]incidents.Event, error) {
		d, i, err := incidents.Merge(incs[0], incs[1], alice, t0)
		return [][]incidents.Event{d, i}, err
	}); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ByLink(ctx, "alertmanager", "G"); err != nil || id != 2 {
		t.Errorf("G → %d %v, want INC-2 (it fired there since)", id, err)
	}
	if inc, _ := s.Get(ctx, 3); len(inc.Aliases) != 0 {
		t.Errorf("the survivor took %v", inc.Aliases)
	}
}
