package slackbot_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// bareClient is the baseline: slack-go's socket-mode client with a loop that
// only acknowledges, doing no work at all.
func bareClient(b *testing.B) *slacktest.Server {
	srv := slacktest.New()
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(srv.URL))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sm.RunContext(ctx) }()
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					sm.Ack(*evt.Request)
				}
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done; srv.Close() })
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		b.Fatal(err)
	}
	return srv
}

// burst sends n envelopes at once and returns each one's envelope-to-ack time.
func burst(b *testing.B, srv *slacktest.Server, n int, build func(i int) slacktest.Envelope) []time.Duration {
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := srv.Send(build(i))
			if err != nil {
				b.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []time.Duration
	err := srv.Wait(ctx, func(v *slacktest.View) bool {
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
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func pct(d []time.Duration, p float64) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
}

// BenchmarkEnvelopeAck: 100 concurrent interactions (each a note written to
// bbolt) against Sitrep, and the same burst against the bare client, in
// turn. Reports p50/p99 envelope-to-ack in ms and Sitrep's p99 as a ratio
// of the bare client's.
func BenchmarkEnvelopeAck(b *testing.B) {
	e := start(b)
	e.send(b, e.slash(b, "U1", e.general, "declare P3 bench"))
	room := e.warRoom(b, 1)
	base := bareClient(b)
	const n = 100
	var sitrep, bare []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sitrep = append(sitrep, burst(b, e.srv, n, func(k int) slacktest.Envelope {
			return e.click(b, fmt.Sprintf("U%d", k), room.ID, button("cmd0", fmt.Sprintf("note INC-1 click %d", k)))
		})...)
		bare = append(bare, burst(b, base, n, func(k int) slacktest.Envelope {
			return e.click(b, fmt.Sprintf("U%d", k), room.ID, button("cmd0", "ack INC-1"))
		})...)
	}
	b.StopTimer()
	b.ReportMetric(pct(sitrep, 0.50), "p50-ms")
	b.ReportMetric(pct(sitrep, 0.99), "p99-ms")
	b.ReportMetric(pct(bare, 0.50), "bare-p50-ms")
	b.ReportMetric(pct(bare, 0.99), "bare-p99-ms")
	b.ReportMetric(pct(sitrep, 0.99)/pct(bare, 0.99), "p99-x-bare")
}
