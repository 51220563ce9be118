// Package console is the terminal adapter: it reads commands line by line
// (from a person or a pipe), runs them through the command router and prints
// the neutral replies, with buttons as numbered choices. It also shows what
// happens without being asked (reminders, webhook-driven changes).
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// Handler runs one request; *commands.Router is one.
type Handler interface {
	Handle(ctx context.Context, req commands.Request) commands.Reply
}

// Console is a chat session in a terminal.
type Console struct {
	handler Handler
	actor   incidents.Actor
	prompt  string

	mu       sync.Mutex // serialises output
	out      io.Writer
	errOut   io.Writer         // where error replies go (out unless ErrorsTo)
	tty      bool              // a line editor draws the prompt (RunTerminal)
	released map[int64]uint64  // each release's events shown so far (as Recorded counts them)
	failed   int               // commands answered with an error
	buttons  []commands.Button // the choices last shown, numbered from 1
	fileDir  string            // where images (graphs) are saved; text files are printed
}

// ErrorsTo sends error replies to w (stderr, for pipes: a script sees its
// output and its errors apart).
func (c *Console) ErrorsTo(w io.Writer) { c.errOut = w }

// ErrCommandsFailed is returned by Run when any command of the input was
// answered with an error, so a script can tell.
var ErrCommandsFailed = errors.New("failed")

// SaveFilesIn makes the console save image files (graphs) in dir.
func (c *Console) SaveFilesIn(dir string) { c.fileDir = dir }

var _ incidents.Notifier = (*Console)(nil)

// New returns a console that answers as actor on out. An empty prompt prints
// none (for pipes).
func New(h Handler, out io.Writer, actor incidents.Actor, prompt string) *Console {
	return &Console{handler: h, out: out, actor: actor, prompt: prompt}
}

// SetHandler sets the handler (the console is built before the router it
// feeds, since it is also one of the Service's notifiers).
func (c *Console) SetHandler(h Handler) { c.handler = h }

// MaxLine bounds one input line; longer lines are refused whole.
const MaxLine = 64 << 10

type line struct {
	text    string
	tooLong bool
	err     error
}

// Run reads lines from in (a pipe, a file) until EOF or quit, or until ctx
// ends. It returns ErrCommandsFailed (wrapped, with the count) when any
// command failed.
func (c *Console) Run(ctx context.Context, in io.Reader) error {
	lines := make(chan line)
	go readLines(in, lines)
	return c.loop(ctx, func(prompt string) <-chan line {
		c.print(prompt)
		return lines
	})
}

// greeting is the first thing the console says.
const greeting = "Sitrep — incident response in your terminal. Type help for commands; /incident is optional; quit, exit or Ctrl-D leaves.\n"

// loop runs commands from next, which shows a prompt and delivers the next
// line.
func (c *Console) loop(ctx context.Context, next func(prompt string) <-chan line) error {
	c.print(greeting)
	var pending *press
	for {
		var l line
		select {
		case <-ctx.Done():
			return c.result()
		case l = <-next(c.promptFor(pending)):
		}
		if l.err != nil {
			if errors.Is(l.err, io.EOF) {
				return c.result()
			}
			return fmt.Errorf("read input: %w", l.err)
		}
		if l.tooLong {
			pending = nil
			c.fail(fmt.Sprintf("error: that line is longer than %d bytes and was ignored\n", MaxLine))
			continue
		}
		text := strings.TrimSpace(l.text)
		if pending != nil {
			pending = c.continuePress(ctx, pending, text)
			continue
		}
		if text == "" {
			continue
		}
		if t := strings.ToLower(text); t == "quit" || t == "exit" {
			return c.result()
		}
		if n, err := strconv.Atoi(text); err == nil {
			pending = c.press(ctx, n)
			continue
		}
		c.run(ctx, text)
	}
}

// result is what the session returns: nil, or how many commands failed.
func (c *Console) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed > 0 {
		return fmt.Errorf("%s %w", say.Count(c.failed, "command", "commands"), ErrCommandsFailed)
	}
	return nil
}

func readLines(in io.Reader, out chan<- line) {
	r := bufio.NewReaderSize(in, 4096)
	for {
		var b strings.Builder
		tooLong := false
		for {
			chunk, isPrefix, err := r.ReadLine()
			if err != nil {
				if b.Len() > 0 && errors.Is(err, io.EOF) {
					break // a last line without a newline
				}
				out <- line{err: err}
				return
			}
			if b.Len()+len(chunk) > MaxLine {
				tooLong = true
			} else {
				b.Write(chunk)
			}
			if !isPrefix {
				break
			}
		}
		out <- line{text: b.String(), tooLong: tooLong}
	}
}

func (c *Console) run(ctx context.Context, text string) {
	reply := c.handler.Handle(ctx, commands.Request{Actor: c.actor, Text: text})
	if f := reply.File; f != nil && strings.HasSuffix(f.Name, ".png") {
		reply.File = nil
		reply.Lines = append(reply.Lines, c.save(f))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(reply.Buttons) > 0 {
		c.buttons = reply.Buttons
	}
	out := c.out
	if reply.Error {
		out = c.failure()
	}
	fmt.Fprint(out, Visible(Render(reply)))
	if name, _, _ := strings.Cut(strings.TrimPrefix(text, "/incident "), " "); strings.EqualFold(name, "help") && !reply.Error {
		fmt.Fprint(out, "Leave with quit, exit or Ctrl-D.\n")
	}
}

// press is a button press waiting for its input or confirmation.
type press struct {
	button commands.Button
	input  string
	asked  bool // the input has been given; now waiting for the confirmation
}

func (c *Console) press(ctx context.Context, n int) *press {
	c.mu.Lock()
	buttons := c.buttons
	c.mu.Unlock()
	if n < 1 || n > len(buttons) {
		if len(buttons) == 0 {
			c.fail(fmt.Sprintf("error: no choice %d: no choices are shown yet\n", n))
		} else {
			c.fail(fmt.Sprintf("error: no choice %d: pick 1 to %d\n", n, len(buttons)))
		}
		return nil
	}
	p := &press{button: buttons[n-1], asked: buttons[n-1].Input == ""}
	return c.advance(ctx, p)
}

// advance runs the press when it has what it needs, or returns it to wait.
func (c *Console) advance(ctx context.Context, p *press) *press {
	if !p.asked || p.button.Confirm != "" {
		return p
	}
	c.run(ctx, strings.TrimSpace(p.button.Command+" "+p.input))
	return nil
}

func (c *Console) continuePress(ctx context.Context, p *press, text string) *press {
	if !p.asked {
		if text == "" && strings.HasPrefix(p.button.Input, "<") {
			c.print("cancelled\n")
			return nil
		}
		p.input, p.asked = text, true
		return c.advance(ctx, p)
	}
	if strings.EqualFold(text, "y") || strings.EqualFold(text, "yes") {
		p.button.Confirm = ""
		return c.advance(ctx, p)
	}
	c.print("cancelled\n")
	return nil
}

// promptFor is the prompt for the next line: the press waiting for input or
// a confirmation, else the console's own.
func (c *Console) promptFor(p *press) string {
	switch {
	case p != nil && !p.asked:
		return Visible(fmt.Sprintf("%s %s: ", p.button.Command, p.button.Input))
	case p != nil:
		return Visible(p.button.Confirm + " [y/N] ")
	}
	return c.prompt
}

func (c *Console) print(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprint(c.out, Visible(s))
}

// fail prints an error of the console's own and counts it.
func (c *Console) fail(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprint(c.failure(), Visible(s))
}

// failure counts a failed command and returns where its error goes; c.mu
// is held.
func (c *Console) failure() io.Writer {
	c.failed++
	if c.errOut != nil {
		return c.errOut
	}
	return c.out
}

// Visible shows the control characters in text from outside as caret
// notation (ESC as ^[, BEL as ^G, DEL as ^?) and C1 controls as <U+0085>,
// and drops the bidi controls that reorder text: an alert summary cannot
// clear the screen, retitle the window or write the clipboard (OSC 52).
// Sitrep itself writes no escape sequences.
func Visible(s string) string {
	clean := true
	for _, r := range s {
		if say.Hidden(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !say.Hidden(r):
			b.WriteRune(r)
		case r < 0x20:
			b.WriteByte('^')
			b.WriteByte(byte(r) + '@')
		case r == 0x7f:
			b.WriteString("^?")
		case r < 0xa0:
			fmt.Fprintf(&b, "<U+%04X>", r)
		} // bidi controls: dropped
	}
	return b.String()
}

// Notify shows changes this console did not ask for: reminders, and changes
// made from elsewhere (webhooks, other adapters).
func (c *Console) Notify(ctx context.Context, inc *incidents.Incident, events []incidents.Event) {
	if !inc.CanSee(c.actor) {
		return // a private incident shows only to the people in it
	}
	var b strings.Builder
	c.mu.Lock()
	tty := c.tty
	c.mu.Unlock()
	if !tty {
		b.WriteString("\n") // off the line a pipe's prompt left; a line editor clears its own
	}
	for _, ev := range events {
		if ev.Source == c.actor.Source && ev.Actor == c.actor.Name {
			continue
		}
		if ev.Kind == incidents.EventReminder && ev.Fields["about"] != "" {
			fmt.Fprintf(&b, "📝 %s\n", oneLine.Replace(ev.Message))
			continue
		}
		if ev.Kind == incidents.EventNudge {
			fmt.Fprintf(&b, "✍️ %s. Post one: update %s <message>\n", oneLine.Replace(ev.Message), inc.Key())
			continue
		}
		if ev.Kind == incidents.EventReminder { // the message names the incident; the title says which one it is
			fmt.Fprintf(&b, "⏰ %s — %s. Acknowledge: ack %s\n", oneLine.Replace(ev.Message), oneLine.Replace(inc.Title), inc.Key())
			continue
		}
		fmt.Fprintf(&b, "%s · %s\n", inc.Key(), oneLine.Replace(say.EventLine(ev)))
	}
	if b.Len() <= 1 {
		return
	}
	if !tty { // a line editor redraws its own prompt below what is printed
		b.WriteString(c.prompt)
	}
	c.print(b.String())
}

// NotifyRelease shows a release's new events (not the ones this terminal's
// own commands made: their replies showed them), as it shows incidents'.
func (c *Console) NotifyRelease(_ context.Context, r *releases.Release) {
	c.mu.Lock()
	if c.released == nil {
		c.released = map[int64]uint64{}
	}
	seen, known := c.released[r.ID]
	if !known {
		seen = max(r.Recorded, 1) - 1 // first heard of now: its newest event only
	}
	c.released[r.ID] = r.Recorded
	tty := c.tty
	c.mu.Unlock()
	var b strings.Builder
	if !tty {
		b.WriteString("\n")
	}
	for _, ev := range r.After(seen) { // counted in Recorded: the timeline keeps only its last events
		if ev.Actor == c.actor.Name && c.actor.Name != "" {
			continue
		}
		fmt.Fprintf(&b, "%s · %s %s\n", r.Key(), ev.At.UTC().Format("15:04:05"), oneLine.Replace(ev.Text))
	}
	if b.Len() <= 1 {
		return
	}
	if !tty {
		b.WriteString(c.prompt)
	}
	c.print(b.String())
}

// save writes an image to the file directory and says where it is.
func (c *Console) save(f *commands.File) string {
	dir := c.fileDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "graph not saved: " + err.Error()
	}
	path := filepath.Join(dir, filepath.Base(f.Name))
	if err := os.WriteFile(path, f.Content, 0o644); err != nil {
		return "graph not saved: " + err.Error()
	}
	return "graph saved to " + path
}
