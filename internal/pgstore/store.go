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
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

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
	// Alive from the start: the first heartbeat is stored before Open returns.
	if _, err := pool.Exec(ctx, `INSERT INTO replicas (owner, until) VALUES ($1, now() + $2::interval)
		ON CONFLICT (owner) DO UPDATE SET until = EXCLUDED.until`, s.owner, Lease.String()); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL: join the replicas: %w", err)
	}
	s.lastBeat.Store(time.Now().UnixNano())
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

// Unreadable is how many incident records List skipped because they do not
// decode (a field another version wrote differently).
func (s *Store) Unreadable() int64 { return s.unreadable.Load() }

var _ incidents.Importer = (*Store)(nil)
