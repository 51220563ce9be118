package slackbot_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./internal/slackbot -update\ngot:\n%s", name, got)
	}
}

func fixture(t *testing.T) *incidents.Incident {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	inc, _, err := incidents.Declare(incidents.Declaration{
		Title: "Checkout error rate above 5% <script>&", Signals: incidents.Signals{Explicit: incidents.P2},
		Links: map[string]string{"pagerduty_url": "https://acme.pagerduty.com/incidents/Q1"},
	}, incidents.Actor{Name: "<@U1>", Source: "slack"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	inc.ID = 7
	return inc
}

func TestHeaderGolden(t *testing.T) {
	inc := fixture(t)
	blocks, _ := slackbot.Header(inc)
	golden(t, "header_declared.json", blocks)

	who := incidents.Actor{Name: "<@U2>", Source: "slack"}
	inc.Ack(who, inc.DeclaredAt.Add(4*time.Minute))
	inc.AssignRole(incidents.Comms, "<@U3>", who, inc.DeclaredAt.Add(5*time.Minute))
	inc.ChangeStatus(incidents.Identified, "bad deploy", who, inc.DeclaredAt.Add(9*time.Minute))
	blocks, _ = slackbot.Header(inc)
	golden(t, "header_identified.json", blocks)

	inc.Resolve("rolled back to 3.1.0", who, inc.DeclaredAt.Add(47*time.Minute))
	blocks, _ = slackbot.Header(inc)
	golden(t, "header_resolved.json", blocks)
}

func TestModalGolden(t *testing.T) {
	golden(t, "declare_modal.json", slackbot.DeclareModal())
}

func TestErrorAndListRendering(t *testing.T) {
	blocks, text := slackbot.Blocks(commands.Reply{Error: true, Text: "INC-1 is already resolved", Usage: "resolve [INC-n] [summary]"})
	golden(t, "error_reply.json", blocks)
	if text != "error: INC-1 is already resolved" {
		t.Errorf("fallback %q", text)
	}
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = "2026-11-26 03:00:00  <@U1> (slack) note: a line of the timeline that is not short at all, number " + time.Duration(i).String()
	}
	blocks, _ = slackbot.Blocks(commands.Reply{Text: "Timeline", Lines: lines})
	if len(blocks) > 50 {
		t.Errorf("%d blocks: more than Slack takes", len(blocks))
	}
	for _, b := range blocks {
		raw, _ := json.Marshal(b)
		var sec struct {
			Text struct{ Text string } `json:"text"`
		}
		json.Unmarshal(raw, &sec)
		if len(sec.Text.Text) > 3000 {
			t.Errorf("a section of %d characters", len(sec.Text.Text))
		}
	}
}
