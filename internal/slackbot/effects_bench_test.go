package slackbot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// What a person waits for, end to end through the socket and the Web API
// with the server's tiers off: a declare until its war room has the header
// posted and pinned, and a click (ack) until the header shows it. The file
// compiles against the adapter before the outbox too, so the same run can
// be made on an older commit for comparison (docs/reliability.md).

func untiered(e *env) {
	if u, ok := any(e.srv).(interface{ Unlimited() }); ok {
		u.Unlimited()
	}
}

func BenchmarkDeclareToWarRoom(b *testing.B) {
	e := start(b)
	untiered(e)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e.send(b, e.slash(b, "U1", e.general, fmt.Sprintf("declare P3 bench %d", i)))
		e.warRoom(b, int64(i+1))
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(pct(took, 0.50), "p50-ms")
	b.ReportMetric(pct(took, 0.99), "p99-ms")
}

func BenchmarkClickToHeader(b *testing.B) {
	e := start(b)
	untiered(e)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e.send(b, e.slash(b, "U1", e.general, fmt.Sprintf("declare P3 bench %d", i)))
		room := e.warRoom(b, int64(i+1))
		key := incidents.FormatID(int64(i + 1))
		b.StartTimer()
		t0 := time.Now()
		e.send(b, e.click(b, "U2", room.ID, button("cmd0", "ack "+key)))
		e.wait(b, "the header edited", func(v *slacktest.View) bool {
			for _, m := range v.Messages(room.ID) {
				if m.TS == room.Pins[0] {
					return strings.Contains(string(m.Blocks), "acknowledged by")
				}
			}
			return false
		})
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(pct(took, 0.50), "p50-ms")
	b.ReportMetric(pct(took, 0.99), "p99-ms")
}
