package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// InboxDedupTTL is how long an envelope id is remembered (as bbolt's).
const InboxDedupTTL = time.Hour

var _ incidents.Inbox = (*Store)(nil)

// Receive stores env, owned by this Sitrep, before the caller acknowledges
// it; a redelivered id — to this Sitrep or another — reports dup and
// writes nothing.
func (s *Store) Receive(ctx context.Context, env incidents.Envelope) (bool, error) {
	rec, err := json.Marshal(env)
	if err != nil {
		return false, fmt.Errorf("encode envelope: %w", err)
	}
	dup := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		dup = false
		if env.ID != "" {
			var fresh bool
			err := tx.QueryRow(ctx, `INSERT INTO inbox_seen (source, id, until) VALUES ($1, $2, now() + $3::interval)
				ON CONFLICT (source, id) DO UPDATE SET until = EXCLUDED.until WHERE inbox_seen.until <= now()
				RETURNING true`, env.Source, env.ID, InboxDedupTTL.String()).Scan(&fresh)
			if errors.Is(err, pgx.ErrNoRows) {
				dup = true
				return nil
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO inbox (owner, key, source, id, record) VALUES ($5, $1, $2, $3, $4)`,
			int64(env.Key), env.Source, env.ID, rec, s.owner)
		return err
	})
	return dup, err
}

// Unprocessed returns source's envelopes that are this Sitrep's — its own,
// and those of a Sitrep that is no longer alive, which it takes over — in
// arrival order.
func (s *Store) Unprocessed(ctx context.Context, source string) ([]incidents.Envelope, error) {
	return s.takeOver(ctx, `UPDATE inbox SET owner = $2 WHERE source = $1 AND (owner = $2 OR $3 AND NOT EXISTS (
		SELECT 1 FROM replicas r WHERE r.owner = inbox.owner AND r.until > now())) RETURNING key, record`, source)
}

var _ incidents.SharedInbox = (*Store)(nil)

// Orphaned takes over source's envelopes whose receiver is no longer alive
// (its heartbeat lapsed: killed, or cut off), in arrival order.
func (s *Store) Orphaned(ctx context.Context, source string) ([]incidents.Envelope, error) {
	if !s.mayTakeOver() {
		return nil, nil
	}
	return s.takeOver(ctx, `UPDATE inbox SET owner = $2 WHERE source = $1 AND owner <> $2 AND $3 AND NOT EXISTS (
		SELECT 1 FROM replicas r WHERE r.owner = inbox.owner AND r.until > now()) RETURNING key, record`, source)
}

func (s *Store) takeOver(ctx context.Context, query, source string) ([]incidents.Envelope, error) {
	rows, err := s.pool.Query(ctx, query, source, s.owner, s.mayTakeOver())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incidents.Envelope
	for rows.Next() {
		var key int64
		var rec []byte
		if err := rows.Scan(&key, &rec); err != nil {
			return nil, err
		}
		var env incidents.Envelope
		if json.Unmarshal(rec, &env) != nil {
			continue // unreadable: its request cannot be answered anyway
		}
		env.Key = uint64(key)
		out = append(out, env)
	}
	slices.SortFunc(out, func(a, b incidents.Envelope) int { return compare(a.Key, b.Key) })
	return out, rows.Err()
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Processed removes an envelope whose work is done.
func (s *Store) Processed(ctx context.Context, key uint64) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM inbox WHERE key = $1 AND owner = $2`, int64(key), s.owner)
	return err
}
