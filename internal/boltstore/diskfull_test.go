package boltstore_test

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// fileLimit is the most the disk-full child may write to a file.
const fileLimit = 512 << 10

// childDiskFull writes until the file can grow no more (RLIMIT_FSIZE, as on
// a full disk), reporting each committed write and each failure.
func childDiskFull(path string) int {
	signal.Ignore(syscall.SIGXFSZ) // report EFBIG as an error instead of dying
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: fileLimit, Max: fileLimit}); err != nil {
		fmt.Println("error", err)
		return 1
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	inc, events, _ := incidents.Declare(incidents.Declaration{Title: "disk full"}, alice, t0)
	if err := s.Create(ctx, inc, events); err != nil {
		fmt.Println("error", err)
		return 1
	}
	failures := 0
	big := strings.Repeat("x", 3000)
	for i := 0; failures < 5 && i < 100000; i++ {
		text := fmt.Sprintf("%d %s", i, big)
		if _, _, err := s.Update(ctx, inc.ID, note(text)); err != nil {
			failures++
			fmt.Println("failed", err)
			continue
		}
		fmt.Println("committed", i)
	}
	if err := s.Ping(ctx); err != nil {
		fmt.Println("unready", err) // readiness says so while writes fail
	}
	if err := s.Close(); err != nil {
		fmt.Println("close", err)
	}
	return 0
}

// TestDiskFull: when the file cannot grow, writes fail with an error (no
// panic, no crash), and everything committed before is intact.
func TestDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.db")
	cmd, lines, _ := child(t, "diskfull", path)
	committed, failed := map[string]bool{}, 0
	var firstErr, unready string
	for lines.Scan() {
		f := strings.SplitN(lines.Text(), " ", 2)
		switch f[0] {
		case "committed":
			committed[f[1]] = true
		case "failed":
			failed++
			if firstErr == "" {
				firstErr = f[1]
			}
		case "unready":
			unready = f[1]
		default:
			t.Fatalf("child: %s", lines.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the writer died instead of failing cleanly: %v", err)
	}
	if !strings.Contains(unready, "the last write failed") {
		t.Errorf("readiness after failed writes: %q, want not ready", unready)
	}
	if failed == 0 || len(committed) == 0 {
		t.Fatalf("%d commits, %d failures: the limit was never reached", len(committed), failed)
	}
	t.Logf("disk full after %d committed writes; the write failed with: %s", len(committed), firstErr)
	s, err := boltstore.Open(path, boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("the database does not open after the disk filled: %v", err)
	}
	defer s.Close()
	found := 0
	s.Timeline(ctx, 1, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventNote && committed[strings.SplitN(ev.Message, " ", 2)[0]] {
			found++
		}
		return nil
	})
	if found != len(committed) {
		t.Errorf("%d of %d committed writes are there after the disk filled", found, len(committed))
	}
	if st, _ := os.Stat(path); st.Size() > fileLimit {
		t.Errorf("the file grew past the limit: %d", st.Size())
	}
}

// TestReadinessAfterAFailedWrite: a write that fails in the store makes
// the store unready; a refused change, a duplicate or a write to no
// incident — nothing committed — leaves it as it was, through Update and
// through Apply (the webhooks' path, a group commit); the next write that
// commits makes it ready again.
func TestReadinessAfterAFailedWrite(t *testing.T) {
	s := mustOpenStore(t, "")
	inc := mustDeclare(t, s, "Checkout error rate above 5%")
	update := func(change func(*incidents.Incident) ([]incidents.Event, error)) func() {
		return func() { s.Update(ctx, inc.ID, change) }
	}
	apply := func(w incidents.Write) func() { return func() { s.Apply(ctx, w) } }
	fail := func(*incidents.Incident) ([]incidents.Event, error) { return nil, errors.New("write failed") }
	refuse := func(*incidents.Incident) ([]incidents.Event, error) {
		return nil, incidents.Errorf(incidents.EConflict, "refused")
	}
	failCreate := incidents.Write{Link: incidents.Link{System: "test", Ref: "new"}, Create: func() (*incidents.Incident, []incidents.Event, error) {
		return nil, nil, errors.New("create failed")
	}}
	noIncident := incidents.Write{Link: incidents.Link{System: "test", Ref: "none"}, Change: memoNote("x")}
	stored := incidents.Write{ID: inc.ID, Dedup: "once", Change: memoNote("stored")}
	steps := []struct {
		name  string
		write func()
		ready bool
	}{
		{"a refused update", update(refuse), true},
		{"a failed update", update(fail), false},
		{"a refused update", update(refuse), false},
		{"an update that commits", update(note("it commits")), true},
		{"a failed create through Apply", apply(failCreate), false},
		{"an Apply to no incident", apply(noIncident), false},
		{"an Apply that commits", apply(stored), true},
		{"a failed create through Apply", apply(failCreate), false},
		{"a duplicate Apply", apply(stored), false},
		{"an Apply that commits", apply(incidents.Write{ID: inc.ID, Change: memoNote("again")}), true},
	}
	for i, st := range steps {
		st.write()
		if err := s.Ping(ctx); (err == nil) != st.ready {
			t.Errorf("after write %d, %s: Ping = %v, want ready %v", i, st.name, err, st.ready)
		}
	}
}
