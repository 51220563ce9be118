package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
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
