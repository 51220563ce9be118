package commands_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

var (
	ctx   = context.Background()
	alice = incidents.Actor{Name: "@alice", Source: incidents.SourceConsole}
	t0    = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
)

type fixture struct {
	router *commands.Router
	store  *boltstore.Store
	clock  *incidents.ManualClock
}

// newFixture is a router on a store in a temporary file and a manual clock
// at t0; the notifiers hear every change (metrics, a console).
func newFixture(tb testing.TB, notifiers ...incidents.Notifier) *fixture {
	tb.Helper()
	store, err := boltstore.Open(filepath.Join(tb.TempDir(), "sitrep.db"), boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	clock := incidents.NewManualClock(t0)
	quiet := slog.New(slog.DiscardHandler)
	svc := incidents.NewService(incidents.Config{Store: store, Clock: clock, Logger: quiet, Notifiers: notifiers})
	return &fixture{router: commands.NewRouter(svc, quiet), store: store, clock: clock}
}

func (f *fixture) do(tb testing.TB, channel, text string) commands.Reply {
	tb.Helper()
	return f.router.Handle(ctx, commands.Request{Actor: alice, Channel: channel, Text: text})
}

func (f *fixture) ok(tb testing.TB, channel, text string) commands.Reply {
	tb.Helper()
	r := f.do(tb, channel, text)
	if r.Error {
		tb.Fatalf("%q: error %s", text, r.Text)
	}
	return r
}

func (f *fixture) events(tb testing.TB, id int64) int {
	n := 0
	f.store.Timeline(ctx, id, func(incidents.Event) error { n++; return nil })
	return n
}

func TestHelpIsBuiltFromTheRegistry(t *testing.T) {
	f := newFixture(t)
	help := f.ok(t, "", "help")
	text := strings.Join(help.Lines, "\n")
	cmds := f.router.Registry().Commands()
	if len(cmds) != 27 || len(help.Lines) < len(cmds) {
		t.Errorf("%d commands registered", len(cmds))
	}
	for _, c := range cmds {
		if !strings.Contains(text, c.Usage()) || !strings.Contains(text, c.Summary) {
			t.Errorf("help lacks %q", c.Usage())
		}
	}
	if empty := f.ok(t, "", "/incident"); len(empty.Lines) != len(help.Lines) {
		t.Error("an empty /incident does not show help")
	}
}

func TestRegistryRejectsBadCommands(t *testing.T) {
	r := commands.NewRegistry()
	run := func(context.Context, *commands.Call) (commands.Reply, error) { return commands.Reply{}, nil }
	if err := r.Register(commands.Command{Name: "ack", Run: run}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []commands.Command{
		{Name: "ack", Run: run},
		{Name: "Ack", Run: run},
		{Name: "two words", Run: run},
		{Name: "", Run: run},
		{Name: "norun"},
	} {
		if err := r.Register(c); err == nil {
			t.Errorf("registered %q", c.Name)
		}
	}
}

func TestDeclare(t *testing.T) {
	f := newFixture(t)
	r := f.ok(t, "", "/incident declare P2 Checkout error rate above 5%")
	inc := r.Incident
	if inc == nil || inc.Key() != "INC-1" || inc.Severity != incidents.P2 || inc.Title != "Checkout error rate above 5%" {
		t.Fatalf("declared %+v", inc)
	}
	fields := map[string]string{}
	for _, fl := range r.Fields {
		fields[fl.Label] = fl.Value
	}
	for label, want := range map[string]string{
		"Severity": "P2 High — Degraded service (respond within 15m)", "Why": "set explicitly at declaration",
		"Status": "INVESTIGATING", "Lead": "@alice", "Ack deadline": "03:15 UTC (in 15m)", "Phase": "Detect (1/8)",
	} {
		if fields[label] != want {
			t.Errorf("%s = %q, want %q", label, fields[label], want)
		}
	}
	if len(r.Buttons) == 0 || r.Buttons[0].Command != "ack INC-1" {
		t.Errorf("buttons %+v", r.Buttons)
	}
	tests := []struct {
		text, title string
		sev         incidents.Severity
	}{
		{"declare API completely unavailable", "API completely unavailable", incidents.P1},
		{"declare 1 server down in eu", "1 server down in eu", incidents.P1}, // a digit is not a severity
		{"declare sev4 logo misaligned", "logo misaligned", incidents.P4},
		{"DECLARE Specific endpoint slow", "Specific endpoint slow", incidents.P3},
	}
	for _, tt := range tests {
		got := f.ok(t, "", tt.text).Incident
		if got.Title != tt.title || got.Severity != tt.sev {
			t.Errorf("%q → %q %s, want %q %s", tt.text, got.Title, got.Severity, tt.title, tt.sev)
		}
	}
}

// TestSeverityWords: the forms people type for a severity declare it and
// stay out of the title.
func TestSeverityWords(t *testing.T) {
	f := newFixture(t)
	for i, tt := range []struct {
		text  string
		sev   incidents.Severity
		title string
	}{
		{"declare P1: payments down", incidents.P1, "payments down"},
		{"declare sev2 checkout slow", incidents.P2, "checkout slow"},
		{"declare SEV-3 search degraded", incidents.P3, "search degraded"},
		{"declare Payments page blank", 0, "Payments page blank"},
	} {
		f.ok(t, "", tt.text)
		inc, err := f.store.Get(context.Background(), int64(i+1))
		if err != nil || inc.Title != tt.title || (tt.sev != 0 && inc.Severity != tt.sev) {
			t.Errorf("%q → %+v %v", tt.text, inc, err)
		}
	}
}

func TestErrorsAreOneLineAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 Checkout errors")
	f.ok(t, "", "resolve 1 rolled back")
	before := f.events(t, 1)
	tests := []struct{ text, want string }{
		{"frobnicate", `unknown command "frobnicate"`},
		{"re", "did you mean release or reopen or resolve?"},
		{"declare", "an incident needs a title"},
		{"declare P1", "an incident needs a title"},
		{"ack", "which incident?"},
		{"ack INC-x", `"INC-x" is not an incident id`},
		{"ack P1", `"P1" is not an id`},
		{"ack 99", "no incident INC-99"},
		{"resolve 1", "INC-1 is already resolved"},
		{"ack 1", "INC-1 is resolved: cannot acknowledge"},
		{"severity 1", "give the new severity"},
		{"severity 1 P7", "P7 is not a severity: use P1 (critical)"},
		{"declare P0 everything on fire", "P0 is not a severity: use P1 (critical)"},
		{"declare P5 printer jam", "P5 is not a severity"},
		{"declare SEV0 all down", "SEV0 is not a severity"},
		{"status 1 fixed", `unknown status "fixed"`},
		{"status 1 monitoring", "INC-1 is resolved"},
		{"lead 1", "say who leads"},
		{"lead 1 <script>", "is not a user"},
		{"role 1 chef @bob", `unknown role "chef"`},
		{"note 1", "a note needs text"},
		{"phase 1 detect", "phases only move forward"},
		{"phase 1 lunch", `unknown phase "lunch"`},
		{"reopen 1 x", ""}, // succeeds: then reopening again fails
		{"reopen 1", "is not resolved"},
		{"list --open", `unknown option "--open"`},
		{"list --severity", "--severity needs a value"},
		{"list --severity=P9", "P9 is not a severity"},
		{"show 0", `"0" is not an id`},
		{"timeline 42", "no incident INC-42"},
		{strings.Repeat("x", commands.MaxRequest+1), "keep it under"},
	}
	for _, tt := range tests {
		r := f.do(t, "", tt.text)
		if tt.want == "" {
			if r.Error {
				t.Fatalf("%q: %s", tt.text, r.Text)
			}
			before = f.events(t, 1)
			continue
		}
		if !r.Error || !strings.Contains(r.Text, tt.want) || strings.Contains(r.Text, "\n") {
			t.Errorf("%q → error=%v %q, want one line containing %q", tt.text, r.Error, r.Text, tt.want)
		}
		if strings.Contains(r.Text, "internal error") {
			t.Errorf("%q was an internal error", tt.text)
		}
		if n := f.events(t, 1); n != before {
			t.Errorf("%q changed the timeline (%d → %d events)", tt.text, before, n)
		}
	}
	if r := f.do(t, "", "severity 1"); r.Usage != "severity [INC-n] <P1-P4> [reason]" {
		t.Errorf("usage %q", r.Usage)
	}
	if r := f.do(t, "", "ack"); !strings.Contains(r.Text, "(open: INC-1)") {
		t.Errorf("no hint of the open incidents: %q", r.Text)
	}
}

func TestWarRoomImpliesTheIncident(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P3 search slow")
	f.ok(t, "", "declare P1 API down")
	f.store.Update(ctx, 2, func(inc *incidents.Incident) ([]incidents.Event, error) {
		inc.Channel = "C-INC-2"
		return inc.AddNote("war room opened", alice, t0)
	})
	if r := f.ok(t, "C-INC-2", "ack"); r.Incident.ID != 2 {
		t.Errorf("ack in the war room acked %s", r.Incident.Key())
	}
	// In a war room a bare number is text, not an id.
	if r := f.ok(t, "C-INC-2", "note 5 pods restarting"); r.Incident.ID != 2 {
		t.Errorf("note went to %s", r.Incident.Key())
	}
	var last incidents.Event
	f.store.Timeline(ctx, 2, func(ev incidents.Event) error { last = ev; return nil })
	if last.Message != "5 pods restarting" {
		t.Errorf("note text %q", last.Message)
	}
	// INC-n still reaches another incident from a war room.
	if r := f.ok(t, "C-INC-2", "severity INC-1 P2 it spread"); r.Incident.ID != 1 || r.Incident.Severity != incidents.P2 {
		t.Errorf("severity went to %s", r.Incident.Key())
	}
	if r := f.do(t, "C-UNKNOWN", "ack"); !r.Error || !strings.Contains(r.Text, "which incident?") {
		t.Errorf("ack in a channel with no incident: %q", r.Text)
	}
}

func TestLifecycleThroughCommands(t *testing.T) {
	f := newFixture(t)
	steps := []struct{ text, want string }{
		{"declare Checkout error rate above 5%", "Declared INC-1"},
		{"ack INC-1", "acknowledged by @alice"},
		{"severity 1 P1 every region", "is now P1 Critical"},
		{"status 1 identified bad deploy 3.2.0", "status is IDENTIFIED: bad deploy 3.2.0"},
		{"role 1 comms @bob", "@bob is now communications"},
		{"role 1 scribe <@U024BE7LH>", "<@U024BE7LH> is now scribe"},
		{"lead 1 carol", "@carol is now incident commander"},
		{"note 1 rolled back to 3.1.0", "note added"},
		{"phase 1 next", "reached phase 6/8: Verify"},
		{"status 1 monitoring", "status is MONITORING"},
		{"resolve 1 error rate back under 0.01%", "resolved by @alice"},
		{"reopen 1 errors are back", "reopened by @alice"},
		{"show 1", "INC-1 · Checkout error rate above 5%"},
	}
	for _, s := range steps {
		f.clock.Advance(time.Minute)
		if r := f.ok(t, "", s.text); !strings.Contains(r.Text, s.want) {
			t.Errorf("%q → %q, want %q", s.text, r.Text, s.want)
		}
	}
	tl := f.ok(t, "", "timeline 1")
	want := []string{"declared P2", "@alice is incident commander", "acknowledged", "Phase 2/8", "severity P2 → P1: every region",
		"Phase 3/8", "status investigating → identified", "Phase 5/8", "@bob is communications", "<@U024BE7LH> is scribe",
		"@carol is incident commander", "note: rolled back", "Phase 6/8", "status identified → monitoring", "resolved after 10m",
		"reopened: errors are back"}
	if len(tl.Lines) != len(want) {
		t.Fatalf("timeline has %d lines:\n%s", len(tl.Lines), strings.Join(tl.Lines, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(tl.Lines[i], w) {
			t.Errorf("timeline line %d = %q, want %q", i, tl.Lines[i], w)
		}
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P1 API down")
	f.ok(t, "", "declare P3 search slow")
	f.ok(t, "", "declare P1 db down")
	f.ok(t, "", "resolve 3")
	count := func(text string) int { return len(f.ok(t, "", text).Lines) }
	for text, want := range map[string]int{"list": 2, "list --all": 3, "list -a --severity P1": 2, "list --severity=P1": 1, "list -s p3": 1} {
		if got := count(text); got != want {
			t.Errorf("%q lists %d, want %d", text, got, want)
		}
	}
	if r := f.ok(t, "", "list --severity P4"); r.Text != "No P4 open incidents." {
		t.Errorf("empty list says %q", r.Text)
	}
}

func TestTimelineShowsTheTail(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P4 noisy")
	for i := 0; i < commands.TimelineTail+50; i++ {
		f.ok(t, "", fmt.Sprintf("note 1 n%d", i))
	}
	r := f.ok(t, "", "timeline 1")
	if len(r.Lines) != commands.TimelineTail || !strings.Contains(r.Text, "last 200 of 252") ||
		!strings.HasSuffix(r.Lines[len(r.Lines)-1], "note: n249") || !strings.HasSuffix(r.Lines[0], "note: n50") {
		t.Errorf("%s: first %q last %q", r.Text, r.Lines[0], r.Lines[len(r.Lines)-1])
	}
}

func FuzzHandle(f *testing.F) {
	for _, s := range []string{"declare P2 x", "ack 1", "note INC-1 hi", "list --severity", "/incident", "phase 1 next", "role 1 x @y", "severity 1 P1 why"} {
		f.Add(s, "")
		f.Add(s, "C1")
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, text, channel string) {
		r := fx.router.Handle(ctx, commands.Request{Actor: alice, Channel: channel, Text: text})
		if r.Text == "" && len(r.Lines) == 0 {
			t.Fatalf("empty reply to %q", text)
		}
		if strings.Contains(r.Text, "internal error") {
			t.Fatalf("internal error for %q: %s", text, r.Text)
		}
	})
}
