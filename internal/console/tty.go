package console

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// HistoryKept is how many lines the history file keeps.
const HistoryKept = 1000

// RunTerminal is Run on a terminal, with golang.org/x/term's line editor:
// arrows, Home/End, Ctrl-A/E/K/U/W, history with Up/Down kept in
// historyPath between runs (none when empty), Ctrl-C clearing the line,
// Ctrl-D, quit or exit leaving with a newline. Everything the console
// prints — replies, reminders, other people's changes — goes above the
// prompt, which the editor redraws.
func (c *Console) RunTerminal(ctx context.Context, tty *os.File, historyPath string) error {
	fd := int(tty.Fd())
	saved, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(fd, saved)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{ctrlC{tty}, tty}, "")
	resize := func() {
		if w, h, err := term.GetSize(fd); err == nil {
			t.SetSize(w, h)
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			resize()
		}
	}()
	h := loadHistory(historyPath)
	t.History = h
	c.mu.Lock()
	c.out, c.tty = t, true
	c.mu.Unlock()

	prompts := make(chan string)
	lines := make(chan line, 1)
	go func() {
		for p := range prompts {
			t.SetPrompt(p)
			s, err := t.ReadLine()
			lines <- line{text: s, err: err}
		}
	}()
	err = c.loop(ctx, func(prompt string) <-chan line {
		prompts <- prompt
		return lines
	})
	fmt.Fprint(tty, "\r\n") // the shell's prompt starts on a line of its own
	if errors.Is(err, ErrCommandsFailed) {
		return nil // a person saw each error as it came; only a script needs the status
	}
	return err
}

// ctrlC reads a terminal in raw mode, where Ctrl-C is a byte, not a signal:
// x/term's editor would end the session on it, so it becomes End, kill to
// the start of the line, Enter — the line is cleared and a fresh prompt
// drawn, as in a shell.
type ctrlC struct{ r io.Reader }

func (c ctrlC) Read(p []byte) (int, error) {
	buf := make([]byte, max(1, len(p)/3))
	n, err := c.r.Read(buf)
	out := bytes.ReplaceAll(buf[:n], []byte{3}, []byte{5, 21, '\r'})
	return copy(p, out), err
}

// history is x/term's History kept in a file: loaded at start, each new
// line appended. A file that cannot be read or written leaves history in
// memory only.
type history struct {
	mu      sync.Mutex
	entries []string // oldest first
	file    *os.File
}

func loadHistory(path string) *history {
	h := &history{}
	if path == "" {
		return h
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				h.entries = append(h.entries, l)
			}
		}
		f.Close()
	}
	if len(h.entries) > HistoryKept {
		h.entries = h.entries[len(h.entries)-HistoryKept:]
		os.WriteFile(path, []byte(strings.Join(h.entries, "\n")+"\n"), 0o600) // compacted
	}
	h.file, _ = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	return h
}

// Add keeps a line, but not answers to a prompt (a choice's number, y/n).
func (h *history) Add(entry string) {
	entry = strings.TrimSpace(entry)
	h.mu.Lock()
	defer h.mu.Unlock()
	if answer(entry) || (len(h.entries) > 0 && h.entries[len(h.entries)-1] == entry) {
		return
	}
	h.entries = append(h.entries, entry)
	if len(h.entries) > HistoryKept {
		h.entries = h.entries[1:]
	}
	if h.file != nil {
		fmt.Fprintln(h.file, entry)
	}
}

func (h *history) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

func (h *history) At(i int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.entries[len(h.entries)-1-i]
}

func answer(s string) bool {
	switch strings.ToLower(s) {
	case "", "y", "yes", "n", "no":
		return true
	}
	return strings.Trim(s, "0123456789") == ""
}
