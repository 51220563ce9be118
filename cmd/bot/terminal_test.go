package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// screen is what a person at the terminal sees, as the bytes arrive.
type screen struct{ lockedBuffer }

// waitFor waits until the screen holds want after from bytes, and returns
// where it ends; it fails the test with the screen when the binary exits.
func (s *screen) waitFor(t *testing.T, from int, want string, exited <-chan struct{}) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		out := s.String()
		if from <= len(out) {
			if i := strings.Index(out[from:], want); i >= 0 {
				return from + i + len(want)
			}
		}
		select {
		case <-tick.C:
		case <-exited:
			t.Fatalf("the binary exited before showing %q; the screen:\n%q", want, s.String())
		case <-ctx.Done():
			t.Fatalf("the screen never showed %q; it shows:\n%q", want, out[min(from, len(out)):])
		}
	}
}

// TestTerminalFeelsLikeAShell drives the built binary on a pseudo-terminal
// as a person would: edits a line with Backspace and the arrows, recalls it
// with Up, clears one with Ctrl-C, sees a webhook's change above a clean
// prompt with no log record on screen, and leaves with quit; the history is
// there at the next start.
func TestTerminalFeelsLikeAShell(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sitrep.db")
	addr := freeAddr(t)
	start := func() (*os.File, *screen, *exec.Cmd, chan struct{}) {
		cmd := exec.Command(botBinary)
		cmd.Env = botEnv(db, addr)
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
		if err != nil {
			t.Fatal(err)
		}
		s := &screen{}
		exited := make(chan struct{})
		go func() { io.Copy(s, tty); cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited; tty.Close() })
		return tty, s, cmd, exited
	}
	tty, s, cmd, exited := start()
	at := s.waitFor(t, 0, "Logs go to "+filepath.Join(dir, "sitrep.log")+".", exited) // absolute
	// What changes what works is on screen before the prompt, not only in the log.
	at = s.waitFor(t, at, "warning: no runbooks: the directory does not exist", exited)
	at = s.waitFor(t, at, "sitrep> ", exited)
	typeIn := func(keys string) { tty.WriteString(keys) }

	typeIn("declare P3 disk fullX\x7f" + "\x1b[D\x1b[D\x1b[D\x1b[D" + "very \r") // Backspace, Left ×4, insert
	at = s.waitFor(t, at, "Declared INC-1 · disk very full", exited)
	typeIn("\x1b[A\r") // Up: the same line again
	at = s.waitFor(t, at, "Declared INC-2 · disk very full", exited)
	typeIn("resolve INC-1\x03") // Ctrl-C clears it: nothing is resolved
	at = s.waitFor(t, at, "sitrep> ", exited)
	typeIn("list\r")
	at = s.waitFor(t, at, "2 open incidents:", exited)

	// An alert arrives while the prompt waits: shown above a redrawn prompt.
	am, err := os.ReadFile("../../../shared/samples/alertmanager/alertmanager_bot_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/webhooks/alertmanager", "application/json", bytes.NewReader(am))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	at = s.waitFor(t, at, "INC-3 · ", exited)
	at = s.waitFor(t, at, "sitrep> ", exited)
	if shown := s.String(); strings.Contains(shown, "level=") || strings.Contains(shown, "\x1b[2J") {
		t.Errorf("a log record or a screen clear reached the terminal:\n%q", shown)
	}
	typeIn("bogus\r") // a typo: the person saw the error; leaving is still a clean exit
	at = s.waitFor(t, at, `unknown command "bogus"`, exited)
	typeIn("quit\r")
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("quit did not end the session:\n%q", s.String())
	}
	if cmd.ProcessState.ExitCode() != 0 || !strings.HasSuffix(s.String(), "\r\n") {
		t.Errorf("exit %d; the screen ends %q (the shell's prompt needs a line of its own)", cmd.ProcessState.ExitCode(), s.String()[max(0, len(s.String())-20):])
	}
	if logs, _ := os.ReadFile(filepath.Join(dir, "sitrep.log")); !bytes.Contains(logs, []byte("level=")) {
		t.Errorf("the log file has no records: %q", logs)
	}

	// The next start remembers: Up twice is the first declare again.
	tty, s, _, exited = start()
	at = s.waitFor(t, 0, "sitrep> ", exited)
	tty.WriteString("\x1b[A\x1b[A\x1b[A\x1b[A\r") // quit, bogus, list, declare
	s.waitFor(t, at, "Declared INC-4 · disk very full", exited)
	tty.WriteString("\x04") // Ctrl-D leaves too
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("Ctrl-D did not end the session:\n%q", s.String())
	}
}
