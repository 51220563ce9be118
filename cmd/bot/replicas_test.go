package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/pgstore/pgtest"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// TestTwoReplicasOnePostgreSQL: two built binaries on one PostgreSQL, each
// with its own socket to a Slack that enforces its real tiers (which they
// share, as one workspace's). 40 declares spread over both; 1.5 s after
// their acks one replica is killed with SIGKILL. The other carries on:
// every declare becomes an incident with exactly one war room, one header,
// pinned — what the dead one had claimed or acknowledged included.
func TestTwoReplicasOnePostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a few minutes at Slack's real rates")
	}
	t.Parallel()
	url := postgresURL(t)
	srv := slacktest.New()
	defer srv.Close()
	announce, general := srv.CreateChannel("incidents"), srv.CreateChannel("general")
	env := slackEnv(srv, url, announce)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := func() (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(botBinary)
		cmd.Env = append(env, "SITREP_SPOOL="+filepath.Join(t.TempDir(), "spool.db")) // each replica its own
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, logs
	}
	a, logsA := start()
	b, logsB := start()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() == 2 }); err != nil {
		t.Fatalf("both never connected: %v\n%s\n%s", err, logsA, logsB)
	}
	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := srv.Send(slashDeclare(srv, fmt.Sprintf("U%d", i+1), general, fmt.Sprintf("P3 replica test %d", i+1)))
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		for _, id := range ids {
			if _, ok := v.Ack(id); !ok {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("acks: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // the fault: SIGKILL mid-storm, 1.5 s after the acks
	a.Process.Kill()
	a.Wait()
	killed := time.Now()
	before := 0
	srv.Look(func(v *slacktest.View) { before = len(v.Rooms("inc-", "🚨 INC-")) })
	t.Logf("replica A killed with %d of %d war rooms open", before, n)
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		rooms := 0
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-") && len(ch.Pins) == 1 {
				rooms++
			}
		}
		return rooms == n
	}); err != nil {
		t.Fatalf("after the kill: %v\n%s", err, logsB)
	}
	t.Logf("replica B finished every room %s after the kill", time.Since(killed).Round(time.Second))
	srv.Look(func(v *slacktest.View) {
		rooms := v.Rooms("inc-", "🚨 INC-")
		for _, r := range rooms {
			if r.Headers != 1 || r.Pins != 1 {
				t.Errorf("#%s: %d headers, %d pins", r.Name, r.Headers, r.Pins)
			}
		}
		if len(rooms) != n {
			t.Errorf("%d inc- channels for %d declares", len(rooms), n)
		}
	})
	// A clean stop lets the effects under way finish (each room is bound just
	// after its pin), then the database is read.
	b.Process.Signal(os.Interrupt)
	b.Wait()
	store, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	all, err := store.List(ctx, incidents.Filter{All: true})
	if err != nil || len(all) != n {
		t.Fatalf("%d incidents for %d declares: %v", len(all), n, err)
	}
	for _, inc := range all {
		opened := 0
		store.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventWarRoomOpened {
				opened++
			}
			return nil
		})
		if inc.Channel == "" || opened != 1 {
			t.Errorf("%s: channel %q, %d war_room_opened", inc.Key(), inc.Channel, opened)
		}
	}
}

// TestReplicaKilledDuringAlertStorm: two built binaries on one PostgreSQL
// behind one address (a webhook that fails on one is retried on the other,
// as a Service and the senders' retries do); a storm of Alertmanager
// notifications over 20 groups and signed PagerDuty webhooks for 10
// incidents (triggers, redeliveries, notes); one replica is killed with
// SIGKILL in the middle of it. Every webhook answered 2xx is recorded, each
// group and PagerDuty incident is one incident with exactly one war room,
// and the effects the dead one had claimed are taken over within 15 s.
func TestReplicaKilledDuringAlertStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a minute at Slack's real rates")
	}
	t.Parallel()
	url := postgresURL(t)
	srv := slacktest.New()
	defer srv.Close()
	announce := srv.CreateChannel("incidents")
	var cmds []*exec.Cmd
	var addrs []string
	for range 2 {
		addr := freeAddr(t)
		cmd := exec.Command(botBinary)
		cmd.Env = append(slackEnv(srv, url, announce), "SITREP_LISTEN="+addr, "SITREP_CONSOLE=off", "PAGERDUTY_WEBHOOK_SECRETS=storm-secret",
			"SITREP_SPOOL="+filepath.Join(t.TempDir(), "spool.db"))
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		get(t, "http://"+addr+"/healthz")
		cmds, addrs = append(cmds, cmd), append(addrs, addr)
	}
	var ownerA string // replica A's name among the replicas: host/pid/…
	if err := pgtest.QueryRow(context.Background(), url, `SELECT owner FROM replicas WHERE owner LIKE '%/' || $1 || '/%'`, []any{fmt.Sprint(cmds[0].Process.Pid)}, &ownerA); err != nil {
		t.Fatalf("replica A is not among the replicas: %v", err)
	}
	var answered, notes sync.Map
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	send := func(client *http.Client, path string, body []byte, first int, header ...string) int {
		for try := range 2 { // this replica, then the other one
			req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[(first+try)%2]+path, bytes.NewReader(body))
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		return 0
	}
	triggered := recentPagerDutySample(t, "zulip_triggered_v3.json")
	annotated := recentPagerDutySample(t, "zulip_annotated_v3.json")
	pd := func(sample []byte, eventID, incident, note string) []byte {
		var m map[string]any
		json.Unmarshal(sample, &m)
		ev := m["event"].(map[string]any)
		ev["id"] = eventID
		data := ev["data"].(map[string]any)
		if inc, ok := data["incident"].(map[string]any); ok {
			inc["id"] = incident
			data["content"] = note
		} else {
			data["id"], data["title"] = incident, "PagerDuty storm "+incident
		}
		b, _ := json.Marshal(m)
		return b
	}
	wg.Add(1)
	go func() { // PagerDuty: each incident triggered (twice: a redelivery), then noted
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		for i := range 60 {
			k := i % 10
			body := pd(triggered, fmt.Sprintf("trig-%d", k), fmt.Sprintf("PSTORM%d", k), "")
			if i >= 20 {
				note := fmt.Sprintf("storm note %d", i)
				body = pd(annotated, fmt.Sprintf("note-%d", i), fmt.Sprintf("PSTORM%d", k), note)
				if send(client, "/webhooks/pagerduty", body, i, pagerduty.SignatureHeader, pagerduty.Sign(body, []byte("storm-secret"))) == http.StatusAccepted {
					notes.Store(note, true)
				}
				continue
			}
			send(client, "/webhooks/pagerduty", body, i, pagerduty.SignatureHeader, pagerduty.Sign(body, []byte("storm-secret")))
		}
	}()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 400; i++ {
				select {
				case <-stop:
					return
				default:
				}
				fp := fmt.Sprintf("w%d-a%d", w, i)
				group := fmt.Sprintf("Storm%d", i%20)
				body, _ := json.Marshal(map[string]any{"version": "4", "groupKey": group, "status": "firing",
					"commonLabels": map[string]string{"alertname": group, "severity": "critical"},
					"alerts":       []map[string]any{{"status": "firing", "fingerprint": fp, "labels": map[string]string{"alertname": group}, "startsAt": "2026-11-26T03:00:00Z"}}})
				if send(client, "/webhooks/alertmanager", body, w+i) == http.StatusOK {
					answered.Store(fp, group)
					count.Add(1)
				}
			}
		}()
	}
	for count.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	cmds[0].Process.Kill() // SIGKILL in the middle of the storm
	cmds[0].Wait()
	killed := time.Now()
	// The effects A had claimed and not finished: taken over by B (watched while the storm goes on).
	held := func() int {
		n := 0
		pgtest.QueryRow(context.Background(), url, `SELECT count(*) FROM outbox_claims c WHERE c.owner = $1 AND EXISTS (
			SELECT 1 FROM outbox o WHERE o.consumer = c.consumer AND o.incident = c.incident)`, []any{ownerA}, &n)
		return n
	}
	atKill := held()
	for held() > 0 {
		if time.Since(killed) > time.Minute {
			t.Fatalf("%d effect claims of the dead replica never taken over", held())
		}
		time.Sleep(100 * time.Millisecond)
	}
	takeover := time.Since(killed)
	t.Logf("the dead replica held claims on %d incidents' pending effects; all taken over %s after the kill", atKill, takeover.Round(100*time.Millisecond))
	if atKill == 0 {
		t.Error("the dead replica held no claim at the kill: the take-over was not tested")
	}
	if takeover > 15*time.Second {
		t.Errorf("take-over took %s, more than 15 s", takeover)
	}
	wg.Wait()
	close(stop)
	const incidentsWant = 30 // 20 groups, 10 PagerDuty incidents
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		rooms := 0
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-") && len(ch.Pins) == 1 {
				rooms++
			}
		}
		return rooms == incidentsWant
	}); err != nil {
		t.Fatalf("war rooms after the kill: %v", err)
	}
	t.Logf("every war room open %s after the kill", time.Since(killed).Round(time.Second))
	store, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	all, err := store.List(ctx, incidents.Filter{All: true})
	if err != nil || len(all) != incidentsWant {
		t.Fatalf("%d incidents for 20 groups and 10 PagerDuty incidents: %v", len(all), err)
	}
	seen := map[string]bool{}
	for _, inc := range all {
		store.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
			switch ev.Kind {
			case incidents.EventAlert:
				seen[ev.Fields["fingerprint"]] = true
			case incidents.EventNote:
				seen[ev.Message] = true
			}
			return nil
		})
	}
	notes.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			t.Errorf("PagerDuty note %q answered 202 and lost", k)
		}
		return true
	})
	n, lost := 0, 0
	answered.Range(func(k, _ any) bool {
		n++
		if !seen[k.(string)] {
			lost++
		}
		return true
	})
	t.Logf("%d alerts answered 2xx, %d lost", n, lost)
	if lost != 0 {
		t.Errorf("%d of %d answered alerts lost", lost, n)
	}
	srv.Look(func(v *slacktest.View) {
		if rooms := v.Rooms("inc-", "🚨 INC-"); len(rooms) != incidentsWant {
			t.Errorf("%d war rooms for %d incidents", len(rooms), incidentsWant)
		} else {
			for _, r := range rooms {
				if r.Headers != 1 || r.Pins != 1 {
					t.Errorf("#%s: %d headers, %d pins", r.Name, r.Headers, r.Pins)
				}
			}
		}
	})
}
