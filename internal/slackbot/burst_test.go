package slackbot_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// TestBurstOf30Declares opens 30 war rooms at once while Slack answers some
// calls with 429 (Retry-After), 500 and internal_error: every failure is
// retried and nothing is lost.
func TestBurstOf30Declares(t *testing.T) {
	e := start(t)
	e.srv.Fail("conversations.create", slacktest.Fault{Status: 429, RetryAfter: "1"}, slacktest.Fault{Status: 429, RetryAfter: "0"}, slacktest.Fault{Status: 500})
	e.srv.Fail("chat.postMessage", slacktest.Fault{Status: 500}, slacktest.Fault{Status: 429, RetryAfter: "0"}, slacktest.Fault{Error: "internal_error"})
	e.srv.Fail("pins.add", slacktest.Fault{Status: 429, RetryAfter: "0"}, slacktest.Fault{Status: 429, RetryAfter: "0"})
	e.srv.Fail("conversations.invite", slacktest.Fault{Error: "internal_error"})
	e.srv.Fail("conversations.setTopic", slacktest.Fault{Status: 503})
	const n = 30
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.send(t, e.slash(t, fmt.Sprintf("U%d", i), e.general, fmt.Sprintf("declare P3 burst %d", i)))
		}()
	}
	wg.Wait()
	for id := int64(1); id <= n; id++ {
		e.warRoom(t, id)
	}
	e.srv.Look(func(v *slacktest.View) {
		for _, m := range []string{"conversations.create", "pins.add", "conversations.invite", "conversations.setTopic"} {
			ok := 0
			for _, c := range v.Calls(m) {
				if c.Status == 200 {
					ok++
				}
			}
			if ok < n {
				t.Errorf("%s: %d successful calls, want %d", m, ok, n)
			}
		}
		failed, created := 0, 0
		for _, c := range v.Calls("conversations.create") {
			if c.Status != 200 {
				failed++
			} else {
				created++
			}
		}
		if failed < 3 || created != n {
			t.Errorf("conversations.create: %d failed (3 injected, the rest tier 429s), %d created, want %d", failed, created, n)
		}
		rooms := 0
		for _, c := range v.Channels() {
			if len(c.Pins) == 1 && len(v.Messages(c.ID)) >= 1 {
				rooms++
			}
		}
		if rooms != n {
			t.Errorf("%d war rooms with a pinned header, want %d", rooms, n)
		}
	})
	for id := int64(1); id <= n; id++ {
		if got := e.kinds(t, id, incidents.EventWarRoomOpened); len(got) != 1 {
			t.Errorf("%s has %d war_room_opened events", incidents.FormatID(id), len(got))
		}
	}
}

// TestHundredWarRoomsWithinTheTiers: 100 incidents at once open 100 war
// rooms against a server that enforces Slack's tiers (time scaled 60×, on
// both sides): the sender paces every call, so not one is refused.
func TestHundredWarRoomsWithinTheTiers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	e := startAt(t, 60, filepath.Join(t.TempDir(), "s.db"), nil)
	const n = 100
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Declare(context.Background(), incidents.Declaration{Title: fmt.Sprintf("load %d", i)}, incidents.Actor{Name: "<@U1>", Source: "slack"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for id := int64(1); id <= n; id++ {
		e.warRoom(t, id)
	}
	e.srv.Look(func(v *slacktest.View) {
		refused := 0
		for _, c := range v.Calls("") {
			if c.Status == 429 {
				refused++
				t.Logf("refused: %s %s", c.Method, c.Params.Get("channel"))
			}
		}
		t.Logf("%d war rooms, %d Web API calls, %d refused", n, len(v.Calls("")), refused)
		if refused != 0 {
			t.Errorf("%d calls went over a tier", refused)
		}
	})
}
