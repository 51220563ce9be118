package alertmanager_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/cputime"
)

// BenchmarkRepeats is an Alertmanager storm's common case: 64 senders per
// core re-sending groups whose alerts are already stored, through the
// handler and store, where the store's probe answers them from a read
// (boltstore's TestAProbeAnswersARepeatWhileAWriteHoldsTheLock shows that
// path; this checks only that nothing was added). cpu-ns/op is the
// process's user and system time per notification, httptest's request and
// recorder and the garbage collection included.
func BenchmarkRepeats(b *testing.B) {
	f := newFixture(b, "")
	bodies := make([][]byte, 20)
	for g := range bodies {
		bodies[g] = []byte(fmt.Sprintf(`{"version":"4","groupKey":"g%d","status":"firing","receiver":"sitrep",
			"commonLabels":{"alertname":"HighErrorRate%d","severity":"critical","service":"checkout"},
			"commonAnnotations":{"summary":"Error rate above 5%%"},
			"alerts":[{"status":"firing","fingerprint":"f%d","labels":{"alertname":"HighErrorRate%d","severity":"critical","service":"checkout","instance":"10.0.0.%d"},
			"annotations":{"summary":"Error rate above 5%%"},"startsAt":"2026-12-01T03:00:00Z","generatorURL":"http://prometheus/graph"}]}`, g, g, g, g, g))
		if code, out := f.post(b, bodies[g]); code != http.StatusOK {
			b.Fatalf("%d %v", code, out)
		}
	}
	h := f.srv.Config.Handler
	var n atomic.Int64
	b.SetParallelism(64)
	before := cputime.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[n.Add(1)%20]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"events":0`)) {
				b.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	cputime.Report(b, before)
}
