package incidents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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

func noteHash(text string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(text)))
	return hex.EncodeToString(sum[:8])
}

// rememberNote adds a note's fingerprint, forgetting the oldest past
// maxNoteHashes. It never changes a fingerprint in place: clones share the
// slice (Clone).
func (inc *Incident) rememberNote(text string) {
	h := noteHash(text)
	if n := len(inc.NoteHashes); n >= maxNoteHashes { // the newest maxNoteHashes-1 and this one, in a slice of its own
		inc.NoteHashes = append(append(make([]string, 0, maxNoteHashes), inc.NoteHashes[n-maxNoteHashes+1:]...), h)
		return
	}
	inc.NoteHashes = append(inc.NoteHashes, h)
}

// HasNote reports whether a note with this text was added recently.
func (inc *Incident) HasNote(text string) bool {
	return slices.Contains(inc.NoteHashes, noteHash(text))
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
