package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
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
		cmd.Env = env
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
	_ = b
}

// TestReplicaKilledDuringAlertStorm: two built binaries on one PostgreSQL
// behind one address (a webhook that fails on one is retried on the other,
// as a Service and Alertmanager's retry do); an Alertmanager storm of 20
// groups; one replica is killed with SIGKILL in the middle of it. Every
// alert answered 2xx is recorded, each group is one incident, and each gets
// exactly one war room — those the dead one had under way included.
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
		cmd.Env = append(slackEnv(srv, url, announce), "SITREP_LISTEN="+addr, "SITREP_CONSOLE=off")
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		get(t, "http://"+addr+"/healthz")
		cmds, addrs = append(cmds, cmd), append(addrs, addr)
	}
	var answered sync.Map
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
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
				for try := range 2 { // this replica, then the other one
					resp, err := client.Post("http://"+addrs[(w+i+try)%2]+"/webhooks/alertmanager", "application/json", bytes.NewReader(body))
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						answered.Store(fp, group)
						count.Add(1)
						break
					}
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
	wg.Wait()
	close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		rooms := 0
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-") && len(ch.Pins) == 1 {
				rooms++
			}
		}
		return rooms == 20
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
	if err != nil || len(all) != 20 {
		t.Fatalf("%d incidents for 20 groups: %v", len(all), err)
	}
	seen := map[string]bool{}
	for _, inc := range all {
		store.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventAlert {
				seen[ev.Fields["fingerprint"]] = true
			}
			return nil
		})
	}
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
		if rooms := v.Rooms("inc-", "🚨 INC-"); len(rooms) != 20 {
			t.Errorf("%d war rooms for 20 incidents", len(rooms))
		} else {
			for _, r := range rooms {
				if r.Headers != 1 || r.Pins != 1 {
					t.Errorf("#%s: %d headers, %d pins", r.Name, r.Headers, r.Pins)
				}
			}
		}
	})
}
