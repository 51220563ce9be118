package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/prom"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// knownSeries writes three hours of the seed's metrics, one sample a minute:
// 594 good and 6 failed requests a minute (1% errors), and 600 requests a
// minute in latency buckets 0.05 s (50%), 0.1 s (90%) and 0.2 s (100%).
func knownSeries(start time.Time, minutes int) string {
	var b strings.Builder
	b.WriteString("# TYPE http_requests counter\n")
	for i := 0; i <= minutes; i++ {
		ts := start.Add(time.Duration(i) * time.Minute).Unix()
		fmt.Fprintf(&b, "http_requests_total{status=\"200\"} %d %d\n", 594*i, ts)
	}
	for i := 0; i <= minutes; i++ {
		ts := start.Add(time.Duration(i) * time.Minute).Unix()
		fmt.Fprintf(&b, "http_requests_total{status=\"500\"} %d %d\n", 6*i, ts)
	}
	b.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, bucket := range []struct {
		le  string
		per int
	}{{"0.05", 300}, {"0.1", 540}, {"0.2", 600}, {"+Inf", 600}} {
		for i := 0; i <= minutes; i++ {
			ts := start.Add(time.Duration(i) * time.Minute).Unix()
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{le=\"%s\"} %d %d\n", bucket.le, bucket.per*i, ts)
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

func near(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance*math.Abs(want) }

// TestSLOAgainstKnownSeries loads known series into Debian's Prometheus
// (promtool's backfill) and checks the SLO figures against ones computed by
// hand: 1% errors is 99% availability, burning a 99.95% budget 20 times too
// fast; P95 and P99 interpolate to 150 ms and 190 ms.
func TestSLOAgainstKnownSeries(t *testing.T) {
	promBin, promtool := need(t, "prometheus"), need(t, "promtool")
	dir := t.TempDir()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(180 * time.Minute)
	input := filepath.Join(dir, "series.om")
	if err := os.WriteFile(input, []byte(knownSeries(start, 180)), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", input, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	addr := freePort(t)
	config := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(config, []byte("global:\n  scrape_interval: 1m\n"), 0o644)
	run(t, promBin, "--config.file="+config, "--storage.tsdb.path="+data, "--storage.tsdb.retention.time=10y", "--web.listen-address="+addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitHTTP(ctx, t, "http://"+addr+"/-/ready")

	client, err := prom.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := slo.Default()
	cfg.Window, cfg.BurnWindow = time.Hour, 30*time.Minute // the queries are the seed's; the window fits the data
	r, err := slo.Measure(ctx, client, cfg, end)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"availability", r.Availability, 0.99},
		{"budget consumed %", r.ConsumedPercent, 0.01 / 0.0005 * 100},
		{"burn rate", r.BurnRate, 20},
		{"budget minutes", r.BudgetMinutes, 0.0005 * 60},
		{"P95 seconds", r.P95.Seconds(), 0.1 + (0.95-0.9)/(1.0-0.9)*0.1},
		{"P99 seconds", r.P99.Seconds(), 0.1 + (0.99-0.9)/(1.0-0.9)*0.1},
	}
	for _, c := range checks {
		if !near(c.got, c.want, 1e-6) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// An incident over the last 30 minutes: 6 × 30 = 180 failed requests, of
	// an hour's allowance of 0.05% × 36,000 = 18: ten budgets.
	b := slo.IncidentBudget(ctx, client, cfg, end.Add(-30*time.Minute), end)
	if b.Error != "" || !near(b.FailedRequests, 180, 0.01) || !near(b.ConsumedPercent, 1000, 0.01) {
		t.Errorf("incident budget %+v", b)
	}
	// The guide's 30-day window over three hours of data: the figures say
	// what they stand on, and latency says what the SLI table makes of it.
	month := slo.Default()
	r, err = slo.Measure(ctx, client, month, end)
	if err != nil || !r.Partial() || r.Covered < 180*time.Minute || r.Covered > 186*time.Minute {
		t.Errorf("coverage of 3h in 30d: %v (partial %v) %v", r.Covered, r.Partial(), err)
	}
	store, err := boltstore.Open(filepath.Join(dir, "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	router := commands.NewRouter(incidents.NewService(incidents.Config{Store: store, Clock: incidents.NewManualClock(end)}), slog.New(slog.DiscardHandler))
	router.UseSLO(client, month)
	rep := router.Handle(ctx, commands.Request{Actor: incidents.Actor{Name: "@alice", Source: "console"}, Text: "slo"})
	got := map[string]string{}
	for _, f := range rep.Fields {
		got[f.Label] = f.Value
	}
	if !regexp.MustCompile(`^99\.000% over the 3h0\dm of data in the last 30d \(objective 99\.95%\)$`).MatchString(got["Availability"]) {
		t.Errorf("availability %q", got["Availability"])
	}
	if want := "🔴 150ms: misses the objective (< 100ms); the SLI table, which runbook steps and alerts judge by, calls it ✅ (warning from 150ms)"; got["Latency P95"] != want {
		t.Errorf("P95 %q\nwant %q", got["Latency P95"], want)
	}
	if want := "✅ 190ms (objective < 300ms)"; got["Latency P99"] != want {
		t.Errorf("P99 %q\nwant %q", got["Latency P99"], want)
	}
	if !regexp.MustCompile(`^2000\.0% used: overspent by [0-9.]+ minutes of a 21\.6-minute budget — the error ratio of the 3h0\dm of data, held against the whole 30d's budget$`).MatchString(got["Error budget"]) {
		t.Errorf("budget %q", got["Error budget"])
	}
	// A coverage query that answers nothing: the window is not claimed whole.
	month.CoverageQuery = `count_over_time(sum(no_such_metric)[$window:1m])`
	router.UseSLO(client, month)
	rep = router.Handle(ctx, commands.Request{Actor: incidents.Actor{Name: "@alice", Source: "console"}, Text: "slo"})
	if v := rep.Fields[0].Value; !strings.Contains(v, "over 30d (how much of it has data is not known: ") {
		t.Errorf("unknown coverage: %q", v)
	}
	// Prometheus unreachable: a clear error, no panic.
	down, _ := prom.New("http://" + freePort(t))
	if _, err := slo.Measure(ctx, down, cfg, end); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable Prometheus: %v", err)
	}
}
