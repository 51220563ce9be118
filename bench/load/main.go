// Command load drives the running bot through its real interfaces at rising
// open-loop rates — signed PagerDuty webhooks, and Alertmanager groups most
// of which repeat what was already sent, as in a real storm — until p99
// passes 1 s, errors appear or the rate is not kept up with: the saturation
// point, found by doubling and then halving the gap four times, three
// searches over for the webhooks (the ratio their median). Each runs next to
// fair baselines in the same run: bare net/http handlers doing the same
// request work (signature, parse) and one DB.Batch write (Sitrep batches
// too) — "baseline" the same bbolt write as Sitrep's (the incident's
// record, the timeline event, the dedup key), "body-only" only the body
// and its dedup key — and the physical limit, bbolt Batch with as many
// writers and no HTTP. Then a storm
// of 1,000 Alertmanager notifications; bursts of Slack envelopes through
// the in-repo Slack test server, envelope to ack, next to slack-go's bare
// socket-mode client; and, with Slack's tiers off, the saturation of
// /incident declare → war room with its header pinned and of a click →
// header edited, next to that client making the same room (rooms.go).
//
//	go run ./bench/load -bot bin/bot [-from 200] [-max 25600] [-step 3s] [-searches 3] [-rooms | -webhooks] [-busy 1]
package main

import (
	"bytes"
	"context"
	"encoding/binary"
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

	"github.com/sitrep-oncall/sitrep/internal/alertmanager"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

const secret = "bench-secret"

// server is one side of the comparison: Sitrep or a baseline.
type server struct {
	name, addr string
	pid        int
}

// inFlight bounds the requests a target has in flight, and is the
// physical limit's number of writers.
const inFlight = 1024

// batchDelay is the baseline's DB.Batch delay: bbolt's default (10 ms)
// unless -batch-delay says otherwise.
var batchDelay = 10 * time.Millisecond

func main() {
	exit := 0
	defer func() { os.Exit(exit) }()
	bot := flag.String("bot", "bin/bot", "the bot binary")
	from := flag.Int("from", 200, "the first rate, requests per second; each step doubles it")
	maxRate := flag.Int("max", 25600, "the highest rate tried")
	roomsOnly := flag.Bool("rooms", false, "only the Slack war-room saturation")
	webhooksOnly := flag.Bool("webhooks", false, "only the webhook saturation and the storm")
	step := flag.Duration("step", 3*time.Second, "how long each rate is held")
	searches := flag.Int("searches", 3, "saturation searches for each webhook, the ratio their median")
	busy := flag.Int("busy", 0, "processes spinning on the CPU for the whole run: a machine others share")
	spin := flag.Bool("spin", false, "internal: spin on the CPU until killed")
	baseline := flag.String("serve-baseline", "", "internal: serve the baseline on this address")
	db := flag.String("db", "", "internal: the baseline's database")
	write := flag.String("write", "same", "internal: what the baseline stores: same (Sitrep's records) or body")
	flag.DurationVar(&batchDelay, "batch-delay", batchDelay, "the baseline's DB.Batch delay (bbolt's MaxBatchDelay)")
	flag.Parse()
	if *baseline != "" {
		serveBaseline(*baseline, *db, *write == "same")
		return
	}
	if *spin {
		for parent := os.Getppid(); os.Getppid() == parent; { // until the load tool is gone, however it ended
			for i := 0; i < 1e8; i++ {
			}
		}
		return
	}
	self, _ := os.Executable()
	for range *busy {
		cmd, err := start(self, nil, "-spin")
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			exit = 1
			return
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
	}
	if *busy > 0 {
		fmt.Printf("%d process(es) spinning on the CPU throughout, as on a machine others share\n", *busy)
	}
	run := run
	if *roomsOnly {
		run = func(bot string, _, _, _ int, step time.Duration, _ bool) error {
			dir, err := os.MkdirTemp("", "sitrep-load")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			return warRooms(bot, dir, 25, 3200, step)
		}
	}
	if err := run(*bot, *from, *maxRate, max(1, *searches), *step, !*webhooksOnly); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		exit = 1
	}
}

// url is a server's address for a Sitrep webhook path: the baselines
// serve /webhook/<kind> for /webhooks/<kind>.
func (s server) url(path string) string {
	if s.name != "sitrep" {
		path = "/webhook" + strings.TrimPrefix(path, "/webhooks")
	}
	return "http://" + s.addr + path
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

// saturated: the step broke the limit (p99 over 1 s, errors, or less than
// 90% of the offered rate done).
func (r result) saturated(rate int) bool {
	return r.p99 > 1000 || r.errors > 0 || r.throughput < 0.9*float64(rate)
}

// saturate tries rates from from, doubling while a side keeps up and
// giving the sides turns at each rate, then halves the gap where each
// saturated halvings times; a rate counts as saturated only when two tries
// in a row break the limit. It returns each side's best throughput at a
// rate it kept up with, and which sides kept up with every rate tried.
func saturate(sides []string, from, maxRate, halvings int, try func(side, rate int) result) (best map[string]float64, kept map[string]bool) {
	good, bad := map[string]int{}, map[string]int{} // the highest rate kept up with, the lowest not
	best, kept = map[string]float64{}, map[string]bool{}
	run := func(i, rate int) {
		r := try(i, rate)
		if r.saturated(rate) {
			r = try(i, rate) // once more: one noisy step on a shared machine decides nothing
		}
		if r.saturated(rate) {
			bad[sides[i]] = rate
		} else {
			good[sides[i]], best[sides[i]] = rate, max(best[sides[i]], r.throughput)
		}
	}
	for rate := from; rate <= maxRate && slices.ContainsFunc(sides, func(s string) bool { return bad[s] == 0 }); rate *= 2 {
		for i, side := range sides {
			if bad[side] == 0 {
				run(i, rate)
			}
		}
	}
	for range halvings {
		for i, side := range sides {
			if bad[side] > 0 && bad[side]-good[side] > bad[side]/64 { // whatever -from was: halvings narrow the gap below it
				run(i, (good[side]+bad[side])/2)
			}
		}
	}
	for _, side := range sides {
		kept[side] = bad[side] == 0
	}
	return best, kept
}

func run(botPath string, from, maxRate, searches int, step time.Duration, withSlack bool) error {
	dir, err := os.MkdirTemp("", "sitrep-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	botAddr := freeAddr()
	bot, err := start(botPath, []string{"SITREP_CONSOLE=off", "SITREP_LOG_LEVEL=error", "SITREP_DB=" + filepath.Join(dir, "bot.db"),
		"SITREP_LISTEN=" + botAddr, "PAGERDUTY_WEBHOOK_SECRETS=" + secret, "SLACK_BOT_TOKEN=", "SLACK_APP_TOKEN="})
	if err != nil {
		return err
	}
	defer func() { bot.Process.Kill(); bot.Wait() }()
	self, _ := os.Executable()
	// The baselines: "baseline" stores what Sitrep stores for the request
	// (the fair baseline: the same bbolt write), "body-only" only
	// the body and its dedup key, as this bench's baseline did before.
	servers := []server{{"sitrep", botAddr, bot.Process.Pid}}
	for _, b := range []struct{ name, write string }{{"baseline", "same"}, {"body-only", "body"}} {
		addr := freeAddr()
		base, err := start(self, nil, "-serve-baseline", addr, "-write", b.write, "-db", filepath.Join(dir, b.name+".db"), "-batch-delay", batchDelay.String())
		if err != nil {
			return err
		}
		defer func() { base.Process.Kill(); base.Wait() }()
		servers = append(servers, server{b.name, addr, base.Process.Pid})
	}
	names := make([]string, len(servers))
	for i, srv := range servers {
		names[i] = srv.name
		if err := waitUp("http://" + srv.addr + "/healthz"); err != nil {
			return err
		}
	}
	// One PagerDuty incident to annotate: every request is a new, signed event.
	trigger := event("incident.triggered", "ev-trigger", "")
	if code := send(http.DefaultClient, "http://"+botAddr+"/webhooks/pagerduty", trigger); code != http.StatusAccepted {
		return fmt.Errorf("the triggering event got %d", code)
	}
	var seq atomic.Int64
	physical := physicalLimit(filepath.Join(dir, "physical.db"), step)
	fmt.Printf("physical limit: bbolt DB.Batch with %d writers, no HTTP, a batch committed once every writer is in it: %.0f writes/s\n", inFlight, physical)
	fmt.Printf("the baselines: DB.Batch with MaxBatchDelay %s; baseline stores Sitrep's records (the incident, the timeline event, the dedup key), body-only the body and its dedup key\n", batchDelay)
	for _, target := range []struct{ name, path string }{{"PagerDuty webhooks (signed incident.annotated)", "/webhooks/pagerduty"}, {"Alertmanager groups (20 groups, 4 of 5 notifications repeat an alert already firing)", "/webhooks/alertmanager"}} {
		fmt.Printf("\n%s\n%-8s %-9s %10s %9s %9s %6s %9s %9s\n", target.name, "rate/s", "target", "done/s", "p50 ms", "p99 ms", "errors", "CPU µs", "gen µs")
		idle := map[int]float64{}
		var idles []string
		for _, srv := range servers {
			idle[srv.pid] = idleCPU(srv.pid)
			idles = append(idles, fmt.Sprintf("%s %.1f%%", srv.name, 100*idle[srv.pid]))
		}
		fmt.Printf("idle, charged to no request, of a CPU: %s\n", strings.Join(idles, ", "))
		cpu := map[int]map[string]time.Duration{} // rate → side → CPU per request, at the rates kept up with
		// The sides in turn at each rate (the machine's noise falls on
		// all), then four halvings: within a sixteenth of the rate. Then the
		// search again, searches times, each from a quarter of the lowest
		// saturation the first found: the ratio is the median of theirs, as
		// one search on a machine whose speed moves by half within the hour
		// decides little.
		var ratios, bodyRatios, kept []float64
		start := from
		for n := range searches {
			best, _ := saturate(names, start, maxRate, 4, func(i, rate int) result {
				side := servers[i]
				r := load(side.url(target.path), side.pid, idle[side.pid], rate, step, &seq, strings.HasSuffix(target.path, "/alertmanager"))
				r.print(rate, side.name)
				if !r.saturated(rate) {
					if cpu[rate] == nil {
						cpu[rate] = map[string]time.Duration{}
					}
					cpu[rate][side.name] = r.cpu
				}
				return r
			})
			fmt.Printf("saturation, search %d of %d: sitrep %.0f/s, baseline %.0f/s (%.2fx the baseline), body-only %.0f/s (%.2fx), %.2fx the physical limit\n",
				n+1, searches, best["sitrep"], best["baseline"], best["sitrep"]/best["baseline"], best["body-only"], best["sitrep"]/best["body-only"], best["sitrep"]/physical)
			ratios, bodyRatios, kept = append(ratios, best["sitrep"]/best["baseline"]), append(bodyRatios, best["sitrep"]/best["body-only"]), append(kept, best["sitrep"])
			if n == 0 {
				start = max(from, lowRate(from, min(best["sitrep"], best["baseline"], best["body-only"])/4))
			}
		}
		if searches > 1 {
			fmt.Printf("saturation, the median of %d searches: sitrep %.0f/s, %.2fx the baseline (%s), %.2fx body-only, %.2fx the physical limit\n",
				searches, median(kept), median(ratios), fmtRatios(ratios), median(bodyRatios), median(kept)/physical)
		}
		// The server's CPU per request, next to the baseline's at the same
		// rate: steadier than the saturation point on a shared machine, and
		// what sets it when the load generator and the server share the cores.
		for _, base := range names[1:] {
			var ratios []string
			for rate := from; rate <= maxRate; rate *= 2 {
				if c := cpu[rate]; c["sitrep"] > 0 && c[base] > 0 {
					ratios = append(ratios, fmt.Sprintf("%.2fx at %d/s", float64(c["sitrep"])/float64(c[base]), rate))
				}
			}
			fmt.Printf("CPU per request, sitrep ÷ %s, at the rates both kept up with: %s\n", base, strings.Join(ratios, ", "))
		}
	}
	fmt.Printf("\nA storm: 1,000 Alertmanager notifications over 20 new groups (4 of 5 repeat an alert already firing)\n%-9s %-22s %9s %9s %9s %6s\n", "target", "senders", "took ms", "p50 ms", "p99 ms", "errors")
	for i, senders := range []int{20, 256} {
		for _, side := range servers {
			r, took := storm(side.url("/webhooks/alertmanager"), fmt.Sprintf("Storm%d-", i), senders)
			fmt.Printf("%-9s %-22s %9.1f %9.2f %9.2f %6d\n", side.name, fmt.Sprint(senders, map[int]string{20: " (one per group)", 256: " (all at once)"}[senders]), float64(took.Microseconds())/1000, r.p50, r.p99, r.errors)
		}
	}
	if !withSlack {
		return nil
	}
	if err := slackLoad(botPath, dir); err != nil {
		return err
	}
	return warRooms(botPath, dir, 25, 3200, step)
}

// lowRate is the highest rate of the doubling series from from that is at
// most limit (from when none is).
func lowRate(from int, limit float64) int {
	rate := from
	for float64(rate*2) <= limit {
		rate *= 2
	}
	return rate
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2fx", x)
	}
	return strings.Join(parts, ", ")
}

// storm sends 1,000 notifications for 20 groups new to the target and
// measures each from its send to its answer. With 20 senders each is one
// group's, sending its notifications in order as Alertmanager does (one at
// a time per group); otherwise the senders share them all, as fast as
// they are answered.
func storm(url, prefix string, senders int) (result, time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	queues := make([]chan int64, senders)
	for i := range queues {
		queues[i] = make(chan int64, 1000)
	}
	for n := range int64(1000) {
		q := queues[0]
		if senders == 20 {
			q = queues[n%20] // notification n is group n%20's
		}
		q <- n
	}
	for _, q := range queues {
		close(q)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range senders {
		q := queues[0]
		if senders == 20 {
			q = queues[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range q {
				at := time.Now()
				if code := send(client, url, notification(prefix, n)); code/100 != 2 {
					errs.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(at))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return summarize(lat, errs.Load()), time.Since(begin)
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

// alertGroup is a notification for one of 20 groups: one in five carries a
// new alert, the rest repeat one the group already has (Alertmanager
// re-sends whole groups).
func alertGroup(n int64) []byte { return notification("LoadGroup", n) }

// notification is alertGroup's for the groups named prefix0…prefix19.
func notification(prefix string, n int64) []byte {
	g := fmt.Sprintf("%s%d", prefix, n%20)
	fp := n
	if n%5 != 0 {
		fp = n % 20 // the group's first alert again, still firing
	}
	b, _ := json.Marshal(map[string]any{"version": "4", "groupKey": g, "status": "firing", "receiver": "sitrep",
		"commonLabels": map[string]string{"alertname": g, "severity": "critical"},
		"alerts": []map[string]any{{"status": "firing", "fingerprint": fmt.Sprintf("a%d", fp), "labels": map[string]string{"alertname": g, "n": fmt.Sprint(fp)},
			"startsAt": "2026-12-01T03:00:00Z"}}})
	return b
}

// physicalLimit is what bbolt itself does: DB.Batch with inFlight writers,
// no HTTP, for d; writes per second. A batch commits as soon as every
// writer is in it (MaxBatchSize), not when the 10 ms timer fires, which
// would make the timer the limit.
func physicalLimit(path string, d time.Duration) float64 {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return 0
	}
	defer db.Close()
	db.MaxBatchSize = inFlight
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("events")); return err })
	var n atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	body := bytes.Repeat([]byte("x"), 600) // about a webhook's size
	var wg sync.WaitGroup
	begin := time.Now()
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if db.Batch(func(tx *bolt.Tx) error {
					b := tx.Bucket([]byte("events"))
					seq, _ := b.NextSequence()
					return b.Put([]byte(strconv.FormatUint(seq, 10)), body)
				}) == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(begin).Seconds()
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
	cpu                  time.Duration // the server's CPU time (user and system) per request done
	gen                  time.Duration // the load generator's own, per request done: it shares the cores
}

func (r result) print(rate int, target string) {
	fmt.Printf("%-8d %-9s %10.1f %9.2f %9.2f %6d %9.0f %9.0f\n", rate, target, r.throughput, r.p50, r.p99, r.errors,
		float64(r.cpu.Nanoseconds())/1000, float64(r.gen.Nanoseconds())/1000)
}

// cpuTime is a process's CPU time so far, summed over its threads from
// /proc/<pid>/task/*/schedstat (nanoseconds on the CPU; stat's clock ticks
// of 10 ms are too coarse for a few hundred requests).
func cpuTime(pid int) time.Duration {
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended between the glob and the read
		}
		if ns, err := strconv.ParseInt(strings.Fields(string(b) + " 0")[0], 10, 64); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

// idleCPU is the share of a CPU a server uses with no request to serve
// (its timers, its sweeps), over a quiet second after a settling one (the
// last target's garbage collected): charged to no request.
func idleCPU(pid int) float64 {
	time.Sleep(time.Second)
	before := cpuTime(pid)
	time.Sleep(time.Second)
	return float64(cpuTime(pid)-before) / float64(time.Second)
}

// load sends at a fixed rate (open loop) for d, with at most inFlight
// requests in flight, and measures each request's latency from its
// scheduled start.
func load(url string, pid int, idle float64, rate int, d time.Duration, seq *atomic.Int64, alerts bool) result {
	cpuBefore, genBefore := cpuTime(pid), cpuTime(os.Getpid())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections() // a step's connections would stay open on the server through every later one
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, inFlight)
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
			if alerts {
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
	r := summarize(lat, errs.Load())
	r.throughput = float64(len(lat)) / elapsed.Seconds()
	if len(lat) > 0 {
		busy := cpuTime(pid) - cpuBefore - time.Duration(idle*float64(elapsed))
		r.cpu = max(busy, 0) / time.Duration(len(lat))
		r.gen = (cpuTime(os.Getpid()) - genBefore) / time.Duration(len(lat))
	}
	return r
}

// summarize is the answered requests' latency percentiles, in ms.
func summarize(lat []time.Duration, errors int64) result {
	slices.Sort(lat)
	r := result{errors: errors}
	if len(lat) > 0 {
		r.p50 = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.p99 = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return r
}

// serveBaseline is the bare handler: the same request work as Sitrep's —
// a PagerDuty body's signature checked and the event parsed, an
// Alertmanager body parsed and, like Sitrep, answered from a read when its
// alerts' states are already stored — then one DB.Batch write (concurrent
// requests share an fsync, as Sitrep's do), answer 202. With same it is
// the fair baseline, the same bbolt write as Sitrep's: the
// incident's record (encoded once, at Sitrep's size: the PagerDuty
// incident with its 100 remembered notes, an alert group's incident), the
// request's timeline event (Sitrep's fields, encoded per request before
// the batch, where Sitrep encodes it in the transaction with its sequence
// number) under a big-endian sequence key in the incident's timeline
// bucket, and the dedup key or alert state (Sitrep keeps the state in the
// incident's memo bucket). Without
// same it stores only the body and its dedup key. What it leaves out is
// deciding: no incident read or changed, no index, no outbox.
func serveBaseline(addr, path string, same bool) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		panic(err)
	}
	db.MaxBatchDelay = batchDelay
	db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"events", "dedup", "incidents", "timelines"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	pdRecord, amRecord := records()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /webhook/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var key string
		var ev incidents.Event // what Sitrep's timeline gets; only the same-write baseline makes it
		var target, record []byte
		switch r.PathValue("kind") {
		case "pagerduty":
			if !pagerduty.Verify(body, r.Header.Get(pagerduty.SignatureHeader), [][]byte{[]byte(secret)}) {
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			pe, err := pagerduty.Parse(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			key = "pagerduty:" + pe.ID
			if same {
				ev = incidents.Event{Incident: 1, Kind: incidents.EventNote, At: time.Now(), Actor: pe.Agent, Source: "pagerduty", Message: pe.Note}
			}
			target, record = []byte(pe.Incident.ID), pdRecord
		default:
			m, err := alertmanager.Parse(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			// each alert's state, as Sitrep keeps it: a notification that
			// only repeats them is answered from a read, as Sitrep's is
			var states []string
			for _, a := range m.Alerts {
				states = append(states, m.GroupKey+"/"+a.Fingerprint+"="+a.Status)
			}
			key = "alertmanager:" + strings.Join(states, ",")
			seen := false
			db.View(func(tx *bolt.Tx) error {
				seen = tx.Bucket([]byte("dedup")).Get([]byte(key)) != nil
				return nil
			})
			if seen {
				w.WriteHeader(http.StatusOK)
				return
			}
			if a := m.Alerts[0]; same { // the bench's notifications carry one alert
				ev = incidents.Event{Incident: 2, Kind: incidents.EventAlert, At: time.Now(), Actor: "Alertmanager", Source: "alertmanager", To: a.Status,
					Message: a.Labels["alertname"] + " " + a.Status + " (n=" + a.Labels["n"] + ")",
					Fields:  map[string]string{"fingerprint": a.Fingerprint, "alertname": a.Labels["alertname"], "starts_at": a.StartsAt.UTC().Format(time.RFC3339)}}
			}
			target, record = []byte(m.GroupKey), amRecord
		}
		var event []byte
		if same {
			event, _ = json.Marshal(&ev)
		}
		err := db.Batch(func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte("dedup")).Put([]byte(key), []byte("seen")); err != nil {
				return err
			}
			if !same {
				b := tx.Bucket([]byte("events"))
				seq, _ := b.NextSequence()
				return b.Put([]byte(strconv.FormatUint(seq, 10)), body)
			}
			if err := tx.Bucket([]byte("incidents")).Put(target, record); err != nil {
				return err
			}
			tl, err := tx.Bucket([]byte("timelines")).CreateBucketIfNotExists(target)
			if err != nil {
				return err
			}
			seq, _ := tl.NextSequence()
			return tl.Put(binary.BigEndian.AppendUint64(nil, seq), event) // Sitrep's timeline keys: the end of the tree
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	http.ListenAndServe(addr, mux)
}

// records are the incidents' records as Sitrep encodes them: the
// PagerDuty incident the bench annotates, with the 100 notes it remembers,
// and an alert group's.
func records() (pd, am []byte) {
	at := time.Now()
	inc, _, _ := incidents.Declare(incidents.Declaration{Title: "Load test incident", Links: map[string]string{"pagerduty": "PBENCH"}}, incidents.Actor{Name: "load", Source: "pagerduty"}, at)
	for i := range 100 {
		inc.AddNote(fmt.Sprintf("load note %d", i), incidents.Actor{Name: "load", Source: "pagerduty"}, at)
	}
	pd, _ = json.Marshal(inc)
	inc, _, _ = incidents.Declare(incidents.Declaration{Title: "LoadGroup0", Links: map[string]string{"alertmanager": "LoadGroup0"}}, incidents.Actor{Name: "alertmanager", Source: "alertmanager"}, at)
	am, _ = json.Marshal(inc)
	return pd, am
}
