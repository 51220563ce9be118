package slackbot_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/alertmanager"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// answer waits for the next answer to user's slash command (the
// response_url posts after the first n) and returns its text and blocks.
func (e *env) answer(t testing.TB, user string, n int) string {
	t.Helper()
	var out string
	e.wait(t, "the answer to "+user, func(v *slacktest.View) bool {
		seen := 0
		for _, r := range v.Responses() {
			if r.Path != "cmd-"+user {
				continue
			}
			if seen++; seen > n {
				b, _ := json.Marshal(r.Body)
				out = string(b)
				return true
			}
		}
		return false
	})
	return out
}

// TestPrivateIncidentInSlack, at Slack's real rate tiers: a private
// declaration gets a private war room with only its own people (not the
// responders), is never announced, is not listed or shown to anyone
// outside it, and invite brings someone in — into the room and the list.
func TestPrivateIncidentInSlack(t *testing.T) {
	e := startAt(t, 1, filepath.Join(t.TempDir(), "s.db"), nil)
	e.send(t, e.slash(t, "U2", e.general, "declare --private P1 Customer data exposed in the export <script>"))
	room := e.warRoom(t, 1)
	if !room.Private || slices.Contains(room.Members, "UONCALL") || !slices.Contains(room.Members, "U2") {
		t.Fatalf("room %+v", room)
	}
	if inc := e.incident(t, 1); !inc.Private {
		t.Fatalf("not private: %+v", inc)
	}
	e.send(t, e.slash(t, "U5", e.general, "list"))
	if l := e.answer(t, "U5", 0); strings.Contains(l, "Customer") || strings.Contains(l, "INC-1") {
		t.Errorf("an outsider's list shows it: %s", l)
	}
	e.send(t, e.slash(t, "U5", e.general, "show INC-1"))
	if a := e.answer(t, "U5", 1); !strings.Contains(a, "INC-1 is private") || strings.Contains(a, "Customer") {
		t.Errorf("an outsider's show: %s", a)
	}
	e.send(t, e.slash(t, "U2", room.ID, "invite <@U5|eve>"))
	e.wait(t, "eve in the room", func(v *slacktest.View) bool { return slices.Contains(v.ChannelByID(room.ID).Members, "U5") })
	e.send(t, e.slash(t, "U5", e.general, "list"))
	if l := e.answer(t, "U5", 2); !strings.Contains(l, "INC-1") {
		t.Errorf("the invited list lacks it: %s", l)
	}
	e.srv.Look(func(v *slacktest.View) {
		if n := len(v.Messages(e.announce)); n != 0 {
			t.Errorf("a private incident was announced: %d messages", n)
		}
		for _, c := range v.Calls("conversations.create") {
			if c.Params.Get("is_private") != "true" {
				t.Errorf("created with %v", c.Params)
			}
		}
	})
	// a P1 status update goes to the room, never to the announce channel
	e.send(t, e.slash(t, "U2", room.ID, "status identified export job leaked rows"))
	e.wait(t, "the echo in the room", func(v *slacktest.View) bool {
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(m.Text, "IDENTIFIED") {
				return true
			}
		}
		return false
	})
	e.srv.Look(func(v *slacktest.View) {
		if n := len(v.Messages(e.announce)); n != 0 {
			t.Errorf("a private status update was announced: %d messages", n)
		}
	})
	// the declare form's Visibility checkbox
	m := sample(t, "DERIVED_view_submission_envelope.json")
	p := m["payload"].(map[string]any)
	p["user"].(map[string]any)["id"] = "U2"
	view := p["view"].(map[string]any)
	view["callback_id"] = "declare"
	view["state"] = map[string]any{"values": map[string]any{
		"title":   map[string]any{"title": map[string]any{"type": "plain_text_input", "value": "Payroll export sent to the wrong tenant"}},
		"private": map[string]any{"private": map[string]any{"type": "checkboxes", "selected_options": []any{map[string]any{"value": "private"}}}},
	}}
	e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
	if room2 := e.warRoom(t, 2); !room2.Private || !e.incident(t, 2).Private {
		t.Errorf("the form's private incident: room %+v", room2)
	}
}

// TestMergeInSlack, at Slack's real rate tiers: rooms get their bookmarks;
// merging the alert-made duplicate moves its alert group to the survivor
// (the next Alertmanager notification of that group lands there), tells
// both rooms, invites the duplicate's people to the survivor's, and
// archives the duplicate's room after the grace; a postmortem link becomes
// a bookmark.
func TestMergeInSlack(t *testing.T) {
	incidents.SetMergeGrace(3 * time.Second)
	t.Cleanup(func() { incidents.SetMergeGrace(0) })
	e := startAt(t, 1, filepath.Join(t.TempDir(), "s.db"), nil, func(c *slackbot.Config) {
		c.Bookmarks = func(inc *incidents.Incident) []slackbot.Bookmark {
			return []slackbot.Bookmark{{Title: "Dashboard", URL: "https://grafana.example.com/d/checkout"}, {Title: "Broken", URL: "javascript:alert(1)"}}
		}
	})
	go e.svc.RunReminders(e.ctx)
	quiet := slog.New(slog.DiscardHandler)
	am := httptest.NewServer(alertmanager.NewReceiver(e.svc, "", quiet))
	t.Cleanup(am.Close)
	notify := func(body []byte) {
		t.Helper()
		resp, err := http.Post(am.URL, "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("alertmanager: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	firing, err := os.ReadFile("../../../shared/samples/alertmanager/alertmanager_bot_firing.json")
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := os.ReadFile("../../../shared/samples/alertmanager/alertmanager_bot_resolved.json")
	if err != nil {
		t.Fatal(err)
	}

	e.send(t, e.slash(t, "U2", e.general, "declare P2 Checkout is failing for everyone"))
	survivor := e.warRoom(t, 1)
	notify(firing) // INC-2, from Alertmanager
	dupRoom := e.warRoom(t, 2)
	e.send(t, e.slash(t, "U3", dupRoom.ID, "ack"))
	e.srv.Look(func(v *slacktest.View) {
		if b := v.ChannelByID(survivor.ID).Bookmarks; len(b) != 1 || b[0].Link != "https://grafana.example.com/d/checkout" {
			t.Errorf("bookmarks %+v (the broken one refused, the good one kept)", b)
		}
	})
	alertsBefore := len(e.kinds(t, 2, incidents.EventAlert))

	e.send(t, e.slash(t, "U3", dupRoom.ID, "merge into INC-1 --confirm"))
	e.wait(t, "both rooms told, the duplicate's people invited", func(v *slacktest.View) bool {
		var told, heard bool
		for _, m := range v.Messages(dupRoom.ID) {
			told = told || strings.Contains(m.Text, "INC-2 was merged into INC-1") && strings.Contains(m.Text, "<#"+survivor.ID+">")
		}
		for _, m := range v.Messages(survivor.ID) {
			heard = heard || strings.Contains(m.Text, "🔀 INC-2") && strings.Contains(m.Text, "merged into this incident")
		}
		return told && heard && slices.Contains(v.ChannelByID(survivor.ID).Members, "U3")
	})
	if dup := e.incident(t, 2); dup.Open() || dup.MergedInto != 1 {
		t.Fatalf("duplicate %+v", dup)
	}
	notify(resolved) // the group resolves: on the survivor now, which knew its alerts (their state moved with the merge)
	if got := e.kinds(t, 1, incidents.EventAlertsResolved); len(got) != 1 {
		t.Error("the merged group's resolution did not reach the survivor as its all-clear")
	}
	e.wait(t, "the all-clear in the survivor's room", func(v *slacktest.View) bool {
		for _, m := range v.Messages(survivor.ID) {
			if strings.Contains(m.Text, "Every alert of INC-1 has resolved") {
				return true
			}
		}
		return false
	})
	if after := len(e.kinds(t, 2, incidents.EventAlert)); after != alertsBefore {
		t.Errorf("the duplicate took %d more alerts", after-alertsBefore)
	}
	e.wait(t, "the duplicate's room archived after the grace", func(v *slacktest.View) bool { return v.ChannelByID(dupRoom.ID).Archived })
	if ev := e.kinds(t, 2, incidents.EventRoomArchived); len(ev) != 1 {
		t.Errorf("%d archive events", len(ev))
	}
	if v := e.kinds(t, 1, incidents.EventRoomArchived); len(v) != 0 {
		t.Error("the survivor's room was archived")
	}

	e.send(t, e.slash(t, "U2", survivor.ID, "postmortem link https://docs.example.com/pm/inc-1"))
	e.wait(t, "the postmortem bookmark", func(v *slacktest.View) bool {
		b := v.ChannelByID(survivor.ID).Bookmarks
		return len(b) == 2 && b[1].Title == "Postmortem" && b[1].Link == "https://docs.example.com/pm/inc-1"
	})
}

// TestBookmarksNeverHoldUpTheRoom: a bookmark whose answer is lost, or that
// Slack refuses (a missing scope), is skipped; the room is bound and
// announced all the same.
func TestBookmarksNeverHoldUpTheRoom(t *testing.T) {
	e := start(t, func(c *slackbot.Config) {
		c.Bookmarks = func(*incidents.Incident) []slackbot.Bookmark {
			return []slackbot.Bookmark{{Title: "Dashboard", URL: "https://grafana.example.com/d/1"}, {Title: "Runbook", URL: "https://wiki.example.com/rb"}}
		}
	})
	e.srv.Fail("bookmarks.add", slacktest.Fault{Lost: true, Status: 500}, slacktest.Fault{Error: "missing_scope"})
	e.srv.Fail("bookmarks.list", slacktest.Fault{Error: "missing_scope"})
	e.send(t, e.slash(t, "U2", e.general, "declare P1 API down"))
	room := e.warRoom(t, 1)
	e.wait(t, "the announcement and both bookmark tries", func(v *slacktest.View) bool {
		return len(v.Messages(e.announce)) == 1 && len(v.Calls("bookmarks.add")) == 2
	})
	e.srv.Look(func(v *slacktest.View) {
		if b := v.ChannelByID(room.ID).Bookmarks; len(b) != 1 || b[0].Title != "Dashboard" {
			t.Errorf("bookmarks %+v (the lost answer's went in; the refused one did not)", b)
		}
	})
}

// TestPublishFromSlack: the comms role's Publish update button opens the
// form for the status page; submitting it shows the preview to the one
// who asked, and nothing is public until its Publish button is pressed;
// then the war room and the announce channel see what the public was told.
func TestPublishFromSlack(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 checkout 5xx from the gateway"))
	room := e.warRoom(t, 1)
	e.send(t, e.slash(t, "U1", room.ID, "role comms <@U4|cat>"))
	e.wait(t, "the header's Publish update button", func(v *slacktest.View) bool {
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(string(m.Blocks), `"value":"publish INC-1"`) {
				return true
			}
		}
		return false
	})
	e.send(t, e.click(t, "U4", room.ID, button("form0", "publish INC-1")))
	var form struct {
		Title           struct{ Text string } `json:"title"`
		PrivateMetadata string                `json:"private_metadata"`
	}
	e.wait(t, "the publish form", func(v *slacktest.View) bool { return len(v.Views()) == 1 && json.Unmarshal(v.Views()[0], &form) == nil })
	if form.Title.Text != "Publish update" {
		t.Fatalf("form %+v", form)
	}
	m := sample(t, "DERIVED_view_submission_envelope.json")
	p := m["payload"].(map[string]any)
	p["user"].(map[string]any)["id"] = "U4"
	view := p["view"].(map[string]any)
	view["callback_id"], view["private_metadata"] = "update", form.PrivateMetadata
	view["state"] = map[string]any{"values": map[string]any{
		"status":  map[string]any{"status": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "identified"}}},
		"message": map[string]any{"message": map[string]any{"type": "plain_text_input", "value": "Some card payments fail <!channel>; next update in 30 min"}},
	}}
	e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
	var confirm string
	e.wait(t, "the preview, for the asker alone", func(v *slacktest.View) bool {
		for _, m := range v.Ephemeral() {
			if m.User == "U4" && strings.Contains(m.Text, "nothing is public yet") {
				confirm = string(m.Blocks)
				return true
			}
		}
		return false
	})
	if inc := e.incident(t, 1); inc.Published() {
		t.Fatal("the preview published")
	}
	const cmd = "publish INC-1 --confirm 0 identified Some card payments fail <!channel>; next update in 30 min"
	value, _ := json.Marshal(cmd)
	if !strings.Contains(confirm, `"value":`+string(value)) || !strings.Contains(confirm, `"confirm"`) {
		t.Fatalf("preview blocks %s", confirm)
	}
	e.send(t, e.click(t, "U4", room.ID, button("cmd0", cmd)))
	e.wait(t, "the echo in the room and the announce channel", func(v *slacktest.View) bool {
		in := func(ch string) bool {
			for _, m := range v.Messages(ch) {
				if strings.Contains(m.Text, "📢 *INC-1 on the status page: IDENTIFIED*") && !strings.Contains(m.Text, "<!channel>") {
					return true
				}
			}
			return false
		}
		return in(room.ID) && in(e.announce)
	})
	if st, _, _ := e.incident(t, 1).PublicStatus(); st != incidents.Identified {
		t.Errorf("public status %q", st)
	}
}
