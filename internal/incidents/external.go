package incidents

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Transitions driven by outside systems: PagerDuty and Alertmanager.

// Unacknowledge restarts the acknowledgement clock (PagerDuty's ack timeout
// ran out). An unacknowledged incident changes nothing.
func (inc *Incident) Unacknowledge(by Actor, at time.Time) ([]Event, error) {
	if !inc.Open() || !inc.Acked() {
		return nil, nil
	}
	ev := inc.event(EventUnacknowledged, by, at)
	ev.From = inc.AckedBy
	ev.Message = "acknowledgement withdrawn; respond within " + inc.Severity.ResponseTime().String()
	inc.AckedAt, inc.AckedBy, inc.AckClock, inc.Reminders = time.Time{}, "", at, 0
	inc.touch(at)
	return []Event{ev}, nil
}

// Record adds an informational event that changes no state (escalations,
// sync results).
func (inc *Incident) Record(kind EventKind, message string, fields map[string]string, by Actor, at time.Time) ([]Event, error) {
	ev := inc.event(kind, by, at)
	ev.Message, ev.Fields = message, fields
	inc.touch(at)
	return []Event{ev}, nil
}

// maxNoteHashes bounds the remembered notes.
const maxNoteHashes = 100

// noteHash is a note's fingerprint: the first 8 bytes of the SHA-256 of
// its text as stored (trimmed, cut to MaxStored).
func noteHash(text string) uint64 {
	sum := sha256.Sum256([]byte(text))
	return binary.BigEndian.Uint64(sum[:8])
}

// storedNote is a note's text as AddNote keeps it: trimmed, and cut to
// MaxStored (renderers cut it for display).
func storedNote(text string) string { return Cut(strings.TrimSpace(text), MaxStored) }

// rememberNote adds a note's fingerprint, forgetting the oldest past
// maxNoteHashes. It never changes a fingerprint in place: clones share the
// slice (Clone).
func (inc *Incident) rememberNote(h uint64) {
	if n := len(inc.NoteHashes); n >= maxNoteHashes { // the newest maxNoteHashes-1 and this one, in a slice of its own
		inc.NoteHashes = append(append(make(Fingerprints, 0, maxNoteHashes), inc.NoteHashes[n-maxNoteHashes+1:]...), h)
		return
	}
	inc.NoteHashes = append(inc.NoteHashes, h)
}

// HasNote reports whether a note with this text was added recently.
func (inc *Incident) HasNote(text string) bool {
	return slices.Contains(inc.NoteHashes, noteHash(storedNote(text)))
}

// AddNoteOnce adds a note that comes from an outside system unless it is
// empty or one of the recent notes (the echo of one Sitrep sent, or a
// retry): then it changes nothing.
func (inc *Incident) AddNoteOnce(text string, by Actor, at time.Time) ([]Event, error) {
	text = storedNote(text)
	if text == "" {
		return nil, nil
	}
	h := noteHash(text)
	if slices.Contains(inc.NoteHashes, h) {
		return nil, nil
	}
	return inc.addNote(text, h, by, at), nil
}

// Fingerprints are note fingerprints, stored as the 16 hex digits of each
// (as they were when they were strings: old records read the same).
type Fingerprints []uint64

// MarshalJSON writes the fingerprints as hex strings.
func (f Fingerprints) MarshalJSON() ([]byte, error) {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 2+len(f)*19)
	b = append(b, '[')
	for i, h := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for shift := 60; shift >= 0; shift -= 4 {
			b = append(b, digits[h>>shift&0xf])
		}
		b = append(b, '"')
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads hex strings. One that is not a fingerprint is
// skipped: forgetting it costs at most a note seen twice, where failing
// would make the whole incident unreadable.
func (f *Fingerprints) UnmarshalJSON(b []byte) error {
	if out, ok := scanFingerprints(b); ok {
		*f = out
		return nil
	}
	var hexes []string // the general case: escapes, odd spacing, errors
	if err := json.Unmarshal(b, &hexes); err != nil {
		return err
	}
	var out Fingerprints // a slice of its own: the old one may be a clone's too
	if hexes != nil {
		out = make(Fingerprints, 0, len(hexes))
	}
	for _, s := range hexes {
		if h, err := strconv.ParseUint(s, 16, 64); err == nil && len(s) == 16 {
			out = append(out, h)
		}
	}
	*f = out
	return nil
}

// scanFingerprints reads a list of fingerprints as MarshalJSON writes it,
// without a string per fingerprint (a record is decoded at the first write
// of every group commit). ok is false for anything else.
func scanFingerprints(b []byte) (out Fingerprints, ok bool) {
	if string(b) == "null" {
		return nil, true
	}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, false
	}
	out = make(Fingerprints, 0, len(b)/19)
	for rest := b[1 : len(b)-1]; len(rest) > 0; {
		if len(rest) < 18 || rest[0] != '"' || rest[17] != '"' || (len(rest) > 18 && rest[18] != ',') || len(rest) == 19 { // 19: a trailing comma
			return nil, false
		}
		var h uint64
		for _, c := range rest[1:17] {
			switch {
			case '0' <= c && c <= '9':
				h = h<<4 | uint64(c-'0')
			case 'a' <= c && c <= 'f':
				h = h<<4 | uint64(c-'a'+10)
			default:
				return nil, false
			}
		}
		out = append(out, h)
		rest = rest[min(len(rest), 19):]
	}
	return out, true
}

// Alert is one alert's state as a webhook reports it.
type Alert struct {
	Fingerprint string
	Name        string
	Status      string // firing or resolved
	StartsAt    time.Time
	Summary     string
	URL         string
	// Detail is what tells this alert from the others of its group: the
	// labels it does not share with them ("instance=10.0.0.7").
	Detail string
}

// Memo is per-incident state kept beside the incident and written in the
// same transaction as a change: facts that grow without bound, such as each
// alert's last state in an alert storm.
type Memo interface {
	Get(key string) string
	Set(key, value string) error
}

// AlertSeen reports whether memo holds this state of the alert already:
// ObserveAlert would add nothing. A storm's repeats are told apart with it
// before the alert's details are put together.
func AlertSeen(fingerprint, status string, startsAt time.Time, memo Memo) bool {
	return memo.Get(alertKey(fingerprint)) == alertState(status, startsAt)
}

func alertKey(fingerprint string) string { return "alert/" + fingerprint }

func alertState(status string, startsAt time.Time) string {
	return status + "@" + startsAt.UTC().Format(time.RFC3339)
}

// ObserveAlert records an alert's state once: the same state reported again
// (Alertmanager repeats the whole group) adds nothing.
func (inc *Incident) ObserveAlert(a Alert, memo Memo, by Actor, at time.Time) ([]Event, error) {
	key := alertKey(a.Fingerprint)
	state := alertState(a.Status, a.StartsAt)
	prev := memo.Get(key)
	if prev == state {
		return nil, nil
	}
	if err := memo.Set(key, state); err != nil {
		return nil, err
	}
	wasFiring, isFiring := strings.HasPrefix(prev, "firing@"), a.Status == "firing"
	switch {
	case isFiring && !wasFiring:
		inc.Firing++
	case !isFiring && wasFiring:
		inc.Firing--
	}
	ev := inc.event(EventAlert, by, at)
	ev.To = a.Status
	ev.Message = fmt.Sprintf("%s %s", a.Name, a.Status)
	if a.Detail != "" {
		ev.Message += " (" + a.Detail + ")"
	}
	if a.Summary != "" {
		ev.Message += ": " + a.Summary
	}
	ev.Fields = map[string]string{"fingerprint": a.Fingerprint, "alertname": a.Name, "starts_at": a.StartsAt.UTC().Format(time.RFC3339)}
	if a.URL != "" {
		ev.Fields["url"] = a.URL
	}
	inc.touch(at)
	return []Event{ev}, nil
}

// AlertsFiring counts the alerts last seen firing.
func (inc *Incident) AlertsFiring() int { return inc.Firing }
