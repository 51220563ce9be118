package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sitrep-oncall/sitrep/internal/alertmanager"
	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// exporter serves the seed's application metrics: requests by status, 20%
// of them 5xx, and a request-duration histogram.
func exporter(t testing.TB, ctx context.Context) string {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"status"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "Latency.", Buckets: prometheus.DefBuckets})
	reg.MustRegister(requests, duration)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				requests.WithLabelValues("200").Add(8)
				requests.WithLabelValues("500").Add(2)
				duration.Observe(0.12)
			}
		}
	}()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestSeedAlertReachesSitrep: Debian's Prometheus evaluates the seed's alert
// rules, as written, against an exporter with a high error rate; Debian's
// Alertmanager routes the firing HighErrorRate alert to Sitrep's webhook,
// with a bearer token; Sitrep declares the incident from it with the High
// Error Rate runbook attached. HighErrorRate
// has `for: 2m`, so this test takes a little over two minutes.
func TestSeedAlertReachesSitrep(t *testing.T) {
	promBin, amBin := need(t, "prometheus"), need(t, "prometheus-alertmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()

	store, err := boltstore.Open(filepath.Join(dir, "sitrep.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got := make(chan *incidents.Incident, 10)
	svc := incidents.NewService(incidents.Config{Store: store, Logger: slog.New(slog.DiscardHandler), Notifiers: []incidents.Notifier{
		incidents.NotifierFunc(func(_ context.Context, inc *incidents.Incident, events []incidents.Event) {
			for _, ev := range events {
				if ev.Kind == incidents.EventDeclared {
					got <- inc
				}
			}
		})}})
	mux := http.NewServeMux()
	books, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	receiver := alertmanager.NewReceiver(svc, "am-token", slog.New(slog.DiscardHandler))
	receiver.UseRunbooks(books)
	mux.Handle("POST /webhooks/alertmanager", receiver)
	sitrep := httptest.NewServer(mux)
	defer sitrep.Close()

	target := exporter(t, ctx)
	amAddr, promAddr := freePort(t), freePort(t)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rules := write("rules.yml", seedAlertRules(t))
	amConfig := write("alertmanager.yml", fmt.Sprintf(`route:
  receiver: sitrep
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
- name: sitrep
  webhook_configs:
  - url: %s/webhooks/alertmanager
    send_resolved: true
    http_config:
      authorization:
        credentials: am-token
`, sitrep.URL))
	promConfig := write("prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
alerting:
  alertmanagers:
  - static_configs:
    - targets: ['%s']
scrape_configs:
- job_name: architect-api
  static_configs:
  - targets: ['%s']
`, rules, amAddr, target))

	run(t, amBin, "--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	waitHTTP(ctx, t, "http://"+amAddr+"/-/ready")
	run(t, promBin, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "prom"),
		"--web.listen-address="+promAddr)
	waitHTTP(ctx, t, "http://"+promAddr+"/-/ready")

	select {
	case inc := <-got:
		if !strings.HasPrefix(inc.Title, "High error rate") || inc.Severity != incidents.P2 ||
			!strings.Contains(inc.SeverityReason, "severity=critical on HighErrorRate") || inc.Source != "alertmanager" {
			t.Errorf("declared %q %s (%s) from %s", inc.Title, inc.Severity, inc.SeverityReason, inc.Source)
		}
		if inc.Links["runbook"] != "high-error-rate" {
			t.Errorf("runbook attached: %q, want the High Error Rate runbook", inc.Links["runbook"])
		}
		if !strings.Contains(inc.Links["alert_url"], promAddr) && !strings.Contains(inc.Links["alert_url"], "graph") {
			t.Errorf("alert link %q", inc.Links["alert_url"])
		}
		n := 0
		svc.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventAlert && ev.Fields["alertname"] == "HighErrorRate" && ev.To == "firing" {
				n++
			}
			return nil
		})
		if n == 0 {
			t.Error("the firing alert is not on the timeline")
		}
	case <-ctx.Done():
		t.Fatal("no incident from Prometheus → Alertmanager → Sitrep")
	}
}
