package slackbot_test

import (
	"os"
	"strings"
	"testing"
)

// TestManifestAsksForWhatTheCodeUses keeps the app manifest in step with the
// events and methods the adapter uses, and asks for nothing more.
func TestManifestAsksForWhatTheCodeUses(t *testing.T) {
	b, err := os.ReadFile("../../slack/manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	for _, want := range []string{
		"socket_mode_enabled: true", "command: /incident", "should_escape: true", "is_enabled: true",
		"- app_mention", "- reaction_added", "- pin_added",
		"- commands ", "- chat:write ", "- channels:manage ", "- channels:history ", "- pins:write ", "- files:write ", "- pins:read ", "- reactions:read ", "- app_mentions:read ", "- usergroups:read ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	scopes := 0
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- ") && strings.Contains(line, ":") && !strings.Contains(line, "command:") {
			scopes++
		}
	}
	if scopes != 9 { // the least scopes: the nine with a colon above, plus commands
		t.Errorf("manifest lists %d scopes with a colon, want 9", scopes)
	}
}
