// Package pgstore is incidents.Store on PostgreSQL (github.com/jackc/pgx/v5),
// for teams that run more than one Sitrep: the same contract as the bbolt
// store (internal/storetest runs against both). A change is one
// transaction holding the incident's row lock; a webhook's Write also holds
// transaction-scoped advisory locks on its dedup key and its link, so two
// deliveries of one alert group, on any replica, make one incident.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// DedupTTL is how long a deduplication key is remembered (as bbolt's).
const DedupTTL = 7 * 24 * time.Hour

// timelinePage is how many events Timeline reads per query.
const timelinePage = 512

// Store is incidents.Store on a PostgreSQL database.
type Store struct {
	pool  *pgxpool.Pool
	subs  []incidents.Subscription
	owner string // this Sitrep, in replicas and claims

	mu         sync.Mutex
	outboxCh   chan struct{} // closed at each write of effects, here or (NOTIFY) elsewhere
	beatErr    atomic.Pointer[error]
	lastBeat   atomic.Int64 // unix ns of the last heartbeat that was stored
	lastFail   atomic.Int64 // unix ns of the last that was not
	unreadable atomic.Int64
	stop       context.CancelFunc
	done       sync.WaitGroup
}

// Options tune Open.
type Options struct {
	// Subscriptions say which events imply effects, written to the outbox
	// in the same transaction as the events.
	Subscriptions []incidents.Subscription
	// Inspect opens the database only to look at it (bot migrate status):
	// no migration applied, no heartbeat, no listening.
	Inspect bool
}

var (
	_ incidents.Store    = (*Store)(nil)
	_ incidents.DueIndex = (*Store)(nil)
)

// Open connects to the database at url (postgres://…), applies the schema
// migrations it lacks, joins the Sitreps sharing it (a heartbeat) and
// returns the store.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("SITREP_DB: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 16) // the default follows the node's CPUs, not the pod's: too few for a storm
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if opt.Inspect {
		return &Store{pool: pool, owner: "inspect", outboxCh: make(chan struct{}), stop: func() {}}, nil
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := refile(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	var id [6]byte
	rand.Read(id[:])
	s := &Store{pool: pool, subs: opt.Subscriptions, owner: fmt.Sprintf("%s/%d/%x", host, os.Getpid(), id), outboxCh: make(chan struct{})}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.done.Add(2)
	go func() { defer s.done.Done(); s.heartbeat(bg) }()
	go func() { defer s.done.Done(); s.listen(bg) }()
	return s, nil
}

// ConnString is the database's connection string, password included: for
// a tool that looks at the database itself. Never log it.
func (s *Store) ConnString() string { return s.pool.Config().ConnString() }

// refile computes every incident's next reminder again when the reminder
// policy in force is not the one due_at was computed under (a cadence
// configured otherwise at a restart), under the migration lock so replicas
// starting together do it once.
func refile(ctx context.Context, pool *pgxpool.Pool) error {
	policy := incidents.ReminderPolicy()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		var was string
		err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'reminder_policy'`).Scan(&was)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if was == policy {
			return nil
		}
		if was != "" { // a new database has nothing to refile
			rows, err := tx.Query(ctx, `SELECT record FROM incidents WHERE open OR due_at IS NOT NULL`)
			if err != nil {
				return err
			}
			recs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			if err != nil {
				return err
			}
			for _, b := range recs {
				var inc incidents.Incident
				if json.Unmarshal(b, &inc) != nil {
					continue
				}
				var due *time.Time
				if at, ok := inc.NextReminder(); ok {
					due = &at
				}
				if _, err := tx.Exec(ctx, `UPDATE incidents SET due_at = $2 WHERE id = $1`, inc.ID, due); err != nil {
					return err
				}
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('reminder_policy', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, policy)
		return err
	})
}

// Owner is this Sitrep's name among the replicas.
func (s *Store) Owner() string { return s.owner }

// Close leaves the replicas (what this Sitrep claimed is taken over at
// once) and releases the connections.
func (s *Store) Close() error {
	s.stop()
	s.done.Wait()
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers and this Sitrep's heartbeat
// is recorded (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	if p := s.beatErr.Load(); p != nil {
		return fmt.Errorf("PostgreSQL: the heartbeat failed: %w", *p)
	}
	if !s.alive() {
		return errors.New("PostgreSQL: this Sitrep's heartbeat lease lapsed; the other replicas may take its work over")
	}
	return nil
}

func notFound(id int64) error {
	return incidents.Errorf(incidents.ENotFound, "no incident %s", incidents.FormatID(id))
}

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
	var b []byte
	err := tx.QueryRow(ctx, `SELECT record FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&b)
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

// Get returns incident id.
func (s *Store) Get(ctx context.Context, id int64) (*incidents.Incident, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM incidents WHERE id = $1`, id).Scan(&b)
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

// Unreadable is how many incident records List skipped because they do not
// decode (a field another version wrote differently).
func (s *Store) Unreadable() int64 { return s.unreadable.Load() }

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

var _ incidents.Importer = (*Store)(nil)

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
