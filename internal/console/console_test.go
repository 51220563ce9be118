package console_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/console"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

var me = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}

// openStore is a store in a temporary file, closed after the test.
func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func session(t *testing.T, input string) (string, *incidents.Service) {
	t.Helper()
	store := openStore(t)
	quiet := slog.New(slog.DiscardHandler)
	var out bytes.Buffer
	c := console.New(nil, &out, me, "")
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet, Notifiers: []incidents.Notifier{c},
		Clock: incidents.NewManualClock(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))})
	c.SetHandler(commands.NewRouter(svc, quiet))
	if err := c.Run(context.Background(), strings.NewReader(input)); err != nil && !errors.Is(err, console.ErrCommandsFailed) {
		t.Fatal(err)
	}
	return out.String(), svc
}

func TestButtonsAreNumberedChoices(t *testing.T) {
	out, svc := session(t, strings.Join([]string{
		"/incident declare P2 Checkout error rate above 5%",
		"1",                       // Acknowledge
		"1",                       // now Severity…: asks for input
		"P1 every region failing", // the input
		"2",                       // Post update…: asks for the update
		"rolling back 3.2.0",      // the update
		"6",                       // Resolve: asks to confirm
		"n",                       // not now
		"6", "yes",                // resolve
		"9", // no such choice
	}, "\n")) // no final newline: the last line still counts
	for _, want := range []string{
		"🚨 Declared INC-1 · Checkout error rate above 5%",
		"[1] Acknowledge  [2] Severity…  [3] Post update…  [4] Status…  [5] Assign lead…  [6] Timeline  [7] Resolve   (type a number to press)",
		"update INC-1 [identified|monitoring] <message>: ✓ INC-1 update posted (INVESTIGATING): rolling back 3.2.0",
		"✓ INC-1 acknowledged by @alice; lead is @alice",
		"severity INC-1 <P1-P4> [reason]: ✓ INC-1 is now P1 Critical",
		"Resolve INC-1? [y/N] cancelled",
		"Resolve INC-1? [y/N] ✓ INC-1 resolved by @alice",
		"[1] Reopen  [2] Timeline",
		"error: no choice 9: pick 1 to 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	inc, err := svc.Get(context.Background(), 1)
	if err != nil || inc.Open() || inc.Severity != incidents.P1 || inc.SeverityReason != "every region failing" {
		t.Errorf("incident after the session: %+v %v", inc, err)
	}
}

func TestConsoleEdgeCases(t *testing.T) {
	out, _ := session(t, strings.Join([]string{
		"1", // nothing shown yet
		"",  // blank lines are ignored
		strings.Repeat("x", console.MaxLine+10),
		"declare P3 search slow",
		"2",   // Severity…
		"",    // an empty required input cancels
		"ack", // no id outside a war room
		"help",
	}, "\n")+"\n")
	for _, want := range []string{
		"error: no choice 1: no choices are shown yet",
		"error: that line is longer than 65536 bytes and was ignored",
		"severity INC-1 <P1-P4> [reason]: cancelled",
		"error: which incident? give its id (INC-7 or 7) or run this in its war room (open: INC-1) (usage: ack [INC-n])",
		"declare [--private] [--drill] [P1-P4] <title>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNotifyShowsWhatOthersDid(t *testing.T) {
	var out bytes.Buffer
	c := console.New(nil, &out, me, "sitrep> ")
	inc := &incidents.Incident{ID: 3, Title: "API down", Severity: incidents.P1}
	c.Notify(context.Background(), inc, []incidents.Event{
		{Kind: incidents.EventNote, Actor: me.Name, Source: me.Source, Message: "mine"},
		{Kind: incidents.EventReminder, Actor: "sitrep", Source: "sitrep", Message: "INC-3 (P1) is still unacknowledged after 5m0s"},
		{Kind: incidents.EventAcknowledged, Actor: "Jane", Source: "pagerduty", At: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)},
		{Kind: incidents.EventReminder, Actor: "sitrep", Source: "sitrep", Message: "INC-3 has no postmortem yet", Fields: map[string]string{"about": "document"}},
		{Kind: incidents.EventNudge, Actor: "sitrep", Source: "sitrep", Message: "INC-3 has had no status update for 31m since it was declared (P1 incidents get one every 30m): @bob, post one for the people waiting"},
	})
	got := out.String()
	if strings.Contains(got, "mine") {
		t.Error("the console echoed its own change")
	}
	for _, want := range []string{"⏰ INC-3 (P1) is still unacknowledged after 5m0s — API down. Acknowledge: ack INC-3", "INC-3 · 2026-11-26 03:00:00  Jane (pagerduty)", "📝 INC-3 has no postmortem yet\n", "✍️ INC-3 has had no status update for 31m since it was declared (P1 incidents get one every 30m): @bob, post one for the people waiting. Post one: update INC-3 <message>\n", "sitrep> "} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
}

// TestOutsideTextCannotDriveTheTerminal: an alert summary with escape
// sequences — clear the screen (ESC[2J), set the window title (OSC 0),
// write the clipboard (OSC 52) — and a bidi override is printed as visible
// text, in a change from elsewhere and in a reply alike.
func TestOutsideTextCannotDriveTheTerminal(t *testing.T) {
	hostile := "DB down \x1b[2J\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07 \u202egnp.exe \u009b31m"
	var out bytes.Buffer
	c := console.New(nil, &out, me, "sitrep> ")
	inc := &incidents.Incident{ID: 3, Title: hostile, Severity: incidents.P1}
	c.Notify(context.Background(), inc, []incidents.Event{{Kind: incidents.EventAlert, Actor: "alertmanager", Source: "alertmanager", Message: hostile}})
	replies, _ := session(t, "declare P2 "+hostile+"\nlist\n")
	for _, got := range []string{out.String(), replies} {
		if strings.ContainsAny(got, "\x1b\x07\u202e\u009b") {
			t.Errorf("a control character reached the terminal: %q", got)
		}
		if !strings.Contains(got, "^[[2J") || !strings.Contains(got, "^[]52;c;") {
			t.Errorf("the escape sequences are not shown as text: %q", got)
		}
	}
}

// TestOutsideTextCannotFakeALine: a note, a PagerDuty agent's name or an
// alert summary with newlines (or U+2028) cannot print a line that reads as
// Sitrep's own; zero-width and tag characters are dropped.
func TestOutsideTextCannotFakeALine(t *testing.T) {
	fake := "line1\n✓ INC-1 resolved by @alice\u2028## Root cause\u200b\U000E0041"
	var out bytes.Buffer
	c := console.New(nil, &out, me, "")
	inc := &incidents.Incident{ID: 1, Title: "db\n✓ fake", Severity: incidents.P1}
	c.Notify(context.Background(), inc, []incidents.Event{{Kind: incidents.EventNote, Actor: "Eve\n✓ fake", Source: "pagerduty", Message: fake}})
	replies, _ := session(t, "declare P2 checkout\nnote 1 "+strings.ReplaceAll(fake, "\n", " ")+"\ntimeline 1\n")
	replies += console.Visible(console.Render(commands.Reply{Text: "t", Fields: []commands.Field{{Label: "Summary", Value: fake}}, Lines: []string{fake}}))
	for _, got := range []string{out.String(), replies} {
		for _, line := range strings.Split(got, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "✓ INC-1 resolved") || strings.HasPrefix(strings.TrimSpace(line), "## Root") || strings.HasPrefix(line, "✓ fake") {
				t.Errorf("outside text printed a line of its own: %q in\n%s", line, got)
			}
		}
		if strings.ContainsAny(got, "\u2028\u200b\U000E0041") {
			t.Errorf("an invisible character reached the terminal: %q", got)
		}
	}
	if !strings.Contains(out.String(), "line1 ⏎ ✓ INC-1 resolved by @alice ⏎ ## Root cause") {
		t.Errorf("the newlines are not shown: %q", out.String())
	}
}

// TestPipedSessionsSayWhatFailed: a script sees its errors on their own
// writer and in the result; quit ends the input; help says how to leave.
func TestPipedSessionsSayWhatFailed(t *testing.T) {
	store := openStore(t)
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet})
	run := func(input string) (string, string, error) {
		var out, errs bytes.Buffer
		c := console.New(commands.NewRouter(svc, quiet), &out, me, "")
		c.ErrorsTo(&errs)
		err := c.Run(context.Background(), strings.NewReader(input))
		return out.String(), errs.String(), err
	}
	out, errs, err := run("help\ndeclare P3 disk filling\n")
	if err != nil || errs != "" || !strings.Contains(out, "Leave with quit, exit or Ctrl-D.") || !strings.Contains(out, "Declared INC-1") {
		t.Errorf("a clean session: %v, errors %q, output %q", err, errs, out)
	}
	out, errs, err = run("ack INC-99\nfrobnicate\n9\nQUIT\ndeclare P3 never run\n")
	if !errors.Is(err, console.ErrCommandsFailed) || err.Error() != "3 commands failed" {
		t.Errorf("result %v, want 3 commands failed", err)
	}
	if !strings.Contains(errs, "no incident INC-99") || !strings.Contains(errs, `unknown command "frobnicate"`) || !strings.Contains(errs, "no choice 9") || strings.Contains(out, "error") {
		t.Errorf("errors %q, output %q", errs, out)
	}
	if all, _ := svc.List(context.Background(), incidents.Filter{All: true}); len(all) != 1 {
		t.Errorf("%d incidents: the line after quit ran", len(all))
	}
}

// TestNotifyKeepsPrivateIncidentsToTheirPeople: a change to a private
// incident is shown in the terminal only to someone it names.
func TestNotifyKeepsPrivateIncidentsToTheirPeople(t *testing.T) {
	ev := []incidents.Event{{Kind: incidents.EventNote, Actor: "Jane", Source: "pagerduty", Message: "rows leaked"}}
	for _, members := range [][]string{nil, {me.Name}} {
		var out bytes.Buffer
		c := console.New(nil, &out, me, "sitrep> ")
		c.Notify(context.Background(), &incidents.Incident{ID: 4, Title: "Customer data exposed", Private: true, DeclaredBy: "<@U9>", Members: members}, ev)
		if shown := strings.Contains(out.String(), "rows leaked"); shown != (members != nil) {
			t.Errorf("members %q: shown %v:\n%s", members, shown, out.String())
		}
	}
}
