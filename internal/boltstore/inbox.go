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

// The inbox: inbox → arrival key (8B) → Envelope JSON; an envelope id is
// remembered in dedup for InboxDedupTTL, so a redelivery acts once.
var bucketInbox = []byte("inbox")

// InboxDedupTTL is how long an envelope id is remembered (Slack redelivers
// an unacknowledged envelope within seconds).
const InboxDedupTTL = time.Hour

var _ incidents.Inbox = (*Store)(nil)

// Receive stores env durably before the caller acknowledges it. Concurrent
// calls share one fsync (a group commit); a redelivered id reports dup and
// writes nothing.
func (s *Store) Receive(ctx context.Context, env incidents.Envelope) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	v, err := json.Marshal(env)
	if err != nil {
		return false, fmt.Errorf("encode envelope: %w", err)
	}
	var dup bool
	dedupKey := []byte("inbox:" + env.Source + ":" + env.ID)
	err = s.write(func(tx *wtx) error {
		dup = false
		now := time.Now()
		dedup := tx.Bucket(bucketDedup)
		if env.ID != "" {
			if seen(dedup, dedupKey, now) {
				dup = true
				return errNothingWritten // reported through dup
			}
			if err := remember(dedup, dedupKey, now.Add(InboxDedupTTL)); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucketIfNotExists(bucketInbox)
		if err != nil {
			return err
		}
		return b.Put(itob(env.Key), v)
	})
	return dup, err
}

// Unprocessed returns source's envelopes in arrival order.
func (s *Store) Unprocessed(ctx context.Context, source string) ([]incidents.Envelope, error) {
	var out []incidents.Envelope
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketInbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var env incidents.Envelope
			if len(k) != 8 || json.Unmarshal(v, &env) != nil {
				return nil // unreadable: skipped (its request cannot be answered anyway)
			}
			if env.Source == source {
				env.Key = binary.BigEndian.Uint64(k)
				out = append(out, env)
			}
			return nil
		})
	})
	return out, err
}

// Processed removes an envelope whose work is done.
func (s *Store) Processed(ctx context.Context, key uint64) error {
	return s.write(func(tx *wtx) error {
		b := tx.Bucket(bucketInbox)
		if b == nil {
			return nil
		}
		return b.Delete(itob(key))
	})
}
