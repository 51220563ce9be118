package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/releases"
)

// RunReleases runs the releases.Store contract against the stores open
// returns: ids in order, one change at a time, a change that writes
// nothing, the active index and the windows the incident card reads.
func RunReleases(t *testing.T, open func(t *testing.T) releases.Store) {
	t.Run("CreateGetList", func(t *testing.T) { releaseCRUD(t, open(t)) })
	t.Run("ConcurrentUpdates", func(t *testing.T) { releaseConcurrent(t, open(t)) })
	t.Run("OneInProgressPerService", func(t *testing.T) { releaseBusy(t, open(t)) })
}

// releaseBusy: of concurrent starts of one service, one is stored; the
// others are refused naming it; a service's finished release blocks nothing.
func releaseBusy(t *testing.T, s releases.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, busy := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateRelease(ctx, &releases.Release{Service: "api", Version: "2", State: releases.Started, StartedAt: t0})
			var b *releases.BusyError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				stored++
			case errors.As(err, &b) && b.Other.Service == "api":
				busy++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if stored != 1 || busy != 7 {
		t.Fatalf("8 concurrent starts of one service: %d stored, %d refused; want 1 and 7", stored, busy)
	}
	if err := s.CreateRelease(ctx, &releases.Release{Service: "web", Version: "1", State: releases.Started, StartedAt: t0}); err != nil {
		t.Fatalf("another service: %v", err)
	}
	rs, _ := s.ListReleases(ctx, releases.Filter{Service: "api"})
	if _, err := s.UpdateRelease(ctx, rs[0].ID, func(r *releases.Release) error { r.State = releases.Verified; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRelease(ctx, &releases.Release{Service: "api", Version: "3", State: releases.Started, StartedAt: t0}); err != nil {
		t.Fatalf("after the first was verified: %v", err)
	}
}

func releaseCRUD(t *testing.T, s releases.Store) {
	if _, err := s.GetRelease(ctx, 1); !errors.Is(err, releases.ErrNotFound) {
		t.Fatalf("get of none: %v, want ErrNotFound", err)
	}
	if rs, err := s.ListReleases(ctx, releases.Filter{Active: true}); err != nil || len(rs) != 0 {
		t.Fatalf("list of none: %v %v", rs, err)
	}
	for i, svc := range []string{"api", "web", "api"} {
		r := &releases.Release{Service: svc, Version: "1.0", State: releases.Started, StartedAt: t0.Add(time.Duration(i) * time.Hour),
			Params: map[string]string{"namespace": "prod"}, Events: []releases.Event{{At: t0, Kind: releases.EvStarted, Text: "<script>"}}}
		if i == 0 { // verified, a checkpoint still to post: active, not in progress
			r.State, r.Watch = releases.Verified, &releases.Watch{Checkpoints: []time.Time{t0}}
		}
		if err := s.CreateRelease(ctx, r); err != nil || r.ID != int64(i+1) {
			t.Fatalf("create %d: id %d, %v", i, r.ID, err)
		}
	}
	r, err := s.UpdateRelease(ctx, 2, func(r *releases.Release) error {
		r.State = releases.Aborted
		return nil
	})
	if err != nil || r.State != releases.Aborted {
		t.Fatalf("update: %+v %v", r, err)
	}
	// a change that fails or says unchanged writes nothing
	boom := errors.New("boom")
	if _, err := s.UpdateRelease(ctx, 1, func(r *releases.Release) error { r.Version = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing change: %v", err)
	}
	if r, err := s.UpdateRelease(ctx, 1, func(r *releases.Release) error { r.Version = "y"; return releases.ErrUnchanged }); !errors.Is(err, releases.ErrUnchanged) || r == nil {
		t.Fatalf("unchanged: %v %v", r, err)
	}
	if _, err := s.UpdateRelease(ctx, 9, func(*releases.Release) error { return nil }); !errors.Is(err, releases.ErrNotFound) {
		t.Fatalf("update of none: %v", err)
	}
	got, err := s.GetRelease(ctx, 1)
	if err != nil || got.Version != "1.0" || got.Params["namespace"] != "prod" || len(got.Events) != 1 || got.Events[0].Text != "<script>" {
		t.Fatalf("get: %+v %v (nothing a failed change did may stay)", got, err)
	}
	ids := func(f releases.Filter) []int64 {
		t.Helper()
		rs, err := s.ListReleases(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, c := range []struct {
		f    releases.Filter
		want []int64
	}{
		{releases.Filter{}, []int64{3, 2, 1}},
		{releases.Filter{Active: true}, []int64{3, 1}},
		{releases.Filter{Service: "api"}, []int64{3, 1}},
		{releases.Filter{Since: t0.Add(time.Hour)}, []int64{3, 2}},
		{releases.Filter{Limit: 1}, []int64{3}},
		{releases.Filter{Active: true, Service: "web"}, nil},
	} {
		if got := ids(c.f); !equalIDs(got, c.want) {
			t.Errorf("list %+v = %v, want %v", c.f, got, c.want)
		}
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// releaseConcurrent: changes to one release never lose each other.
func releaseConcurrent(t *testing.T, s releases.Store) {
	r := &releases.Release{Service: "api", Version: "1", State: releases.Started, StartedAt: t0}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateRelease(ctx, r.ID, func(r *releases.Release) error {
				r.Events = append(r.Events, releases.Event{At: t0, Kind: releases.EvTicked, Text: string(rune('a' + i))})
				r.Rev++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetRelease(ctx, r.ID)
	if err != nil || len(got.Events) != 20 || got.Rev != 20 {
		t.Fatalf("after 20 concurrent changes: %d events, rev %d, %v", len(got.Events), got.Rev, err)
	}
}
