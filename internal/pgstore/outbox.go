package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The outbox as bbolt's, shared: effects are rows written in the change's
// transaction; each Sitrep works the incidents it claims (outbox_claims), a
// claim lasting while its owner's heartbeat does (replicas), and a save or
// finish from a process whose claim was taken over is refused (fencing).

var (
	_ incidents.Outbox  = (*Store)(nil)
	_ incidents.Claimer = (*Store)(nil)
)

// ErrNotClaimed: another Sitrep took this incident's effects over (this one
// was thought dead): its work must not be recorded.
var ErrNotClaimed = errors.New("the effect's incident is claimed by another Sitrep")

// Lease is how long a Sitrep counts as alive after its last heartbeat; the
// heartbeat comes at a third of it, on a connection of its own (a busy pool
// never delays it), and every beat has the runners look again, so what a
// dead Sitrep claimed is taken over within Lease and a beat of its death.
const Lease = 9 * time.Second

// beat is the heartbeat's period.
const beat = Lease / 3

// notifyChannel is the LISTEN/NOTIFY channel that wakes every Sitrep's
// runners when effects are written.
const notifyChannel = "sitrep_outbox"

func seqText(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// queueEffects writes the effects events imply for every subscription.
func (s *Store) queueEffects(ctx context.Context, tx pgx.Tx, inc *incidents.Incident, events []incidents.Event) (bool, error) {
	if len(s.subs) == 0 || len(events) == 0 {
		return false, nil
	}
	now := time.Now().UTC()
	wrote := false
	for _, sub := range s.subs {
		changed := false
		for _, ev := range events {
			if sub.Events != nil && sub.Events(inc, ev) {
				rec, _ := json.Marshal(incidents.Effect{Kind: ev.Kind, Created: now})
				if _, err := tx.Exec(ctx, `INSERT INTO outbox (consumer, incident, seq, record) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
					sub.Consumer, inc.ID, seqText(ev.Seq), rec); err != nil {
					return false, err
				}
				wrote = true
			}
			changed = changed || sub.Changes != nil && sub.Changes(inc, ev)
		}
		if changed {
			rec, _ := json.Marshal(incidents.Effect{Created: now, Rev: 1})
			if _, err := tx.Exec(ctx, `INSERT INTO outbox (consumer, incident, seq, record) VALUES ($1, $2, $3, $4)
				ON CONFLICT (consumer, incident, seq) DO UPDATE SET record = jsonb_set(outbox.record, '{rev}', to_jsonb(COALESCE((outbox.record->>'rev')::bigint, 0) + 1))`,
				sub.Consumer, inc.ID, seqText(incidents.ChangedSeq), rec); err != nil {
				return false, err
			}
			wrote = true
		}
	}
	if wrote {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel); err != nil { // delivered at commit
			return false, err
		}
	}
	return wrote, nil
}

// OutboxChanged returns a channel closed at the next write of an effect,
// by this Sitrep or another (LISTEN).
func (s *Store) OutboxChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outboxCh
}

func (s *Store) signal() {
	s.mu.Lock()
	close(s.outboxCh)
	s.outboxCh = make(chan struct{})
	s.mu.Unlock()
}

// listen wakes the runners at every notification until ctx ends,
// reconnecting after a failure (and waking them then: a write may have been
// missed meanwhile).
func (s *Store) listen(ctx context.Context) {
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy()) // its own: it is held for good
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+notifyChannel); err == nil {
				s.signal()
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						s.signal()
					}
				}
			}
			conn.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Pending returns consumer's effects by incident, then seq, leaving out the
// incidents another live Sitrep has claimed.
func (s *Store) Pending(ctx context.Context, consumer string) ([]incidents.Effect, error) {
	return s.pending(ctx, consumer, 0)
}

// pending is Pending, of one incident when incident is not 0.
func (s *Store) pending(ctx context.Context, consumer string, incident int64) ([]incidents.Effect, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT o.incident, o.seq, o.record, e.record
		FROM outbox o
		LEFT JOIN events e ON e.incident = o.incident AND o.seq < $3 AND e.seq = o.seq::numeric
		WHERE o.consumer = $1 AND ($4 = 0 OR o.incident = $4) AND NOT EXISTS (
			SELECT 1 FROM outbox_claims c JOIN replicas r ON r.owner = c.owner
			WHERE c.consumer = o.consumer AND c.incident = o.incident AND c.owner <> $2 AND r.until > now())
		ORDER BY o.incident, o.seq`, consumer, s.owner, seqText(incidents.AdapterSeq), incident)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incidents.Effect
	for rows.Next() {
		var id int64
		var seq string
		var rec, ev []byte
		if err := rows.Scan(&id, &seq, &rec, &ev); err != nil {
			return nil, err
		}
		var e incidents.Effect
		if json.Unmarshal(rec, &e) != nil {
			continue // undecodable: skipped, so it cannot stall every other incident
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			continue
		}
		e.Consumer, e.Incident, e.Seq = consumer, id, n
		if n < incidents.AdapterSeq {
			var event incidents.Event
			if ev == nil || json.Unmarshal(ev, &event) != nil {
				e.Kind = "" // its event is unreadable: the consumer drops it
			} else {
				e.Event = &event
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Claim makes this Sitrep the one working consumer's effects of incident —
// it already is, or no live Sitrep is (a new claim, or a take-over) — and
// returns the incident's effects as they are now that it holds them: what
// was read before may have been done meanwhile by the one that held them.
func (s *Store) Claim(ctx context.Context, consumer string, incident int64) ([]incidents.Effect, bool, error) {
	held, err := s.claim(ctx, consumer, incident)
	if err != nil || !held {
		return nil, held, err
	}
	effects, err := s.pending(ctx, consumer, incident)
	return effects, err == nil, err
}

func (s *Store) claim(ctx context.Context, consumer string, incident int64) (bool, error) {
	if !s.alive() {
		return false, nil // its own lease lapsed: the others may be doing this now
	}
	var owner string
	err := s.pool.QueryRow(ctx, `
		INSERT INTO outbox_claims (consumer, incident, owner, epoch, until) VALUES ($1, $2, $3, 1, now())
		ON CONFLICT (consumer, incident) DO UPDATE SET owner = EXCLUDED.owner, epoch = outbox_claims.epoch + 1
			WHERE outbox_claims.owner = EXCLUDED.owner
			   OR ($4 AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.owner = outbox_claims.owner AND r.until > now()))
		RETURNING owner`, consumer, incident, s.owner, s.mayTakeOver()).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // another live Sitrep has it
	}
	return err == nil && owner == s.owner, err
}

// fenced runs fn in a transaction that first checks this Sitrep still holds
// the claim on e's incident (when anyone holds one).
func (s *Store) fenced(ctx context.Context, e incidents.Effect, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `SELECT owner FROM outbox_claims WHERE consumer = $1 AND incident = $2 FOR UPDATE`, e.Consumer, e.Incident).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case owner != s.owner:
			return ErrNotClaimed
		}
		return fn(tx)
	})
}

// SaveEffect stores e's attempts, schedule and progress; a "changed"
// effect keeps the rev it has in the store.
func (s *Store) SaveEffect(ctx context.Context, e incidents.Effect) error {
	return s.fenced(ctx, e, func(tx pgx.Tx) error {
		rec, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE outbox SET record = CASE WHEN $4 THEN jsonb_set($5::jsonb, '{rev}', COALESCE(record->'rev', '0')) ELSE $5::jsonb END
			WHERE consumer = $1 AND incident = $2 AND seq = $3`, e.Consumer, e.Incident, seqText(e.Seq), e.Changed(), rec)
		return err
	})
}

// FinishEffect removes e, unless it is a "changed" effect marked again since
// it was read: then it runs once more, from now.
func (s *Store) FinishEffect(ctx context.Context, e incidents.Effect) error {
	return s.fenced(ctx, e, func(tx pgx.Tx) error {
		if e.Changed() {
			tag, err := tx.Exec(ctx, `UPDATE outbox SET record = record - 'attempts' - 'not_before' - 'last_error'
				WHERE consumer = $1 AND incident = $2 AND seq = $3 AND COALESCE((record->>'rev')::bigint, 0) <> $4`,
				e.Consumer, e.Incident, seqText(e.Seq), int64(e.Rev))
			if err != nil || tag.RowsAffected() > 0 {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE consumer = $1 AND incident = $2 AND seq = $3`, e.Consumer, e.Incident, seqText(e.Seq)); err != nil {
			return err
		}
		// the incident's last effect for this consumer: its claim goes too (claims do not pile up)
		_, err := tx.Exec(ctx, `DELETE FROM outbox_claims c WHERE c.consumer = $1 AND c.incident = $2 AND c.owner = $3
			AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.consumer = c.consumer AND o.incident = c.incident)`, e.Consumer, e.Incident, s.owner)
		return err
	})
}

// AddEffect queues e unless an effect with its key is pending.
func (s *Store) AddEffect(ctx context.Context, e incidents.Effect) error {
	if e.Created.IsZero() {
		e.Created = time.Now().UTC()
	}
	rec, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (consumer, incident, seq, record) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			e.Consumer, e.Incident, seqText(e.Seq), rec); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
		return err
	})
	if err == nil {
		s.signal()
	}
	return err
}

// heartbeat keeps this Sitrep alive in replicas until ctx ends, then
// leaves (its claims and envelopes are taken over at once), on a connection
// of its own. Each beat also wakes the runners: a claim whose owner died is
// seen without waiting for another write.
func (s *Store) heartbeat(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	once := func() error {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), beat)
		defer cancel()
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = pgx.ConnectConfig(c, s.pool.Config().ConnConfig.Copy()); err != nil {
				conn = nil
				return err
			}
		}
		_, err := conn.Exec(c, `INSERT INTO replicas (owner, until) VALUES ($1, now() + $2::interval)
			ON CONFLICT (owner) DO UPDATE SET until = EXCLUDED.until`, s.owner, Lease.String())
		if err != nil {
			conn.Close(c)
			conn = nil
		}
		return err
	}
	tick := func() {
		if err := once(); err != nil {
			s.beatErr.Store(&err)
			s.lastFail.Store(time.Now().UnixNano())
		} else {
			s.beatErr.Store(nil)
			s.lastBeat.Store(time.Now().UnixNano())
		}
		s.signal()
	}
	tick()
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if conn != nil {
				conn.Exec(c, `DELETE FROM replicas WHERE owner = $1`, s.owner)
				conn.Exec(c, `SELECT pg_notify($1, '')`, notifyChannel) // the others look again now
			}
			cancel()
			return
		case <-t.C:
			tick()
		}
	}
}

// mayTakeOver reports whether this Sitrep may take over what others hold:
// only while its own heartbeat is fresh and has not failed in the last two
// beats — after a database outage every heartbeat lapsed, and a Sitrep that
// has just reconnected must give the others time to beat again before it
// calls them dead.
func (s *Store) mayTakeOver() bool {
	now := time.Now().UnixNano()
	last, fail := s.lastBeat.Load(), s.lastFail.Load()
	return last != 0 && now-last < int64(Lease-beat) && now-fail > int64(2*beat)
}

// alive reports whether this Sitrep's own lease is still good: past it,
// the others may have taken its work over, so it claims nothing, not even
// its own, until it has beaten again.
func (s *Store) alive() bool {
	last := s.lastBeat.Load()
	return last != 0 && time.Now().UnixNano()-last < int64(Lease-beat)
}
