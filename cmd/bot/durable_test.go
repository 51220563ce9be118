package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
	"github.com/sitrep-oncall/sitrep/internal/tally"
)

func slackEnv(srv *slacktest.Server, db, announce string) []string {
	return append(botEnv(db, "127.0.0.1:0"),
		"SLACK_BOT_TOKEN="+slacktest.BotToken, "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_API_URL="+srv.URL,
		"SITREP_ANNOUNCE_CHANNEL="+announce)
}

// slashDeclare is a slash command envelope declaring title from channel.
func slashDeclare(srv *slacktest.Server, user, channel, title string) slacktest.Envelope {
	return slacktest.Envelope{Type: "slash_commands", Payload: map[string]any{"user_id": user, "channel_id": channel, "command": "/incident",
		"text": "declare " + title, "response_url": srv.ResponseURL("r-" + user), "trigger_id": "1.2.3"}}
}

// TestKillNineAfterTwelveAcks: the built binary, against a Slack that
// enforces its real tiers, gets 12 concurrent declares; 1.5 s after Slack
// has their acks it is killed with SIGKILL, mid-way through opening the war
// rooms. Started again on the same file, it has all 12 incidents, each with
// exactly one war room, and no channel is left without its header.
func TestKillNineAfterTwelveAcks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: about a minute at Slack's real rates")
	}
	t.Parallel()
	srv := slacktest.New()
	defer srv.Close()
	announce, general := srv.CreateChannel("incidents"), srv.CreateChannel("general")
	db := filepath.Join(t.TempDir(), "sitrep.db")
	env := slackEnv(srv, db, announce)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	startBin := func() (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(botBinary)
		cmd.Env = env
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, logs
	}
	cmd, logs := startBin()
	connects := 0
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { connects = v.Connects(); return v.Connected() > 0 }); err != nil {
		t.Fatalf("never connected: %v\n%s", err, logs)
	}
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := srv.Send(slashDeclare(srv, fmt.Sprintf("U%d", i+1), general, fmt.Sprintf("P3 crash test %d", i+1)))
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
	time.Sleep(1500 * time.Millisecond) // the fault: SIGKILL 1.5 s after the acks, as it was measured
	cmd.Process.Kill()
	cmd.Wait()
	before := 0
	srv.Look(func(v *slacktest.View) {
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-") {
				before++
			}
		}
	})
	t.Logf("killed with %d of %d war rooms created", before, n)
	if before == n {
		t.Log("every room was created before the kill: the restart only finishes headers and pins")
	}

	cmd, logs = startBin()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		rooms := 0
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-") && len(ch.Pins) == 1 {
				rooms++
			}
		}
		return v.Connects() > connects && rooms == n
	}); err != nil {
		t.Fatalf("after the restart: %v\n%s", err, logs)
	}
	// A clean stop lets the effects under way finish (each room is bound just
	// after its pin), then the file can be read.
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	store, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv.Look(func(v *slacktest.View) {
		rooms := v.Rooms("inc-", "🚨 INC-")
		for _, r := range rooms {
			if r.Headers != 1 || r.Pins != 1 {
				t.Errorf("#%s: %d headers, %d pins", r.Name, r.Headers, r.Pins)
			}
		}
		if len(rooms) != n {
			t.Errorf("%d inc- channels for %d incidents", len(rooms), n)
		}
	})
	c := tally.Count{Tried: n, Accepted: n} // every declare was acknowledged before the kill
	for id := int64(1); id <= n; id++ {
		inc, err := store.Get(context.Background(), id)
		if err != nil {
			t.Errorf("%s lost: %v", incidents.FormatID(id), err)
			c.Lost++
			continue
		}
		opened := 0
		store.Timeline(context.Background(), id, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventWarRoomOpened {
				opened++
			}
			return nil
		})
		if inc.Channel == "" || opened != 1 {
			t.Errorf("%s: channel %q, %d war_room_opened events", inc.Key(), inc.Channel, opened)
			c.Lost++ // recorded, but its war room is not
		}
	}
	c.Report(t)
}

// TestRunInProcess starts Sitrep through run(), as main does, under the race
// detector: the terminal and Slack at once, a declare from Slack that opens
// a war room and announces it, an ack typed in the terminal that edits the
// header, and a clean exit at the end of input.
func TestRunInProcess(t *testing.T) {
	// Every goroutine run starts has ended when it returns (the test's own
	// servers were started after this snapshot and are closed by the defers).
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := slacktest.NewScaled(100)
	defer srv.Close()
	announce, general := srv.CreateChannel("incidents"), srv.CreateChannel("general")
	db := filepath.Join(t.TempDir(), "sitrep.db")
	addr := freeAddr(t)
	vars := map[string]string{"SITREP_DB": db, "SITREP_LISTEN": addr, "SITREP_CONSOLE": "on", "USER": "alice",
		"SLACK_BOT_TOKEN": slacktest.BotToken, "SLACK_APP_TOKEN": slacktest.AppToken, "SLACK_API_URL": srv.URL,
		"SITREP_ANNOUNCE_CHANNEL": announce, "SITREP_SLACK_RATE_SCALE": "100", "SITREP_RUNBOOKS": "../../runbooks"}
	stdinR, stdinW := io.Pipe()
	out, logs := &lockedBuffer{}, &lockedBuffer{}
	code := make(chan int, 1)
	go func() { code <- run(nil, stdinR, out, logs, func(k string) string { return vars[k] }) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		t.Fatalf("never connected: %v\n%s", err, logs)
	}
	if _, err := srv.Send(slashDeclare(srv, "U1", general, "P1 API completely unavailable")); err != nil {
		t.Fatal(err)
	}
	var header *slacktest.Message
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		ch := v.Channel("inc-1-api-completely-unavailable")
		if ch == nil || len(ch.Pins) != 1 || len(v.Messages(announce)) != 1 {
			return false
		}
		for _, m := range v.Messages(ch.ID) {
			if m.TS == ch.Pins[0] {
				header = m
			}
		}
		return header != nil
	}); err != nil {
		t.Fatalf("no war room: %v\n%s", err, logs)
	}
	io.WriteString(stdinW, "ack INC-1\n")
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		return header.Updates > 0 && strings.Contains(string(header.Blocks), "acknowledged by @alice")
	}); err != nil {
		srv.Look(func(v *slacktest.View) { t.Logf("header %d updates: %s", header.Updates, header.Blocks) })
		t.Fatalf("the header was not edited after the ack: %v\n%s\n%s", err, logs, out)
	}
	// The outbox on /metrics and /readyz: the room and header done, nothing pending.
	for {
		_, metrics := get(t, "http://"+addr+"/metrics")
		if strings.Contains(metrics, `sitrep_effect_attempts_total{consumer="slack",effect="war_room",outcome="done"} 1`) &&
			strings.Contains(metrics, `sitrep_effects_pending{consumer="slack"} 0`) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("/metrics:\n%s", metrics)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 || strings.Contains(body, "effects") {
		t.Errorf("/readyz %d:\n%s", code, body)
	}
	stdinW.Close()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("run returned %d\n%s", c, logs)
		}
	case <-ctx.Done():
		t.Fatal("run did not return after the end of input")
	}
}

// TestBacklogCheckNamesAStall: effects waiting for minutes with none done
// are named in /readyz's detail (a warning: webhooks keep being taken).
func TestBacklogCheckNamesAStall(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.AddEffect(ctx, incidents.Effect{Consumer: "slack", Incident: 1, Seq: incidents.ChangedSeq, Created: time.Now().Add(-10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	r := effects.New(effects.Config{Consumer: "slack", Outbox: store, RetryBase: time.Hour,
		Handle: func(context.Context, *incidents.Effect, func() error) error { return errors.New("slack is down") }})
	check := backlogCheck(r)
	if err := check.Fn(ctx); err != nil {
		t.Fatalf("before any scan: %v", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Start(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	for r.Stats().Pending == 0 {
		time.Sleep(time.Millisecond)
	}
	err = check.Fn(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 pending") || !strings.Contains(err.Error(), "not draining") || !check.Warn {
		t.Errorf("backlog check: %v (warn %v)", err, check.Warn)
	}
}

// TestOutputsAreNeverReplaced: as root, `bot backup /dev/null` and
// `bot postmortem export … -o /dev/null` write into the device; they used
// to rename a regular file over it.
func TestOutputsAreNeverReplaced(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "declare P3 disk filling\n"); code != 0 {
		t.Fatalf("declare: %d %s", code, stderr)
	}
	for _, args := range [][]string{{"backup", "/dev/null"}, {"postmortem", "export", "INC-1", "-o", "/dev/null"}} {
		if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "", args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
		if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("%v replaced /dev/null: %v %v", args, st.Mode(), err)
		}
	}
	out, _, code := runBot(t, botEnv(db, freeAddr(t)), "", "backup", "-")
	if code != 0 || !strings.HasPrefix(out, "\x00") && len(out) < 4096 {
		t.Errorf("backup to standard output: exit %d, %d bytes", code, len(out))
	}
	// A FIFO nobody reads is an error at once (it was a hang deaf to Ctrl-C).
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backup", fifo}, {"postmortem", "export", "INC-1", "-o", fifo}} {
		if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "", args...); code != 1 || !strings.Contains(stderr, "nothing is reading it") {
			t.Errorf("%v: exit %d %q", args, code, stderr)
		}
	}
	// A link is followed: the file it points at gets the postmortem, the link stays.
	dir := t.TempDir()
	target, link := filepath.Join(dir, "real.md"), filepath.Join(dir, "link.md")
	os.WriteFile(target, nil, 0o644)
	os.Symlink(target, link)
	if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "", "postmortem", "export", "INC-1", "-o", link); code != 0 {
		t.Fatalf("export to a link: %s", stderr)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "# Postmortem: INC-1") {
		t.Errorf("the link's target has %q", b)
	}
}

// TestAdminAnswersFromTheRightDatabase: with two Sitreps running, asking
// for b.db's backup at a.db's address is refused with both names, instead
// of backing up a.db and saying it was b.db.
func TestAdminAnswersFromTheRightDatabase(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	_, addrA := headless(t, a)
	headless(t, b)
	_, stderr, code := runBot(t, botEnv(b, addrA), "", "backup", filepath.Join(dir, "copy.db"))
	if code == 0 || !strings.Contains(stderr, "holds "+a) || !strings.Contains(stderr, "not "+b) {
		t.Errorf("backup of b.db asked at a.db's Sitrep: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); err == nil {
		t.Error("a copy was written anyway")
	}
	_, stderr, code = runBot(t, botEnv(b, addrA), "", "postmortem", "export", "INC-1")
	if code == 0 || !strings.Contains(stderr, "holds "+a) {
		t.Errorf("postmortem of b.db asked at a.db's Sitrep: exit %d: %s", code, stderr)
	}
}

// TestOpenAlertmanagerIntakeRefusedAtStart: listening beyond loopback with
// no Alertmanager token is refused with a message saying how to set one;
// the explicit opt-out starts.
func TestOpenAlertmanagerIntakeRefusedAtStart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	env := append(botEnv(db, "0.0.0.0:0"), "SITREP_CONSOLE=on")
	_, stderr, code := runBot(t, env, "")
	if code == 0 || !strings.Contains(stderr, "set SITREP_ALERTMANAGER_TOKEN") {
		t.Errorf("open intake on 0.0.0.0: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runBot(t, append(env, "SITREP_ALERTMANAGER_UNAUTHENTICATED=1"), ""); code != 0 {
		t.Errorf("with the opt-out: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runBot(t, append(env, "SITREP_ALERTMANAGER_TOKEN=t0ken"), ""); code != 0 {
		t.Errorf("with a token: exit %d: %s", code, stderr)
	}
}

// TestDamagedDatabaseGetsOneLine: every data page of a real database
// zeroed in turn: `postmortem export` and the terminal either work or say
// in one line which file is damaged and how to recover — never a Go panic
// with a stack trace.
func TestDamagedDatabaseGetsOneLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sitrep.db")
	if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "declare P3 one\ndeclare P2 two\nnote INC-1 hello\n"); code != 0 {
		t.Fatal(stderr)
	}
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	damaged := 0
	// Each data page zeroed, then kept with its header and garbled below it:
	// the damage that made bbolt fault (SIGSEGV, not a panic) before faults
	// were turned into panics and bot check walked the pages in a child
	// process.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; (2+i/2)*page < len(good); i++ {
		pg, mode := 2+i/2, i%2
		bad := append([]byte(nil), good...)
		body := bad[pg*page : (pg+1)*page]
		switch mode {
		case 0:
			clear(body)
		case 1:
			for j := 16; j < page; j++ {
				body[j] = byte(rng.IntN(256))
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d-%d.db", pg, mode))
		os.WriteFile(path, bad, 0o600)
		for _, run := range []struct {
			input string
			args  []string
		}{{"", []string{"postmortem", "export", "INC-1"}}, {"list\n", nil}, {"", []string{"check", path}}} {
			out, stderr, code := runBot(t, botEnv(path, freeAddr(t)), run.input, run.args...)
			if strings.Contains(out+stderr, "panic") || strings.Contains(out+stderr, "goroutine ") {
				t.Fatalf("page %d damaged (mode %d), %v: a panic:\n%s", pg, mode, run.args, stderr)
			}
			if code != 0 {
				damaged++
				if !strings.Contains(stderr, path) || !strings.Contains(stderr, "backup") {
					t.Errorf("page %d damaged (mode %d), %v: exit %d without naming the file and the way back:\n%s", pg, mode, run.args, code, stderr)
				}
			}
		}
	}
	if damaged == 0 {
		t.Fatal("no zeroed page was noticed: the test proves nothing")
	}
	t.Logf("%d runs on damaged pages failed cleanly", damaged)
}

// TestPostmortemCannotDriveTheTerminal: an alert title with escape
// sequences comes out of `bot postmortem export` as visible text, with
// multi-byte characters intact.
func TestPostmortemCannotDriveTheTerminal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	if _, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "declare P3 été \x1b]0;PWNED\x07 \x1b[2J down\n"); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := runBot(t, botEnv(db, freeAddr(t)), "", "postmortem", "export", "INC-1")
	if code != 0 {
		t.Fatal(stderr)
	}
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `été ^[\]0;PWNED^G ^[\[2J down`) {
		t.Errorf("postmortem: %q", out)
	}
}
