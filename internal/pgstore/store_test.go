package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/pgstore/pgtest"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/storetest"
)

var cluster *pgtest.Cluster

// TestMain starts one private PostgreSQL cluster for the package; each test
// gets a database of its own. Without PostgreSQL the tests skip, except
// under CI, where .ci/run installs it and its absence fails.
func TestMain(m *testing.M) {
	if pgtest.Bin() == "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "PostgreSQL is not installed; .ci/run should have installed it")
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "skipping: PostgreSQL is not installed (apt-get install postgresql)")
		os.Exit(0)
	}
	var err error
	if cluster, err = pgtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

func open(t *testing.T) *pgstore.Store {
	t.Helper()
	url, err := cluster.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the store contract every incidents.Store keeps against
// a real PostgreSQL.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) incidents.Store { return open(t) })
}

// TestMigrations: applied once, recorded, and a second start (another
// replica) applies nothing again.
func TestMigrations(t *testing.T) {
	ctx := context.Background()
	url, err := cluster.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 { // replicas starting together: the advisory lock lets one migrate
		go func() {
			s, err := pgstore.Open(ctx, url, pgstore.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.Migrations(ctx)
	if err != nil || len(ms) == 0 || ms[0].Version != 1 || ms[0].AppliedAt.IsZero() {
		t.Errorf("migrations %+v %v", ms, err)
	}
}

// TestDurableContract runs the outbox and inbox contract against PostgreSQL.
func TestDurableContract(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) storetest.Durable {
		url, err := cluster.NewDatabase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s, err := pgstore.Open(context.Background(), url, pgstore.Options{Subscriptions: storetest.Subscriptions})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReportingViews: the documented views answer from the incidents —
// drills left out, a private title hidden, response times by severity.
func TestReportingViews(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC) // a Wednesday
	who := incidents.Actor{Name: "@a", Source: "console"}
	for _, d := range []incidents.Declaration{
		{Title: "checkout down", Service: "checkout", Signals: incidents.Signals{Explicit: incidents.P1}},
		{Title: "breach", Service: "checkout", Private: true, Signals: incidents.Signals{Explicit: incidents.P1}},
		{Title: "game day", Drill: true, Signals: incidents.Signals{Explicit: incidents.P1}},
	} {
		inc, events, _ := incidents.Declare(d, who, at)
		if err := s.Create(ctx, inc, events); err != nil {
			t.Fatal(err)
		}
		s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Ack(who, at.Add(2*time.Minute)) })
		s.Update(ctx, inc.ID, func(inc *incidents.Incident) ([]incidents.Event, error) {
			return inc.Resolve("", who, at.Add(time.Hour))
		})
	}
	conn, err := pgx.Connect(ctx, s.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var titles []string
	rows, _ := conn.Query(ctx, `SELECT title FROM sitrep_incidents ORDER BY id`)
	titles, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || fmt.Sprint(titles) != "[checkout down (private)]" {
		t.Errorf("sitrep_incidents titles %v %v", titles, err)
	}
	var n int
	var mtta, mttr float64
	if err := conn.QueryRow(ctx, `SELECT incidents, mtta_seconds_median, mttr_seconds_median FROM sitrep_response_times WHERE severity = 'P1'`).Scan(&n, &mtta, &mttr); err != nil || n != 2 || mtta != 120 || mttr != 3600 {
		t.Errorf("P1 response times: %d %v %v %v", n, mtta, mttr, err)
	}
	if err := conn.QueryRow(ctx, `SELECT incidents FROM sitrep_incidents_per_service WHERE service = 'checkout'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("per service: %d %v", n, err)
	}
}

// TestAChangedCadenceRefilesTheDueIndex: reopened under another update
// cadence, the next reminders follow it (as bbolt's due index does).
func TestAChangedCadenceRefilesTheDueIndex(t *testing.T) {
	ctx := context.Background()
	url, err := cluster.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	who := incidents.Actor{Name: "@a", Source: "console"}
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "x", Signals: incidents.Signals{Explicit: incidents.P2}}, who, at)
	s.Create(ctx, inc, events)
	s.Update(ctx, 1, func(inc *incidents.Incident) ([]incidents.Event, error) { return inc.Ack(who, at) }) // nudge due in 1h
	s.Close()
	incidents.SetUpdateCadence(map[incidents.Severity]time.Duration{incidents.P2: 10 * time.Minute})
	defer incidents.SetUpdateCadence(nil)
	s, err = pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, _, err := s.Due(ctx, at.Add(15*time.Minute))
	if err != nil || len(ids) != 1 {
		t.Errorf("due after the cadence changed to 10m: %v %v", ids, err)
	}
}

// TestImportContract: what a copy into PostgreSQL keeps.
func TestImportContract(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T) storetest.Importing { return open(t) })
}

// TestReleasesContract runs the releases.Store contract against PostgreSQL.
func TestReleasesContract(t *testing.T) {
	storetest.RunReleases(t, func(t *testing.T) releases.Store { return open(t) })
}
