package pgstore

// The webhooks' path: Apply with its dedup keys and memos, under advisory
// locks on the dedup key and the link.

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// DedupTTL is how long a deduplication key is remembered (as bbolt's).
const DedupTTL = 7 * 24 * time.Hour

// lockKey is a transaction-scoped advisory lock's key for a name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Apply performs a Write in one transaction: the dedup check, finding or
// creating the incident, the change, its events and the dedup key. The
// dedup key and the link are locked first (in that order, always), so
// concurrent writes for one of them run one after the other.
func (s *Store) Apply(ctx context.Context, w incidents.Write) (incidents.Result, error) {
	var res incidents.Result
	err := s.commit(ctx, func(tx pgx.Tx) error {
		res = incidents.Result{}
		if w.Dedup != "" {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("dedup\x00"+w.Dedup)); err != nil {
				return err
			}
			var dup bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dedup WHERE key = $1 AND until > now())`, w.Dedup).Scan(&dup); err != nil {
				return err
			}
			if dup {
				res.Duplicate = true
				return nil
			}
		}
		id := w.ID
		if id == 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("link\x00"+w.Link.System+"\x00"+w.Link.Ref)); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, `SELECT incident FROM links WHERE system = $1 AND ref = $2`, w.Link.System, w.Link.Ref).Scan(&id)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		var inc *incidents.Incident
		if id != 0 {
			var err error
			if inc, err = read(ctx, tx, id); err != nil {
				return err
			}
			if w.ID == 0 && w.OpenOnly && !inc.Open() {
				inc = nil
			}
		}
		switch {
		case inc == nil && w.Create == nil:
			return incidents.Errorf(incidents.ENotFound, "no incident is linked to %s %s", w.Link.System, w.Link.Ref)
		case inc == nil:
			created, events, err := w.Create()
			if err != nil {
				return err
			}
			if err := s.insert(ctx, tx, created, events); err != nil {
				return err
			}
			res.Incident, res.Events, res.Created = created, events, true
			inc = created
		default:
			res.Incident = inc
		}
		if w.Change != nil {
			was := stateOf(inc)
			more, err := w.Change(inc, &memo{ctx: ctx, tx: tx, id: inc.ID})
			if err != nil {
				return err
			}
			if len(more) > 0 {
				if err := s.save(ctx, tx, inc, was, more, false); err != nil {
					return err
				}
				res.Events = append(res.Events, more...)
			}
		}
		if w.Dedup != "" {
			_, err := tx.Exec(ctx, `INSERT INTO dedup (key, until) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until`,
				w.Dedup, time.Now().Add(DedupTTL))
			return err
		}
		return nil
	})
	if err != nil {
		return incidents.Result{}, err
	}
	return res, nil
}

// SweepDedup forgets expired dedup keys and envelope ids, and says how many.
func (s *Store) SweepDedup(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dedup WHERE until <= now()`)
	if err != nil {
		return 0, err
	}
	seen, err := s.pool.Exec(ctx, `DELETE FROM inbox_seen WHERE until <= now()`)
	return tag.RowsAffected() + seen.RowsAffected(), err
}

// SweepDedupEvery sweeps until ctx ends (as bbolt's).
func (s *Store) SweepDedupEvery(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.SweepDedup(ctx)
		}
	}
}

// memo is an incident's Memo: its rows in memos, in the write's transaction.
type memo struct {
	ctx context.Context
	tx  pgx.Tx
	id  int64
}

func (m *memo) Get(key string) string {
	var v string
	if err := m.tx.QueryRow(m.ctx, `SELECT value FROM memos WHERE incident = $1 AND key = $2`, m.id, key).Scan(&v); err != nil {
		return ""
	}
	return v
}

func (m *memo) Set(key, value string) error {
	_, err := m.tx.Exec(m.ctx, `INSERT INTO memos (incident, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (incident, key) DO UPDATE SET value = EXCLUDED.value`, m.id, key, value)
	return err
}
