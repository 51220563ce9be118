package commands_test

import (
	"strings"
	"testing"
	"time"
)

// TestDrillIncidents: declare --drill marks the incident everywhere it is
// named, leaves it out of stats, and its postmortem says it was a drill.
func TestDrillIncidents(t *testing.T) {
	f := newFixture(t)
	f.ok(t, "", "declare P2 errors")
	r := f.ok(t, "", "declare --drill P1 Game day: primary database lost")
	if inc := r.Incident; inc == nil || !inc.Drill || inc.Title != "Game day: primary database lost" || inc.Severity.String() != "P1" {
		t.Fatalf("drill: %+v", r.Incident)
	}
	if !strings.Contains(r.Text, "INC-2 · 🧪 DRILL · Game day: primary database lost") {
		t.Errorf("card %q", r.Text)
	}
	if l := strings.Join(f.ok(t, "", "list").Lines, "\n"); !strings.Contains(l, "🧪 DRILL · Game day") {
		t.Errorf("list:\n%s", l)
	}
	f.clock.Advance(2 * time.Minute)
	f.ok(t, "", "ack 2")
	f.ok(t, "", "resolve 2 restored from the replica")
	if s := f.ok(t, "", "stats"); s.Text != "1 incident in the last 30d:" || !strings.HasPrefix(s.Lines[1], "P1       0") {
		t.Errorf("stats counted the drill: %q %q", s.Text, s.Lines)
	}
	pm := string(f.ok(t, "", "postmortem 2").File.Content)
	if !strings.Contains(pm, "# Postmortem: INC-2 · 🧪 DRILL · Game day") || !strings.Contains(pm, "a game-day exercise, not an incident") {
		t.Errorf("postmortem:\n%.400s", pm)
	}
	if js := string(f.ok(t, "", "postmortem 2 json").File.Content); !strings.Contains(js, `"drill":true`) {
		t.Errorf("json postmortem lacks drill: %.300s", js)
	}
}
