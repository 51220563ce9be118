package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The indexes that keep routine work proportional to what needs attention,
// not to history (added within schema 1; built at the first writable open
// of a file that lacks them):
//
//	index/open      id (8 bytes) → severity: the incidents not resolved
//	index/due       next reminder (unix ns, 8 bytes) + id (8 bytes) → "": what RemindDue looks at
//	index/declared  declared at (unix ns) + id → "": a stats window, without the rest of history
//	index/public    id → "": the incidents anything was published of (the status page's)
var (
	indexOpen     = []byte("open")
	indexDue      = []byte("due")
	indexDeclared = []byte("declared")
	indexPublic   = []byte("public")
)

var _ incidents.DueIndex = (*Store)(nil)

// attention is what the open and due indexes hold for an incident.
type attention struct {
	open   bool
	due    time.Time // zero: no reminder pending
	public bool
}

func attentionOf(inc *incidents.Incident) attention {
	a := attention{open: inc.Open(), public: inc.Published()}
	if due, ok := inc.NextReminder(); ok {
		a.due = due
	}
	return a
}

func dueKey(at time.Time, id int64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], uint64(id))
	return k
}

// reattend keeps the open and due indexes in step with an incident.
func reattend(tx *bolt.Tx, id int64, before, after attention, sev incidents.Severity) error {
	idx := tx.Bucket(bucketIndex)
	open, due := idx.Bucket(indexOpen), idx.Bucket(indexDue)
	if open == nil || due == nil {
		return nil // a read-only file that predates them: List and RemindDue scan instead
	}
	key := itob(uint64(id))
	if pub := idx.Bucket(indexPublic); pub != nil && before.public != after.public {
		var err error
		if after.public {
			err = pub.Put(key, []byte{})
		} else {
			err = pub.Delete(key)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case after.open:
		// Only when it changes: an unchanged entry written again would
		// dirty the index's pages in every commit of a storm.
		if v := open.Get(key); len(v) != 1 || v[0] != byte(sev) {
			if err := open.Put(key, []byte{byte(sev)}); err != nil {
				return err
			}
		}
	case before.open:
		if err := open.Delete(key); err != nil {
			return err
		}
	}
	if before.due.Equal(after.due) {
		return nil
	}
	if !before.due.IsZero() {
		if err := due.Delete(dueKey(before.due, id)); err != nil {
			return err
		}
	}
	if !after.due.IsZero() {
		return due.Put(dueKey(after.due, id), []byte{})
	}
	return nil
}

// buildAttention fills the open, due and declared indexes from every
// incident, once.
func buildAttention(tx *bolt.Tx, again bool) error {
	idx := tx.Bucket(bucketIndex)
	if !again && idx.Bucket(indexOpen) != nil && idx.Bucket(indexDue) != nil && idx.Bucket(indexDeclared) != nil && idx.Bucket(indexPublic) != nil {
		return nil
	}
	for _, name := range [][]byte{indexOpen, indexDue, indexDeclared, indexPublic} {
		if idx.Bucket(name) != nil {
			if err := idx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := idx.CreateBucket(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketIncidents).ForEach(func(k, v []byte) error {
		var inc incidents.Incident
		if len(k) != 8 || json.Unmarshal(v, &inc) != nil {
			return nil // unreadable: bot check reports it
		}
		if err := indexDeclaration(tx, &inc); err != nil {
			return err
		}
		return reattend(tx, inc.ID, attention{}, attentionOf(&inc), inc.Severity)
	})
}

// indexDeclaration files a new incident under when it was declared.
func indexDeclaration(tx *bolt.Tx, inc *incidents.Incident) error {
	if b := tx.Bucket(bucketIndex).Bucket(indexDeclared); b != nil {
		return b.Put(dueKey(inc.DeclaredAt, inc.ID), []byte{})
	}
	return nil
}

// listSince is List for a window of declarations through the declared
// index, newest first; false when the file has no index.
func (s *Store) listSince(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, bool, error) {
	return s.listThrough(ctx, f, indexDeclared, dueKey(f.Since, 0), func(k []byte) []byte { return k[8:] })
}

// listThrough is List through an index whose keys name incidents: walked
// newest first, down to the key from (nil: all of it); id is where a key
// holds the incident's id. false when the file has no such index (read-only
// and older).
func (s *Store) listThrough(ctx context.Context, f incidents.Filter, index, from []byte, id func(k []byte) []byte) ([]*incidents.Incident, bool, error) {
	var out []*incidents.Incident
	indexed := true
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIndex).Bucket(index)
		if b == nil {
			indexed = false
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Last(); k != nil && bytes.Compare(k, from) >= 0; k, _ = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			inc, err := getIncident(tx, int64(binary.BigEndian.Uint64(id(k))), nil) // a list would churn the cache of the busy ones
			if err != nil {
				s.unreadable.Add(1)
				continue
			}
			if f.Match(inc) {
				out = append(out, inc)
				if f.Limit > 0 && len(out) >= f.Limit {
					break
				}
			}
		}
		return nil
	})
	return out, indexed, err
}

// Due returns the incidents whose next reminder is due at now, and when the
// next one after now falls due (zero when none is pending): the due index,
// read in order, stops at the first that is not due yet.
func (s *Store) Due(ctx context.Context, now time.Time) (ids []int64, next time.Time, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketIndex).Bucket(indexDue)
		if due == nil {
			return incidents.ErrNoIndex
		}
		c := due.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 16 {
				continue
			}
			at := time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
			if at.After(now) {
				next = at
				break
			}
			ids = append(ids, int64(binary.BigEndian.Uint64(k[8:])))
		}
		return nil
	})
	return ids, next, err
}

// listPublic is List for the published incidents through the public index.
func (s *Store) listPublic(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, bool, error) {
	return s.listThrough(ctx, f, indexPublic, nil, func(k []byte) []byte { return k })
}

// listOpen is List for open incidents through the open index, newest first;
// false when the file has no index (read-only and older).
func (s *Store) listOpen(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, bool, error) {
	return s.listThrough(ctx, f, indexOpen, nil, func(k []byte) []byte { return k })
}
