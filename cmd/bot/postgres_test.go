package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/pgstore/pgtest"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// postgresURL starts a private PostgreSQL cluster for the test and returns
// an empty database's URL; without PostgreSQL the test skips (and fails
// under CI, where .ci/run installs it).
func postgresURL(t *testing.T) string {
	t.Helper()
	url, _ := postgresCluster(t)
	return url
}

func postgresCluster(t *testing.T) (string, *pgtest.Cluster) {
	t.Helper()
	if pgtest.Bin() == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL is not installed; .ci/run should have installed it")
		}
		t.Skip("PostgreSQL is not installed (apt-get install postgresql)")
	}
	c, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	url, err := c.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url, c
}

// TestPostgreSQLDownAndBack: while PostgreSQL is down, a webhook is
// answered 503 (Alertmanager and PagerDuty retry) and /readyz says why;
// when it is back, Sitrep recovers by itself and takes the retry.
func TestPostgreSQLDownAndBack(t *testing.T) {
	url, cluster := postgresCluster(t)
	_, addr := headless(t, url)
	body, err := os.ReadFile("../../../shared/samples/alertmanager/zulip_firing_2_alerts.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func() int {
		resp, err := http.Post("http://"+addr+"/webhooks/alertmanager", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := cluster.Down(); err != nil {
		t.Fatal(err)
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Errorf("a webhook while PostgreSQL is down: %d, want 503", code)
	}
	if code, text := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(text, "PostgreSQL") {
		t.Errorf("readyz while down: %d %q", code, text)
	}
	if err := cluster.Up(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for post() != http.StatusOK { // Alertmanager's retry, until Sitrep has reconnected
		if time.Now().After(deadline) {
			t.Fatal("Sitrep did not recover once PostgreSQL was back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for { // ready again by itself once its heartbeat is stored again (the next beat, within 3 s)
		code, text := get(t, "http://"+addr+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz once back: %d %q", code, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _, _ := runBot(t, botEnv(url, "127.0.0.1:0"), "list\n")
	if !strings.Contains(out, "1 open incident:") {
		t.Errorf("the retried alert is not there:\n%s", out)
	}
}

// TestPostgreSQLThroughTheBinary: a bbolt database copied into PostgreSQL
// (verified), the terminal running on PostgreSQL with every incident and
// timeline there, migrate status, and the copy back into a new bbolt file.
func TestPostgreSQLThroughTheBinary(t *testing.T) {
	url := postgresURL(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "sitrep.db")
	withReleases := func(env []string) []string {
		return append(env, "SITREP_RELEASES=../../releases", "SITREP_RELEASE_SIGNERS=engineering=@alice,devops=@alice")
	}
	if _, stderr, code := runBot(t, withReleases(botEnv(db, "127.0.0.1:0")), "declare P2 checkout errors\nnote 1 pool exhausted #cause\nack 1\ndeclare --private P1 breach\nresolve 1 pool raised\n"+
		"release start architect-api 3.2.0 rolling\nrelease abort REL-1 wrong version\n"); code != 0 {
		t.Fatalf("seed: %s", stderr)
	}
	out, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", "migrate", "copy", "-from", db, "-to", url)
	if code != 0 || !strings.Contains(out, "copied 2 incidents, ") || !strings.Contains(out, " and 1 release from ") || !strings.Contains(out, "verified") || strings.Contains(out, "password") {
		t.Fatalf("copy (exit %d): %s %s", code, out, stderr)
	}
	if _, stderr, code := runBot(t, botEnv(db, "127.0.0.1:0"), "", "migrate", "copy", "-from", db, "-to", url); code == 0 || !strings.Contains(stderr, "already has incidents") {
		t.Errorf("a second copy into the same database (exit %d): %s", code, stderr)
	}
	pg := withReleases(botEnv(url, "127.0.0.1:0"))
	out, stderr, code = runBot(t, pg, "list --all\ntimeline 1\ndeclare P3 search slow\nrelease start architect-api 3.2.1 rolling\n")
	if code != 0 || !strings.Contains(out, "2 incidents:") || !strings.Contains(out, "note: pool exhausted #cause") || !strings.Contains(out, "Declared INC-3 · search slow") ||
		!strings.Contains(out, "REL-2 · architect-api 3.2.1") {
		t.Errorf("on PostgreSQL (exit %d):\n%s\n%s", code, out, stderr)
	}
	if out, _, code := runBot(t, pg, "", "migrate", "status"); code != 0 || !strings.Contains(out, "0001 incidents") || !strings.Contains(out, "applied") || strings.Contains(out, "not applied") {
		t.Errorf("migrate status (exit %d): %s", code, out)
	}
	back := filepath.Join(dir, "back.db")
	if out, stderr, code := runBot(t, pg, "", "migrate", "copy", "-from", url, "-to", back); code != 0 || !strings.Contains(out, "copied 3 incidents") || !strings.Contains(out, "and 2 releases") {
		t.Fatalf("copy back (exit %d): %s %s", code, out, stderr)
	}
	if out, _, code := runBot(t, botEnv(back, "127.0.0.1:0"), "list --all\ndeclare P4 typo\n"); code != 0 || !strings.Contains(out, "3 incidents:") || !strings.Contains(out, "Declared INC-4") {
		t.Errorf("back on bbolt (exit %d):\n%s", code, out)
	}
	if _, stderr, code := runBot(t, pg, "", "backup", filepath.Join(dir, "x.db")); code == 0 || !strings.Contains(stderr, "pg_dump") {
		t.Errorf("backup of PostgreSQL (exit %d): %s", code, stderr)
	}
}

// TestSlackWhilePostgreSQLIsDown: a declare sent while PostgreSQL is down
// is acknowledged all the same (kept in the local spool), and becomes an
// incident with its war room once PostgreSQL is back.
func TestSlackWhilePostgreSQLIsDown(t *testing.T) {
	url, cluster := postgresCluster(t)
	srv := slacktest.New()
	defer srv.Close()
	announce, general := srv.CreateChannel("incidents"), srv.CreateChannel("general")
	cmd := exec.Command(botBinary)
	cmd.Env = append(slackEnv(srv, url, announce), "SITREP_SPOOL="+filepath.Join(t.TempDir(), "spool.db"))
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { return v.Connected() == 1 }); err != nil {
		t.Fatalf("never connected: %v\n%s", err, logs)
	}
	if err := cluster.Down(); err != nil {
		t.Fatal(err)
	}
	id, err := srv.Send(slashDeclare(srv, "U1", general, "P2 checkout errors during the failover"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(ctx, func(v *slacktest.View) bool { _, ok := v.Ack(id); return ok }); err != nil {
		t.Fatalf("not acknowledged while PostgreSQL was down: %v\n%s", err, logs)
	}
	if err := cluster.Up(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(ctx, func(v *slacktest.View) bool {
		for _, ch := range v.Channels() {
			if strings.HasPrefix(ch.Name, "inc-1-") && len(ch.Pins) == 1 {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no war room once PostgreSQL was back: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "kept in the local spool") {
		t.Errorf("the spool was not used:\n%s", logs)
	}
}
