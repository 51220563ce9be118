package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The outbox: outbox/<consumer>/<incident 8B><seq 8B> → Effect JSON, written
// in the same transaction as the events that imply it.
var bucketOutbox = []byte("outbox")

var _ incidents.Outbox = (*Store)(nil)

func effectKey(id int64, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(id))
	binary.BigEndian.PutUint64(k[8:], seq)
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
	for _, sub := range s.subs {
		var b *bolt.Bucket
		bucket := func() (*bolt.Bucket, error) {
			if b == nil {
				var err error
				b, err = top.CreateBucketIfNotExists([]byte(sub.Consumer))
				return b, err
			}
			return b, nil
		}
		changed := false
		for i := range events {
			ev := &events[i]
			if sub.Events != nil && sub.Events(inc, *ev) {
				b, err := bucket()
				if err != nil {
					return err
				}
				e := incidents.Effect{Event: ev, Created: now}
				if err := putEffect(b, inc.ID, ev.Seq, &e); err != nil {
					return err
				}
			}
			if sub.Changes != nil && sub.Changes(inc, *ev) {
				changed = true
			}
		}
		if changed {
			b, err := bucket()
			if err != nil {
				return err
			}
			e := incidents.Effect{Created: now}
			if v := b.Get(effectKey(inc.ID, incidents.ChangedSeq)); v != nil {
				if err := json.Unmarshal(v, &e); err != nil {
					e = incidents.Effect{Created: now}
				}
			}
			e.Rev++
			if err := putEffect(b, inc.ID, incidents.ChangedSeq, &e); err != nil {
				return err
			}
		}
	}
	s.effectsWritten.Store(true)
	return nil
}

func putEffect(b *bolt.Bucket, id int64, seq uint64, e *incidents.Effect) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode effect: %w", err)
	}
	return b.Put(effectKey(id, seq), v)
}

// signalEffects wakes the consumers after a commit that wrote effects.
func (s *Store) signalEffects() {
	if !s.effectsWritten.Swap(false) {
		return
	}
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
	err := s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketOutbox)
		if top == nil {
			return nil
		}
		b := top.Bucket([]byte(consumer))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 16 {
				return nil
			}
			var e incidents.Effect
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode effect %s/%x: %w", consumer, k, err)
			}
			e.Consumer, e.Incident, e.Seq = consumer, int64(binary.BigEndian.Uint64(k)), binary.BigEndian.Uint64(k[8:])
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func (s *Store) effectBucket(tx *bolt.Tx, consumer string) (*bolt.Bucket, error) {
	top, err := tx.CreateBucketIfNotExists(bucketOutbox)
	if err != nil {
		return nil, err
	}
	return top.CreateBucketIfNotExists([]byte(consumer))
}

// SaveEffect stores e's attempts, schedule and progress. A "changed" effect
// keeps the Rev it has in the store (marks may have come since it was read).
func (s *Store) SaveEffect(ctx context.Context, e incidents.Effect) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := s.effectBucket(tx, e.Consumer)
		if err != nil {
			return err
		}
		key := effectKey(e.Incident, e.Seq)
		v := b.Get(key)
		if v == nil {
			return nil // finished meanwhile
		}
		if e.Changed() {
			var cur incidents.Effect
			if json.Unmarshal(v, &cur) == nil {
				e.Rev = cur.Rev
			}
		}
		return putEffect(b, e.Incident, e.Seq, &e)
	})
}

// FinishEffect removes e, unless it is a "changed" effect marked again since.
func (s *Store) FinishEffect(ctx context.Context, e incidents.Effect) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b, err := s.effectBucket(tx, e.Consumer)
		if err != nil {
			return err
		}
		key := effectKey(e.Incident, e.Seq)
		if e.Changed() {
			var cur incidents.Effect
			if v := b.Get(key); v != nil && json.Unmarshal(v, &cur) == nil && cur.Rev != e.Rev {
				// marked again while it ran: run once more, from now
				cur.Attempts, cur.NotBefore, cur.LastError = 0, time.Time{}, ""
				return putEffect(b, e.Incident, e.Seq, &cur)
			}
		}
		return b.Delete(key)
	})
}

// AddEffect queues e unless an effect with its key is pending.
func (s *Store) AddEffect(ctx context.Context, e incidents.Effect) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := s.effectBucket(tx, e.Consumer)
		if err != nil {
			return err
		}
		if b.Get(effectKey(e.Incident, e.Seq)) != nil {
			return nil
		}
		if e.Created.IsZero() {
			e.Created = time.Now().UTC()
		}
		s.effectsWritten.Store(true)
		return putEffect(b, e.Incident, e.Seq, &e)
	})
	s.signalEffects()
	return err
}
