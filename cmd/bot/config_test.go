package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from the settings")

// TestREADMEConfigurationTable: the README's table is the settings table,
// so the flags, the variables, their defaults and the README cannot drift
// (go test ./cmd/bot -run READMEConfiguration -update rewrites it).
func TestREADMEConfigurationTable(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "| variable | flag | default | meaning |")
	if start < 0 {
		t.Fatal("the README has no configuration table")
	}
	end := start + strings.Index(readme[start:], "\n\n") + 1
	if got, want := readme[start:end], configTable(); got != want {
		if *update {
			os.WriteFile(path, []byte(readme[:start]+want+readme[end:]), 0o644)
			return
		}
		t.Errorf("the README's configuration table is not the settings table; run go test ./cmd/bot -run READMEConfiguration -update\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// TestEverySettingFromEachPlace: each setting is read from its flag, its
// variable and the config file, in that order of precedence.
func TestEverySettingFromEachPlace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sitrep.env")
	os.WriteFile(file, []byte("# team defaults\nSITREP_SLO_WINDOW=1d12h\nexport SITREP_LISTEN=\"127.0.0.1:9999\"\nSITREP_DB=from-file.db\n"), 0o600)
	env := map[string]string{"SITREP_DB": "from-env.db", "SITREP_CONFIG": file, "USER": "bob"}
	cfg, _, err := loadConfig("serve", []string{"-db", "from-flag.db"}, os.Stderr, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DB != "from-flag.db" || cfg.Listen != "127.0.0.1:9999" || cfg.SLO.Window != 36*time.Hour || cfg.User != "@bob" {
		t.Errorf("db %q listen %q window %s user %q", cfg.DB, cfg.Listen, cfg.SLO.Window, cfg.User)
	}
	for v, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "720h": 720 * time.Hour, "90m": 90 * time.Minute} {
		if d, err := say.ParseDuration(v); err != nil || d != want {
			t.Errorf("ParseDuration(%q) = %s %v, want %s", v, d, err, want)
		}
	}
	for _, bad := range [][]string{{"-slo-window", "13x"}, {"-slo-window", "30m"}, {"-console", "maybe"}, {"-slo-target", "2"}, {"-lock-timeout", "-1s"}} {
		if _, _, err := loadConfig("serve", bad, os.Stderr, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming the flag", bad, err)
		}
	}
	// Every problem of the file at once, each at its line.
	os.WriteFile(file, []byte("SITREP_SLO_WINDOW=13x\nnot a line\nSITREP_CONSOLE=maybe\nSITREP_NOPE=1\n"), 0o600)
	_, _, err = loadConfig("serve", nil, os.Stderr, func(k string) string { return env[k] })
	for _, want := range []string{"sitrep.env:1: SITREP_SLO_WINDOW is \"13x\"", "sitrep.env:2: \"not a line\"", "sitrep.env:3: SITREP_CONSOLE is \"maybe\"", "sitrep.env:4: \"SITREP_NOPE=1\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config file problems: %v; want %q among them", err, want)
		}
	}
}

// TestDashboardsAndTheirBookmarks: SITREP_DASHBOARDS is read and refused
// as people write it wrong, and a war room's bookmarks are its runbook's
// page and its service's dashboards.
func TestDashboardsAndTheirBookmarks(t *testing.T) {
	env := map[string]string{"SITREP_DASHBOARDS": "checkout=https://grafana.example.com/d/co, checkout=https://grafana.example.com/d/co-db,api=https://grafana.example.com/d/api"}
	cfg, _, err := loadConfig("serve", nil, os.Stderr, func(k string) string { return env[k] })
	if err != nil || len(cfg.Dashboards) != 3 {
		t.Fatalf("%+v %v", cfg.Dashboards, err)
	}
	for _, bad := range []string{"checkout", "=https://x.example", "checkout=javascript:alert(1)", "checkout=https://", "api=grafana/d/1"} {
		if _, _, err := loadConfig("serve", []string{"-dashboards", bad}, os.Stderr, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "SITREP_DASHBOARDS") && !strings.Contains(err.Error(), "dashboards") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	books, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	marks := bookmarksFor(books, cfg.Dashboards)(&incidents.Incident{Service: "Checkout", Links: map[string]string{"runbook": "no-such-runbook"}})
	if len(marks) != 2 || marks[0].URL != "https://grafana.example.com/d/co" || marks[1].Title != "Dashboard: checkout" {
		t.Errorf("bookmarks %+v", marks)
	}
	if marks := bookmarksFor(nil, nil)(&incidents.Incident{}); len(marks) != 0 {
		t.Errorf("no runbooks, no dashboards: %+v", marks)
	}
}

// TestPostgresURLNeverShowsItsPassword: however the password is given.
func TestPostgresURLNeverShowsItsPassword(t *testing.T) {
	for _, db := range []string{"postgres://sitrep:hunter2@db/sitrep", "postgres://sitrep@db/sitrep?password=hunter2&sslmode=require", "postgresql://u:hunter2@db/x?sslpassword=hunter2"} {
		if got := redact(db); strings.Contains(got, "hunter2") || !strings.Contains(got, "@db") {
			t.Errorf("redact(%q) = %q", db, got)
		}
	}
	if redact("sitrep.db") != "sitrep.db" {
		t.Error("a path is not a URL")
	}
}
