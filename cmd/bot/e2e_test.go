package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// These tests run the built binary the way a person or a script does: piped
// stdin, environment configuration, and what comes out.

var botBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sitrep-e2e")
	if err != nil {
		panic(err)
	}
	botBinary = filepath.Join(dir, "bot")
	build := exec.Command("go", "build", "-o", botBinary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("go build: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func botEnv(db, listen string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "USER=alice", "SITREP_DB=" + db, "SITREP_LISTEN=" + listen}
	return env
}

// runBot runs the binary to completion with input on stdin.
func runBot(t testing.TB, env []string, input string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(botBinary, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(input)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestQuickStartTranscript(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	out, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "/incident declare P2 Checkout error rate above 5%\n1\nnote INC-1 rolled back to 3.1.0\nbogus\n")
	// The bogus command fails the script: its error on stderr, exit status 1.
	if code != 1 || !strings.Contains(stderr, `error: unknown command "bogus" — type help for the list`) || !strings.Contains(stderr, "bot: 1 command failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"Type help for commands",
		"🚨 Declared INC-1 · Checkout error rate above 5%",
		"Severity      P2 High — Degraded service (respond within 15m)",
		"Why           set explicitly at declaration",
		"Status        INVESTIGATING",
		"Lead          @alice",
		"Ack deadline  ",
		"[1] Acknowledge  [2] Severity…",
		"✓ INC-1 acknowledged by @alice",
		"✓ note added to INC-1's timeline",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sitrep> ") {
		t.Error("a prompt was printed to a pipe")
	}

	// The next run finds everything in the file.
	out, _, code = runBot(t, botEnv(db, "127.0.0.1:0"), "list\ntimeline 1\n")
	if code != 0 || !strings.Contains(out, "1 open incident:") || !strings.Contains(out, "INC-1   P2  INVESTIGATING acked") ||
		!strings.Contains(out, "note: rolled back to 3.1.0") {
		t.Errorf("second run (exit %d):\n%s", code, out)
	}
}

func TestDatabaseHeldByAnotherProcess(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	first, _ := startBot(t, db)
	_ = first
	_, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", "-lock-timeout=300ms")
	if code != 1 || !strings.Contains(stderr, db) || !strings.Contains(stderr, "locked by another process") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

type runningBot struct {
	addr  string
	stdin io.WriteCloser
	out   *bufio.Reader
	cmd   *exec.Cmd
}

// say sends a line and reads until the reply contains want.
func (b *runningBot) say(t *testing.T, line, want string) string {
	t.Helper()
	io.WriteString(b.stdin, line+"\n")
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		l, err := b.out.ReadString('\n')
		got.WriteString(l)
		if err != nil {
			t.Fatalf("waiting for %q: %v\n%s", want, err, got.String())
		}
	}
	return got.String()
}

// startBot runs a bot that stays up until the test ends (its stdin open).
func startBot(t *testing.T, db string) (*runningBot, *exec.Cmd) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(botBinary)
	cmd.Env = botEnv(db, addr)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &runningBot{addr: addr, stdin: stdin, out: bufio.NewReader(stdout), cmd: cmd}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bot exited with %v after EOF", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("bot did not exit after EOF")
		}
	})
	b.say(t, "help", "declare [--private] [--drill] [P1-P4] <title>") // it is up and answering
	return b, cmd
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if ctx.Err() != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond) // the listener may not be up yet
	}
}

func TestHTTPEndpoints(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	b, _ := startBot(t, db)
	b.say(t, "declare P2 Checkout error rate above 5%", "Declared INC-1")
	b.say(t, "declare API completely unavailable", "Declared INC-2")
	b.say(t, "ack 1", "acknowledged")
	b.say(t, "resolve 2 failover done", "resolved")

	if code, body := get(t, "http://"+b.addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz %d %q", code, body)
	}
	if code, body := get(t, "http://"+b.addr+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz %d %q", code, body)
	}
	code, metrics := get(t, "http://"+b.addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`sitrep_incidents_declared_total{severity="P1"} 1`,
		`sitrep_incidents_declared_total{severity="P2"} 1`,
		`sitrep_incidents_open{severity="P1"} 0`,
		`sitrep_incidents_open{severity="P2"} 1`,
		`sitrep_time_to_acknowledge_seconds_count{severity="P2"} 1`,
		`sitrep_time_to_resolve_seconds_count{severity="P1"} 1`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// An online backup while the bot holds the file.
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	out, stderr, code := runBot(t, botEnv(db, b.addr), "", "backup", backupFile)
	if code != 0 || !strings.Contains(out, "from the running Sitrep") {
		t.Fatalf("backup exit %d: %s %s", code, out, stderr)
	}
	copy, err := boltstore.Open(backupFile, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer copy.Close()
	all, err := copy.List(context.Background(), incidents.Filter{All: true})
	if err != nil || len(all) != 2 {
		t.Errorf("backup holds %d incidents, %v", len(all), err)
	}
}

func TestOfflineBackupAndCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sitrep.db")
	if _, _, code := runBot(t, botEnv(db, "127.0.0.1:0"), "declare P4 logo misaligned\n"); code != 0 {
		t.Fatal("declare failed")
	}
	out, _, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", "backup", filepath.Join(dir, "b.db"))
	if code != 0 || !strings.Contains(out, "backed up "+db) {
		t.Errorf("offline backup exit %d: %s", code, out)
	}
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"backup"}, nil, 2, "usage: bot backup"},
		{[]string{"backup", db}, nil, 1, "is the database itself"},
		{[]string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{[]string{"-nope"}, nil, 2, "flag provided but not defined"},
		{[]string{"version"}, nil, 0, "sitrep "},
		{nil, []string{"SLACK_BOT_TOKEN=secret-1", "SLACK_APP_TOKEN=xapp-secret-2"}, 1, "SLACK_BOT_TOKEN must be a bot token (xoxb-…)"},
		{nil, []string{"SLACK_BOT_TOKEN=xoxb-secret-1", "SLACK_APP_TOKEN=xapp-secret-2", "SLACK_API_URL=ftp://x"}, 1, "SLACK_API_URL"},
		{nil, []string{"SITREP_CONSOLE=maybe"}, 1, `SITREP_CONSOLE is "maybe": use auto, on or off`},
		{[]string{"-console", "maybe"}, nil, 1, `-console is "maybe": use auto, on or off`},
		{[]string{"--version"}, nil, 0, "sitrep "},
		{[]string{"serve", "-h"}, nil, 0, "-slo-window, SITREP_SLO_WINDOW (default: 30d)"},
		{nil, []string{"SITREP_DB=" + filepath.Join(dir, "missing", "x.db")}, 1, "missing"},
	}
	for _, tt := range tests {
		out, stderr, code := runBot(t, append(botEnv(db, "127.0.0.1:0"), tt.env...), "", tt.args...)
		if code != tt.code || !strings.Contains(out+stderr, tt.want) {
			t.Errorf("bot %v: exit %d, output %q, want %d and %q", tt.args, code, out+stderr, tt.code, tt.want)
		}
		if strings.Contains(out+stderr, "secret-1") || strings.Contains(out+stderr, "secret-2") {
			t.Errorf("bot %v printed a token", tt.args)
		}
	}
}

func TestSlackModeEndToEnd(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	announce := srv.CreateChannel("incidents")
	db := filepath.Join(t.TempDir(), "sitrep.db")
	env := append(botEnv(db, "127.0.0.1:0"),
		"SLACK_BOT_TOKEN="+slacktest.BotToken, "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_API_URL="+srv.URL,
		"SITREP_ANNOUNCE_CHANNEL="+announce, "SITREP_RESPONDERS=UONCALL,USRE", "SITREP_SLACK_RATE_SCALE=100")
	cmd := exec.Command(botBinary)
	cmd.Env = env
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		for _, secret := range []string{slacktest.BotToken, slacktest.AppToken} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a token appears in the log")
			}
		}
	}()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		t.Fatalf("the bot never connected: %v\n%s", err, logs.String())
	}
	payload := map[string]any{"user_id": "U1", "channel_id": announce, "command": "/incident",
		"text": "declare P1 API completely unavailable", "response_url": srv.ResponseURL("x"), "trigger_id": "1.2.3"}
	for {
		_, err := srv.Send(slacktest.Envelope{Type: "slash_commands", Payload: payload})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	err := srv.Wait(ctx, func(v *slacktest.View) bool {
		ch := v.Channel("inc-1-api-completely-unavailable")
		return ch != nil && len(ch.Pins) == 1 && len(v.Messages(announce)) == 1 && strings.Contains(strings.Join(ch.Members, ","), "USRE")
	})
	if err != nil {
		t.Fatalf("no war room: %v\n%s", err, logs.String())
	}
}

func TestPostmortemExport(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sitrep.db")
	script := "declare P2 Checkout error rate above 5%\nack 1\nnote 1 #cause pool sized 10\naction 1 alert on pool saturation @bob\nresolve 1 rolled back\n"
	if _, _, code := runBot(t, botEnv(db, "127.0.0.1:0"), script); code != 0 {
		t.Fatal("setting up the incident failed")
	}
	// Offline: straight from the file.
	out, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", "postmortem", "export", "INC-1")
	if code != 0 || !strings.Contains(out, "# Postmortem: INC-1 · Checkout error rate above 5%") || !strings.Contains(out, "- pool sized 10") {
		t.Fatalf("export exit %d: %s %s", code, out, stderr)
	}
	file := filepath.Join(dir, "pm.json")
	out, stderr, code = runBot(t, botEnv(db, "127.0.0.1:0"), "", "postmortem", "export", "-format", "json", "-o", file, "1") // flags first works too
	if code != 0 {
		t.Fatalf("json export: %s", stderr)
	}
	if st, err := os.Stat(file); err != nil || out != fmt.Sprintf("Wrote the postmortem of INC-1 to %s (JSON, %d bytes).\n", file, st.Size()) {
		t.Errorf("-o says %q (%v)", out, err)
	}
	var doc map[string]any
	if b, err := os.ReadFile(file); err != nil || json.Unmarshal(b, &doc) != nil || doc["timeline_events"].(float64) < 5 {
		t.Fatalf("json file: %v %v", err, doc)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"postmortem"}, 2, "usage: bot postmortem export"},
		{[]string{"postmortem", "export", "INC-x"}, 2, "is not an incident id"},
		{[]string{"postmortem", "export", "9"}, 1, "bot: no incident INC-9\n"},
		{[]string{"postmortem", "export", "1", "-format", "pdf"}, 1, `unknown format "pdf"`},
	} {
		out, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", tt.args...)
		if code != tt.code || !strings.Contains(out+stderr, tt.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tt.args, code, out+stderr, tt.code, tt.want)
		}
	}
	// Online: the running bot holds the file and answers for it.
	b, _ := startBot(t, db)
	out, stderr, code = runBot(t, botEnv(db, b.addr), "", "postmortem", "export", "INC-1")
	if code != 0 || !strings.Contains(out, "| 1 | alert on pool saturation | @bob | open |") {
		t.Errorf("export while running: exit %d %s %s", code, out, stderr)
	}
	// Asked at the wrong address, it says how to point at the right one.
	if _, stderr, code = runBot(t, botEnv(db, freeAddr(t)), "", "postmortem", "export", "INC-1"); code != 1 || !strings.Contains(stderr, "give its address with SITREP_LISTEN or -listen") {
		t.Errorf("the wrong address: exit %d %q", code, stderr)
	}
	// An unknown id reads the same whether the file or the running Sitrep answers.
	if _, stderr, code = runBot(t, botEnv(db, b.addr), "", "postmortem", "export", "9"); code != 1 || stderr != "bot: no incident INC-9\n" {
		t.Errorf("unknown id while running: exit %d %q", code, stderr)
	}
}

func TestRunbooksLint(t *testing.T) {
	env := botEnv(filepath.Join(t.TempDir(), "x.db"), "127.0.0.1:0")
	out, _, code := runBot(t, env, "", "runbooks", "lint", "../../runbooks")
	if code != 0 || !strings.Contains(out, "9 runbooks in ../../runbooks: all good") {
		t.Errorf("shipped runbooks: exit %d %s", code, out)
	}
	out, stderr, code := runBot(t, append(env, "SITREP_NAMESPACES=prod"), "", "runbooks", "lint", "../../internal/runbooks/testdata/bad")
	if code != 1 || !strings.Contains(out, "testdata/bad/shell.yaml:8: step \"sneaky\": kind \"shell\": runbooks cannot run shell commands") ||
		!strings.Contains(stderr, "7 problems") {
		t.Errorf("bad runbooks: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, _, code := runBot(t, env, "", "runbooks"); code != 2 {
		t.Errorf("runbooks without lint: exit %d", code)
	}
	// One file, as an editor or a pre-commit hook checks it; an empty directory says so.
	out, _, code = runBot(t, env, "", "runbooks", "lint", "../../runbooks/high-error-rate.yaml")
	if code != 0 || out != "1 runbook in ../../runbooks/high-error-rate.yaml: all good\n" {
		t.Errorf("one file: exit %d %q", code, out)
	}
	out, _, code = runBot(t, env, "", "runbooks", "lint", "../../internal/runbooks/testdata/several/types.yaml")
	if code != 1 || !strings.HasPrefix(out, "../../internal/runbooks/testdata/several/types.yaml:1: a list where a text is expected") {
		t.Errorf("one bad file: exit %d %q", code, out)
	}
	if out, _, code = runBot(t, env, "", "runbooks", "lint", t.TempDir()); code != 0 || !strings.HasPrefix(out, "no runbook files") {
		t.Errorf("an empty directory: exit %d %q", code, out)
	}
	// A roll back after a restart loads, with a warning at its line.
	warned := filepath.Join(t.TempDir(), "restart-then-undo.yaml")
	os.WriteFile(warned, []byte("name: restart-then-undo\ntitle: Restart, then roll back\nmatch: {keywords: [api]}\nparams: {namespace: prod, deployment: api}\nsteps:\n"+
		"  - {name: Restart, kind: kube.restart, deployment: api}\n  - {name: Roll back, kind: kube.undo, deployment: api}\n"), 0o600)
	out, _, code = runBot(t, append(env, "SITREP_NAMESPACES=prod"), "", "runbooks", "lint", warned)
	if code != 0 || !strings.HasPrefix(out, warned+`:7: warning: step 2 "Roll back" (kube.undo) follows step 1 "Restart"`) || !strings.HasSuffix(out, "1 runbook in "+warned+": they load, with 1 warning\n") {
		t.Errorf("a warning: exit %d %q", code, out)
	}
	// Paths as given, plurals right.
	if _, stderr, code := runBot(t, env, "", "runbooks", "lint", "/nonexistent"); code != 1 || stderr != "bot: runbooks lint: stat /nonexistent: no such file or directory\n" {
		t.Errorf("a missing directory: exit %d %q", code, stderr)
	}
	out, stderr, code = runBot(t, env, "", "runbooks", "lint", "../../internal/runbooks/testdata/several/")
	if code != 1 || !strings.HasPrefix(out, "../../internal/runbooks/testdata/several/several.yaml:4: field colour") || !strings.Contains(stderr, "9 problems in ../../internal/runbooks/testdata/several/") {
		t.Errorf("several problems: exit %d\n%s\n%s", code, out, stderr)
	}
	// A declared incident is offered its runbook.
	out, _, _ = runBot(t, append(env, "SITREP_RUNBOOKS=../../runbooks"), "declare P2 Checkout error rate above 5%\n")
	if !strings.Contains(out, "Runbook       high-error-rate") {
		t.Errorf("no runbook offered:\n%s", out)
	}
}

// freeAddr is a loopback address nothing listens on (for SITREP_LISTEN).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
