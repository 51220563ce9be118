package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/releases"
)

var _ releases.Store = (*Store)(nil)

// CreateRelease stores a new release under the next id.
func (s *Store) CreateRelease(ctx context.Context, r *releases.Release) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// one in progress per service: starts of one service queue on its lock
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sitrep release ' || $1, 0))`, r.Service); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT record FROM releases WHERE active AND service = $1`, r.Service)
		if err != nil {
			return err
		}
		for rows.Next() {
			var doc []byte
			o := new(releases.Release)
			if err := rows.Scan(&doc); err == nil && json.Unmarshal(doc, o) == nil && o.InProgress() {
				rows.Close()
				return &releases.BusyError{Other: o}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('releases', 'id'))`).Scan(&r.ID); err != nil {
			return err
		}
		doc, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO releases (id, service, started_at, active, record) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, r.Service, r.StartedAt, r.Active(), doc)
		return err
	})
}

// UpdateRelease changes release id under a row lock: one change at a time.
func (s *Store) UpdateRelease(ctx context.Context, id int64, change func(*releases.Release) error) (*releases.Release, error) {
	var out *releases.Release
	var unchanged bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := decodeRelease(tx.QueryRow(ctx, `SELECT record FROM releases WHERE id = $1 FOR UPDATE`, id), id)
		if err != nil {
			return err
		}
		if err := change(r); errors.Is(err, releases.ErrUnchanged) {
			out, unchanged = r, true
			return nil
		} else if err != nil {
			return err
		}
		doc, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE releases SET active = $2, record = $3 WHERE id = $1`, id, r.Active(), doc); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	if unchanged {
		return out, releases.ErrUnchanged
	}
	return out, nil
}

// GetRelease returns release id.
func (s *Store) GetRelease(ctx context.Context, id int64) (*releases.Release, error) {
	return decodeRelease(s.pool.QueryRow(ctx, `SELECT record FROM releases WHERE id = $1`, id), id)
}

// ListReleases returns the releases passing f, newest first.
func (s *Store) ListReleases(ctx context.Context, f releases.Filter) ([]*releases.Release, error) {
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	limit := int64(math.MaxInt64)
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT record FROM releases WHERE (NOT $1 OR active) AND ($2 = '' OR service = $2)
		AND ($3::timestamptz IS NULL OR started_at >= $3) ORDER BY id DESC LIMIT $4`, f.Active, f.Service, since, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*releases.Release
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		r := new(releases.Release)
		if err := json.Unmarshal(doc, r); err != nil {
			return nil, fmt.Errorf("a release record: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func decodeRelease(row pgx.Row, id int64) (*releases.Release, error) {
	var doc []byte
	if err := row.Scan(&doc); errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("REL-%d: %w", id, releases.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	r := new(releases.Release)
	if err := json.Unmarshal(doc, r); err != nil {
		return nil, fmt.Errorf("REL-%d's record: %w", id, err)
	}
	return r, nil
}

// ImportRelease stores a release copied from another store under its own
// id (bot migrate copy); the next CreateRelease numbers after it.
func (s *Store) ImportRelease(ctx context.Context, r *releases.Release) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO releases (id, service, started_at, active, record) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, r.Service, r.StartedAt, r.Active(), doc); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('releases', 'id'), (SELECT MAX(id) FROM releases))`)
		return err
	})
}
