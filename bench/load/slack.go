package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// slackLoad starts the bot in Slack mode against the in-repo Slack test
// server and sends bursts of 100 concurrent button clicks; the baseline is
// slack-go's socket-mode client doing nothing but acknowledging.
func slackLoad(botPath, dir string) error {
	srv := slacktest.New()
	defer srv.Close()
	room := srv.CreateChannel("war-room")
	bot := exec.Command(botPath)
	bot.Env = append(os.Environ(), "SITREP_DB="+filepath.Join(dir, "slack.db"), "SITREP_LISTEN=127.0.0.1:0", "SITREP_LOG_LEVEL=error",
		"SLACK_BOT_TOKEN="+slacktest.BotToken, "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_API_URL="+srv.URL, "SITREP_SLACK_RATE_SCALE=1000")
	bot.Stderr = os.Stderr
	if err := bot.Start(); err != nil {
		return err
	}
	defer func() { bot.Process.Kill(); bot.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		return fmt.Errorf("the bot never connected to the Slack test server: %w", err)
	}
	base := slacktest.New()
	defer base.Close()
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(base.URL))
	sm := socketmode.New(api)
	go sm.RunContext(ctx)
	go func() {
		for evt := range sm.Events {
			if evt.Request != nil && evt.Request.EnvelopeID != "" {
				sm.Ack(*evt.Request)
			}
		}
	}()
	if err := base.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		return err
	}
	fmt.Printf("\nSlack: 100 concurrent button clicks per round, 20 rounds; envelope-to-ack\n%-9s %9s %9s\n", "target", "p50 ms", "p99 ms")
	var sitrep, bare []time.Duration
	for round := 0; round < 20; round++ {
		sitrep = append(sitrep, clicks(ctx, srv, room)...)
		bare = append(bare, clicks(ctx, base, room)...)
	}
	sr, br := summarize(sitrep, 0), summarize(bare, 0)
	fmt.Printf("%-9s %9.2f %9.2f\n%-9s %9.2f %9.2f\n%-9s %18.2fx   (p99 as a ratio to the bare client; ≥ 1 is as fast)\n", "sitrep", sr.p50, sr.p99, "bare", br.p50, br.p99, "ratio", br.p99/sr.p99)
	return nil
}

// clicks sends 100 block_actions envelopes at once and returns their ack latencies.
func clicks(ctx context.Context, srv *slacktest.Server, channel string) []time.Duration {
	ids := make([]string, 100)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], _ = srv.Send(slacktest.Envelope{Type: "interactive", Payload: map[string]any{
				"type": "block_actions", "user": map[string]any{"id": fmt.Sprintf("U%d", i)}, "channel": map[string]any{"id": channel},
				"actions": []any{map[string]any{"type": "button", "action_id": "cmd0", "value": "help"}}}})
		}()
	}
	wg.Wait()
	var out []time.Duration
	srv.Wait(ctx, func(v *slacktest.View) bool {
		out = out[:0]
		for _, id := range ids {
			d, ok := v.AckLatency(id)
			if !ok {
				return false
			}
			out = append(out, d)
		}
		return true
	})
	return out
}
