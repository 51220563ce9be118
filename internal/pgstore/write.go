package pgstore

// Writes: a change is one transaction that holds the incident's row lock
// (save keeps the record, the indexes, the timeline and the effects in step).

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

// state is what the indexes held for an incident before a change.
type state struct {
	channel string
	links   map[string]bool
	aliases []incidents.Link
}

func stateOf(inc *incidents.Incident) state {
	return state{inc.Channel, linkKeys(inc), slices.Clone(inc.Aliases)}
}

type link struct{ system, ref string }

func linkKeys(inc *incidents.Incident) map[string]bool {
	out := map[string]bool{}
	for system, ref := range inc.Links {
		out[system+"\x00"+ref] = true
	}
	for _, l := range inc.Aliases {
		out[l.System+"\x00"+l.Ref] = true
	}
	return out
}

func split(key string) link {
	for i := range len(key) {
		if key[i] == 0 {
			return link{key[:i], key[i+1:]}
		}
	}
	return link{key, ""}
}

// read loads incident id, locking its row for the transaction.
func read(ctx context.Context, tx pgx.Tx, id int64) (*incidents.Incident, error) {
	return decode(tx.QueryRow(ctx, `SELECT record FROM incidents WHERE id = $1 FOR UPDATE`, id), id)
}

// decode reads incident id's record from row.
func decode(row pgx.Row, id int64) (*incidents.Incident, error) {
	var b []byte
	err := row.Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	var inc incidents.Incident
	if err := json.Unmarshal(b, &inc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", incidents.FormatID(id), err)
	}
	return &inc, nil
}

// save writes inc (changed from was) with its events, keeping the indexes,
// and the effects the events imply.
func (s *Store) save(ctx context.Context, tx pgx.Tx, inc *incidents.Incident, was state, events []incidents.Event, insert bool) error {
	rec, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", inc.Key(), err)
	}
	var due *time.Time
	if at, ok := inc.NextReminder(); ok {
		due = &at
	}
	if insert {
		_, err = tx.Exec(ctx, `INSERT INTO incidents (id, record, open, severity, declared_at, due_at, published) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			inc.ID, rec, inc.Open(), int(inc.Severity), inc.DeclaredAt, due, inc.Published())
	} else {
		_, err = tx.Exec(ctx, `UPDATE incidents SET record = $2, open = $3, severity = $4, declared_at = $5, due_at = $6, published = $7 WHERE id = $1`,
			inc.ID, rec, inc.Open(), int(inc.Severity), inc.DeclaredAt, due, inc.Published())
	}
	if err != nil {
		return err
	}
	if was.channel != inc.Channel {
		if was.channel != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM channels WHERE channel = $1 AND incident = $2`, was.channel, inc.ID); err != nil {
				return err
			}
		}
		if inc.Channel != "" {
			var owner int64
			err := tx.QueryRow(ctx, `INSERT INTO channels (channel, incident) VALUES ($1, $2)
				ON CONFLICT (channel) DO UPDATE SET incident = channels.incident RETURNING incident`, inc.Channel, inc.ID).Scan(&owner)
			if err != nil {
				return err
			}
			if owner != inc.ID {
				return incidents.Errorf(incidents.EConflict, "channel %s is already the war room of %s", inc.Channel, incidents.FormatID(owner))
			}
		}
	}
	now := linkKeys(inc)
	for k := range now {
		if was.links[k] {
			continue
		}
		l := split(k)
		if _, err := tx.Exec(ctx, `INSERT INTO links (system, ref, incident) VALUES ($1, $2, $3)
			ON CONFLICT (system, ref) DO UPDATE SET incident = EXCLUDED.incident`, l.system, l.ref, inc.ID); err != nil {
			return err
		}
	}
	for k := range was.links {
		if !now[k] {
			l := split(k)
			// only its own: a merged duplicate's links belong to the survivor
			if _, err := tx.Exec(ctx, `DELETE FROM links WHERE system = $1 AND ref = $2 AND incident = $3`, l.system, l.ref, inc.ID); err != nil {
				return err
			}
		}
	}
	if len(events) == 0 {
		return nil
	}
	var last uint64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE incident = $1`, inc.ID).Scan(&last); err != nil {
		return err
	}
	rows := make([][]any, len(events))
	for i := range events {
		events[i].Seq, events[i].Incident = last+uint64(i)+1, inc.ID
		b, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		rows[i] = []any{inc.ID, int64(events[i].Seq), string(events[i].Kind), events[i].At, b}
	}
	if _, err = tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"incident", "seq", "kind", "at", "record"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err = s.queueEffects(ctx, tx, inc, events)
	return err
}

// Create stores a new incident and its first events in one transaction.
func (s *Store) Create(ctx context.Context, inc *incidents.Incident, events []incidents.Event) error {
	return s.commit(ctx, func(tx pgx.Tx) error { return s.insert(ctx, tx, inc, events) })
}

func (s *Store) insert(ctx context.Context, tx pgx.Tx, inc *incidents.Incident, events []incidents.Event) error {
	if err := tx.QueryRow(ctx, `SELECT nextval('incidents_id')`).Scan(&inc.ID); err != nil {
		return err
	}
	return s.save(ctx, tx, inc, state{links: map[string]bool{}}, events, true)
}

// commit runs fn in a transaction and, once it is committed, wakes this
// Sitrep's runners (the others hear the NOTIFY it sent).
func (s *Store) commit(ctx context.Context, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, fn)
	if err == nil && len(s.subs) > 0 {
		s.signal()
	}
	return err
}

// Update applies change to incident id and stores the result and its events atomically.
func (s *Store) Update(ctx context.Context, id int64, change func(*incidents.Incident) ([]incidents.Event, error)) (*incidents.Incident, []incidents.Event, error) {
	var inc *incidents.Incident
	var events []incidents.Event
	err := s.commit(ctx, func(tx pgx.Tx) error {
		var err error
		if inc, err = read(ctx, tx, id); err != nil {
			return err
		}
		was := stateOf(inc)
		if events, err = change(inc); err != nil || len(events) == 0 {
			return err
		}
		if inc.ID != id {
			return fmt.Errorf("update %s: the change altered the incident id", incidents.FormatID(id))
		}
		return s.save(ctx, tx, inc, was, events, false)
	})
	if err != nil {
		return nil, nil, err
	}
	if len(events) == 0 { // nothing written: the stored incident, not the changed copy
		got, err := s.Get(ctx, id)
		return got, nil, err
	}
	return inc, events, nil
}

// UpdateAll applies change to the incidents ids and stores each that got
// events, in one transaction (rows locked in id order: no deadlock between
// two changes of the same pair).
func (s *Store) UpdateAll(ctx context.Context, ids []int64, change func([]*incidents.Incident) ([][]incidents.Event, error)) ([]*incidents.Incident, [][]incidents.Event, error) {
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return nil, nil, incidents.Errorf(incidents.EInvalid, "%s is named twice", incidents.FormatID(id))
		}
	}
	var incs []*incidents.Incident
	var events [][]incidents.Event
	err := s.commit(ctx, func(tx pgx.Tx) error {
		incs, events = make([]*incidents.Incident, len(ids)), nil
		order := slices.Sorted(slices.Values(ids))
		byID := map[int64]*incidents.Incident{}
		for _, id := range order {
			inc, err := read(ctx, tx, id)
			if err != nil {
				return err
			}
			byID[id] = inc
		}
		was := make([]state, len(ids))
		for i, id := range ids {
			incs[i], was[i] = byID[id], stateOf(byID[id])
		}
		var err error
		if events, err = change(incs); err != nil {
			return err
		}
		if len(events) != len(ids) {
			return fmt.Errorf("update %d incidents: the change returned %d event lists", len(ids), len(events))
		}
		for i, inc := range incs {
			if len(events[i]) == 0 {
				continue
			}
			if inc.Aliases, err = takeable(ctx, tx, inc.Aliases, was[i].aliases, ids); err != nil {
				return err
			}
			if err := s.save(ctx, tx, inc, was[i], events[i], false); err != nil {
				return err
			}
		}
		for j, dup := range incs { // a merge: the alert memos go with the links
			if !slices.ContainsFunc(events[j], func(ev incidents.Event) bool { return ev.Kind == incidents.EventMerged }) || !slices.Contains(ids, dup.MergedInto) {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO memos (incident, key, value) SELECT $2, key, value FROM memos WHERE incident = $1
				ON CONFLICT (incident, key) DO NOTHING`, dup.ID, dup.MergedInto); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return incs, events, nil
}

// takeable keeps the aliases an incident may take over (as bbolt's): the
// ones it had, and new ones the link index gives to an incident of this
// change, or to none.
func takeable(ctx context.Context, tx pgx.Tx, aliases, had []incidents.Link, ids []int64) ([]incidents.Link, error) {
	out := aliases[:0:0]
	for _, l := range aliases {
		var owner int64
		err := tx.QueryRow(ctx, `SELECT incident FROM links WHERE system = $1 AND ref = $2`, l.System, l.Ref).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			out = append(out, l)
		case err != nil:
			return nil, err
		case slices.Contains(had, l) || slices.Contains(ids, owner):
			out = append(out, l)
		}
	}
	return out, nil
}

// Import stores inc as it is — its id, its events' seqs — with its indexes,
// and no effects (bot migrate copy); the id sequence moves past it.
func (s *Store) Import(ctx context.Context, inc *incidents.Incident, events []incidents.Event) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		plain := &Store{pool: s.pool, owner: s.owner} // no subscriptions: a copy implies no effects
		was := state{links: map[string]bool{}}
		if inc.MergedInto != 0 {
			// A merged duplicate keeps its links as a record; the index gives
			// them to the survivor (its aliases), whichever is copied first.
			for k := range linkKeys(inc) {
				l := split(k)
				var owner int64
				if err := tx.QueryRow(ctx, `SELECT incident FROM links WHERE system = $1 AND ref = $2`, l.system, l.ref).Scan(&owner); err == nil {
					was.links[k] = true // taken: leave it with its owner
				}
			}
		}
		if err := plain.save(ctx, tx, inc, was, nil, true); err != nil {
			return err
		}
		rows := make([][]any, len(events))
		for i := range events {
			b, err := json.Marshal(&events[i])
			if err != nil {
				return err
			}
			rows[i] = []any{inc.ID, int64(events[i].Seq), string(events[i].Kind), events[i].At, b}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"incident", "seq", "kind", "at", "record"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT setval('incidents_id', GREATEST($1, (SELECT last_value FROM incidents_id)))`, inc.ID)
		return err
	})
}
