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
		"type: message", "callback_id: declare_from_message", // the "Declare incident" message shortcut (its scope is commands)
		"- app_mention", "- reaction_added", "- pin_added",
		"- commands ", "- chat:write ", "- channels:manage ", "- channels:history ", "- pins:write ", "- files:write ", "- pins:read ", "- reactions:read ", "- app_mentions:read ", "- usergroups:read ",
		"- groups:write ", "- groups:read ", "- groups:history ", "- bookmarks:write ", "- bookmarks:read ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	scopes := 0
	_, bot, _ := strings.Cut(m, "scopes:")
	bot, _, _ = strings.Cut(bot, "settings:")
	for _, line := range strings.Split(bot, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- ") && strings.Contains(line, ":") {
			scopes++
		}
	}
	if scopes != 14 { // the least scopes: the fourteen with a colon above, plus commands
		t.Errorf("manifest lists %d scopes with a colon, want 14", scopes)
	}
}
