package slackbot_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// TestNudgeOpensTheUpdateForm: an acknowledged P2 with no update for its
// cadence gets a nudge in its war room naming the lead, with a Post update
// button; the button opens the update form (status, message); an empty
// message is refused next to its field; the submitted form posts the update
// in the war room, and the incident's nudges start over.
func TestNudgeOpensTheUpdateForm(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout degraded"))
	room := e.warRoom(t, 1)
	e.send(t, e.click(t, "U1", room.ID, button("cmd0", "ack INC-1")))
	e.until(t, "the acknowledgement", func() bool { return e.incident(t, 1).Acked() })
	// The reminder loop's tick an hour and a minute later, as it stores it.
	_, events, err := e.svc.Change(context.Background(), 1, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		evs, _ := inc.Remind(inc.DeclaredAt.Add(61 * time.Minute))
		return evs, nil
	})
	if err != nil || len(events) != 1 || events[0].Kind != incidents.EventNudge {
		t.Fatalf("nudge: %+v %v", events, err)
	}
	var nudge *slacktest.Message
	e.wait(t, "the nudge", func(v *slacktest.View) bool {
		for _, m := range v.Messages(room.ID) {
			if strings.HasPrefix(m.Text, "✍️ INC-1 has had no status update for 1h01m") {
				nudge = m
			}
		}
		return nudge != nil
	})
	if !strings.Contains(nudge.Text, "<@U1>, post one") || !strings.Contains(string(nudge.Blocks), `"action_id":"form0"`) || !strings.Contains(string(nudge.Blocks), `"value":"update INC-1"`) {
		t.Fatalf("nudge %q %s", nudge.Text, nudge.Blocks)
	}
	e.send(t, e.click(t, "U1", room.ID, button("form0", "update INC-1")))
	var form struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
		Blocks          []struct {
			BlockID string `json:"block_id"`
		} `json:"blocks"`
	}
	e.wait(t, "the update form", func(v *slacktest.View) bool { return len(v.Views()) == 1 && json.Unmarshal(v.Views()[0], &form) == nil })
	if form.CallbackID != "update" || len(form.Blocks) != 2 || form.Blocks[0].BlockID != "status" || form.Blocks[1].BlockID != "message" {
		t.Fatalf("form %+v", form)
	}
	submit := func(status, message string) slacktest.Ack {
		m := sample(t, "DERIVED_view_submission_envelope.json")
		p := m["payload"].(map[string]any)
		p["user"].(map[string]any)["id"] = "U1"
		view := p["view"].(map[string]any)
		view["callback_id"], view["private_metadata"] = "update", form.PrivateMetadata
		view["state"] = map[string]any{"values": map[string]any{
			"status":  map[string]any{"status": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": status}}},
			"message": map[string]any{"message": map[string]any{"type": "plain_text_input", "value": message}},
		}}
		_, ack := e.send(t, slacktest.Envelope{Type: "interactive", Payload: p, AcceptsResponsePayload: true})
		return ack
	}
	if ack := submit("investigating", "  "); !strings.Contains(string(ack.Payload), `"response_action":"errors"`) || !strings.Contains(string(ack.Payload), "write the update") {
		t.Errorf("an empty update: %s", ack.Payload)
	}
	submit("identified", "the 3.2.0 pool change; rolling back, next update 15:30")
	e.wait(t, "the update in the war room", func(v *slacktest.View) bool {
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(m.Text, "📣 *INC-1 status: IDENTIFIED* — the 3.2.0 pool change; rolling back, next update 15:30 (<@U1>)") {
				return true
			}
		}
		return false
	})
	if inc := e.incident(t, 1); inc.Status != incidents.Identified || inc.Nudges != 0 || inc.LastUpdateAt.IsZero() {
		t.Errorf("after the update: %+v", inc)
	}
}
