package boltstore

import (
	"errors"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// errNothingWritten is what a write function returns when it looked and
// wrote nothing (a duplicate, a change that changed nothing): the group it
// is in commits without it, is not rolled back or run again for it, and a
// group of nothing but such writes is rolled back, costing no fsync.
var errNothingWritten = errors.New("nothing written")

// committer runs writes as group commits. A write that arrives while
// another group commits waits; the writes that waited then commit together
// in one transaction, one fsync, led by the first of them. Unlike bbolt's
// DB.Batch it keeps a write alone waiting for no timer (it commits at once;
// only during a burst does a leader wait, at most commitDelay, for more),
// never runs a function again because another one had nothing to write, and runs the
// transaction on a writer's own goroutine — bbolt's panic on a damaged page
// comes back as ErrDamaged instead of ending the process from a timer.
type committer struct {
	mu      sync.Mutex
	queue   []*pending
	leading bool // a writer is committing a group
	last    int  // writers that wrote in the last group
	groups  int  // groups committed or rolled back, for tests
	// arrived, while a leader waits, hears of each writer that queues.
	arrived chan struct{}
	// pause is how a leader waits for the writers of a burst
	// (waitForWriters); tests replace it.
	pause func(arrived <-chan struct{})
}

// commitDelay is the longest a group's leader waits for more writers while
// a burst is on, as PostgreSQL's commit_delay does when other transactions
// are active; commitQuiet ends the wait early when no writer has arrived
// for that long. A leader waits when it queued behind the last group's
// commit (a burst is on), more than one write of that group wrote, and
// fewer than that many wait now. In a webhook storm a group then takes up
// to a millisecond's writers and one fsync where it took the few that
// queued behind the last commit: bbolt's commit (page writes, meta,
// fdatasync) was about a sixth of the CPU of a signed PagerDuty webhook at
// 12,800/s, at 400–1,000 commits a second. A write that finds no commit
// under way never waits, however busy the store was before.
const (
	commitDelay = time.Millisecond
	commitQuiet = 200 * time.Microsecond
)

// waitForWriters is the leader's pause: while writers keep arriving, each
// within commitQuiet of the last, and at most commitDelay.
func waitForWriters(arrived <-chan struct{}) {
	deadline, quiet := time.NewTimer(commitDelay), time.NewTimer(commitQuiet)
	defer deadline.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-deadline.C:
			return
		case <-quiet.C:
			return
		case <-arrived:
			quiet.Reset(commitQuiet)
		}
	}
}

type pending struct {
	fn    func(*wtx) error
	err   error
	done  chan struct{} // closed with err set, or with lead set
	lead  bool          // woken to lead the next group rather than done
	wrote bool          // fn wrote something (not errNothingWritten) in the transaction that committed
	seq   uint64        // that transaction's number (updateSeq), for readiness
}

// write runs fn in the next group commit and returns its own error.
// fn may run again when another function of its group fails: it starts
// afresh each time and reports outcomes through variables it captures.
func (s *Store) write(fn func(tx *wtx) error) error {
	w := &pending{fn: fn, done: make(chan struct{})}
	c := &s.group
	c.mu.Lock()
	c.queue = append(c.queue, w)
	select {
	case c.arrived <- struct{}{}: // a waiting leader hears of it (nil: none waits)
	default:
	}
	if c.leading {
		c.mu.Unlock()
		<-w.done
		if !w.lead {
			return s.outcome(w)
		}
		c.mu.Lock()
	}
	c.leading = true
	if w.lead && c.last > 1 && len(c.queue) < c.last {
		arrived, pause := make(chan struct{}, 1), c.pause
		c.arrived = arrived
		c.mu.Unlock()
		pause(arrived)
		c.mu.Lock()
		c.arrived = nil
	}
	group := c.queue
	c.queue = nil
	c.groups++
	c.mu.Unlock()

	wrote := s.commit(group)

	c.mu.Lock()
	c.last = wrote        // a storm of repeats, writing nothing, costs no fsync to save
	if len(c.queue) > 0 { // hand over: each writer leads at most its own group
		next := c.queue[0]
		next.lead = true
		close(next.done)
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	return s.outcome(w)
}

// outcome is a writer's error, remembered for readiness (track) unless the
// writer wrote nothing: a duplicate or a refused change committed nothing,
// so it says nothing of whether the store can write.
func (s *Store) outcome(w *pending) error {
	if w.err == nil && !w.wrote {
		return nil
	}
	return s.track(w.seq, w.err)
}

// commit runs a group in one transaction. A function that fails takes its
// error alone: the transaction is rolled back, the rest of the group
// commits without it, and it runs once more by itself (its failure may
// have come from what an earlier function of the group wrote). It returns
// how many functions of the group's transaction wrote something.
func (s *Store) commit(group []*pending) (committed int) {
	var alone []*pending
	for len(group) > 0 {
		failed, wrote := -1, 0
		seq, err := s.updateSeq(func(btx *bolt.Tx) error {
			tx := s.newWtx(btx)
			for i, w := range group {
				err := s.call(w.fn, tx)
				w.wrote = err == nil
				switch {
				case errors.Is(err, errNothingWritten):
				case err != nil:
					failed = i
					return err
				default:
					wrote++
				}
			}
			if wrote == 0 {
				return errNothingWritten // no fsync for a group that wrote nothing
			}
			return tx.flush()
		})
		if errors.Is(err, errNothingWritten) {
			err = nil
		}
		if failed < 0 { // committed, or the commit itself failed
			if err == nil {
				committed = wrote
			}
			finish(group, seq, err)
			break
		}
		alone = append(alone, group[failed])
		group = append(group[:failed:failed], group[failed+1:]...)
	}
	for _, w := range alone {
		seq, err := s.updateSeq(func(btx *bolt.Tx) error {
			tx := s.newWtx(btx)
			err := s.call(w.fn, tx)
			if w.wrote = err == nil; err != nil {
				return err
			}
			return tx.flush()
		})
		if errors.Is(err, errNothingWritten) {
			err = nil
		}
		finish([]*pending{w}, seq, err)
	}
	return committed
}

// call runs one function of a group; a panic of bbolt's on a damaged page
// is its error, not the group's end.
func (s *Store) call(fn func(*wtx) error, tx *wtx) (err error) {
	defer damaged(s.path, &err, debug.SetPanicOnFault(true))
	return fn(tx)
}

func finish(group []*pending, seq uint64, err error) {
	for _, w := range group {
		w.seq, w.err = seq, err
		if !w.lead {
			close(w.done)
		}
	}
}

// wtx is a write transaction that keeps the incidents it touches decoded:
// in a group commit of a storm on one incident, each write reads the
// incident as the one before it left it, and the record is decoded once
// and encoded once per group instead of once per write. Outside a group
// (incidents == nil) it reads and writes the bucket directly.
type wtx struct {
	*bolt.Tx
	incidents map[int64]*incidents.Incident // as this transaction has them; nil: no cache
	dirty     []int64                       // stored since the transaction began, in order
	decoded   *decoded                      // the store's decoded incidents, across transactions; nil: none
}

// newWtx is a group's transaction: it keeps the incidents it touches.
func (s *Store) newWtx(tx *bolt.Tx) *wtx {
	t := s.directTx(tx)
	t.incidents = map[int64]*incidents.Incident{}
	return t
}

// directTx is a transaction outside a group: it reads and writes the
// bucket directly, reading through the store's decoded incidents.
func (s *Store) directTx(tx *bolt.Tx) *wtx { return &wtx{Tx: tx, decoded: &s.decoded} }

// incident returns incident id as this transaction has it, a copy the
// caller may change: a write that changes it and then stores nothing leaves
// no trace for the next one.
func (t *wtx) incident(id int64) (*incidents.Incident, error) {
	if inc, ok := t.incidents[id]; ok {
		return inc.Clone(), nil
	}
	inc, err := getIncident(t.Tx, id, t.decoded)
	if err != nil || t.incidents == nil {
		return inc, err
	}
	t.incidents[id] = inc.Clone()
	return inc, nil
}

// store records inc as the transaction's version, encoded at flush. The
// caller keeps inc and must not change it afterwards within the
// transaction (it is the one the next read copies).
func (t *wtx) store(inc *incidents.Incident) error {
	if t.incidents == nil {
		return putIncident(t.Tx, inc)
	}
	if !slices.Contains(t.dirty, inc.ID) {
		t.dirty = append(t.dirty, inc.ID)
	}
	t.incidents[inc.ID] = inc
	return nil
}

// flush encodes the incidents stored in the transaction, once each.
func (t *wtx) flush() error {
	for _, id := range t.dirty {
		if err := putIncident(t.Tx, t.incidents[id]); err != nil {
			return err
		}
	}
	t.dirty = nil
	return nil
}
