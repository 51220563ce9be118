package boltstore

import (
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// SeedEvents appends n copies of ev to incident id's timeline in large
// transactions: benchmarks start from long timelines without waiting for
// n fsyncs.
func SeedEvents(s *Store, id int64, n int, ev incidents.Event) error {
	for n > 0 {
		chunk := min(n, 20000)
		batch := make([]incidents.Event, chunk)
		for i := range batch {
			batch[i] = ev
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return appendEvents(tx, id, batch) }); err != nil {
			return err
		}
		n -= chunk
	}
	return nil
}

// SeedIncidents stores n incidents made by make(i), in large transactions
// (indexes and events as Create does), for benchmarks of a long history.
func SeedIncidents(s *Store, n int, make func(i int) (*incidents.Incident, []incidents.Event)) error {
	for done := 0; done < n; {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for end := min(n, done+5000); done < end; done++ {
				inc, events := make(done)
				if err := s.insert(&wtx{Tx: tx}, inc, events); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// DropAttention removes the open and due indexes, as in a file written
// before they existed.
func DropAttention(s *Store) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketIndex)
		for _, name := range [][]byte{indexOpen, indexDue, indexDeclared} {
			if err := idx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// SweepDedup runs the dedup sweep as of now.
func SweepDedup(s *Store, now time.Time) (int, error) { return s.sweepDedup(now) }

// SeedDedup remembers n dedup keys until the given time, in one transaction.
func SeedDedup(s *Store, n int, until time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			if err := remember(tx.Bucket(bucketDedup), []byte("seed:"+strconv.Itoa(i)), until); err != nil {
				return err
			}
		}
		return nil
	})
}

// DedupLen is the number of dedup keys stored, expired or not.
func DedupLen(s *Store) int {
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketDedup).Stats().KeyN
		return nil
	})
	return n
}

// SetNoSync turns fsync off: only for the child that proves the durability
// check can fail.
func SetNoSync(s *Store, on bool) { s.db.NoSync = on }

// PutRecord stores raw as incident id's record, past the store's decoded
// cache (a change the cache never saw).
func PutRecord(s *Store, id int64, raw []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketIncidents).Put(itob(uint64(id)), raw) })
}

// DecodedLen is how many incidents the decoded cache holds.
func DecodedLen(s *Store) int {
	s.decoded.mu.Lock()
	defer s.decoded.mu.Unlock()
	return len(s.decoded.m)
}

// DecodedBytes is the size of the records the decoded cache holds.
func DecodedBytes(s *Store) int {
	s.decoded.mu.Lock()
	defer s.decoded.mu.Unlock()
	return s.decoded.bytes
}

// PauseCommits makes a group's leader call pause where it would wait for
// the writers of a burst; arrived hears of each writer that queues.
func PauseCommits(s *Store, pause func(arrived <-chan struct{})) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	s.group.pause = pause
}

// Groups is how many groups the store has committed (or rolled back for
// having written nothing); Queued, how many writes wait for the next.
func Groups(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.groups
}

func Queued(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}

// WaitForWriters is the leader's pause during a burst.
var WaitForWriters = waitForWriters
