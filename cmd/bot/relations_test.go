package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateMergeAndLinkInTheTerminal drives the built binary as two
// people sharing one database: alice's private incident is hidden from bob
// until she invites him; a duplicate merged into its survivor shows the
// link both ways; link relates two incidents; the survivor's postmortem
// carries the duplicate's events.
func TestPrivateMergeAndLinkInTheTerminal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	as := func(user string) []string {
		return append(botEnv(db, "127.0.0.1:0"), "SITREP_USER=@"+user)
	}
	out, stderr, code := runBot(t, as("alice"), "declare --private P1 Customer data exposed in export\ndeclare P2 Checkout errors\ndeclare P2 Checkout 502s\n")
	if code != 0 || !strings.Contains(out, "INC-1 · 🔒 Customer data exposed") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = runBot(t, as("bob"), "list\nshow 1\n")
	if code != 1 || strings.Contains(out+stderr, "Customer") || !strings.Contains(stderr, "INC-1 is private") || !strings.Contains(out, "2 open incidents:") {
		t.Errorf("bob before the invite (exit %d):\n%s\n%s", code, out, stderr)
	}
	runBot(t, as("alice"), "invite 1 @bob\n")
	if out, _, code = runBot(t, as("bob"), "list\n"); code != 0 || !strings.Contains(out, "3 open incidents:") || !strings.Contains(out, "🔒 Customer data") {
		t.Errorf("bob after the invite (exit %d):\n%s", code, out)
	}

	out, stderr, code = runBot(t, as("bob"), "merge INC-3 into INC-2\n1\ny\nlink 2 1\nshow 3\nshow 2\npostmortem 2\nreopen 3\n")
	for _, want := range []string{
		"✓ INC-3 merged into INC-2 (Checkout errors): it is resolved as a duplicate",
		"✓ INC-2 is linked to INC-1 (private)", // named so wherever the answer may be read
		"Merged into   INC-2 — work there",
		"Duplicates    INC-3",
		"Related       INC-1",
		"| Duplicates | INC-3",
		"(INC-3) Checkout 502s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || !strings.Contains(stderr, "INC-3 was merged into INC-2 as a duplicate: work there") {
		t.Errorf("reopening the duplicate (exit %d): %s", code, stderr)
	}
	// carol was never invited: INC-2's timeline names the private one without its title
	out, _, _ = runBot(t, as("carol"), "timeline 2\n")
	if !strings.Contains(out, "Linked to INC-1 (private)") || strings.Contains(out, "Customer") {
		t.Errorf("carol's view of INC-2:\n%s", out)
	}
}

// TestStatusPageThroughTheBinary: the status page on its own listener,
// with no runbooks and no components configured (the simplest setup),
// shows what was published from the terminal — and the main listener does
// not serve it, nor the status listener the admin routes.
func TestStatusPageThroughTheBinary(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	env := append(botEnv(db, "127.0.0.1:0"), "SITREP_RUNBOOKS="+filepath.Join(t.TempDir(), "none"))
	out, stderr, code := runBot(t, env, "declare P2 checkout errors\npublish 1 --title Checkout is failing for some cards\npublish 1 identified Some card payments fail\n1\ny\n")
	if code != 0 || !strings.Contains(out, "published to the status page") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	status := freeAddr(t)
	_, addr := headless(t, db, "SITREP_RUNBOOKS="+filepath.Join(t.TempDir(), "none"), "SITREP_STATUS_LISTEN="+status)
	code2, page := get(t, "http://"+status+"/status")
	if code2 != 200 || !strings.Contains(page, "Checkout is failing for some cards") || !strings.Contains(page, "Some card payments fail") || strings.Contains(page, "checkout errors") {
		t.Errorf("status page %d:\n%s", code2, page)
	}
	if c, _ := get(t, "http://"+addr+"/status"); c != 404 {
		t.Errorf("the main listener serves /status: %d", c)
	}
	if c, _ := get(t, "http://"+status+"/metrics"); c != 404 {
		t.Errorf("the status listener serves /metrics: %d", c)
	}
}
