package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/storetest"
)

// TestContract runs the store contract every incidents.Store keeps against
// a bbolt file.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) incidents.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestDurableContract runs the outbox and inbox contract against a bbolt file.
func TestDurableContract(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) storetest.Durable {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{Subscriptions: storetest.Subscriptions})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestImportContract: what a copy into a bbolt file keeps.
func TestImportContract(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T) storetest.Importing {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReleasesContract runs the releases.Store contract against a bbolt file.
func TestReleasesContract(t *testing.T) {
	storetest.RunReleases(t, func(t *testing.T) releases.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
