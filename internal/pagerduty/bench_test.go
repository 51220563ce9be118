package pagerduty_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

// BenchmarkWebhook is one signed incident.annotated event through the
// handler: verify, parse, one durable write with its dedup key.
func BenchmarkWebhook(b *testing.B) {
	f := newFixture(b)
	f.signed(b, sample(b, "zulip_triggered_v3.json", "PB"))
	h := f.srv.Config.Handler
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = bytes.Replace(sample(b, "zulip_annotated_v3.json", "PB"), []byte("01GI0KTE33V5QXBVIJDEVJFUNE"), []byte(fmt.Sprintf("ev-%d", i)), 1)
		bodies[i] = bytes.Replace(bodies[i], []byte("Running KILL"), []byte(fmt.Sprintf("note %d", i)), 1)
	}
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
