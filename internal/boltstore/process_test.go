package boltstore_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/tally"
)

// The tests below start this test binary again as a child process that
// holds or writes the database; the child's role is in SITREP_TEST_CHILD.
func TestMain(m *testing.M) {
	switch os.Getenv("SITREP_TEST_CHILD") {
	case "hold":
		os.Exit(childHold(os.Getenv("SITREP_TEST_DB")))
	case "write":
		os.Exit(childWrite(os.Getenv("SITREP_TEST_DB")))
	case "diskfull":
		os.Exit(childDiskFull(os.Getenv("SITREP_TEST_DB")))
	case "commits":
		os.Exit(childCommits(os.Getenv("SITREP_TEST_DB"), os.Getenv("SITREP_TEST_KIND"), os.Getenv("SITREP_TEST_NOSYNC") == "1"))
	}
	os.Exit(m.Run())
}

// childHold opens the database, says so, and holds it until stdin closes.
func childHold(path string) int {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer s.Close()
	fmt.Println("holding")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// childWrite declares incidents and adds notes as fast as it can, printing
// each write only after Update has returned (committed and fsynced).
func childWrite(path string) int {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		inc, events, _ := incidents.Declare(incidents.Declaration{Title: fmt.Sprintf("incident %d", i)}, alice, t0)
		if err := s.Create(ctx, inc, events); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Fprintf(out, "declared %d\n", inc.ID)
		for j := 0; j < 5; j++ {
			text := fmt.Sprintf("note %d.%d", inc.ID, j)
			if _, _, err := s.Update(ctx, inc.ID, note(text)); err != nil {
				fmt.Println("error", err)
				return 1
			}
			fmt.Fprintf(out, "noted %d %s\n", inc.ID, text)
		}
		out.Flush()
	}
}

// writeKinds are the acknowledged writes the durability check counts:
// each is answered to its sender only after it returns.
var writeKinds = []string{"declare", "apply", "receive"}

// writesOfAKind is how many writes a commits child makes.
const writesOfAKind = 40

// childCommits makes writesOfAKind writes of one kind, one at a time — a declare, a
// webhook's apply to an incident a seed child declared, a Slack envelope
// stored before its ack — and reports how many were acknowledged
// (returned without error).
func childCommits(path, kind string, noSync bool) int {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer s.Close()
	boltstore.SetNoSync(s, noSync)
	acked := 0
	for i := range writesOfAKind {
		var err error
		switch kind {
		case "declare", "seed":
			inc, events, _ := incidents.Declare(incidents.Declaration{Title: fmt.Sprintf("incident %d", i)}, alice, t0)
			err = s.Create(ctx, inc, events)
		case "apply":
			_, err = s.Apply(ctx, incidents.Write{ID: int64(i + 1), Dedup: fmt.Sprintf("pd-%d", i), Change: memoNote("webhook")})
		case "receive":
			_, err = s.Receive(ctx, incidents.Envelope{Key: uint64(i + 1), Source: "slack", ID: fmt.Sprint(i), Type: "slash_commands", Payload: []byte("{}"), At: t0})
		default:
			err = fmt.Errorf("no write kind %q", kind)
		}
		if err == nil {
			acked++
		}
	}
	fmt.Println("acked", acked)
	return 0
}

// syncsPerWrite runs the commits child for one kind of write under strace
// and returns the fsync/fdatasync calls it made per acknowledged write.
// An apply's incidents are declared first by a seed child, untraced.
func syncsPerWrite(t *testing.T, kind string, noSync bool) float64 {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	run := func(kind string, noSync bool, tracer ...string) {
		env := "0"
		if noSync {
			env = "1"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		if len(tracer) > 0 {
			cmd = exec.Command(tracer[0], append(tracer[1:], os.Args[0], "-test.run=^$")...)
		}
		cmd.Env = append(os.Environ(), "SITREP_TEST_CHILD=commits", "SITREP_TEST_KIND="+kind, "SITREP_TEST_DB="+db, "SITREP_TEST_NOSYNC="+env)
		out, err := cmd.Output()
		if err != nil || string(out) != fmt.Sprintf("acked %d\n", writesOfAKind) {
			t.Fatalf("%s child: %v\n%s", kind, err, out)
		}
	}
	if kind == "apply" {
		run("seed", false)
	}
	trace := filepath.Join(dir, "strace.txt")
	run(kind, noSync, "strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o", trace) // every write acknowledged
	summary, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	syncs := 0
	for _, line := range strings.Split(string(summary), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && (f[len(f)-1] == "fsync" || f[len(f)-1] == "fdatasync") {
			var n int
			fmt.Sscan(f[3], &n) // % time, seconds, usecs/call, calls, [errors,] syscall
			syncs += n
		}
	}
	return float64(syncs) / writesOfAKind
}

// TestEveryAcknowledgedWriteIsSynced: the crash tests kill with SIGKILL,
// which the page cache survives, so they prove atomicity, not durability.
// This counts fsync/fdatasync per acknowledged write under strace, for
// each kind of write on its own (a total would let one kind's syncs hide
// another's none): at least one each. With NoSync forced for that kind
// the count must fall under one, or the check proves nothing.
func TestEveryAcknowledgedWriteIsSynced(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed (.ci/run installs it)")
	}
	for _, kind := range writeKinds {
		synced := syncsPerWrite(t, kind, false)
		unsynced := syncsPerWrite(t, kind, true)
		t.Logf("%-8s fsync+fdatasync per acknowledged write: %.2f; with NoSync forced: %.2f", kind, synced, unsynced)
		if synced < 1 {
			t.Errorf("%s: %.2f syncs per acknowledged write: an acknowledged write can be lost to a power cut", kind, synced)
		}
		if unsynced >= 1 {
			t.Errorf("%s: with NoSync forced the check still counts %.2f syncs per write: it cannot tell", kind, unsynced)
		}
	}
}

func child(t *testing.T, role, path string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SITREP_TEST_CHILD="+role, "SITREP_TEST_DB="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(stdout), stdin
}

func TestLockTimeoutNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	_, lines, stdin := child(t, "hold", path)
	if !lines.Scan() || lines.Text() != "holding" {
		t.Fatalf("child: %q %v", lines.Text(), lines.Err())
	}
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("open of a held file: %v", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another sitrep") {
		t.Errorf("the error does not name the file or the cause: %v", err)
	}
	stdin.Close() // the other process lets go
	s, err := boltstore.Open(path, boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open after release: %v", err)
	}
	s.Close()
}

// TestCrashKeepsEveryCommittedWrite kills a writing process with SIGKILL in
// the middle of its writes, then checks that every write it had reported as
// committed is in the file, and that the file opens cleanly.
func TestCrashKeepsEveryCommittedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	var c tally.Count
	defer func() { c.Report(t) }()
	for round := 0; round < 3; round++ { // crash the same file repeatedly
		cmd, lines, _ := child(t, "write", path)
		declared := map[int64]bool{}
		noted := map[int64][]string{}
		for lines.Scan() && len(declared) < 40 {
			var id int64
			var text string
			switch f := strings.SplitN(lines.Text(), " ", 3); f[0] {
			case "declared":
				fmt.Sscan(f[1], &id)
				declared[id] = true
			case "noted":
				fmt.Sscan(f[1], &id)
				text = f[2]
				noted[id] = append(noted[id], text)
			default:
				t.Fatalf("child: %s", lines.Text())
			}
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred close, no flush
			t.Fatal(err)
		}
		cmd.Wait()

		s, err := boltstore.Open(path, boltstore.Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		lost := 0
		for id := range declared {
			var have []string
			if err := s.Timeline(ctx, id, func(ev incidents.Event) error {
				if ev.Kind == incidents.EventNote {
					have = append(have, ev.Message)
				}
				return nil
			}); err != nil {
				lost++
				continue
			}
			if len(have) < len(noted[id]) || strings.Join(have[:len(noted[id])], "|") != strings.Join(noted[id], "|") {
				lost++
			}
		}
		s.Close()
		c.Tried += len(declared)
		c.Accepted += len(declared) // each reported committed by the child
		c.Lost += lost
		if lost > 0 {
			t.Fatalf("round %d: %d of %d reported incidents lost writes after kill -9", round, lost, len(declared))
		}
		t.Logf("round %d: %d incidents and their notes survived kill -9", round, len(declared))
	}
}
