package incidents

import (
	"context"
	"errors"
	"time"
)

// Store keeps incidents and their timelines durably. A change of state and
// the events that record it are written in one transaction: either both are
// stored or neither.
type Store interface {
	// Create assigns the next id to inc, stores it with its events (setting
	// each event's Incident and Seq) and indexes its channel and links.
	Create(ctx context.Context, inc *Incident, events []Event) error
	// Update loads incident id, calls change on it and stores the result with
	// the returned events in the same transaction. If change returns an error,
	// nothing is written and that error is returned. If it returns no events,
	// nothing is written either.
	Update(ctx context.Context, id int64, change func(*Incident) ([]Event, error)) (*Incident, []Event, error)
	// UpdateAll is Update over several distinct incidents at once (a merge,
	// a link): it loads each of ids, calls change on them in that order and
	// stores every one that got events, all in one transaction. change
	// returns one event list per incident, in the order of ids; an error
	// writes nothing. An incident merged into another of ids in the change
	// (an EventMerged) gives that one its memo entries it lacks: the state of
	// the alerts whose links moved with the merge.
	UpdateAll(ctx context.Context, ids []int64, change func([]*Incident) ([][]Event, error)) ([]*Incident, [][]Event, error)
	// Get returns incident id or an error matching ErrNotFound.
	Get(ctx context.Context, id int64) (*Incident, error)
	// List returns the incidents that pass the filter, newest first.
	List(ctx context.Context, f Filter) ([]*Incident, error)
	// Timeline calls fn for each event of incident id in order, streaming:
	// a timeline is never held in memory whole. fn's error stops the walk.
	Timeline(ctx context.Context, id int64, fn func(Event) error) error
	// ByChannel and ByLink find an incident through its indexes, or return
	// an error matching ErrNotFound.
	ByChannel(ctx context.Context, channel string) (int64, error)
	ByLink(ctx context.Context, system, ref string) (int64, error)
	Applier
}

// DueIndex is a Store that knows, without reading every incident, which
// ones have a reminder due: RemindDue uses it when the store has one.
type DueIndex interface {
	// Due returns the incidents whose next reminder is due at now, and when
	// the next one after now falls due (zero when none), or ErrNoIndex.
	Due(ctx context.Context, now time.Time) ([]int64, time.Time, error)
}

// ErrNoIndex: the store's file has no due index (read-only and older).
var ErrNoIndex = errors.New("no due index")

// Filter selects incidents for List.
type Filter struct {
	All      bool      // include resolved incidents
	Severity Severity  // only this severity, when valid
	Limit    int       // at most this many, when > 0
	Since    time.Time // only those declared at or after it, when set (stats windows)
	Public   bool      // only those anything was published of (the status page), resolved ones too
}

// Match reports whether inc passes the filter.
func (f Filter) Match(inc *Incident) bool {
	if f.Public && !inc.Published() {
		return false
	}
	if !f.All && !f.Public && !inc.Open() {
		return false
	}
	if !f.Since.IsZero() && inc.DeclaredAt.Before(f.Since) {
		return false
	}
	return !f.Severity.Valid() || inc.Severity == f.Severity
}

// Notifier hears about every change after it is durably stored: chat
// adapters post and update messages, metrics count. Notify must not block
// for long; slow work belongs on the notifier's own queue.
type Notifier interface {
	Notify(ctx context.Context, inc *Incident, events []Event)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, inc *Incident, events []Event)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, inc *Incident, events []Event) { f(ctx, inc, events) }

// Write is one atomic change found by id or by an external link, optionally
// deduplicated: the webhooks' path into the store.
type Write struct {
	// Dedup, when set, makes the write happen once: a later write with the
	// same key changes nothing and reports Duplicate.
	Dedup string
	// ID is the incident to change; when 0, the incident linked to Link.
	ID   int64
	Link Link
	// OpenOnly: a resolved incident found by Link does not count, so Create
	// runs instead (a group of alerts firing again after its incident closed).
	OpenOnly bool
	// Create builds a new incident when none is found by Link; when nil, not
	// finding one is an error matching ErrNotFound.
	Create func() (*Incident, []Event, error)
	// Change applies to the incident found — and, after Create, to the new
	// one — with its Memo; nil changes nothing.
	Change func(*Incident, Memo) ([]Event, error)
	// Probe: most writes like this one change nothing (an Alertmanager
	// group re-sent whole). The store may first run Change in a read
	// transaction, concurrently with others, and answer a no-op from it
	// without queueing for the write lock; Change then runs again to write.
	// It must change nothing outside the incident and the memo it is given.
	Probe bool
}

// Link is an external reference to an incident.
type Link struct {
	System, Ref string
}

// Result is what a Write did.
type Result struct {
	Incident  *Incident
	Events    []Event
	Created   bool
	Duplicate bool
}

// Applier is the Store's one-transaction path for Writes.
type Applier interface {
	Apply(ctx context.Context, w Write) (Result, error)
}

// Importer is a store that takes incidents copied from another (bot
// migrate copy): each with its own id and its events with their own seqs,
// indexed as if they had been written here, implying no effects.
type Importer interface {
	Import(ctx context.Context, inc *Incident, events []Event) error
}
