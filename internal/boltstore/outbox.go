package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The outbox: one bucket, outbox → <consumer> 0x00 <incident 8B> <seq 8B> →
// Effect JSON, written in the same transaction as the events that imply it.
// One bucket for every consumer keeps a change's effects on one leaf page.
var bucketOutbox = []byte("outbox")

var _ incidents.Outbox = (*Store)(nil)

func effectKey(consumer string, id int64, seq uint64) []byte {
	k := make([]byte, len(consumer)+17)
	n := copy(k, consumer)
	binary.BigEndian.PutUint64(k[n+1:], uint64(id))
	binary.BigEndian.PutUint64(k[n+9:], seq)
	return k
}

// queueEffects writes the effects that events imply for every subscription.
func (s *Store) queueEffects(tx *bolt.Tx, inc *incidents.Incident, events []incidents.Event) error {
	if len(s.subs) == 0 || len(events) == 0 {
		return nil
	}
	top, err := tx.CreateBucketIfNotExists(bucketOutbox)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	wrote := false
	for _, sub := range s.subs {
		changed := false
		for i := range events {
			ev := &events[i]
			if sub.Events != nil && sub.Events(inc, *ev) {
				e := incidents.Effect{Kind: ev.Kind, Created: now}
				if err := putEffect(top, effectKey(sub.Consumer, inc.ID, ev.Seq), &e); err != nil {
					return err
				}
				wrote = true
			}
			if sub.Changes != nil && sub.Changes(inc, *ev) {
				changed = true
			}
		}
		if changed {
			key := effectKey(sub.Consumer, inc.ID, incidents.ChangedSeq)
			e := incidents.Effect{Created: now}
			if v := top.Get(key); v != nil {
				if err := json.Unmarshal(v, &e); err != nil {
					e = incidents.Effect{Created: now}
				}
			}
			e.Rev++
			if err := putEffect(top, key, &e); err != nil {
				return err
			}
			wrote = true
		}
	}
	if wrote {
		// Woken only once this transaction is durable, and only when it wrote
		// effects: an alert storm's alert events imply none, and must not make
		// every runner re-read its backlog on each commit.
		tx.OnCommit(s.signalEffects)
	}
	return nil
}

func putEffect(b *bolt.Bucket, key []byte, e *incidents.Effect) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode effect: %w", err)
	}
	return b.Put(key, v)
}

// signalEffects wakes the consumers after a commit that wrote effects.
func (s *Store) signalEffects() {
	s.outboxMu.Lock()
	close(s.outboxCh)
	s.outboxCh = make(chan struct{})
	s.outboxMu.Unlock()
}

// OutboxChanged returns a channel closed at the next write of an effect.
func (s *Store) OutboxChanged() <-chan struct{} {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	return s.outboxCh
}

// Pending returns consumer's effects by incident, then seq.
func (s *Store) Pending(ctx context.Context, consumer string) ([]incidents.Effect, error) {
	var out []incidents.Effect
	prefix := append([]byte(consumer), 0)
	err := s.view(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketOutbox)
		if top == nil {
			return nil
		}
		c := top.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			if len(rest) != 16 {
				continue
			}
			var e incidents.Effect
			if err := json.Unmarshal(v, &e); err != nil {
				continue // undecodable: skipped, so it cannot stall every other incident
			}
			e.Consumer, e.Incident, e.Seq = consumer, int64(binary.BigEndian.Uint64(rest)), binary.BigEndian.Uint64(rest[8:])
			if e.Seq < incidents.AdapterSeq {
				ev, err := timelineEvent(tx, e.Incident, e.Seq)
				if err != nil {
					e.Kind = "" // its event is unreadable: the consumer sees an effect it does not know, and drops it
				}
				e.Event = ev
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// SaveEffect stores e's attempts, schedule and progress. A "changed" effect
// keeps the Rev it has in the store (marks may have come since it was read).
func (s *Store) SaveEffect(ctx context.Context, e incidents.Effect) error {
	return s.write(func(tx *wtx) error {
		top, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		key := effectKey(e.Consumer, e.Incident, e.Seq)
		v := top.Get(key)
		if v == nil {
			return nil // finished meanwhile
		}
		save := e
		if e.Changed() {
			var cur incidents.Effect
			if json.Unmarshal(v, &cur) == nil {
				save.Rev = cur.Rev
			}
		}
		return putEffect(top, key, &save)
	})
}

// FinishEffect removes e, unless it is a "changed" effect marked again since.
func (s *Store) FinishEffect(ctx context.Context, e incidents.Effect) error {
	return s.write(func(tx *wtx) error {
		top, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		key := effectKey(e.Consumer, e.Incident, e.Seq)
		if e.Changed() {
			var cur incidents.Effect
			if v := top.Get(key); v != nil && json.Unmarshal(v, &cur) == nil && cur.Rev != e.Rev {
				// marked again while it ran: run once more, from now
				cur.Attempts, cur.NotBefore, cur.LastError = 0, time.Time{}, ""
				return putEffect(top, key, &cur)
			}
		}
		return top.Delete(key)
	})
}

// AddEffect queues e unless an effect with its key is pending.
func (s *Store) AddEffect(ctx context.Context, e incidents.Effect) error {
	err := s.write(func(tx *wtx) error {
		top, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		key := effectKey(e.Consumer, e.Incident, e.Seq)
		if top.Get(key) != nil {
			return nil
		}
		if e.Created.IsZero() {
			e.Created = time.Now().UTC()
		}
		tx.OnCommit(s.signalEffects)
		return putEffect(top, key, &e)
	})
	return err
}

// timelineEvent reads one stored event.
func timelineEvent(tx *bolt.Tx, id int64, seq uint64) (*incidents.Event, error) {
	tl := tx.Bucket(bucketTimelines).Bucket(itob(uint64(id)))
	if tl == nil {
		return nil, fmt.Errorf("no timeline")
	}
	v := tl.Get(itob(seq))
	if v == nil {
		return nil, fmt.Errorf("no event %d", seq)
	}
	var ev incidents.Event
	if err := json.Unmarshal(v, &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &ev, nil
}
