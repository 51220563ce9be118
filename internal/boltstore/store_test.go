package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

var (
	ctx   = context.Background()
	t0    = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	alice = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}
)

func mustOpenStore(tb testing.TB, path string) *boltstore.Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "sitrep.db")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustDeclare(tb testing.TB, s *boltstore.Store, title string) *incidents.Incident {
	tb.Helper()
	inc, events, err := incidents.Declare(incidents.Declaration{Title: title}, alice, t0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Create(ctx, inc, events); err != nil {
		tb.Fatal(err)
	}
	return inc
}

func note(text string) func(*incidents.Incident) ([]incidents.Event, error) {
	return func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.AddNote(text, alice, t0) }
}

func timeline(tb testing.TB, s *boltstore.Store, id int64) []incidents.Event {
	tb.Helper()
	var out []incidents.Event
	if err := s.Timeline(ctx, id, func(ev incidents.Event) error { out = append(out, ev); return nil }); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestReopenAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitrep.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := mustDeclare(t, s, "API completely unavailable")
	b := mustDeclare(t, s, "minor typo on the status page")
	if a.ID != 1 || b.ID != 2 {
		t.Fatalf("ids %d, %d", a.ID, b.ID)
	}
	a, _, err = s.Update(ctx, a.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Channel = "C0WARROOM"
		return inc.Ack(alice, t0.Add(time.Minute))
	})
	if err != nil {
		t.Fatal(err)
	}
	wantTimeline := timeline(t, s, a.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpenStore(t, path)
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("after reopen:\n got %+v\nwant %+v", got, a)
	}
	if tl := timeline(t, s, a.ID); !reflect.DeepEqual(tl, wantTimeline) || len(tl) != 4 {
		t.Errorf("timeline after reopen: %d events, want %d", len(tl), len(wantTimeline))
	}
	if id, err := s.ByChannel(ctx, "C0WARROOM"); err != nil || id != a.ID {
		t.Errorf("ByChannel = %d, %v", id, err)
	}
	c := mustDeclare(t, s, "third")
	if c.ID != 3 {
		t.Errorf("the id sequence restarted: %d", c.ID)
	}
	list, err := s.List(ctx, incidents.Filter{All: true})
	if err != nil || len(list) != 3 || list[0].ID != 3 {
		t.Errorf("List = %d incidents (first %v), %v", len(list), list[0].ID, err)
	}
	p4, _ := s.List(ctx, incidents.Filter{Severity: incidents.P4})
	if len(p4) != 1 || p4[0].ID != b.ID {
		t.Errorf("List(P4) = %v", p4)
	}
}

func TestUpdateIsAllOrNothing(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "db down")
	before := timeline(t, s, inc.ID)

	boom := errors.New("boom")
	_, _, err := s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Title = "changed"
		inc.Channel = "C1"
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	// A change with no events is not written either.
	got, events, err := s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Title = "changed silently"
		return nil, nil
	})
	if err != nil || events != nil || got.Title != "db down" {
		t.Fatalf("no-event update: %v %v %q", err, events, got.Title)
	}
	after, _ := s.Get(ctx, inc.ID)
	if after.Title != "db down" || after.Channel != "" || len(timeline(t, s, inc.ID)) != len(before) {
		t.Errorf("a failed update left a trace: %+v", after)
	}
	if _, err := s.ByChannel(ctx, "C1"); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("index written by a failed update: %v", err)
	}
	if _, _, err := s.Update(ctx, 99, note("x")); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("update of a missing incident: %v", err)
	}
	if err := s.Timeline(ctx, 99, func(incidents.Event) error { return nil }); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("timeline of a missing incident: %v", err)
	}
}

func TestIndexes(t *testing.T) {
	s := mustOpenStore(t, "")
	a := mustDeclare(t, s, "a")
	b := mustDeclare(t, s, "b")
	setChannel := func(ch string) func(*incidents.Incident) ([]incidents.Event, error) {
		return func(inc *incidents.Incident) ([]incidents.Event, error) {
			inc.Channel = ch
			inc.Links = map[string]string{"pagerduty": "P" + ch}
			return inc.AddNote("war room "+ch, alice, t0)
		}
	}
	if _, _, err := s.Update(ctx, a.ID, setChannel("C1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, b.ID, setChannel("C1")); !errors.Is(err, incidents.ErrConflict) {
		t.Fatalf("two incidents in one war room: %v", err)
	}
	if _, _, err := s.Update(ctx, a.ID, setChannel("C2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByChannel(ctx, "C1"); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("old channel still indexed: %v", err)
	}
	if id, err := s.ByLink(ctx, "pagerduty", "PC2"); err != nil || id != a.ID {
		t.Errorf("ByLink = %d, %v", id, err)
	}
	if _, err := s.ByLink(ctx, "pagerduty", "PC1"); !errors.Is(err, incidents.ErrNotFound) {
		t.Errorf("old link still indexed: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := mustOpenStore(t, "")
	shared := mustDeclare(t, s, "shared")
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, _, err := s.Update(ctx, shared.ID, note(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					errs <- err
				}
				inc, events, _ := incidents.Declare(incidents.Declaration{Title: "own"}, alice, t0)
				if err := s.Create(ctx, inc, events); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tl := timeline(t, s, shared.ID)
	seen := map[string]bool{}
	for i, ev := range tl {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: the timeline has a gap or a duplicate", i, ev.Seq)
		}
		seen[ev.Message] = true
	}
	if len(tl) != 2+writers*each || len(seen) != 2+writers*each {
		t.Errorf("timeline has %d events (%d distinct), want %d", len(tl), len(seen), 2+writers*each)
	}
	all, _ := s.List(ctx, incidents.Filter{All: true})
	if len(all) != 1+writers*each || all[0].ID != int64(1+writers*each) {
		t.Errorf("%d incidents, newest %d", len(all), all[0].ID)
	}
}

func TestTimelineStreamsInPages(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "long")
	for i := 0; i < 1300; i++ { // more than two pages
		if _, _, err := s.Update(ctx, inc.ID, note(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	tl := timeline(t, s, inc.ID)
	if len(tl) != 1302 || tl[1301].Message != "1299" || tl[2].Message != "0" {
		t.Fatalf("%d events", len(tl))
	}
	stop := errors.New("stop")
	n := 0
	err := s.Timeline(ctx, inc.ID, func(incidents.Event) error {
		n++
		if n == 600 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 600 {
		t.Errorf("stopping the walk: n=%d err=%v", n, err)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitrep.db")
	s := mustOpenStore(t, path)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99")) })
	db.Close()
	_, err = boltstore.Open(path, boltstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestBackupFile(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, filepath.Join(dir, "sitrep.db"))
	inc := mustDeclare(t, s, "backed up")
	s.Update(ctx, inc.ID, note("before the backup"))
	n, err := s.BackupFile(filepath.Join(dir, "copy.db"))
	if err != nil || n == 0 {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	s.Update(ctx, inc.ID, note("after the backup"))
	copy := mustOpenStore(t, filepath.Join(dir, "copy.db"))
	if tl := timeline(t, copy, inc.ID); len(tl) != 3 || tl[2].Message != "before the backup" {
		t.Errorf("backup timeline %+v", tl)
	}
	if _, err := s.BackupFile(filepath.Join(dir, "missing-dir", "x.db")); err == nil {
		t.Error("backup into a missing directory succeeded")
	}
}

// TestOneBadRecordIsSkipped: an incident record that does not decode is
// skipped by List (the rest of Sitrep runs) and reported by Check.
func TestOneBadRecordIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := mustOpenStore(t, path)
	for _, title := range []string{"one", "two", "three"} {
		inc, events, _ := incidents.Declare(incidents.Declaration{Title: title}, alice, t0)
		if err := s.Create(ctx, inc, events); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		k := make([]byte, 8)
		k[7] = 2
		return tx.Bucket([]byte("incidents")).Put(k, []byte("{not json"))
	})
	db.Close()
	s = mustOpenStore(t, path)
	all, err := s.List(ctx, incidents.Filter{All: true})
	if err != nil || len(all) != 2 || s.Unreadable() != 1 {
		t.Fatalf("List: %d incidents, %d unreadable, err %v", len(all), s.Unreadable(), err)
	}
	problems, err := s.CheckRecords(ctx)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "incident 0000000000000002") {
		t.Errorf("CheckRecords: %q %v", problems, err)
	}
	if pages, err := s.CheckPages(ctx); err != nil || len(pages) != 0 {
		t.Errorf("CheckPages of sound pages: %q %v", pages, err)
	}
	// A change to the bad record fails; the store is still ready.
	if _, _, err := s.Update(ctx, 2, note("x")); err == nil {
		t.Error("a change to the unreadable record succeeded")
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("one unreadable record made the store not ready: %v", err)
	}
}
