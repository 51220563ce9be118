// Package boltstore keeps Sitrep's incidents and their timelines in one
// bbolt file: the embedded, serverless implementation of incidents.Store.
//
// Layout (schema version 1):
//
//	meta                  "schema" → "1"; "reminder_policy" → the response times and update cadences index/due was built for
//	incidents             id (8-byte big-endian) → Incident JSON; the bucket sequence numbers incidents
//	timelines/<id>        seq (8-byte big-endian, NextSequence) → Event JSON, append only
//	index/channel         chat channel → id
//	index/link            "system\x00ref" (e.g. PagerDuty incident id) → id
//	dedup                 webhook event key → expiry (unix seconds, 8-byte big-endian)
//	index/open            id → severity: the incidents not resolved
//	index/due             next reminder (unix ns) + id → "": what is due, in order
//	index/declared        declared at (unix ns) + id → "": stats windows
//	memos/<id>            an incident's Memo: state that grows without bound (each alert's last state)
//	outbox/<consumer>     incident id + event seq (8+8 bytes) → Effect JSON: outside work a change implies
//	inbox                 arrival key → an acknowledged chat envelope not yet processed
//	releases              id → Release JSON with its timeline (releases.go); index/release-active: the ones with work left
//
// Every change and its events are one fsynced transaction.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// SchemaVersion is the layout this package writes.
const SchemaVersion = 1

var (
	bucketMeta      = []byte("meta")
	bucketIncidents = []byte("incidents")
	bucketTimelines = []byte("timelines")
	bucketIndex     = []byte("index")
	indexChannel    = []byte("channel")
	indexLink       = []byte("link")
	keySchema       = []byte("schema")
	keyPolicy       = []byte("reminder_policy") // what the due index was built for
)

// ErrDamaged is matched by the error of any operation on a file whose
// pages bbolt cannot read: the message names the file and how to recover.
var ErrDamaged = errors.New("the database file is damaged")

// damaged turns a panic of bbolt's on a damaged file into an error. Use it
// as defer damaged(path, &err, debug.SetPanicOnFault(true)): bbolt reads a
// memory-mapped file, and a damaged page can send it to an address outside
// the mapping — a fault that would end the process is then a panic of this
// goroutine, recovered here; the flag is put back as it was.
func damaged(path string, errp *error, faulted bool) {
	debug.SetPanicOnFault(faulted)
	if p := recover(); p != nil {
		*errp = fmt.Errorf("%w: %s (%v); restore it from a backup (bot backup writes one) or see what is wrong with: bot check %s", ErrDamaged, path, p, path)
	}
}

func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer damaged(s.path, &err, debug.SetPanicOnFault(true))
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	_, err := s.updateSeq(fn)
	return err
}

// updateSeq is update, and the transaction's place among the store's write
// transactions: its number, taken under bbolt's writer lock, so numbers
// follow the order the transactions ran in (readiness, track).
func (s *Store) updateSeq(fn func(*bolt.Tx) error) (seq uint64, err error) {
	defer damaged(s.path, &err, debug.SetPanicOnFault(true))
	err = s.db.Update(func(tx *bolt.Tx) error {
		seq = s.txSeq.Add(1)
		return fn(tx)
	})
	if seq == 0 && err != nil { // no transaction began (bbolt could not start one): it failed after all begun so far
		seq = s.txSeq.Add(1)
	}
	return seq, err
}

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("database is locked by another process")

// Store is incidents.Store on a bbolt file.
type Store struct {
	db    *bolt.DB
	path  string
	group committer // write's group commits
	subs  []incidents.Subscription
	// decoded keeps the incidents in use decoded, checked against their bytes.
	decoded decoded

	txSeq      atomic.Uint64 // write transactions begun (updateSeq)
	health     health        // the last write's storage failure, until a later one commits
	unreadable atomic.Int64  // incident records List skipped because they do not decode

	outboxMu sync.Mutex
	outboxCh chan struct{} // closed at the commit of a transaction that wrote effects
}

var _ incidents.Store = (*Store)(nil)

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file before failing with ErrLocked. Default 2s.
	LockTimeout time.Duration
	// ReadOnly opens the file for reading only (a shared lock).
	ReadOnly bool
	// Subscriptions say which events imply effects, written to the outbox
	// in the same transaction as the events.
	Subscriptions []incidents.Subscription
}

// Open opens (creating if needed) the database at path.
func Open(path string, opt Options) (st *Store, err error) {
	defer damaged(path, &err, debug.SetPanicOnFault(true))
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = 2 * time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout, ReadOnly: opt.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open database %s: %w (waited %s; is another sitrep running with the same SITREP_DB?)", path, ErrLocked, opt.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s := &Store{db: db, path: path, subs: opt.Subscriptions, outboxCh: make(chan struct{})}
	s.group.pause = waitForWriters
	if !opt.ReadOnly {
		err := s.init()
		if err == nil {
			_, err = s.sweepDedup(time.Now())
		}
		if err != nil && !errors.Is(err, ErrDamaged) && !isDomain(err) && !strings.Contains(err.Error(), "schema") {
			err = fmt.Errorf("open database %s: %w; if the file is damaged, restore it from a backup (bot backup writes one) or see what is wrong with: bot check %s", path, err, path)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
	} else if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	return s.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			if err := s.compatible(v); err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketDedup); err != nil { // added within schema 1
				return err
			}
			// The due index follows the reminder policy (response times,
			// update cadences): built once from the incidents, and again when
			// the policy in force is not the one it was built for.
			policy := []byte(incidents.ReminderPolicy())
			if err := buildAttention(tx, !bytes.Equal(meta.Get(keyPolicy), policy)); err != nil {
				return err
			}
			return meta.Put(keyPolicy, policy)
		}
		for _, name := range [][]byte{bucketIncidents, bucketTimelines, bucketDedup} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		idx, err := tx.CreateBucketIfNotExists(bucketIndex)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{indexChannel, indexLink, indexOpen, indexDue, indexDeclared, indexPublic} {
			if _, err := idx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := meta.Put(keyPolicy, []byte(incidents.ReminderPolicy())); err != nil {
			return err
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
}

func (s *Store) checkSchema() error {
	return s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("open database %s: not a sitrep database, or a damaged one (no schema version); if it was one, restore it from a backup (bot backup writes one) or see what is wrong with: bot check %s", s.path, s.path)
		}
		return s.compatible(meta.Get(keySchema))
	})
}

func (s *Store) compatible(v []byte) error {
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("open database %s: unreadable schema version %q", s.path, v)
	}
	if n > SchemaVersion {
		return fmt.Errorf("open database %s: schema version %d is newer than this sitrep understands (%d); upgrade sitrep", s.path, n, SchemaVersion)
	}
	return nil
}

// Unreadable is how many undecodable incident records List has skipped.
func (s *Store) Unreadable() int64 { return s.unreadable.Load() }

// CheckPages is bbolt's consistency check of every page. It runs on a
// goroutine of bbolt's own, where a fault on a badly damaged page cannot be
// recovered: bot check runs it in a child process.
func (s *Store) CheckPages(ctx context.Context) (problems []string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problems = append(problems, "pages: "+strings.TrimPrefix(e.Error(), "panic: "))
		}
		return nil
	})
	return problems, err
}

// CheckRecords decodes every incident and timeline event. It returns what
// is wrong, one line each (nothing when the records are sound).
func (s *Store) CheckRecords(ctx context.Context) (problems []string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketIncidents); b != nil {
			b.ForEach(func(k, v []byte) error {
				var inc incidents.Incident
				if err := json.Unmarshal(v, &inc); err != nil {
					problems = append(problems, fmt.Sprintf("incident %x: %v", k, err))
				}
				return nil
			})
		}
		if tl := tx.Bucket(bucketTimelines); tl != nil {
			tl.ForEachBucket(func(id []byte) error {
				return tl.Bucket(id).ForEach(func(k, v []byte) error {
					var ev incidents.Event
					if err := json.Unmarshal(v, &ev); err != nil {
						problems = append(problems, fmt.Sprintf("timeline %x event %x: %v", id, k, err))
					}
					return nil
				})
			})
		}
		return nil
	})
	return problems, err
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

// track remembers whether write transaction seq failed in the store itself
// (disk full, an I/O error) — not a refused change — for readiness: a
// commit clears it, a failure sets it.
func (s *Store) track(seq uint64, err error) error {
	switch {
	case err == nil:
		s.health.committed(seq)
	case isDomain(err), errors.Is(err, errNoChange), errors.Is(err, errUnreadableRecord),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		s.health.failed(seq, err)
	}
	return err
}

// health is whether the store can write: the failure of the latest write
// transaction that failed in the store, unless one that ran after it has
// committed. Writers report after their transaction ends, in any order; the
// transactions' numbers (updateSeq) keep a report that comes late from
// undoing a later transaction's: a commit that ran before a failure does
// not clear it, a failure that ran before a commit does not set it.
type health struct {
	mu       sync.Mutex
	ok, fail uint64 // the latest committed and failed transactions reported
	err      error  // fail's error while no later transaction committed
}

func (h *health) committed(seq uint64) {
	h.mu.Lock()
	h.ok = max(h.ok, seq)
	if h.fail < seq {
		h.err = nil
	}
	h.mu.Unlock()
}

func (h *health) failed(seq uint64, err error) {
	h.mu.Lock()
	if seq > h.ok && seq >= h.fail {
		h.fail, h.err = seq, err
	}
	h.mu.Unlock()
}

func (h *health) last() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// isDomain reports whether err is the domain's refusal of a change.
func isDomain(err error) bool {
	_, ok := errors.AsType[*incidents.Error](err)
	return ok
}

// Ping checks the database can be read, and that the last write did not
// fail in the store (for readiness: a Sitrep whose writes fail is not ready,
// so webhooks go to a replica that can store them, or retry).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.last(); err != nil {
		return fmt.Errorf("the last write failed: %w", err)
	}
	return s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketIncidents) == nil {
			return errors.New("incidents bucket missing")
		}
		return nil
	})
}

// Backup writes a consistent copy of the database to w while it stays in use.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile writes a consistent copy to path atomically (temporary file,
// fsync, rename), so a half-written backup never has the final name.
func (s *Store) BackupFile(path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := s.Backup(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	return n, nil
}

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func notFound(id int64) error {
	return incidents.Errorf(incidents.ENotFound, "no incident %s", incidents.FormatID(id))
}

// getIncident reads incident id, through cache when it is not nil.
func getIncident(tx *bolt.Tx, id int64, cache *decoded) (*incidents.Incident, error) {
	if id <= 0 {
		return nil, notFound(id)
	}
	v := tx.Bucket(bucketIncidents).Get(itob(uint64(id)))
	if v == nil {
		return nil, notFound(id)
	}
	if inc := cache.get(id, v); inc != nil {
		return inc, nil
	}
	var inc incidents.Incident
	if err := json.Unmarshal(v, &inc); err != nil {
		return nil, fmt.Errorf("decode %s: %w (%w)", incidents.FormatID(id), err, errUnreadableRecord)
	}
	cache.put(id, v, &inc)
	return &inc, nil
}

// errUnreadableRecord marks a record that does not decode: the file is
// fine, that one record is not (readiness stays as it is).
var errUnreadableRecord = errors.New("an unreadable record; see bot check")

// putIncident stores inc. The decoded cache learns it at its first read:
// what a read gets is what the bytes decode to (invalid UTF-8 replaced, an
// empty list nil), never the object as it was before encoding.
func putIncident(tx *bolt.Tx, inc *incidents.Incident) error {
	v, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", inc.Key(), err)
	}
	return tx.Bucket(bucketIncidents).Put(itob(uint64(inc.ID)), v)
}
