// Package releases is Sitrep's change side: the production guide's
// blue-green, canary and rolling deployments run as a procedure
// (runbooks.LoadProcedures) with sign-offs, a staging checklist, steps
// guarded as runbook steps are, and a watch of the SLIs afterwards whose
// breach declares an incident with the rollback as its first button. A
// release and its timeline are one record in the store; nothing here
// imports an adapter.
package releases

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// State is where a release is.
type State string

// States.
const (
	Started    State = "started"     // signing, ticking and running its steps
	Watching   State = "watching"    // a watched step is done: the SLIs are checked
	Verified   State = "verified"    // every step done and a clean watch: the later checkpoints follow
	Breached   State = "breached"    // the watch found a breach: an incident is declared
	RolledBack State = "rolled-back" // its rollback ran
	Aborted    State = "aborted"
)

// Over reports whether nothing more runs in the release (its later
// checkpoints may still post).
func (s State) Over() bool { return s == RolledBack || s == Aborted }

// Release is one deployment of one service's version.
type Release struct {
	ID        int64             `json:"id"`
	Service   string            `json:"service"`
	Version   string            `json:"version"`
	Procedure string            `json:"procedure"` // the procedure's name (blue-green)
	Strategy  string            `json:"strategy"`
	Params    map[string]string `json:"params"` // what its steps run with, fixed at start
	State     State             `json:"state"`
	StartedBy string            `json:"started_by"`
	StartedAt time.Time         `json:"started_at"`
	EndedAt   time.Time         `json:"ended_at,omitzero"`

	Signoffs  map[string]Mark `json:"signoffs,omitempty"`  // role → who signed, when
	Checklist map[int]Mark    `json:"checklist,omitempty"` // item (0-based) → who ticked it
	Steps     map[int]StepRun `json:"steps,omitempty"`     // step (1-based) → its last run
	Rollback  map[int]StepRun `json:"rollback,omitempty"`

	// Waiting is a kube.wait_rollout being polled.
	Waiting *Wait  `json:"waiting,omitempty"`
	Watch   *Watch `json:"watch,omitempty"`
	// Before is each SLI's value when the release started: the watch
	// compares with it.
	Before map[string]float64 `json:"before,omitempty"`
	// Incident is the one its breach declared; IncidentFrom counts the
	// events recorded before it was (Recorded): the incident is told of
	// those after.
	Incident     int64  `json:"incident,omitempty"`
	IncidentFrom uint64 `json:"incident_from,omitempty"`

	// Proc is the procedure as it was when the release started: an edited
	// or removed file changes nothing of a release under way.
	Proc *runbooks.Runbook `json:"procedure_snapshot,omitempty"`

	Events []Event `json:"events"`
	// Recorded counts the events ever recorded (Events keeps the last
	// maxEvents of them).
	Recorded uint64 `json:"recorded"`
	// Rev counts its changes; a chat header is rendered for one Rev.
	Rev uint64 `json:"rev"`
	// Chat is the adapter's: where the header is and which Rev it shows.
	Chat map[string]string `json:"chat,omitempty"`
}

// Mark is who did something, and when.
type Mark struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// StepRun is how a step's last run went.
type StepRun struct {
	Outcome string    `json:"outcome"` // a runbooks.Outcome, or "done" for a manual step
	Summary string    `json:"summary"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	// Acted: a confirmed change was attempted (it may have failed half way,
	// a weight that grew one side): the release counts as having changed
	// the cluster.
	Acted bool `json:"acted,omitempty"`
}

// Done reports whether the run finished the step.
func (s StepRun) Done() bool {
	return s.Outcome == "ok" || s.Outcome == "confirmed" || s.Outcome == "skipped" || s.Outcome == "done"
}

// Wait is a rollout being waited for.
type Wait struct {
	Step     int       `json:"step"`
	Rollback bool      `json:"rollback,omitempty"`
	By       string    `json:"by"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	Next     time.Time `json:"next"`
	Last     string    `json:"last,omitempty"` // the last progress read
}

// Watch is the SLI watch after a watched step.
type Watch struct {
	Step        int           `json:"step"` // the step that started it
	Started     time.Time     `json:"started"`
	Until       time.Time     `json:"until"`
	Next        time.Time     `json:"next"`
	Every       time.Duration `json:"every"`
	Span        time.Duration `json:"span"` // the window's length (an unread window is extended by it)
	Checks      []Check       `json:"checks,omitempty"`
	Checkpoints []time.Time   `json:"checkpoints,omitempty"` // still to post, in order
	Clean       bool          `json:"clean,omitempty"`       // the window ended with no breach
}

// Check is one look at the SLIs.
type Check struct {
	At      time.Time `json:"at"`
	Breach  string    `json:"breach,omitempty"` // what breached, "" when none
	Summary string    `json:"summary"`
	// Unread are the SLIs it could not read (Prometheus down, no data): a
	// check with any is no evidence of health.
	Unread []string `json:"unread,omitempty"`
}

// Event is one line of a release's timeline.
type Event struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Actor string    `json:"actor,omitempty"`
	Text  string    `json:"text"`
}

// Event kinds.
const (
	EvStarted    = "started"
	EvSigned     = "signed"
	EvTicked     = "ticked"
	EvStep       = "step"
	EvRollout    = "rollout"
	EvWatch      = "watch"
	EvCheck      = "check"
	EvBreach     = "breach"
	EvVerified   = "verified"
	EvCheckpoint = "checkpoint"
	EvRollback   = "rollback"
	EvAborted    = "aborted"
)

// maxEvents bounds a release's timeline: a watch every 2 minutes for an
// hour is 30 checks; a later one beyond this is summarised by the last.
const maxEvents = 500

// Key is the release's reference: REL-3.
func (r *Release) Key() string { return Key(r.ID) }

// Key is release id's reference: REL-3.
func Key(id int64) string { return "REL-" + strconv.FormatInt(id, 10) }

// record appends an event and counts the change.
func (r *Release) record(at time.Time, kind, actor, format string, args ...any) {
	ev := Event{At: at.UTC(), Kind: kind, Actor: actor, Text: fmt.Sprintf(format, args...)}
	if len(r.Events) >= maxEvents {
		r.Events = append(r.Events[1:maxEvents:maxEvents], ev) // the oldest goes
	} else {
		r.Events = append(r.Events, ev)
	}
	r.Recorded++
	r.Rev++
}

// After returns the events recorded after the first n (n counted as
// Recorded counts them), as many of them as the timeline still keeps: what
// a reader who had seen n has not.
func (r *Release) After(n uint64) []Event {
	fresh := min(r.Recorded-min(n, r.Recorded), uint64(len(r.Events)))
	return r.Events[len(r.Events)-int(fresh):]
}

// ParseKey reads REL-3 or 3.
func ParseKey(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "REL-"), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a release: give REL-3 or 3", s)
	}
	return n, nil
}

// Store keeps releases. Each release is one record with its timeline:
// Update runs change on it and stores the result in one transaction.
type Store interface {
	// CreateRelease assigns the next ID and stores r, in one transaction
	// with the check that no other release of its service is in progress
	// (a *BusyError naming it).
	CreateRelease(ctx context.Context, r *Release) error
	UpdateRelease(ctx context.Context, id int64, change func(*Release) error) (*Release, error)
	GetRelease(ctx context.Context, id int64) (*Release, error)
	// ListReleases returns releases newest first: all of them, or (active)
	// only those not over or with a checkpoint still to post.
	ListReleases(ctx context.Context, f Filter) ([]*Release, error)
}

// Filter selects releases.
type Filter struct {
	Active  bool      // only those with anything left to do (steps, waits, watches, checkpoints)
	Service string    // only this service's
	Since   time.Time // only those started at or after it
	Limit   int
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Release) bool {
	if f.Active && !r.Active() {
		return false
	}
	if f.Service != "" && r.Service != f.Service {
		return false
	}
	return f.Since.IsZero() || !r.StartedAt.Before(f.Since)
}

// InProgress reports whether r is under way: another release of its
// service waits until it is verified, rolled back or aborted.
func (r *Release) InProgress() bool {
	return r.State == Started || r.State == Watching || r.State == Breached
}

// Active reports whether anything is left to do or watch in r: steps,
// a rollout, a watch, a breach to roll back, a checkpoint to post.
func (r *Release) Active() bool {
	switch r.State {
	case Started, Watching, Breached:
		return true
	}
	return r.Waiting != nil || (r.Watch != nil && len(r.Watch.Checkpoints) > 0)
}

// Notifier hears of every stored change of a release (a terminal prints its
// new events; a chat adapter edits its header).
type Notifier interface {
	NotifyRelease(ctx context.Context, r *Release)
}

// BusyError is CreateRelease's refusal: Other, of the same service, is in
// progress.
type BusyError struct{ Other *Release }

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is already releasing %s %s (%s): finish, roll back or abort it first", e.Other.Key(), e.Other.Service, e.Other.Version, e.Other.State)
}

// ErrNotFound: no such release.
var ErrNotFound = errors.New("no such release")

// ErrUnchanged is what a change returns to write nothing (a store writes
// nothing for it and returns the release as it was, with no error).
var ErrUnchanged = errors.New("unchanged")

// Refusal is a request refused for a reason the asker can act on.
type Refusal struct{ msg string }

func (r *Refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &Refusal{fmt.Sprintf(format, args...)} }

// IsRefusal reports whether err is a Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Unsigned are the roles of roles still to sign.
func (r *Release) Unsigned(roles []string) []string {
	var out []string
	for _, role := range roles {
		if _, ok := r.Signoffs[role]; !ok {
			out = append(out, role)
		}
	}
	return out
}

// Unticked are the checklist items (0-based) not ticked yet.
func (r *Release) Unticked(items []string) []int {
	var out []int
	for i := range items {
		if _, ok := r.Checklist[i]; !ok {
			out = append(out, i)
		}
	}
	return out
}

// People are everyone who did something in the release: the incident a
// breach declares invites them.
func (r *Release) People() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && !seen[p] && (strings.HasPrefix(p, "@") || strings.HasPrefix(p, "<@")) { // people, not "sitrep"
			seen[p] = true
			out = append(out, p)
		}
	}
	add(r.StartedBy)
	for _, role := range slices.Sorted(maps.Keys(r.Signoffs)) {
		add(r.Signoffs[role].By)
	}
	for _, n := range slices.Sorted(maps.Keys(r.Steps)) {
		add(r.Steps[n].By)
	}
	return out
}
