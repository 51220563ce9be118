package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/prom"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// scrapedPrometheus runs Debian's Prometheus scraping the test exporter
// every second, and waits until it has a few samples.
func scrapedPrometheus(t testing.TB, ctx context.Context) *prom.Client {
	promBin := need(t, "prometheus")
	dir := t.TempDir()
	target := exporter(t, ctx)
	addr := freePort(t)
	config := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(config, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: architect-api\n  static_configs: [{targets: ['%s']}]\n", target)), 0o644)
	run(t, promBin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	waitHTTP(ctx, t, "http://"+addr+"/-/ready")
	client, err := prom.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	for {
		s, err := client.Instant(ctx, `sum(rate(http_requests_total{status=~"5.."}[5m]))`, time.Now())
		if err == nil && len(s) == 1 && s[0].Value > 0 {
			return client
		}
		select {
		case <-ctx.Done():
			t.Fatal("Prometheus never had a rate")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestRunbookQueriesAgainstPrometheus runs the shipped runbooks' PromQL
// steps, and the seed guide's own queries as written, against Debian's
// Prometheus scraping an exporter with 20% errors.
func TestRunbookQueriesAgainstPrometheus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := scrapedPrometheus(t, ctx)
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := runbooks.NewRunner(nil, client, runbooks.Guardrails{})
	step := func(rb string, n int) runbooks.Result {
		return r.Run(ctx, runbooks.Request{Runbook: set.Get(rb), Step: n})
	}
	// Error rate: 20% of requests fail, far over the SLI table's 0.1% critical
	// line; per second, the guide's query, 20/s with no line to judge it by.
	if res := step("high-error-rate", 2); res.Outcome != runbooks.OK || !strings.HasPrefix(res.Summary, "🔴") || !strings.HasPrefix(res.Lines[0], "🔴 20.00%") {
		t.Errorf("error ratio step: %+v", res)
	}
	if res := step("high-error-rate", 3); res.Outcome != runbooks.OK || !strings.Contains(res.Lines[0], "/s  {") || !strings.Contains(res.Lines[0], "status=500") {
		t.Errorf("errors per second step: %+v", res)
	}
	if res := step("high-error-rate", 5); res.Outcome != runbooks.OK || len(res.Lines) != 1 {
		t.Errorf("top endpoints step: %+v", res)
	}
	// Every observation is 0.12 s: P95 interpolates inside the 0.1–0.25 bucket, over 0.15 s: ⚠️ at least.
	if res := step("high-latency", 1); res.Outcome != runbooks.OK || strings.HasPrefix(res.Summary, "✅") {
		t.Errorf("latency step: %+v", res)
	}
	// The range step draws a real PNG.
	res := step("high-error-rate", 4)
	if res.Outcome != runbooks.OK || len(res.Image) == 0 {
		t.Fatalf("graph step: %+v", res)
	}
	img, err := png.Decode(bytes.NewReader(res.Image))
	if err != nil || img.Bounds().Dx() < 500 {
		t.Errorf("the graph is not a PNG of a useful size: %v", err)
	}
	// Metrics the exporter does not serve answer "no data", not an error.
	if res := step("high-error-rate", 10); res.Outcome != runbooks.OK || !strings.Contains(res.Summary, "no data") {
		t.Errorf("absent metric: %+v", res)
	}
	// The guide's queries as written all run. Its latency query,
	// histogram_quantile(0.95, http_request_duration_seconds), names no
	// _bucket series and so matches nothing: the runbook uses the working form.
	for _, q := range []string{`rate(http_requests_total[5m])`, `rate(http_requests_total{status=~"5.."}[5m])`,
		`topk(5,rate(http_requests_total{status=~"5.."}[5m]))`, `histogram_quantile(0.95, http_request_duration_seconds)`,
		`up{job="architect-api"}`} {
		samples, err := client.Instant(ctx, q, time.Now())
		if err != nil {
			t.Errorf("the seed's query %s: %v", q, err)
		}
		if strings.HasPrefix(q, "histogram_quantile") && len(samples) != 0 {
			t.Errorf("the seed's latency query returned %d series", len(samples))
		}
	}
}

// BenchmarkRangeGraph: one promql_range step — the range query against
// Debian's Prometheus and the PNG rendering.
func BenchmarkRangeGraph(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := scrapedPrometheus(b, ctx)
	b.ResetTimer()
	end := time.Now()
	for i := 0; i < b.N; i++ {
		if _, _, err := client.Graph(ctx, runbooks.GraphSpec{Title: "error rate", Query: `sum(rate(http_requests_total{status=~"5.."}[5m]))`, Unit: "rate", Start: end.Add(-time.Hour), End: end}); err != nil {
			b.Fatal(err)
		}
	}
}
