package incidents

import (
	"context"
	"time"
)

// What Sitrep must do in the world after a change — open a war room, edit
// its header, call PagerDuty — is an Effect. Effects are written by the
// store in the same transaction as the events that imply them (a
// transactional outbox), so a stored change never loses its effects, and
// each consumer works them off in order per incident, retrying until they
// are done or refused for good.

// Subscription says which stored events imply effects for one consumer.
// Both functions run inside the write transaction: they must be pure and fast.
type Subscription struct {
	Consumer string
	// Events: each matching event is one effect, done in timeline order.
	Events func(inc *Incident, ev Event) bool
	// Changes: any matching event marks the incident changed; the marks
	// coalesce into one effect per incident (render the latest state once),
	// done after the incident's event effects.
	Changes func(inc *Incident, ev Event) bool
}

// ChangedSeq is the Seq of an incident's coalesced "changed" effect: it
// sorts after every event.
const ChangedSeq = ^uint64(0)

// AdapterSeq starts the Seqs of effects an adapter queues itself (AddEffect)
// that no event implies, such as sharing a file a command produced: they
// have no Event, keep what they need in Progress, and sort after the events.
const AdapterSeq = uint64(1) << 62

// Effect is one piece of outside work a stored change implies.
type Effect struct {
	Consumer string `json:"-"`
	Incident int64  `json:"-"`
	// Seq is the implying event's seq, or ChangedSeq for the coalesced mark.
	Seq uint64 `json:"-"`
	// Event is the implying event (nil for the "changed" mark). The store
	// keeps only its kind with the effect and reads the rest from the
	// timeline, so an effect costs its change a few bytes.
	Event *Event    `json:"-"`
	Kind  EventKind `json:"kind,omitempty"`
	// Rev counts the marks a "changed" effect has coalesced; finishing it
	// removes it only when no mark came since it was read.
	Rev       uint64            `json:"rev,omitempty"`
	Created   time.Time         `json:"created"`
	Attempts  int               `json:"attempts,omitempty"`
	NotBefore time.Time         `json:"not_before,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	Progress  map[string]string `json:"progress,omitempty"` // a multi-step effect's done steps, saved as it goes
}

// Changed reports whether e is the coalesced "changed" effect.
func (e *Effect) Changed() bool { return e.Seq == ChangedSeq }

// Outbox is the store's side of effects.
type Outbox interface {
	// Pending returns consumer's effects in order: by incident, then seq.
	Pending(ctx context.Context, consumer string) ([]Effect, error)
	// SaveEffect stores e's attempts, schedule and progress (it stays pending).
	SaveEffect(ctx context.Context, e Effect) error
	// FinishEffect removes e: it is done or refused for good. A "changed"
	// effect marked again since it was read stays, to run once more.
	FinishEffect(ctx context.Context, e Effect) error
	// AddEffect queues an effect no event implied (work found missing at
	// start); an existing one with the same key is kept.
	AddEffect(ctx context.Context, e Effect) error
	// OutboxChanged returns a channel closed at the next write of an effect.
	OutboxChanged() <-chan struct{}
}

// Claimer is an Outbox several processes share (replicas on one database):
// a consumer's effects of one incident are worked by one process at a
// time, the one holding the claim. A runner claims an incident before
// running its effects and skips it when another live process holds it; the
// store refuses a save or finish from a process whose claim was taken over.
// Claim returns the incident's effects as they are once claimed: the runner
// runs those, never a list read before (the previous holder may have done
// some of it meanwhile).
type Claimer interface {
	Claim(ctx context.Context, consumer string, incident int64) ([]Effect, bool, error)
}

// Envelope is one request a chat platform delivered (a slash command, a
// click, an event). It is stored before it is acknowledged, so an
// acknowledged request survives a crash and is processed after restart.
type Envelope struct {
	Key     uint64    `json:"-"`       // arrival order, assigned by the receiver
	Source  string    `json:"source"`  // "slack"
	ID      string    `json:"id"`      // the platform's envelope id (redeliveries repeat it)
	Type    string    `json:"type"`    // the platform's kind of request
	Channel string    `json:"channel"` // where it came from: one channel's requests run in order
	Payload []byte    `json:"payload"`
	At      time.Time `json:"at"`
}

// SharedInbox is an Inbox several processes share: each stores what it
// received, and takes over what a process that died left unprocessed.
type SharedInbox interface {
	// Orphaned takes over source's envelopes whose receiver is no longer
	// alive, and returns them in arrival order.
	Orphaned(ctx context.Context, source string) ([]Envelope, error)
}

// Inbox keeps acknowledged envelopes until they are processed.
type Inbox interface {
	// Receive stores env durably; dup reports an envelope id already
	// received (a redelivery), which is not stored again.
	Receive(ctx context.Context, env Envelope) (dup bool, err error)
	// Unprocessed returns source's stored envelopes in arrival order.
	Unprocessed(ctx context.Context, source string) ([]Envelope, error)
	// Processed removes an envelope whose work is done.
	Processed(ctx context.Context, key uint64) error
}
