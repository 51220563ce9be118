package slackbot_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// shortcut is a message shortcut envelope: the sample global shortcut
// envelope as the message_action Slack sends for a message's "Declare
// incident" (with its channel, message and response URL).
func (e *env) shortcut(t testing.TB, user, channel, author, ts, text string) slacktest.Envelope {
	m := sample(t, "pysdk_interactive_shortcut_envelope.json")
	p := m["payload"].(map[string]any)
	p["type"], p["callback_id"] = "message_action", "declare_from_message"
	p["user"].(map[string]any)["id"] = user
	p["channel"] = map[string]any{"id": channel, "name": "general"}
	p["message_ts"] = ts
	p["message"] = map[string]any{"type": "message", "user": author, "ts": ts, "text": text}
	p["response_url"] = e.srv.ResponseURL("shortcut-" + user)
	return slacktest.Envelope{Type: "interactive", Payload: p}
}

// TestDeclareFromAMessage: the shortcut opens the declare form filled from
// the message; the incident's timeline starts with the message (author and
// text); the war room links to it and the message's thread to the war
// room; the same message again says where its incident is.
func TestDeclareFromAMessage(t *testing.T) {
	e := start(t)
	text := "checkout is throwing 502s for EU customers\nstarted right after the 14:00 deploy &gt; p99 2s <!channel> <@U7|bob> <https://grafana.example/d/1|dashboard>"
	shown := "checkout is throwing 502s for EU customers\nstarted right after the 14:00 deploy > p99 2s @channel @bob dashboard (https://grafana.example/d/1)"
	e.send(t, e.shortcut(t, "U2", e.general, "U9", "1764126000.000100", text))
	var form struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
		Blocks          []struct {
			Element struct {
				InitialValue string `json:"initial_value"`
			} `json:"element"`
		} `json:"blocks"`
	}
	e.wait(t, "the declare form", func(v *slacktest.View) bool { return len(v.Views()) == 1 && json.Unmarshal(v.Views()[0], &form) == nil })
	if form.CallbackID != "declare" || form.Blocks[0].Element.InitialValue != "checkout is throwing 502s for EU customers" || form.Blocks[2].Element.InitialValue != shown || strings.Contains(form.PrivateMetadata, "502s") {
		t.Fatalf("form %+v", form)
	}
	m := sample(t, "DERIVED_view_submission_envelope.json")
	p := m["payload"].(map[string]any)
	p["user"].(map[string]any)["id"] = "U2"
	view := p["view"].(map[string]any)
	view["callback_id"], view["private_metadata"] = "declare", form.PrivateMetadata
	input := func(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }
	view["state"] = map[string]any{"values": map[string]any{
		"title":       map[string]any{"title": input("EU checkout 502s after the 14:00 deploy")},
		"severity":    map[string]any{"severity": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "P2"}}},
		"description": map[string]any{"description": input(shown)},
	}}
	e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
	room := e.warRoom(t, 1)
	inc := e.incident(t, 1)
	if inc.Links[incidents.LinkOrigin] != e.general+"/1764126000.000100" || inc.DeclaredBy != "<@U2>" {
		t.Errorf("incident %+v", inc)
	}
	var kinds []incidents.EventKind
	var from incidents.Event
	e.svc.Timeline(e.ctx, 1, func(ev incidents.Event) error {
		kinds = append(kinds, ev.Kind)
		if ev.Kind == incidents.EventOrigin {
			from = ev
		}
		return nil
	})
	if len(kinds) < 2 || kinds[0] != incidents.EventDeclared || kinds[1] != incidents.EventOrigin || from.Message != shown || from.Fields["author"] != "<@U9>" {
		t.Errorf("timeline %v, origin %+v", kinds, from)
	}
	e.wait(t, "the links both ways", func(v *slacktest.View) bool {
		var inRoom, inThread bool
		for _, m := range v.Messages(room.ID) {
			inRoom = inRoom || strings.Contains(m.Text, "📎 Declared from <") && strings.Contains(m.Text, "/archives/"+e.general+"/p1764126000000100|this message> in <#"+e.general+">")
		}
		for _, m := range v.Messages(e.general) {
			inThread = inThread || m.ThreadTS == "1764126000.000100" && strings.Contains(m.Text, "🚨 INC-1 declared from this message — war room <#"+room.ID+">")
		}
		return inRoom && inThread
	})
	// The same message again: where its incident is, no second form.
	e.send(t, e.shortcut(t, "U3", e.general, "U9", "1764126000.000100", text))
	e.wait(t, "the answer to a second shortcut", func(v *slacktest.View) bool {
		for _, r := range v.Responses() {
			if text, _ := r.Body["text"].(string); strings.Contains(text, "This message already declared INC-1 (war room <#"+room.ID+">)") {
				return true
			}
		}
		return false
	})
	e.srv.Look(func(v *slacktest.View) {
		if len(v.Views()) != 1 {
			t.Errorf("%d forms opened, want 1", len(v.Views()))
		}
	})
}

// TestDeclareFromADirectMessage: a P1 declared from a message Sitrep
// cannot see (a direct message) is announced all the same, and its war room
// says the message cannot be linked.
func TestDeclareFromADirectMessage(t *testing.T) {
	e := start(t)
	e.send(t, e.shortcut(t, "U2", "D0DM12345", "U9", "1764126000.000200", "the API is completely unavailable"))
	var meta string
	e.wait(t, "the declare form", func(v *slacktest.View) bool {
		var form struct {
			PrivateMetadata string `json:"private_metadata"`
		}
		if len(v.Views()) == 1 && json.Unmarshal(v.Views()[0], &form) == nil {
			meta = form.PrivateMetadata
			return true
		}
		return false
	})
	m := sample(t, "DERIVED_view_submission_envelope.json")
	p := m["payload"].(map[string]any)
	p["user"].(map[string]any)["id"] = "U2"
	view := p["view"].(map[string]any)
	view["callback_id"], view["private_metadata"] = "declare", meta
	view["state"] = map[string]any{"values": map[string]any{
		"title":    map[string]any{"title": map[string]any{"type": "plain_text_input", "value": "API completely unavailable"}},
		"severity": map[string]any{"severity": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "P1"}}},
	}}
	e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
	room := e.warRoom(t, 1)
	e.wait(t, "the announcement and the room's note", func(v *slacktest.View) bool {
		var announced, noted bool
		for _, m := range v.Messages(e.announce) {
			announced = announced || strings.Contains(m.Text, "INC-1")
		}
		for _, m := range v.Messages(room.ID) {
			noted = noted || strings.HasPrefix(m.Text, "📎 Declared from a message Sitrep cannot link to")
		}
		return announced && noted
	})
	if inc := e.incident(t, 1); inc.Links[incidents.LinkOrigin] != "D0DM12345/1764126000.000200" {
		t.Errorf("links %v", inc.Links)
	}
}
