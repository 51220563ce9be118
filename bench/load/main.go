// Command load drives the running bot through its real interfaces at rising
// rates — signed PagerDuty webhooks and Alertmanager groups — each next to a
// baseline in the same run: a bare net/http handler doing the same durable
// bbolt write (one fsynced transaction per request). Then it sends bursts of
// Slack envelopes through the in-repo Slack test server and measures the
// envelope-to-ack latency, next to slack-go's bare socket-mode client. It
// prints throughput, p50/p99 and the ratios.
//
//	go run ./bench/load -bot bin/bot [-rates 100,200,400,800,1600] [-step 3s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

const secret = "bench-secret"

func main() {
	bot := flag.String("bot", "bin/bot", "the bot binary")
	rates := flag.String("rates", "100,200,400,800,1600", "requests per second, one step each")
	step := flag.Duration("step", 3*time.Second, "how long each rate is held")
	baseline := flag.String("serve-baseline", "", "internal: serve the baseline on this address")
	db := flag.String("db", "", "internal: the baseline's database")
	flag.Parse()
	if *baseline != "" {
		serveBaseline(*baseline, *db)
		return
	}
	if err := run(*bot, *rates, *step); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func freeAddr() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().String()
}

func start(name string, env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd, cmd.Start()
}

func waitUp(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", url)
}

func run(botPath string, rateList string, step time.Duration) error {
	dir, err := os.MkdirTemp("", "sitrep-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	botAddr, baseAddr := freeAddr(), freeAddr()
	bot, err := start(botPath, []string{"SITREP_CONSOLE=off", "SITREP_LOG_LEVEL=error", "SITREP_DB=" + filepath.Join(dir, "bot.db"),
		"SITREP_LISTEN=" + botAddr, "PAGERDUTY_WEBHOOK_SECRETS=" + secret, "SLACK_BOT_TOKEN=", "SLACK_APP_TOKEN="})
	if err != nil {
		return err
	}
	defer func() { bot.Process.Kill(); bot.Wait() }()
	self, _ := os.Executable()
	base, err := start(self, nil, "-serve-baseline", baseAddr, "-db", filepath.Join(dir, "base.db"))
	if err != nil {
		return err
	}
	defer func() { base.Process.Kill(); base.Wait() }()
	if err := waitUp("http://" + botAddr + "/healthz"); err != nil {
		return err
	}
	if err := waitUp("http://" + baseAddr + "/healthz"); err != nil {
		return err
	}
	// One PagerDuty incident to annotate: every request is a new, signed event.
	trigger := event("incident.triggered", "ev-trigger", "")
	if code := send(http.DefaultClient, "http://"+botAddr+"/webhooks/pagerduty", trigger); code != http.StatusAccepted {
		return fmt.Errorf("the triggering event got %d", code)
	}
	var seq atomic.Int64
	for _, target := range []struct{ name, path string }{{"PagerDuty webhooks (signed incident.annotated)", "/webhooks/pagerduty"}, {"Alertmanager groups (20 groups, one new alert each)", "/webhooks/alertmanager"}} {
		fmt.Printf("\n%s\n%-8s %-9s %10s %9s %9s %6s\n", target.name, "rate/s", "target", "done/s", "p50 ms", "p99 ms", "errors")
		for _, f := range strings.Split(rateList, ",") {
			rate, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || rate <= 0 {
				return fmt.Errorf("bad rate %q", f)
			}
			b := load("http://"+botAddr+target.path, rate, step, &seq)
			s := load("http://"+baseAddr+"/webhook", rate, step, &seq)
			b.print(rate, "sitrep")
			s.print(rate, "baseline")
			fmt.Printf("%-8d %-9s %9.2fx %8.2fx   (throughput and p99 as a ratio to the baseline; ≥ 1 is as good)\n", rate, "ratio", b.throughput/s.throughput, s.p99/b.p99)
		}
	}
	return slackLoad(botPath, dir)
}

func event(typ, id, note string) []byte {
	data := map[string]any{"id": "PBENCH", "type": "incident", "title": "Load test incident", "urgency": "high", "status": "triggered"}
	if typ == "incident.annotated" {
		data = map[string]any{"id": "N" + id, "type": "incident_note", "content": note, "incident": map[string]any{"id": "PBENCH"}}
	}
	b, _ := json.Marshal(map[string]any{"event": map[string]any{"id": id, "event_type": typ, "resource_type": "incident",
		"occurred_at": time.Now().UTC().Format(time.RFC3339), "agent": map[string]any{"summary": "load"}, "data": data}})
	return b
}

// alertGroup is a notification for one of 20 groups carrying one new alert.
func alertGroup(n int64) []byte {
	g := fmt.Sprintf("LoadGroup%d", n%20)
	b, _ := json.Marshal(map[string]any{"version": "4", "groupKey": g, "status": "firing", "receiver": "sitrep",
		"commonLabels": map[string]string{"alertname": g, "severity": "critical"},
		"alerts": []map[string]any{{"status": "firing", "fingerprint": fmt.Sprintf("a%d", n), "labels": map[string]string{"alertname": g, "n": fmt.Sprint(n)},
			"startsAt": time.Now().UTC().Format(time.RFC3339)}}})
	return b
}

func send(c *http.Client, url string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(pagerduty.SignatureHeader, pagerduty.Sign(body, []byte(secret))) // ignored by the other endpoints
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type result struct {
	throughput, p50, p99 float64
	errors               int64
}

func (r result) print(rate int, target string) {
	fmt.Printf("%-8d %-9s %10.1f %9.2f %9.2f %6d\n", rate, target, r.throughput, r.p50, r.p99, r.errors)
}

// load sends at a fixed rate (open loop) for d, with at most 256 requests in
// flight, and measures each request's latency from its scheduled start.
func load(url string, rate int, d time.Duration, seq *atomic.Int64) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 256)
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; ; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if sleep := time.Until(at); sleep > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(sleep):
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := seq.Add(1)
			body := event("incident.annotated", fmt.Sprintf("ev-%d", n), fmt.Sprintf("load note %d", n))
			if strings.HasSuffix(url, "/alertmanager") {
				body = alertGroup(n)
			}
			code := send(client, url, body)
			took := time.Since(at)
			if code/100 != 2 {
				errs.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(lat)
	r := result{errors: errs.Load(), throughput: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50 = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.p99 = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return r
}

// serveBaseline is the bare handler: read the body, one fsynced bbolt
// transaction that stores it, answer 202.
func serveBaseline(addr, path string) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		panic(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("events")); return err })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		err := db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("events"))
			seq, _ := b.NextSequence()
			return b.Put([]byte(strconv.FormatUint(seq, 10)), body)
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	http.ListenAndServe(addr, mux)
}
