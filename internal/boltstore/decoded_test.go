package boltstore_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// TestDecodedCopiesAreTheirOwn: what a read returns is the caller's to
// change; the next read (and the next write) sees the record as stored.
func TestDecodedCopiesAreTheirOwn(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "db latency")
	for range 2 {
		got, err := s.Get(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "db latency" || got.Links["pagerduty"] != "" || len(got.Pins) != 0 {
			t.Fatalf("read %+v: an earlier caller's change leaked into it", got)
		}
		got.Title = "changed by a reader"
		if got.Links == nil {
			got.Links = map[string]string{}
		}
		got.Links["pagerduty"] = "PLEAK"
		got.Pins = append(got.Pins, "leak")
	}
	res, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
		if inc.Title != "db latency" {
			return nil, fmt.Errorf("the write read %q, a reader's change", inc.Title)
		}
		return inc.AddNote("checked", alice, t0)
	}})
	if err != nil {
		t.Fatal(err)
	}
	res.Incident.Title = "changed by the writer's caller"
	if got, _ := s.Get(ctx, inc.ID); got.Title != "db latency" {
		t.Fatalf("after the write, read %q", got.Title)
	}
}

// TestARecordChangedBehindTheCacheIsReadAsStored: the cache answers only
// for the bytes it decoded; a record written past it is decoded afresh,
// by reads and by writes.
func TestARecordChangedBehindTheCacheIsReadAsStored(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "before")
	stored, err := s.Get(ctx, inc.ID) // now in the cache
	if err != nil {
		t.Fatal(err)
	}
	stored.Title = "after"
	raw, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := boltstore.PutRecord(s, inc.ID, raw); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, inc.ID); got.Title != "after" {
		t.Fatalf("read %q, want the record as stored", got.Title)
	}
	if err := boltstore.PutRecord(s, inc.ID, []byte(`{"id":`+fmt.Sprint(inc.ID)+`,"title":"written past the cache again"}`)); err != nil {
		t.Fatal(err)
	}
	var seen string
	if _, err := s.Apply(ctx, incidents.Write{ID: inc.ID, Change: func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
		seen = inc.Title
		return nil, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if seen != "written past the cache again" {
		t.Fatalf("the write read %q, want the record as stored", seen)
	}
}

// TestTheDecodedCacheIsBounded: reading every incident of a long history
// keeps a bounded number decoded, and a bounded size of records however
// large they are.
func TestTheDecodedCacheIsBounded(t *testing.T) {
	s := mustOpenStore(t, "")
	for i := range 300 {
		inc := mustDeclare(t, s, fmt.Sprint("incident ", i))
		if _, err := s.Get(ctx, inc.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := boltstore.DecodedLen(s); n == 0 || n > 256 {
		t.Fatalf("%d incidents kept decoded, want 1–256", n)
	}
	big := strings.Repeat("a long description ", 20000) // about 380 KB a record
	for i := range 15 {
		inc, events, err := incidents.Declare(incidents.Declaration{Title: fmt.Sprint("large ", i), Description: big}, alice, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, inc, events); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, inc.ID); err != nil || got.Description != big {
			t.Fatalf("read back %v", err)
		}
	}
	if n := boltstore.DecodedBytes(s); n == 0 || n > 4<<20 {
		t.Fatalf("%d bytes of records kept decoded, want at most 4 MiB", n)
	}
}

// TestAReadGetsWhatTheRecordDecodesTo: a read answered from the cache is
// what decoding the stored record gives — the same as after a restart —
// not the incident as the writer held it (JSON replaces invalid UTF-8 and
// drops an empty list).
func TestAReadGetsWhatTheRecordDecodesTo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitrep.db")
	s := mustOpenStore(t, path)
	inc := mustDeclare(t, s, "x")
	if _, _, err := s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Title, inc.Pins = "bad \xff byte", []string{}
		return inc.AddNote("n", alice, t0)
	}); err != nil {
		t.Fatal(err)
	}
	var warm []*incidents.Incident
	for range 2 { // a miss, then a hit
		got, err := s.Get(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		warm = append(warm, got)
	}
	s.Close()
	cold, err := mustOpenStore(t, path).Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range warm {
		if !reflect.DeepEqual(w, cold) {
			t.Errorf("read %d differs from the read after a restart:\n%+v\n%+v", i+1, w, cold)
		}
	}
}
