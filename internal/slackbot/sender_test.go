package slackbot_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/slackbot"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

func TestSenderKeepsOrderThroughFaults(t *testing.T) {
	srv := slacktest.NewScaled(1000)
	defer srv.Close()
	ch := srv.CreateChannel("war-room")
	other := srv.CreateChannel("other")
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.URL))
	s := slackbot.NewSender(slackbot.SenderConfig{RateScale: 1000, RetryBase: time.Millisecond})
	srv.Fail("chat.postMessage", slacktest.Fault{Status: 429, RetryAfter: "0"}, slacktest.Fault{Status: 500},
		slacktest.Fault{Error: "internal_error"}, slacktest.Fault{Status: 502}, slacktest.Fault{Status: 429, RetryAfter: "0"})
	post := func(channel, text string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false))
			return err
		}
	}
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		s.Go(ctx, "chat.postMessage", ch, post(ch, fmt.Sprint(i)))
		wg.Add(1)
		go func() { defer wg.Done(); s.Do(ctx, "chat.postMessage", other, post(other, "x")) }()
	}
	s.Go(ctx, "chat.postMessage", ch, post(ch, "last"))
	s.Wait()
	wg.Wait()
	srv.Look(func(v *slacktest.View) {
		msgs := v.Messages(ch)
		if len(msgs) != n+1 {
			t.Fatalf("%d messages, want %d (lost or duplicated)", len(msgs), n+1)
		}
		for i, m := range msgs[:n] {
			if m.Text != fmt.Sprint(i) {
				t.Fatalf("message %d is %q: order broken", i, m.Text)
			}
		}
		if len(v.Messages(other)) != n {
			t.Errorf("other channel has %d messages", len(v.Messages(other)))
		}
	})
}

func TestSenderGivesUpOnPermanentErrors(t *testing.T) {
	srv := slacktest.NewScaled(1000)
	defer srv.Close()
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.URL))
	s := slackbot.NewSender(slackbot.SenderConfig{RateScale: 1000, RetryBase: time.Millisecond, MaxAttempts: 3})
	ctx := context.Background()
	err := s.Do(ctx, "chat.postMessage", "CMISSING", func(ctx context.Context) error {
		_, _, err := api.PostMessageContext(ctx, "CMISSING", slack.MsgOptionText("x", false))
		return err
	})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Fatalf("err = %v", err)
	}
	srv.Fail("auth.test", slacktest.Fault{Status: 500}, slacktest.Fault{Status: 500}, slacktest.Fault{Status: 500}, slacktest.Fault{Status: 500})
	err = s.Do(ctx, "auth.test", "", func(ctx context.Context) error { _, err := api.AuthTestContext(ctx); return err })
	if err == nil {
		t.Fatal("four 500s with three attempts succeeded")
	}
	srv.Look(func(v *slacktest.View) {
		if n := len(v.Calls("chat.postMessage")); n != 1 {
			t.Errorf("a permanent error was retried: %d calls", n)
		}
		if n := len(v.Calls("auth.test")); n != 3 {
			t.Errorf("auth.test called %d times, want 3 attempts", n)
		}
	})
}

func TestSenderKeepsToTheTier(t *testing.T) {
	// At Slack's real rates a Tier 2 method (20 a minute) allows one call at
	// once and then one every 3 s: the second call must wait, and a cancelled
	// wait returns the context's error without calling Slack.
	s := slackbot.NewSender(slackbot.SenderConfig{})
	calls := 0
	call := func(context.Context) error { calls++; return nil }
	ctx := context.Background()
	if err := s.Do(ctx, "conversations.create", "", call); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Do(short, "conversations.create", "", call); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("second call within the window: err %v, %d calls", err, calls)
	}
}

// TestSenderHonoursRetryAfterForTheMethod: a 429 with Retry-After pauses
// the whole method (Slack's limits are per method), not just the call that
// got it: a second call made during the pause waits it out too, and neither
// counts the 429 as a failed attempt.
func TestSenderHonoursRetryAfterForTheMethod(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	srv.Unlimited()
	ch := srv.CreateChannel("war-room")
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.URL))
	s := slackbot.NewSender(slackbot.SenderConfig{RateScale: 1000, RetryBase: time.Millisecond, MaxAttempts: 1})
	srv.Fail("conversations.setTopic", slacktest.Fault{Status: 429, RetryAfter: "1"})
	topic := func(ctx context.Context) error {
		_, err := api.SetTopicOfConversationContext(ctx, ch, "t")
		return err
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- s.Do(ctx, "conversations.setTopic", ch, topic) }()
	for s.PausedUntil("conversations.setTopic").IsZero() { // the sender has read the 429
		time.Sleep(time.Millisecond)
	}
	var limited time.Time
	srv.Look(func(v *slacktest.View) { limited = v.Calls("conversations.setTopic")[0].At })
	if err := s.Do(ctx, "conversations.setTopic", ch, topic); err != nil {
		t.Fatalf("the call made during the pause: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the call that got the 429 (one attempt allowed): %v", err)
	}
	srv.Look(func(v *slacktest.View) {
		calls := v.Calls("conversations.setTopic")
		if len(calls) != 3 {
			t.Fatalf("%d calls, want the 429 and two successes", len(calls))
		}
		for _, c := range calls[1:] {
			if c.At.Sub(limited) < time.Second {
				t.Errorf("a call %s after the 429, inside its Retry-After of 1 s", c.At.Sub(limited))
			}
		}
	})
}
