package slackbot_test

import (
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
)

// TestADrillReadsAsOne: its war room is drill-<n>-…, and the topic and the
// header mark it.
func TestADrillReadsAsOne(t *testing.T) {
	inc := &incidents.Incident{ID: 3, Title: "Game day: primary database lost", Drill: true, Severity: incidents.P1, Status: incidents.Investigating}
	if got := slackbot.ChannelName(inc); got != "drill-3-game-day-primary-database-lost" {
		t.Errorf("channel %q", got)
	}
	if got := slackbot.Topic(inc); !strings.Contains(got, "🧪 DRILL · Game day") {
		t.Errorf("topic %q", got)
	}
	if _, text := slackbot.Header(inc); !strings.Contains(text, "INC-3 · 🧪 DRILL · Game day") {
		t.Errorf("header %q", text)
	}
}
