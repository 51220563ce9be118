package incidents

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appendOnly are the fields a clone shares with its incident: nothing
// changes their elements in place, and the shared slice is clipped, so an
// append on either side copies (TestNotesOfAClone).
var appendOnly = map[string]bool{"NoteHashes": true}

// TestCloneSharesNothing fills every slice and map field of an Incident and
// checks that its clone holds its own copy, so a field added later without
// a line in Clone fails here.
func TestCloneSharesNothing(t *testing.T) {
	var inc Incident
	v := reflect.ValueOf(&inc).Elem()
	for i := range v.NumField() {
		f, field := v.Field(i), v.Type().Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 2)) // room to append in place: a shared slice must come clipped
			if !flat(f.Type().Elem()) {
				t.Errorf("%s: its elements hold references; Clone must copy them deeply", field.Name)
			}
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
			f.SetMapIndex(reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem())
		case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("%s: a %s field; Clone must copy it", field.Name, f.Kind())
		}
	}
	c := reflect.ValueOf(inc.Clone()).Elem()
	if !reflect.DeepEqual(c.Interface(), inc) {
		t.Fatalf("the clone differs:\n%+v\n%+v", c.Interface(), inc)
	}
	for i := range v.NumField() {
		f, g := v.Field(i), c.Field(i)
		name := v.Type().Field(i).Name
		switch {
		case appendOnly[name]:
			if g.Cap() != g.Len() {
				t.Errorf("%s: the clone's shared slice has room to append in place", name)
			}
		case (f.Kind() == reflect.Slice || f.Kind() == reflect.Map) && f.UnsafePointer() == g.UnsafePointer():
			t.Errorf("%s is shared between the incident and its clone", name)
		}
	}
}

// flat reports whether a value of type t holds no references (a struct of
// strings, numbers and times).
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return false
	case reflect.Struct:
		if t.PkgPath() == "time" && t.Name() == "Time" {
			return true // its location pointer is shared by design
		}
		for i := range t.NumField() {
			if !flat(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}

// TestNotesOfAClone: an incident and its clone share their note
// fingerprints until either adds a note; then each remembers its own, and
// never more than maxNoteHashes, the oldest forgotten first.
func TestNotesOfAClone(t *testing.T) {
	inc := &Incident{}
	for i := range maxNoteHashes + 5 {
		if _, err := inc.AddNote(fmt.Sprint("note ", i), Actor{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(inc.NoteHashes) != maxNoteHashes || inc.HasNote("note 4") || !inc.HasNote("note 5") || !inc.HasNote(fmt.Sprint("note ", maxNoteHashes+4)) {
		t.Fatalf("%d fingerprints; note 4 forgotten, note 5 and the last remembered?", len(inc.NoteHashes))
	}
	// At the bound, a clone's note must not shift the fingerprints it shares.
	full := inc.Clone()
	full.AddNote("past the bound", Actor{}, time.Time{})
	if !inc.HasNote("note 5") || inc.HasNote("past the bound") || full.HasNote("note 5") || !full.HasNote("past the bound") {
		t.Fatal("a note added to a clone at the bound changed the incident's fingerprints")
	}
	inc.NoteHashes = inc.NoteHashes[: len(inc.NoteHashes)-1 : len(inc.NoteHashes)] // room to append in place, as a decoded slice may have
	a, b := inc.Clone(), inc.Clone()
	a.AddNote("only a", Actor{}, time.Time{})
	b.AddNote("only b", Actor{}, time.Time{})
	inc.AddNote("only the original", Actor{}, time.Time{})
	for _, c := range []struct {
		name string
		inc  *Incident
		has  string
	}{{"a", a, "only a"}, {"b", b, "only b"}, {"the original", inc, "only the original"}} {
		for _, text := range []string{"only a", "only b", "only the original"} {
			if c.inc.HasNote(text) != (text == c.has) {
				t.Errorf("%s: HasNote(%q) = %v", c.name, text, !(text == c.has))
			}
		}
		if len(c.inc.NoteHashes) > maxNoteHashes {
			t.Errorf("%s: %d fingerprints", c.name, len(c.inc.NoteHashes))
		}
	}
}

// TestNoteFingerprintsStoredAsBefore: a record written when fingerprints
// were strings (the first 16 hex digits of the note's SHA-256) reads back
// with its notes remembered, writes back byte for byte, and one that is
// not a fingerprint is skipped rather than making the record unreadable.
func TestNoteFingerprintsStoredAsBefore(t *testing.T) {
	old := `{"note_hashes":["0430fe09f969b826","70420e8b4ed6c9a4"]}` // sha256("an old note"), sha256("Running KILL")
	var inc Incident
	if err := json.Unmarshal([]byte(old), &inc); err != nil {
		t.Fatal(err)
	}
	if !inc.HasNote("an old note") || !inc.HasNote("  Running KILL\n") || inc.HasNote("another") {
		t.Fatalf("fingerprints read as %x", inc.NoteHashes)
	}
	var back struct {
		NoteHashes Fingerprints `json:"note_hashes"`
	}
	back.NoteHashes = inc.NoteHashes
	if b, _ := json.Marshal(back); string(b) != old {
		t.Errorf("written back as %s", b)
	}
	if err := json.Unmarshal([]byte(`{"note_hashes":["0430fe09f969b826","not hex","70420e8b4ed6c9a4ff",""]}`), &inc); err != nil || len(inc.NoteHashes) != 1 {
		t.Errorf("a record with bad fingerprints: %v, %x", err, inc.NoteHashes)
	}
	var direct Fingerprints // called directly, not through a decoder that checked the JSON first
	if err := direct.UnmarshalJSON([]byte(`["0430fe09f969b826",]`)); err == nil {
		t.Errorf("a trailing comma was read as %x", direct)
	}
	if err := json.Unmarshal([]byte(`{"note_hashes":"0430fe09f969b826"}`), &inc); err == nil {
		t.Error("a string where the list belongs was accepted")
	}
}

// TestAddNoteOnce: an outside note already remembered, empty, or long and
// sent again (it is remembered as stored, cut to MaxStored) adds nothing.
func TestAddNoteOnce(t *testing.T) {
	inc := &Incident{}
	long := strings.Repeat("x", MaxStored+10)
	for _, text := range []string{"restarted the pods", long} {
		if evs, err := inc.AddNoteOnce(text, Actor{}, time.Time{}); err != nil || len(evs) != 1 {
			t.Fatalf("first %d-byte note: %v, %d events", len(text), err, len(evs))
		}
		if evs, err := inc.AddNoteOnce(" "+text+"\n", Actor{}, time.Time{}); err != nil || len(evs) != 0 {
			t.Errorf("the %d-byte note again: %v, %d events", len(text), err, len(evs))
		}
	}
	if evs, err := inc.AddNoteOnce(" \n", Actor{}, time.Time{}); err != nil || len(evs) != 0 || len(inc.NoteHashes) != 2 {
		t.Errorf("an empty note: %v, %d events, %d fingerprints", err, len(evs), len(inc.NoteHashes))
	}
	if _, err := inc.AddNote(long, Actor{}, time.Time{}); err != nil || !inc.HasNote(long) {
		t.Errorf("a long note added is not remembered as sent: %v", err)
	}
}

// TestFingerprintsScannedAsDecoded: the scan that reads fingerprints as
// MarshalJSON writes them agrees with the general decoding, and whatever
// it does not read (spaces, escapes, capitals) goes the general way.
func TestFingerprintsScannedAsDecoded(t *testing.T) {
	written := map[string]bool{`null`: true, `[]`: true, `["0430fe09f969b826"]`: true, `["0430fe09f969b826","70420e8b4ed6c9a4"]`: true}
	for _, in := range []string{
		`null`, `[]`, `["0430fe09f969b826"]`, `["0430fe09f969b826","70420e8b4ed6c9a4"]`,
		`[ "0430fe09f969b826" , "70420e8b4ed6c9a4" ]`, `["0430FE09F969B826"]`, `["\u0030430fe09f969b826"]`,
		`["0430fe09f969b82"]`, `["0430fe09f969b826x"]`, `["zz30fe09f969b826"]`,
	} {
		if _, ok := scanFingerprints([]byte(in)); !ok && written[in] {
			t.Errorf("%s, as MarshalJSON writes it, is not scanned", in)
		}
		var got, want Fingerprints
		if err := json.Unmarshal([]byte(`{"note_hashes":`+in+`}`), &struct {
			NoteHashes *Fingerprints `json:"note_hashes"`
		}{&got}); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var hexes []string
		json.Unmarshal([]byte(in), &hexes)
		for _, s := range hexes {
			if h, err := strconv.ParseUint(s, 16, 64); err == nil && len(s) == 16 {
				want = append(want, h)
			}
		}
		if len(got) != len(want) || !slices.Equal(got, want) || (got == nil) != (in == "null") {
			t.Errorf("%s: read as %x, want %x", in, got, want)
		}
	}
}
