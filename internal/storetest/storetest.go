// Package storetest is the contract every incidents.Store keeps, as one
// suite each implementation runs against its real database (a bbolt file,
// a PostgreSQL cluster): the same behaviour whichever holds the incidents.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

var (
	ctx   = context.Background()
	alice = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}
	am    = incidents.Actor{Name: "Alertmanager", Source: incidents.SourceAlertmanager}
	t0    = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
)

// Run runs the contract against the stores open returns: each call an
// empty store of its own.
func Run(t *testing.T, open func(t *testing.T) incidents.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, incidents.Store)
	}{
		{"CreateGetList", createGetList},
		{"UpdateIsAllOrNothing", updateIsAllOrNothing},
		{"UpdateAllIsOneTransaction", updateAll},
		{"TimelineInOrderAcrossPages", timelineInOrder},
		{"Indexes", indexes},
		{"ApplyFindsCreatesAndDeduplicates", apply},
		{"ConcurrentAppliesMakeOneIncident", concurrentApplies},
		{"DueIndex", dueIndex},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func declare(t *testing.T, s incidents.Store, title string, sev incidents.Severity, at time.Time) *incidents.Incident {
	t.Helper()
	inc, events, err := incidents.Declare(incidents.Declaration{Title: title, Signals: incidents.Signals{Explicit: sev}}, alice, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, inc, events); err != nil {
		t.Fatal(err)
	}
	return inc
}

func count(t *testing.T, s incidents.Store, id int64) int {
	t.Helper()
	n := 0
	if err := s.Timeline(ctx, id, func(incidents.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func createGetList(t *testing.T, s incidents.Store) {
	a := declare(t, s, "first", incidents.P3, t0)
	b := declare(t, s, "second", incidents.P1, t0.Add(time.Hour))
	if a.ID != 1 || b.ID != 2 {
		t.Fatalf("ids %d %d", a.ID, b.ID)
	}
	got, err := s.Get(ctx, 2)
	if err != nil || got.Title != "second" || got.Severity != incidents.P1 || !got.DeclaredAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("get %+v %v", got, err)
	}
	if _, err := s.Get(ctx, 99); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		return inc.Resolve("", alice, t0.Add(2*time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    incidents.Filter
		want []int64
	}{
		{incidents.Filter{}, []int64{2}},
		{incidents.Filter{All: true}, []int64{2, 1}},
		{incidents.Filter{All: true, Severity: incidents.P3}, []int64{1}},
		{incidents.Filter{All: true, Limit: 1}, []int64{2}},
		{incidents.Filter{All: true, Since: t0.Add(30 * time.Minute)}, []int64{2}},
	} {
		list, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, inc := range list {
			ids = append(ids, inc.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("List(%+v) = %v, want %v", c.f, ids, c.want)
		}
	}
}

func updateIsAllOrNothing(t *testing.T, s incidents.Store) {
	declare(t, s, "x", incidents.P2, t0)
	before := count(t, s, 1)
	boom := errors.New("boom")
	if _, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Title = "changed"
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Errorf("error: %v", err)
	}
	got, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Title = "changed without events"
		return nil, nil
	})
	if err != nil || got.Title != "x" {
		t.Errorf("a change without events wrote: %+v %v", got, err)
	}
	if g, _ := s.Get(ctx, 1); g.Title != "x" || count(t, s, 1) != before {
		t.Errorf("after refused changes: %q, %d events", g.Title, count(t, s, 1))
	}
	inc, events, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Ack(alice, t0.Add(time.Minute)) })
	if err != nil || !inc.Acked() || len(events) == 0 || events[0].Seq != uint64(before+1) || events[0].Incident != 1 {
		t.Errorf("ack: %+v %+v %v", inc, events, err)
	}
	if _, _, err := s.Update(ctx, 42, func(inc *incidents.Incident) ([]incidents.Event, error) { return nil, nil }); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}

func updateAll(t *testing.T, s incidents.Store) {
	dup, events, _ := incidents.Declare(incidents.Declaration{Title: "dup", Links: map[string]string{"alertmanager": "G1"}}, am, t0)
	if err := s.Create(ctx, dup, events); err != nil {
		t.Fatal(err)
	}
	declare(t, s, "survivor", incidents.P2, t0)
	if _, err := s.Apply(ctx, incidents.Write{ID: 1, Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
		return inc.ObserveAlert(incidents.Alert{Name: "HighErrorRate", Status: "firing", Fingerprint: "fp1", StartsAt: t0}, m, am, t0)
	}}); err != nil {
		t.Fatal(err)
	}
	n1, n2 := count(t, s, 1), count(t, s, 2)
	merge := func(fail error) error {
		_, _, err := s.UpdateAll(ctx, []int64{1, 2}, func(incs []*incidents.Incident) ([][]incidents.Event, error) {
			d, i, err := incidents.Merge(incs[0], incs[1], alice, t0.Add(time.Minute))
			if fail != nil {
				return [][]incidents.Event{d, i}, fail
			}
			return [][]incidents.Event{d, i}, err
		})
		return err
	}
	boom := errors.New("boom")
	if err := merge(boom); !errors.Is(err, boom) || count(t, s, 1) != n1 || count(t, s, 2) != n2 {
		t.Fatalf("a failed merge wrote: %v", err)
	}
	if err := merge(nil); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Get(ctx, 1); d.MergedInto != 2 || d.Open() {
		t.Errorf("duplicate %+v", d)
	}
	if id, err := s.ByLink(ctx, "alertmanager", "G1"); err != nil || id != 2 {
		t.Errorf("the merged group → %d %v, want the survivor", id, err)
	}
	// the group's alert state went with it: its resolution is the survivor's all-clear
	if inc, _ := s.Get(ctx, 2); inc.AlertsFiring() != 1 {
		t.Errorf("the survivor counts %d alerts firing, want the duplicate's 1", inc.AlertsFiring())
	}
	var state string
	res, err := s.Apply(ctx, incidents.Write{ID: 2, Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
		state = m.Get("alert/fp1")
		return inc.ObserveAlert(incidents.Alert{Name: "HighErrorRate", Status: "resolved", Fingerprint: "fp1", StartsAt: t0}, m, am, t0)
	}})
	if err != nil || !strings.HasPrefix(state, "firing@") || res.Incident.AlertsFiring() != 0 {
		t.Errorf("the survivor's memo of the merged alert: %q, firing %d, %v", state, res.Incident.AlertsFiring(), err)
	}
	if _, _, err := s.UpdateAll(ctx, []int64{2, 2}, nil); incidents.ErrorMessage(err) == "" {
		t.Errorf("an incident twice: %v", err)
	}
}

func timelineInOrder(t *testing.T, s incidents.Store) {
	declare(t, s, "long", incidents.P2, t0)
	const n = 1300 // more than any page
	if _, _, err := s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) {
		var evs []incidents.Event
		for i := range n {
			ev, _ := inc.Record(incidents.EventNote, fmt.Sprint(i), nil, alice, t0.Add(time.Duration(i)*time.Second))
			evs = append(evs, ev...)
		}
		return evs, nil
	}); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	i := 0
	stop := errors.New("stop")
	err := s.Timeline(ctx, 1, func(ev incidents.Event) error {
		if ev.Seq != seq+1 {
			return fmt.Errorf("seq %d after %d", ev.Seq, seq)
		}
		seq = ev.Seq
		if ev.Kind == incidents.EventNote {
			if ev.Message != fmt.Sprint(i) {
				return fmt.Errorf("note %q, want %d", ev.Message, i)
			}
			i++
		}
		if i == n {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || i != n {
		t.Errorf("timeline: %v after %d notes", err, i)
	}
	if err := s.Timeline(ctx, 7, func(incidents.Event) error { return nil }); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("a missing timeline: %v", err)
	}
}

func indexes(t *testing.T, s incidents.Store) {
	declare(t, s, "a", incidents.P2, t0)
	declare(t, s, "b", incidents.P2, t0)
	open := func(id int64, ch string) error {
		_, _, err := s.Update(ctx, id, func(inc *incidents.Incident) ([]incidents.Event, error) {
			return inc.OpenWarRoom(ch, "inc-"+fmt.Sprint(id), "1.1", incidents.System, t0)
		})
		return err
	}
	if err := open(1, "C1"); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ByChannel(ctx, "C1"); err != nil || id != 1 {
		t.Errorf("C1 → %d %v", id, err)
	}
	if err := open(2, "C1"); !errors.Is(err, incidents.ErrConflict) {
		t.Errorf("a second incident in C1: %v", err)
	}
	if _, err := s.ByChannel(ctx, "C9"); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("C9: %v", err)
	}
	if _, _, err := s.Update(ctx, 2, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Links = map[string]string{"pagerduty": "P1"}
		return inc.Record(incidents.EventNote, "linked", nil, alice, t0)
	}); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ByLink(ctx, "pagerduty", "P1"); err != nil || id != 2 {
		t.Errorf("P1 → %d %v", id, err)
	}
	if _, _, err := s.Update(ctx, 2, func(inc *incidents.Incident) ([]incidents.Event, error) {
		delete(inc.Links, "pagerduty")
		return inc.Record(incidents.EventNote, "unlinked", nil, alice, t0)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByLink(ctx, "pagerduty", "P1"); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("a removed link: %v", err)
	}
}

// group is an Alertmanager-like write: find the group's open incident or
// declare it, and record each firing alert once through the memo.
func group(key, dedup string, alerts ...string) incidents.Write {
	return incidents.Write{Dedup: dedup, Link: incidents.Link{System: "alertmanager", Ref: key}, OpenOnly: true,
		Create: func() (*incidents.Incident, []incidents.Event, error) {
			return incidents.Declare(incidents.Declaration{Title: "group " + key, Links: map[string]string{"alertmanager": key}}, am, t0)
		},
		Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
			var out []incidents.Event
			for _, a := range alerts {
				if m.Get("alert/"+a) == "firing" {
					continue
				}
				if err := m.Set("alert/"+a, "firing"); err != nil {
					return nil, err
				}
				ev, _ := inc.Record(incidents.EventAlert, a+" firing", nil, am, t0)
				out = append(out, ev...)
			}
			return out, nil
		}, Probe: true}
}

func apply(t *testing.T, s incidents.Store) {
	res, err := s.Apply(ctx, group("G", "", "a", "b"))
	if err != nil || !res.Created || res.Incident.ID != 1 || len(res.Events) < 3 {
		t.Fatalf("first: %+v %v", res, err)
	}
	res, err = s.Apply(ctx, group("G", "", "a", "b"))
	if err != nil || res.Created || len(res.Events) != 0 || res.Incident == nil || res.Incident.ID != 1 {
		t.Errorf("a repeat: %+v %v", res, err)
	}
	res, err = s.Apply(ctx, group("G", "e1", "a", "c"))
	if err != nil || len(res.Events) != 1 || res.Events[0].Message != "c firing" {
		t.Errorf("a new alert: %+v %v", res, err)
	}
	if res, err := s.Apply(ctx, group("G", "e1", "d")); err != nil || !res.Duplicate {
		t.Errorf("the same delivery again: %+v %v", res, err)
	}
	if _, err := s.Apply(ctx, incidents.Write{Link: incidents.Link{System: "pagerduty", Ref: "nope"}}); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("unknown link without Create: %v", err)
	}
	// OpenOnly: the group fires again after its incident closed: a new one
	s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Resolve("", alice, t0) })
	res, err = s.Apply(ctx, group("G", "", "a"))
	if err != nil || !res.Created || res.Incident.ID != 2 {
		t.Errorf("after resolution: %+v %v", res, err)
	}
	if id, _ := s.ByLink(ctx, "alertmanager", "G"); id != 2 {
		t.Errorf("the group → %d, want the new incident", id)
	}
	// by id, with a change that fails: nothing written
	n := count(t, s, 2)
	boom := errors.New("boom")
	if _, err := s.Apply(ctx, incidents.Write{ID: 2, Dedup: "e2", Change: func(inc *incidents.Incident, m incidents.Memo) ([]incidents.Event, error) {
		m.Set("x", "y")
		ev, _ := inc.Record(incidents.EventNote, "half", nil, alice, t0)
		return ev, boom
	}}); !errors.Is(err, boom) || count(t, s, 2) != n {
		t.Errorf("a failing change: %v", err)
	}
	if res, err := s.Apply(ctx, incidents.Write{ID: 2, Dedup: "e2"}); err != nil || res.Duplicate {
		t.Errorf("a failed write's dedup key was kept: %+v %v", res, err)
	}
}

func concurrentApplies(t *testing.T, s incidents.Store) {
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Apply(ctx, group("storm", fmt.Sprint("d", i%20), fmt.Sprint("alert", i%5)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.List(ctx, incidents.Filter{All: true})
	if len(all) != 1 {
		t.Fatalf("%d incidents for one group", len(all))
	}
	alerts := 0
	s.Timeline(ctx, all[0].ID, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventAlert {
			alerts++
		}
		return nil
	})
	if alerts != 5 {
		t.Errorf("%d alert events, want each of 5 once", alerts)
	}
}

func dueIndex(t *testing.T, s incidents.Store) {
	idx, ok := s.(incidents.DueIndex)
	if !ok {
		t.Skip("no due index")
	}
	declare(t, s, "p1", incidents.P1, t0) // due at t0+5m
	declare(t, s, "p3", incidents.P3, t0) // due at t0+1h
	ids, next, err := idx.Due(ctx, t0.Add(10*time.Minute))
	if err != nil || fmt.Sprint(ids) != "[1]" || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("due %v next %s %v", ids, next, err)
	}
	s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Ack(alice, t0.Add(time.Minute)) })
	ids, _, err = idx.Due(ctx, t0.Add(10*time.Minute))
	if err != nil || len(ids) != 0 {
		t.Errorf("after the ack: %v %v", ids, err)
	}
}
