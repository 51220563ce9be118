package slackbot_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

func TestDeclareByModal(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare"))
	e.wait(t, "the modal", func(v *slacktest.View) bool { return len(v.Views()) == 1 })

	submit := func(values map[string]any) slacktest.Ack {
		m := sample(t, "DERIVED_view_submission_envelope.json")
		p := m["payload"].(map[string]any)
		p["user"].(map[string]any)["id"] = "U1"
		view := p["view"].(map[string]any)
		view["callback_id"] = "declare"
		view["state"] = map[string]any{"values": values}
		_, ack := e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
		return ack
	}
	input := func(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }
	// An empty title is refused next to the field, and nothing is declared.
	ack := submit(map[string]any{"title": map[string]any{"title": input("  ")}})
	if !strings.Contains(string(ack.Payload), `"response_action":"errors"`) || !strings.Contains(string(ack.Payload), "give the incident a title") {
		t.Errorf("ack of an empty title: %s", ack.Payload)
	}
	ack = submit(map[string]any{
		"title":       map[string]any{"title": input("Checkout error rate above 5%")},
		"severity":    map[string]any{"severity": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "P2"}}},
		"description": map[string]any{"description": input("EU customers cannot pay")},
		"service":     map[string]any{"service": input("checkout")},
		"lead":        map[string]any{"lead": map[string]any{"type": "users_select", "selected_user": "U7"}},
	})
	if strings.Contains(string(ack.Payload), "errors") {
		t.Fatalf("a good form was refused: %s", ack.Payload)
	}
	room := e.warRoom(t, 1)
	inc := e.incident(t, 1)
	if inc.Severity != incidents.P2 || inc.Description != "EU customers cannot pay" || inc.Service != "checkout" || inc.Lead() != "<@U7>" || inc.DeclaredBy != "<@U1>" {
		t.Errorf("declared from the modal: %+v", inc)
	}
	if !strings.Contains(strings.Join(room.Members, ","), "U7") {
		t.Errorf("the lead was not invited: %v", room.Members)
	}
	if rb := inc.Links["runbook"]; rb != "high-error-rate" { // the form declares the way the command does
		t.Errorf("declared from the modal with runbook %q, want high-error-rate", rb)
	}
	// Left on "classify", the severity comes from the impact words.
	submit(map[string]any{
		"title":    map[string]any{"title": input("API completely unavailable")},
		"severity": map[string]any{"severity": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "auto"}}},
	})
	e.warRoom(t, 2)
	if inc := e.incident(t, 2); inc.Severity != incidents.P1 || !strings.Contains(inc.SeverityReason, "completely unavailable") {
		t.Errorf("classified %s: %s", inc.Severity, inc.SeverityReason)
	}
}

func TestButtonsAndMenus(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P3 search slow"))
	room := e.warRoom(t, 1)
	// Acknowledge, clicked twice: it acts once.
	e.send(t, e.click(t, "U2", room.ID, button("cmd0", "ack INC-1")))
	e.send(t, e.click(t, "U2", room.ID, button("cmd0", "ack INC-1")))
	e.wait(t, "two answers", func(v *slacktest.View) bool { return len(v.Responses()) >= 3 })
	if n := len(e.kinds(t, 1, incidents.EventAcknowledged)); n != 1 {
		t.Errorf("%d acknowledgements after a double click", n)
	}
	e.srv.Look(func(v *slacktest.View) {
		last := v.Responses()[len(v.Responses())-1]
		b, _ := json.Marshal(last.Body)
		if last.Body["response_type"] != "ephemeral" || !strings.Contains(string(b), "already acknowledged by \\u003c@U2\\u003e") {
			t.Errorf("second click answered %s", b)
		}
	})
	// A menu option carries the whole command; the user picker adds the user.
	e.send(t, e.click(t, "U2", room.ID, map[string]any{"type": "static_select", "action_id": "cmd1",
		"selected_option": map[string]any{"value": "severity INC-1 P2", "text": map[string]any{"type": "plain_text", "text": "P2"}}}))
	e.send(t, e.click(t, "U2", room.ID, map[string]any{"type": "users_select", "action_id": "user:lead INC-1", "selected_user": "U9"}))
	e.wait(t, "severity and lead", func(v *slacktest.View) bool {
		inc, _ := e.svc.Get(e.ctx, 1)
		return inc.Severity == incidents.P2 && inc.Lead() == "<@U9>"
	})
	e.wait(t, "the new lead in the war room", func(v *slacktest.View) bool {
		return strings.Contains(strings.Join(v.ChannelByID(room.ID).Members, ","), "U9")
	})
	// An action id Sitrep never made is ignored.
	e.send(t, e.click(t, "U2", room.ID, button("evil", "resolve INC-1")))
	if e.incident(t, 1).Open() == false {
		t.Error("an unknown action id resolved the incident")
	}
}

func TestRedeliveredEnvelopeActsOnce(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P4 logo misaligned"))
	env := e.slash(t, "U1", e.general, "note INC-1 only once")
	env.EnvelopeID = "env-redelivered"
	e.send(t, env)
	env.RetryAttempt, env.RetryReason = 1, "timeout"
	if _, err := e.srv.Send(env); err != nil {
		t.Fatal(err)
	}
	e.send(t, e.slash(t, "U1", e.general, "note INC-1 after")) // processed after the redelivery
	e.wait(t, "the later note", func(*slacktest.View) bool { return len(e.kinds(t, 1, incidents.EventNote)) == 2 })
	notes := e.kinds(t, 1, incidents.EventNote)
	if len(notes) != 2 || notes[0].Message != "only once" || notes[1].Message != "after" {
		t.Errorf("notes %+v", notes)
	}
}

func TestPinsAndReactionsGoOnTheTimeline(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 errors on checkout"))
	room := e.warRoom(t, 1)
	ts := e.srv.PostAs("U3", room.ID, "rolled back to 3.1.0 <https://ci/123>")
	chatter := e.srv.PostAs("U3", room.ID, "coffee?")
	elsewhere := e.srv.PostAs("U3", e.general, "unrelated")
	reaction := func(name, channel, ts string) map[string]any {
		return map[string]any{"type": "reaction_added", "user": "U4", "reaction": name, "item_user": "U3",
			"item": map[string]any{"type": "message", "channel": channel, "ts": ts}, "event_ts": ts}
	}
	e.send(t, event(t, reaction("thumbsup", room.ID, chatter)))
	e.send(t, event(t, reaction("pushpin", e.general, elsewhere)))
	e.send(t, event(t, reaction("pushpin", room.ID, ts)))
	e.send(t, event(t, map[string]any{"type": "pin_added", "user": "U5", "channel_id": room.ID,
		"item": map[string]any{"type": "message", "channel": room.ID, "message": map[string]any{"type": "message", "user": "U3", "text": "rolled back to 3.1.0 <https://ci/123>", "ts": ts}}}))
	e.send(t, e.slash(t, "U1", room.ID, "note done")) // after the pins: a marker
	e.wait(t, "the note", func(*slacktest.View) bool { return len(e.kinds(t, 1, incidents.EventNote)) == 1 })
	pins := e.kinds(t, 1, incidents.EventMessagePinned)
	if len(pins) != 1 {
		t.Fatalf("%d pinned messages on the timeline, want 1: %+v", len(pins), pins)
	}
	p := pins[0]
	if p.Message != "rolled back to 3.1.0 <https://ci/123>" || p.Fields["author"] != "<@U3>" || p.Actor != "<@U4>" ||
		!strings.Contains(p.Fields["permalink"], "/archives/"+room.ID+"/p") || p.Fields["posted_at"] == "" {
		t.Errorf("pinned %+v", p)
	}
}

func TestAppMention(t *testing.T) {
	e := start(t)
	m := sample(t, "slackgo_events_api_app_mention_envelope.json")
	inner := m["payload"].(map[string]any)["event"].(map[string]any)
	inner["text"], inner["user"], inner["channel"] = "<@USITREPBOT> declare P4 typo on the status page", "U1", e.general
	e.send(t, event(t, inner))
	room := e.warRoom(t, 1)
	if room.Name != "inc-1-typo-on-the-status-page" {
		t.Errorf("war room %q", room.Name)
	}
}

func TestPostmortemIsUploadedToTheWarRoom(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout error rate above 5%"))
	room := e.warRoom(t, 1)
	e.send(t, e.slash(t, "U1", room.ID, "note #cause pool sized 10"))
	e.send(t, e.slash(t, "U1", room.ID, "action alert on pool saturation <@U2>"))
	e.send(t, e.slash(t, "U1", room.ID, "resolve rolled back"))
	e.send(t, e.slash(t, "U1", room.ID, "postmortem"))
	var file *slacktest.File
	e.wait(t, "the postmortem file", func(v *slacktest.View) bool {
		if fs := v.Files(room.ID); len(fs) == 1 && len(fs[0].Content) > 0 {
			file = fs[0]
			return true
		}
		return false
	})
	body := string(file.Content)
	if file.Name != "INC-1-postmortem.md" || !strings.Contains(body, "# Postmortem: INC-1 · Checkout error rate above 5%") ||
		!strings.Contains(body, "- pool sized 10") || !strings.Contains(body, "| 1 | alert on pool saturation | <@U2> | open |") {
		t.Errorf("uploaded %s:\n%s", file.Name, body)
	}
	if inc := e.incident(t, 1); inc.Phase != incidents.Document {
		t.Errorf("phase %s after the postmortem", inc.Phase)
	}
}

func TestRunbookStepsGoInOneThread(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout error rate above 5%"))
	room := e.warRoom(t, 1)
	e.wait(t, "the header's Runbook button", func(v *slacktest.View) bool {
		return strings.Contains(string(v.Messages(room.ID)[0].Blocks), `"value":"runbook INC-1"`)
	})
	e.send(t, e.click(t, "U2", room.ID, button("cmd1", "runbook INC-1")))
	e.send(t, e.click(t, "U2", room.ID, button("cmd0", "step INC-1 high-error-rate 1")))
	e.send(t, e.click(t, "U2", room.ID, button("cmd0", "step INC-1 high-error-rate 14")))
	e.wait(t, "three runbook messages", func(v *slacktest.View) bool {
		n := 0
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(m.Text, "High Error Rate") {
				n++
			}
		}
		return n == 3
	})
	e.srv.Look(func(v *slacktest.View) {
		var root string
		for _, m := range v.Messages(room.ID) {
			switch {
			case strings.HasPrefix(m.Text, "📖 Runbook High Error Rate"):
				root = m.TS
				if m.ThreadTS != "" {
					t.Error("the runbook message is itself in a thread")
				}
			case strings.HasPrefix(m.Text, "▶ High Error Rate"):
				if root == "" || m.ThreadTS != root {
					t.Errorf("step %q is not in the runbook's thread (%q, root %q)", m.Text, m.ThreadTS, root)
				}
			}
		}
	})
	// The refused scale step (no operators here) is on the timeline, explained.
	steps := e.kinds(t, 1, incidents.EventRunbookStep)
	if len(steps) != 2 || steps[1].Fields["outcome"] != "refused" || !strings.Contains(steps[1].Message, "only operators may change the cluster") {
		t.Errorf("timeline steps %+v", steps)
	}
}
