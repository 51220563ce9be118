package boltstore

import (
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
