package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// headless starts the binary without a terminal and returns its address.
func headless(t testing.TB, db string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(botBinary)
	cmd.Env = append(botEnv(db, addr), append([]string{"SITREP_CONSOLE=off"}, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	get(t, "http://"+addr+"/readyz") // waits until it answers
	return cmd, addr
}

func TestPagerDutyWebhookThroughTheBinary(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	_, addr := headless(t, db, "PAGERDUTY_WEBHOOK_SECRETS=old,new-secret")
	body := recentPagerDutySample(t, "zulip_triggered_v3.json")
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/webhooks/pagerduty", bytes.NewReader(body))
		req.Header.Set(pagerduty.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(pagerduty.Sign(body, []byte("attacker"))); code != 401 {
		t.Errorf("mis-signed: %d", code)
	}
	if code := post(pagerduty.Sign(body, []byte("new-secret"))); code != 202 {
		t.Errorf("signed: %d", code)
	}
	_, metrics := get(t, "http://"+addr+"/metrics")
	if !strings.Contains(metrics, `sitrep_incidents_declared_total{severity="P2"} 1`) {
		t.Error("the PagerDuty incident was not declared")
	}
}

// TestKillDuringAlertStorm sends alerts from many clients, kills the bot
// with SIGKILL in the middle, and checks that every alert it answered 2xx
// for is on a timeline after the restart.
func TestKillDuringAlertStorm(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	cmd, addr := headless(t, db)
	var answered sync.Map
	var count atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ctx.Err() == nil && i < 2000; i++ {
				fp := fmt.Sprintf("w%d-a%d", w, i)
				group := fmt.Sprintf("Storm%d", i%20)
				body, _ := json.Marshal(map[string]any{"version": "4", "groupKey": group, "status": "firing",
					"commonLabels": map[string]string{"alertname": group, "severity": "critical"},
					"alerts":       []map[string]any{{"status": "firing", "fingerprint": fp, "labels": map[string]string{"alertname": group}, "startsAt": "2026-11-26T03:00:00Z"}}})
				resp, err := client.Post("http://"+addr+"/webhooks/alertmanager", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the bot is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					answered.Store(fp, group)
					count.Add(1)
				}
			}
		}()
	}
	for count.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL in the middle of the storm
	cmd.Wait()
	cancel()
	wg.Wait()

	store, err := boltstore.Open(db, boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer store.Close()
	all, err := store.List(context.Background(), incidents.Filter{All: true})
	if err != nil || len(all) != 20 {
		t.Fatalf("%d incidents after the storm, want 20 (%v)", len(all), err)
	}
	seen := map[string]bool{}
	for _, inc := range all {
		store.Timeline(context.Background(), inc.ID, func(ev incidents.Event) error {
			if ev.Kind == incidents.EventAlert {
				seen[ev.Fields["fingerprint"]] = true
			}
			return nil
		})
	}
	answeredN, lost := 0, 0
	answered.Range(func(k, _ any) bool {
		answeredN++
		if !seen[k.(string)] {
			lost++
		}
		return true
	})
	t.Logf("kill -9 during the storm: %d alerts answered 2xx, %d lost", answeredN, lost)
	if lost != 0 {
		t.Errorf("%d of %d answered alerts lost after kill -9", lost, answeredN)
	}
}

// TestSecretsNeverLogged runs the bot with every secret configured and debug
// logging, drives every path that logs (Slack, signed and forged PagerDuty
// webhooks, a PagerDuty API that fails, Alertmanager with and without its
// token, a refused admin call), and greps everything it printed.
func TestSecretsNeverLogged(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	pdAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) }))
	defer pdAPI.Close()
	secrets := map[string]string{
		"SLACK_BOT_TOKEN": slacktest.BotToken, "SLACK_APP_TOKEN": slacktest.AppToken,
		"PAGERDUTY_WEBHOOK_SECRETS": "pd-webhook-secret-7f3a", "PAGERDUTY_TOKEN": "pd-api-token-9c1e",
		"SITREP_ADMIN_TOKEN": "admin-token-4b2d", "SITREP_ALERTMANAGER_TOKEN": "am-token-8e6f",
	}
	addr := freeAddr(t)
	env := append(botEnv(filepath.Join(t.TempDir(), "s.db"), addr), "SLACK_API_URL="+srv.URL, "SITREP_LOG_LEVEL=debug",
		"PAGERDUTY_FROM=sitrep@example.com", "PAGERDUTY_API_URL="+pdAPI.URL, "SITREP_SLACK_RATE_SCALE=100")
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(botBinary)
	cmd.Env = env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() > 0 }); err != nil {
		t.Fatal(err)
	}
	get(t, "http://"+addr+"/healthz")
	post := func(path string, body []byte, header, value string) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(body))
		if header != "" {
			req.Header.Set(header, value)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	pd := recentPagerDutySample(t, "zulip_triggered_v3.json")
	post("/webhooks/pagerduty", pd, pagerduty.SignatureHeader, "v1=00")
	post("/webhooks/pagerduty", pd, pagerduty.SignatureHeader, pagerduty.Sign(pd, []byte(secrets["PAGERDUTY_WEBHOOK_SECRETS"])))
	am, _ := os.ReadFile("../../../shared/samples/alertmanager/alertmanager_bot_firing.json")
	post("/webhooks/alertmanager", am, "Authorization", "Bearer wrong")
	post("/webhooks/alertmanager", am, "Authorization", "Bearer "+secrets["SITREP_ALERTMANAGER_TOKEN"])
	srv.Send(slacktest.Envelope{Type: "slash_commands", Payload: map[string]any{"user_id": "U1", "channel_id": "C1", "command": "/incident",
		"text": "ack INC-1", "response_url": srv.ResponseURL("x"), "trigger_id": "1"}}) // acks in Sitrep; PagerDuty's API fails
	srv.Wait(ctx, func(v *slacktest.View) bool { return len(v.Channels()) >= 2 })
	logged := func() bool {
		text := out.String()
		return strings.Contains(text, "consumer=pagerduty effect=acknowledge") && strings.Contains(text, "effect failed; retrying") && strings.Contains(text, "refused")
	}
	for !logged() && ctx.Err() == nil { // the failing PagerDuty sync logs its retries
		time.Sleep(10 * time.Millisecond)
	}
	text := out.String()
	if !logged() {
		t.Errorf("the paths that log did not run:\n%s", text)
	}
	for name, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("%s appears in the output", name)
		}
	}
	t.Logf("%d log lines checked for %d secrets", strings.Count(text, "\n"), len(secrets))
}

// lockedBuffer is a bytes.Buffer a test may read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recentPagerDutySample is a recorded PagerDuty event as if it occurred now
// (older ones are refused as replays).
func recentPagerDutySample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../shared/samples/pagerduty/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["event"].(map[string]any)["occurred_at"] = time.Now().UTC().Format(time.RFC3339)
	b, _ = json.Marshal(m)
	return b
}
