package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// BenchmarkHistoryBinary runs the built binary on a database of 100,000
// incidents (1,000 open, the rest resolved a year ago) next to one of
// 1,100 with the same 1,000 open: its resident memory once ready and idle
// (the highest of a second of samples), and a piped `list` of the 1,000
// open, start to exit (ms-list: less the same run with no command, the
// list alone). x-1.1k is each as a ratio to the small database.
func BenchmarkHistoryBinary(b *testing.B) {
	const open = 1000
	dbs := map[int]string{}
	for _, n := range []int{open + 100, 100000} {
		dbs[n] = filepath.Join(b.TempDir(), fmt.Sprintf("h%d.db", n))
		seedHistory(b, dbs[n], n, open)
	}
	b.Run("idle-rss", func(b *testing.B) {
		rss := map[int]float64{}
		for range b.N {
			for n, db := range dbs {
				cmd, _ := headless(b, db)
				rss[n] = max(rss[n], idleRSS(b, cmd.Process.Pid))
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
		b.ReportMetric(rss[100000], "MB-100k")
		b.ReportMetric(rss[open+100], "MB-1.1k")
		b.ReportMetric(rss[100000]/rss[open+100], "x-1.1k")
	})
	b.Run("list-open", func(b *testing.B) {
		took, idle := map[int]time.Duration{}, map[int]time.Duration{}
		for range b.N {
			for n, db := range dbs {
				env := append(botEnv(db, "127.0.0.1:0"), "SITREP_CONSOLE=on")
				start := time.Now()
				out, stderr, code := runBot(b, env, "list\n")
				took[n] += time.Since(start)
				if code != 0 || strings.Count(out, "INC-") < open {
					b.Fatalf("exit %d\n%.500s\n%s", code, out, stderr)
				}
				start = time.Now()
				runBot(b, env, "") // the same start and stop without the list
				idle[n] += time.Since(start)
			}
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
		b.ReportMetric(ms(took[100000]), "ms-100k")
		b.ReportMetric(ms(took[100000]-idle[100000]), "ms-list-100k") // the list alone
		b.ReportMetric(ms(took[open+100]), "ms-1.1k")
		b.ReportMetric(ms(took[100000])/ms(took[open+100]), "x-1.1k")
	})
}

// seedHistory stores n incidents through the store's own writes, 64 at a
// time (group commits): open of them open, the rest resolved.
func seedHistory(tb testing.TB, path string, n, open int) {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().UTC()
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				_, err := s.Apply(context.Background(), incidents.Write{Link: incidents.Link{System: "seed", Ref: strconv.Itoa(i)}, Create: func() (*incidents.Incident, []incidents.Event, error) {
					at := t0.Add(time.Duration(i) * time.Millisecond)
					if i >= open {
						at = t0.Add(-400*24*time.Hour + time.Duration(i)*time.Second)
					}
					inc, events, err := incidents.Declare(incidents.Declaration{Title: fmt.Sprintf("Checkout error rate above 5%% (%d)", i), Service: "checkout"}, incidents.Actor{Name: "@alice", Source: "console"}, at)
					if err == nil && i >= open {
						inc.AckedAt, inc.FirstAckedAt, inc.Status, inc.ResolvedAt = at, at, incidents.Resolved, at.Add(time.Hour)
						inc.FollowUps = []string{"document", "review"}
					}
					return inc, events, err
				}})
				if err != nil {
					once.Do(func() { tb.Error(err) })
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}

// idleRSS samples the process's resident set for a second and returns the
// highest, in MB.
func idleRSS(tb testing.TB, pid int) float64 {
	var samples []float64
	for range 20 {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			tb.Fatal(err)
		}
		for line := range strings.Lines(string(status)) {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 64)
				samples = append(samples, v/1024)
			}
		}
		time.Sleep(50 * time.Millisecond) // idle: what it holds while nothing happens
	}
	return slices.Max(samples)
}
