package slackbot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

func TestDeclareBySlashCommandOpensAWarRoom(t *testing.T) {
	e := start(t)
	_, ack := e.send(t, e.slash(t, "U1", e.general, "declare P1 API completely unavailable"))
	if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		t.Errorf("slash ack carried a payload: %s", ack.Payload)
	}
	room := e.warRoom(t, 1)
	if room.Name != "inc-1-api-completely-unavailable" {
		t.Errorf("war room name %q", room.Name)
	}
	for _, u := range []string{"U1", "UONCALL"} {
		if !strings.Contains(strings.Join(room.Members, ","), u) {
			t.Errorf("%s not invited: %v", u, room.Members)
		}
	}
	if room.Topic != "P1 Critical · INVESTIGATING · lead <@U1> · API completely unavailable" {
		t.Errorf("topic %q", room.Topic)
	}
	e.wait(t, "the P1 announcement", func(v *slacktest.View) bool { return len(v.Messages(e.announce)) == 1 })
	e.srv.Look(func(v *slacktest.View) {
		msgs := v.Messages(room.ID)
		if len(msgs) != 1 || msgs[0].TS != room.Pins[0] {
			t.Fatalf("war room messages %d, pinned %v", len(msgs), room.Pins)
		}
		header := blocksText(msgs[0])
		for _, want := range []string{"🚨 INC-1 · API completely unavailable", "P1 Critical — Service down (respond within 5m)",
			"set explicitly at declaration", "INVESTIGATING", "Detect (1/8)", "\\u003c@U1\\u003e", `"value":"ack INC-1"`, `"action_id":"user:lead INC-1"`} {
			if !strings.Contains(header, want) {
				t.Errorf("header lacks %q: %s", want, header)
			}
		}
		ann := blocksText(v.Messages(e.announce)[0])
		for _, want := range []string{"INC-1 - API completely unavailable", "Severity: P1", "Status: INVESTIGATING", "Lead: \\u003c@U1\\u003e", "War room: \\u003c#" + room.ID} {
			if !strings.Contains(ann, want) {
				t.Errorf("announcement lacks %q: %s", want, ann)
			}
		}
		if rs := v.Responses(); len(rs) != 1 || rs[0].Body["response_type"] != "ephemeral" {
			t.Errorf("declarer's answer: %+v", rs)
		}
	})
	if got := e.kinds(t, 1, incidents.EventWarRoomOpened); len(got) != 1 || got[0].Message != "war room #"+room.Name {
		t.Errorf("war_room_opened events %+v", got)
	}
	// A P3 is not announced.
	e.send(t, e.slash(t, "U1", e.general, "declare P3 search slow"))
	e.warRoom(t, 2)
	e.srv.Look(func(v *slacktest.View) {
		if n := len(v.Messages(e.announce)); n != 1 {
			t.Errorf("announce channel has %d messages after a P3", n)
		}
	})
}

func TestHeaderIsEditedInPlace(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P2 Checkout error rate above 5%"))
	room := e.warRoom(t, 1)
	e.send(t, e.slash(t, "U2", room.ID, "ack"))
	e.send(t, e.slash(t, "U2", room.ID, "status identified bad deploy of 3.2.0"))
	e.send(t, e.slash(t, "U2", room.ID, "severity P1 every region"))
	e.wait(t, "the header to show the changes", func(v *slacktest.View) bool {
		h := blocksText(v.Messages(room.ID)[0])
		return strings.Contains(h, "acknowledged by \\u003c@U2\\u003e") && strings.Contains(h, "IDENTIFIED") && strings.Contains(h, "P1 Critical")
	})
	e.wait(t, "the topic", func(v *slacktest.View) bool {
		return v.ChannelByID(room.ID).Topic == "P1 Critical · IDENTIFIED · lead <@U1> · Checkout error rate above 5%"
	})
	e.wait(t, "the status echo in the room and the announce channel", func(v *slacktest.View) bool {
		inRoom := false
		for _, m := range v.Messages(room.ID) {
			inRoom = inRoom || strings.Contains(m.Text, "INC-1 status: IDENTIFIED*")
		}
		return inRoom && len(v.Messages(e.announce)) >= 2 // the P2 announcement, then the echo
	})
	e.srv.Look(func(v *slacktest.View) {
		var headers, echoes int
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(m.Text, "INC-1 · Checkout") {
				headers++
			}
			if strings.Contains(m.Text, "INC-1 status: IDENTIFIED* — bad deploy of 3.2.0") {
				echoes++
			}
		}
		if headers != 1 || echoes != 1 {
			t.Errorf("war room has %d headers and %d status echoes, want 1 and 1", headers, echoes)
		}
		if v.Messages(room.ID)[0].Updates == 0 {
			t.Error("the header was never updated")
		}
	})
}

func TestNameTakenAndConcurrentDeclares(t *testing.T) {
	e := start(t)
	e.srv.CreateChannel("inc-1-api-down") // someone's old channel
	var wg sync.WaitGroup
	for _, u := range []string{"U1", "U2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.send(t, e.slash(t, u, e.general, "declare API down"))
		}()
	}
	wg.Wait()
	r1, r2 := e.warRoom(t, 1), e.warRoom(t, 2)
	names := map[string]bool{r1.Name: true, r2.Name: true}
	if !names["inc-1-api-down-2"] || !names["inc-2-api-down"] {
		t.Errorf("war rooms %v", names)
	}
	e.srv.Look(func(v *slacktest.View) {
		count := map[string]int{}
		for _, c := range v.Channels() {
			if strings.HasPrefix(c.Name, "inc-") {
				count[strings.SplitN(c.Name, "-", 3)[1]]++
			}
		}
		if count["1"] != 2 || count["2"] != 1 { // inc-1 includes the pre-existing channel
			t.Errorf("channels per incident %v", count)
		}
	})
}

func TestSlackDownStillRecordsAndReconnects(t *testing.T) {
	e := start(t)
	if err := e.bot.Ready(context.Background()); err != nil {
		t.Fatalf("not ready while connected: %v", err)
	}
	e.srv.Revoke(true)
	e.srv.Disconnect()
	e.until(t, "not ready", func() bool { return e.bot.Ready(context.Background()) != nil })
	if err := e.bot.Ready(context.Background()); !strings.Contains(err.Error(), "slack:") {
		t.Errorf("readiness error %v", err)
	}
	inc, err := e.svc.Declare(context.Background(), incidents.Declaration{Title: "db down"}, incidents.Actor{Name: "@ops", Source: "console"})
	if err != nil || inc.ID != 1 {
		t.Fatalf("declare while Slack is down: %v", err)
	}
	e.srv.Revoke(false)
	e.until(t, "reconnected", func() bool { return e.bot.Ready(context.Background()) == nil })
	if got := e.incident(t, 1); got.Title != "db down" {
		t.Errorf("incident lost: %+v", got)
	}
	// The war room it could not get while Slack was down opens on reconnect.
	if room := e.warRoom(t, 1); room.Name != "inc-1-db-down" {
		t.Errorf("war room %q", room.Name)
	}
}

func TestRemindersInTheWarRoom(t *testing.T) {
	e := start(t)
	e.send(t, e.slash(t, "U1", e.general, "declare P1 API down"))
	room := e.warRoom(t, 1)
	// Reminders as the reminder loop stores them: the outbox posts them.
	for _, r := range []struct{ msg, about string }{{"INC-1 (P1) is still unacknowledged after 5m0s", ""}, {"INC-1 has no postmortem yet", "document"}} {
		_, _, err := e.svc.Change(context.Background(), 1, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			var fields map[string]string
			if r.about != "" {
				fields = map[string]string{"about": r.about}
			}
			return inc.Record(incidents.EventReminder, r.msg, fields, incidents.System, now)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.wait(t, "both reminders", func(v *slacktest.View) bool {
		var ack, doc bool
		for _, m := range v.Messages(room.ID) {
			ack = ack || (strings.Contains(m.Text, "⏰ *INC-1 is not acknowledged*") && strings.Contains(string(m.Blocks), `"value":"ack INC-1"`))
			doc = doc || m.Text == "📝 INC-1 has no postmortem yet"
		}
		return ack && doc
	})
}

// TestAnAlertCannotPingPeople: an Alertmanager-declared P1 whose title
// names people (<@UCEO>) and a Slack user's status update that quotes them:
// the announcement, the header, the topic and the echoes show UCEO as text,
// while the lead and the update's author are mentioned. Fails on a renderer
// that keeps every plain user reference.
func TestAnAlertCannotPingPeople(t *testing.T) {
	e := start(t)
	am := incidents.Actor{Name: "Alertmanager", Source: incidents.SourceAlertmanager}
	if _, err := e.svc.Declare(e.ctx, incidents.Declaration{Title: "DB down — paging <@UCEO> <!channel>", Signals: incidents.Signals{Labels: map[string]string{"severity": "critical"}}, Lead: "<@U7>"}, am); err != nil {
		t.Fatal(err)
	}
	room := e.warRoom(t, 1)
	e.send(t, e.slash(t, "U2", room.ID, "status monitoring <@UCEO> said it is fine <!everyone>"))
	e.wait(t, "the echo in the war room and #incidents", func(v *slacktest.View) bool {
		return len(v.Messages(room.ID)) >= 2 && len(v.Messages(e.announce)) >= 2
	})
	e.srv.Look(func(v *slacktest.View) {
		var all []string
		for _, ch := range []string{room.ID, e.announce} {
			for _, m := range v.Messages(ch) {
				all = append(all, m.Text, string(m.Blocks))
			}
		}
		all = append(all, v.ChannelByID(room.ID).Topic)
		joined := strings.Join(all, "\n")
		for _, bad := range []string{"<@UCEO>", `\u003c@UCEO\u003e`, "<!channel>", `\u003c!channel\u003e`, "<!everyone>", `\u003c!everyone\u003e`} {
			if strings.Contains(joined, bad) {
				t.Errorf("outside text pings: %q in\n%s", bad, joined)
			}
		}
		for _, want := range []string{`\u003c@U7\u003e`, "<@U2>", `\u0026lt;@UCEO\u0026gt;`} {
			if !strings.Contains(joined, want) {
				t.Errorf("want %q (the lead, the author, UCEO as text) in\n%s", want, joined)
			}
		}
	})
}
