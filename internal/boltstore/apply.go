package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// DedupTTL is how long a deduplication key is remembered: longer than any
// webhook sender keeps retrying.
const DedupTTL = 7 * 24 * time.Hour

var bucketDedup = []byte("dedup")

// Apply performs a Write in one transaction: the dedup check, finding or
// creating the incident, the change, its events and the dedup key.
func (s *Store) Apply(ctx context.Context, w incidents.Write) (incidents.Result, error) {
	if err := ctx.Err(); err != nil {
		return incidents.Result{}, err
	}
	if w.Probe {
		if res, done, err := s.probe(w); done || err != nil {
			return res, err
		}
	}
	var res incidents.Result
	var refused error // found before anything was written
	wrote := false
	// Alone, a write commits at once; when other writes are in flight (a
	// webhook storm), they commit together in one fsynced transaction. A
	// duplicate, a change that changes nothing and an unknown incident are
	// errNothingWritten, so the group neither rolls back nor runs again for
	// them; a group may run this function again for another's failure: it
	// starts afresh.
	err := s.write(func(tx *wtx) error {
		res, refused, wrote = incidents.Result{}, nil, false
		dedup := tx.Bucket(bucketDedup)
		now := time.Now()
		if w.Dedup != "" {
			if seen(dedup, []byte(w.Dedup), now) {
				res.Duplicate = true
				return errNothingWritten
			}
		}
		inc, err := s.target(tx, w)
		if err != nil {
			return err
		}
		switch {
		case inc == nil && w.Create == nil:
			refused = incidents.Errorf(incidents.ENotFound, "no incident is linked to %s %s", w.Link.System, w.Link.Ref)
			return errNothingWritten
		case inc == nil:
			created, events, err := w.Create()
			if err != nil {
				return err
			}
			if err := s.insert(tx, created, events); err != nil {
				return err
			}
			res.Incident, res.Events, res.Created, wrote = created, events, true, true
			if w.Change != nil { // the new incident takes the change too (its first alerts)
				more, err := s.modify(tx, created, w.Change)
				if err != nil {
					return err
				}
				res.Events = append(res.Events, more...)
			}
		default:
			res.Incident = inc
			if w.Change != nil {
				if res.Events, err = s.modify(tx, inc, w.Change); err != nil {
					return err
				}
				wrote = len(res.Events) > 0
			}
		}
		if w.Dedup != "" {
			wrote = true
			return remember(dedup, []byte(w.Dedup), now.Add(DedupTTL))
		}
		if !wrote {
			return errNothingWritten
		}
		return nil
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return incidents.Result{}, err
	}
	return res, nil
}

// errProbeWrite is a memo write during a probe: the change changes
// something, so it goes to the write path.
var errProbeWrite = errors.New("the probe would write")

// probe runs a write in a read transaction and answers it when it would
// write nothing: a duplicate, or a change with no events. Reads run
// concurrently, so the repeats of a storm do not queue behind the writes
// that change something. done is false when the write path must run.
func (s *Store) probe(w incidents.Write) (res incidents.Result, done bool, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		tx := s.directTx(btx)
		if w.Dedup != "" && seen(tx.Bucket(bucketDedup), []byte(w.Dedup), time.Now()) {
			res, done = incidents.Result{Duplicate: true}, true
			return nil
		}
		inc, err := s.target(tx, w)
		if err != nil || inc == nil || w.Change == nil {
			return err
		}
		events, err := w.Change(inc, &memo{tx: btx, id: inc.ID, readOnly: true})
		if err == nil && len(events) == 0 {
			res, done = incidents.Result{Incident: inc}, true
		}
		return nil // a failing change fails in the write path, where it counts
	})
	if errors.Is(err, errUnreadableRecord) {
		return incidents.Result{}, false, nil // the write path says so
	}
	return res, done, err
}

// target finds the incident a write is about, or nil.
func (s *Store) target(tx *wtx, w incidents.Write) (*incidents.Incident, error) {
	id := w.ID
	if id == 0 {
		v := tx.Bucket(bucketIndex).Bucket(indexLink).Get(linkKey(w.Link.System, w.Link.Ref))
		if v == nil {
			return nil, nil
		}
		var err error
		if id, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return nil, err
		}
	}
	inc, err := tx.incident(id)
	if err != nil {
		return nil, err
	}
	if w.ID == 0 && w.OpenOnly && !inc.Open() {
		return nil, nil
	}
	return inc, nil
}

// seen reports whether dedup holds key unexpired at now.
func seen(dedup *bolt.Bucket, key []byte, now time.Time) bool {
	v := dedup.Get(key)
	return len(v) == 8 && now.Unix() < int64(binary.BigEndian.Uint64(v))
}

// remember keeps key in dedup until the given time.
func remember(dedup *bolt.Bucket, key []byte, until time.Time) error {
	return dedup.Put(key, itob(uint64(until.Unix())))
}

// sweepDedup forgets expired dedup keys, a bounded number per transaction
// (the write lock is held briefly), and says how many it forgot.
func (s *Store) sweepDedup(now time.Time) (int, error) {
	forgot := 0
	for {
		var expired [][]byte
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketDedup).Cursor()
			for k, v := c.First(); k != nil && len(expired) < 10000; k, v = c.Next() {
				if len(v) != 8 || now.Unix() >= int64(binary.BigEndian.Uint64(v)) {
					expired = append(expired, append([]byte(nil), k...))
				}
			}
			return nil
		})
		if err != nil || len(expired) == 0 {
			return forgot, err
		}
		err = s.write(func(tx *wtx) error {
			b := tx.Bucket(bucketDedup)
			for _, k := range expired {
				if err := b.Delete(k); err != nil { // collected first: a cursor that deletes as it walks skips keys
					return err
				}
			}
			return nil
		})
		if err != nil {
			return forgot, err
		}
		forgot += len(expired)
	}
}

// SweepDedupEvery forgets expired dedup keys every interval until ctx ends
// (Open sweeps once too): the bucket holds the keys of the last week, not
// every key ever seen, however long Sitrep runs.
func (s *Store) SweepDedupEvery(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.sweepDedup(time.Now()); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}
