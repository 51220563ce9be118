package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/pgstore/pgtest"
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
