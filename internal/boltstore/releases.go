package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/releases"
)

// Releases live in their own buckets, created at the first release:
//
//	releases              id (8-byte big-endian) → Release JSON (with its timeline); the bucket sequence numbers them
//	index/release-active  id → "": the releases with anything left to do
var (
	bucketReleases = []byte("releases")
	indexActive    = []byte("release-active")
)

var _ releases.Store = (*Store)(nil)

// CreateRelease stores a new release under the next id.
func (s *Store) CreateRelease(ctx context.Context, r *releases.Release) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketReleases)
		if err != nil {
			return err
		}
		if idx := tx.Bucket(bucketIndex).Bucket(indexActive); idx != nil { // one in progress per service, in the same transaction
			if err := idx.ForEach(func(k, _ []byte) error {
				o, err := getRelease(b, int64(binary.BigEndian.Uint64(k)))
				if err == nil && o.Service == r.Service && o.InProgress() {
					return &releases.BusyError{Other: o}
				}
				return err
			}); err != nil {
				return err
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.ID = int64(id)
		return putRelease(tx, b, r)
	})
}

func putRelease(tx *bolt.Tx, b *bolt.Bucket, r *releases.Release) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := b.Put(itob(uint64(r.ID)), v); err != nil {
		return err
	}
	idx, err := tx.Bucket(bucketIndex).CreateBucketIfNotExists(indexActive)
	if err != nil {
		return err
	}
	if r.Active() {
		return idx.Put(itob(uint64(r.ID)), nil)
	}
	return idx.Delete(itob(uint64(r.ID)))
}

// UpdateRelease changes release id in one transaction.
func (s *Store) UpdateRelease(ctx context.Context, id int64, change func(*releases.Release) error) (*releases.Release, error) {
	var out *releases.Release
	var unchanged bool
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		r, err := getRelease(b, id)
		if err != nil {
			return err
		}
		if err := change(r); errors.Is(err, releases.ErrUnchanged) {
			out, unchanged = r, true
			return nil
		} else if err != nil {
			return err
		}
		out = r
		return putRelease(tx, b, r)
	})
	if err != nil {
		return nil, err
	}
	if unchanged {
		return out, releases.ErrUnchanged
	}
	return out, nil
}

func getRelease(b *bolt.Bucket, id int64) (*releases.Release, error) {
	var v []byte
	if b != nil && id > 0 {
		v = b.Get(itob(uint64(id)))
	}
	if v == nil {
		return nil, fmt.Errorf("REL-%d: %w", id, releases.ErrNotFound)
	}
	r := new(releases.Release)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("REL-%d's record: %w", id, err)
	}
	return r, nil
}

// GetRelease returns release id.
func (s *Store) GetRelease(ctx context.Context, id int64) (*releases.Release, error) {
	var r *releases.Release
	err := s.view(func(tx *bolt.Tx) (err error) {
		r, err = getRelease(tx.Bucket(bucketReleases), id)
		return err
	})
	return r, err
}

// ListReleases returns the releases passing f, newest first: the active
// ones through their index; a window stops at the first release older.
func (s *Store) ListReleases(ctx context.Context, f releases.Filter) ([]*releases.Release, error) {
	var out []*releases.Release
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		if b == nil {
			return nil
		}
		var c *bolt.Cursor
		if f.Active {
			idx := tx.Bucket(bucketIndex).Bucket(indexActive)
			if idx == nil {
				return nil
			}
			c = idx.Cursor()
		} else {
			c = b.Cursor()
		}
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			r, err := getRelease(b, int64(binary.BigEndian.Uint64(k)))
			if err != nil {
				return err
			}
			if !f.Since.IsZero() && r.StartedAt.Before(f.Since) {
				break // ids follow start times
			}
			if f.Match(r) {
				out = append(out, r)
			}
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// ImportRelease stores a release copied from another store under its own
// id (bot migrate copy); the next CreateRelease numbers after it.
func (s *Store) ImportRelease(ctx context.Context, r *releases.Release) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketReleases)
		if err != nil {
			return err
		}
		if b.Get(itob(uint64(r.ID))) != nil {
			return fmt.Errorf("%s is already here", r.Key())
		}
		if uint64(r.ID) > b.Sequence() {
			if err := b.SetSequence(uint64(r.ID)); err != nil {
				return err
			}
		}
		return putRelease(tx, b, r)
	})
}
