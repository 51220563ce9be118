package pagerduty_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/cputime"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

// BenchmarkWebhook is one signed incident.annotated event through the
// handler: verify, parse, one durable write with its dedup key.
func BenchmarkWebhook(b *testing.B) {
	f := newFixture(b)
	f.signed(b, sample(b, "zulip_triggered_v3.json", "PB"))
	h := f.srv.Config.Handler
	bodies := annotations(b, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
		req.Header.Set(pagerduty.SignatureHeader, pagerduty.Sign(bodies[i], secret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 202 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkWebhookBurst is BenchmarkWebhook with 64 senders per core at
// once, as in a storm: the writes share group commits, so an op is mostly
// CPU rather than an fsync's wait. cpu-ns/op is the process's user and
// system time per webhook: the handler's and the store's, their garbage
// collection, and httptest's request and recorder (the bodies and their
// signatures are made before the timer starts).
func BenchmarkWebhookBurst(b *testing.B) {
	f := newFixture(b)
	f.signed(b, sample(b, "zulip_triggered_v3.json", "PB"))
	h := f.srv.Config.Handler
	bodies, signatures := annotations(b, b.N), make([]string, b.N)
	for i, body := range bodies {
		signatures[i] = pagerduty.Sign(body, secret)
	}
	var n atomic.Int64
	b.SetParallelism(64)
	before := cputime.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
			req.Header.Set(pagerduty.SignatureHeader, signatures[i])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 202 || !bytes.Contains(rec.Body.Bytes(), []byte(`"events":1`)) {
				b.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	cputime.Report(b, before)
}

// annotations are n incident.annotated events on PagerDuty incident PB,
// each a new event with a note of its own.
func annotations(b *testing.B, n int) [][]byte {
	annotated := sample(b, "zulip_annotated_v3.json", "PB")
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = bytes.Replace(annotated, []byte("01GI0KTE33V5QXBVIJDEVJFUNE"), []byte(fmt.Sprintf("ev-%d", i)), 1)
		bodies[i] = bytes.Replace(bodies[i], []byte("Running KILL"), []byte(fmt.Sprintf("note %d", i)), 1)
	}
	return bodies
}
