package pgstore

// Reads: incidents through the indexes, timelines a page at a time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// timelinePage is how many events Timeline reads per query.
const timelinePage = 512

// Get returns incident id.
func (s *Store) Get(ctx context.Context, id int64) (*incidents.Incident, error) {
	return decode(s.pool.QueryRow(ctx, `SELECT record FROM incidents WHERE id = $1`, id), id)
}

// List returns the incidents passing f, newest first, through the indexes.
func (s *Store) List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, error) {
	q := `SELECT record FROM incidents WHERE ($1 OR open) AND ($2::timestamptz IS NULL OR declared_at >= $2) AND ($3 = 0 OR severity = $3) AND (NOT $5 OR published) ORDER BY id DESC`
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	sev := 0
	if f.Severity.Valid() {
		sev = int(f.Severity)
	}
	limit := int64(math.MaxInt64)
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	q += ` LIMIT $4`
	args := []any{f.All || f.Public, since, sev, limit, f.Public}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []*incidents.Incident
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var inc incidents.Incident
		if err := json.Unmarshal(b, &inc); err != nil {
			s.unreadable.Add(1) // one bad record does not stop the rest (as bbolt's)
			continue
		}
		out = append(out, &inc)
	}
	return out, rows.Err()
}

// Timeline streams incident id's events in order, a page per query.
func (s *Store) Timeline(ctx context.Context, id int64, fn func(incidents.Event) error) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM incidents WHERE id = $1)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return notFound(id)
	}
	var after int64
	for {
		rows, err := s.pool.Query(ctx, `SELECT seq, record FROM events WHERE incident = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, timelinePage)
		if err != nil {
			return err
		}
		page := make([]incidents.Event, 0, timelinePage)
		for rows.Next() {
			var seq int64
			var b []byte
			if err := rows.Scan(&seq, &b); err != nil {
				return err
			}
			var ev incidents.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				rows.Close()
				return fmt.Errorf("decode event %s/%d: %w", incidents.FormatID(id), seq, err)
			}
			page = append(page, ev)
			after = seq
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, ev := range page { // the page's query is done: fn may take its time
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(page) < timelinePage {
			return nil
		}
	}
}

// ByChannel finds the incident whose war room is channel.
func (s *Store) ByChannel(ctx context.Context, channel string) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT incident FROM channels WHERE channel = $1`, channel).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, incidents.Errorf(incidents.ENotFound, "no incident has its war room in channel %s", channel)
	}
	return id, err
}

// ByLink finds the incident linked to an outside reference.
func (s *Store) ByLink(ctx context.Context, system, ref string) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT incident FROM links WHERE system = $1 AND ref = $2`, system, ref).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, incidents.Errorf(incidents.ENotFound, "no incident is linked to %s %s", system, ref)
	}
	return id, err
}

// Due returns the incidents whose next reminder is due at now, and when the
// next one after now is due.
func (s *Store) Due(ctx context.Context, now time.Time) ([]int64, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM incidents WHERE due_at <= $1 ORDER BY due_at, id`, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, time.Time{}, err
	}
	var next *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT MIN(due_at) FROM incidents WHERE due_at > $1`, now).Scan(&next); err != nil {
		return nil, time.Time{}, err
	}
	if next == nil {
		return ids, time.Time{}, nil
	}
	return ids, next.UTC(), nil
}
