package runbooks_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// TestShippedRunbooksPassLint loads every file in the repository's runbooks/.
func TestShippedRunbooksPassLint(t *testing.T) {
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{Namespaces: []string{"architect-production"}})
	if err != nil {
		t.Fatalf("the shipped runbooks do not pass lint:\n%v", err)
	}
	want := []string{"api-unresponsive", "blue-green-rollback", "database-down", "disk-space", "high-cpu", "high-error-rate",
		"high-latency", "pod-crashes", "replication-lag"}
	var got []string
	for _, rb := range set.Runbooks() {
		got = append(got, rb.Name)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("runbooks %v, want %v", got, want)
	}
	// The seed's High Error Rate runbook, step for step.
	her := set.Get("high-error-rate")
	kinds := []string{}
	for _, s := range her.Steps {
		kinds = append(kinds, string(s.Kind))
	}
	if strings.Join(kinds, " ") != "manual promql promql promql_range promql kube.rollout_history kube.events kube.logs kube.logs promql promql kube.undo kube.restart kube.scale" {
		t.Errorf("high-error-rate steps: %v", kinds)
	}
	if her.Steps[2].Query != `rate(http_requests_total{status=~"5.."}[5m])` || her.Steps[13].Replicas != 15 {
		t.Errorf("the seed's query or replica count changed: %+v", her.Steps[1])
	}
	// Followed top to bottom, every shipped runbook works: no roll back
	// after a step that made a revision of its own.
	for _, rb := range set.Runbooks() {
		for _, w := range rb.Warnings() {
			t.Errorf("%s", w)
		}
	}
	// Every seed alert rule has its runbook.
	for _, alert := range []string{"HighErrorRate", "APIUnresponsive", "HighLatency", "HighCPU", "DatabaseDown", "ReplicationLag", "DiskSpaceRunningOut"} {
		if rb := set.Match(alert, nil, ""); rb == nil {
			t.Errorf("no runbook for the seed alert %s", alert)
		}
	}
}

// TestAnUndoAfterARestartIsWarned: a runbook that restarts, then rolls
// back, loads (it is allowed) with a warning at the undo's line.
func TestAnUndoAfterARestartIsWarned(t *testing.T) {
	rb, ps := runbooks.Parse("restart-then-undo.yaml", []byte(`name: restart-then-undo
title: Restart, then roll back
match: {keywords: [api]}
params: {namespace: prod, deployment: api}
steps:
  - name: Restart
    kind: kube.restart
    deployment: '{{deployment}}'
  - name: Roll back
    kind: kube.undo
    deployment: '{{deployment}}'
`), runbooks.Options{})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	rb.Steps[1].Revision = 3 // a named revision: nothing to warn about
	if w := rb.Warnings(); len(w) != 0 {
		t.Errorf("a named revision warned: %v", w)
	}
	rb.Steps[1].Revision = 0
	w := rb.Warnings()
	if len(w) != 1 || w[0].Line != 9 || !strings.Contains(w[0].String(), `restart-then-undo.yaml:9: warning: step 2 "Roll back" (kube.undo) follows step 1 "Restart" (kube.restart)`) {
		t.Errorf("warnings %v", w)
	}
}

func TestBadRunbooksFailAtTheRightLine(t *testing.T) {
	_, err := runbooks.Load(os.DirFS("testdata"), "bad", runbooks.Options{Namespaces: []string{"prod", "architect-production"}})
	var ps runbooks.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		"bad/unknown-field.yaml:8: field command not found in a Step",
		`bad/shell.yaml:8: step "sneaky": kind "shell": runbooks cannot run shell commands`,
		`bad/bad-promql.yaml:7:41: step "broken": bad PromQL: unclosed left parenthesis`,
		`bad/missing-param.yaml:7: step "scale the thing" uses {{app}}, which is not a parameter`,
		`bad/unknown-kind.yaml:11: step "teleport": unknown kind "kube.teleport"`,
		`bad/outside-namespace.yaml:5: params.namespace "kube-system" is outside the allowed namespaces`,
		`bad/outside-namespace.yaml:10: step "restart elsewhere" targets namespace "default", outside the allowed namespaces`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lint output lacks %q:\n%s", want, got)
		}
	}
	if len(ps) != 7 {
		t.Errorf("%d problems, want 7:\n%s", len(ps), got)
	}
}

// TestEveryProblemOfAFileAtOnce: an unknown field does not hide the rest;
// PromQL errors point at the query's own line and column, in a block
// query and a quoted one (testdata/several.golden).
func TestEveryProblemOfAFileAtOnce(t *testing.T) {
	_, err := runbooks.Load(os.DirFS("testdata"), "several", runbooks.Options{Namespaces: []string{"prod"}})
	want, rerr := os.ReadFile("testdata/several.golden")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil || err.Error()+"\n" != string(want) {
		t.Errorf("lint says:\n%v\nwant:\n%s", err, want)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"name: Bad Name\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: manual, text: b}]", "use lower-case"},
		{"name: a\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: manual, text: b}]", "needs a title"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: []", "needs steps"},
		{"name: a\ntitle: t\nsteps: [{name: a, kind: manual, text: b}]", "match is empty"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: manual}]", "needs text"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: kube.switch, service: s}]", "needs a service and the selector"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: kube.scale, deployment: d, replicas: 5000}]", "between 0 and 1000"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: promql, query: up, thresholds: {warning: 5, critical: 1}}]", "is past critical"},
		{"name: a\ntitle: t\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: promql_range, query: up, range: forever}]", `range "forever"`},
		{"name: a\ntitle: [t\n", "did not find expected"},
		{"- just a list", "a list where a Runbook is expected"},
		{"name: a\ntitle: t\nurl: javascript:alert(1)\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: manual, text: b}]", `url "javascript:alert(1)": give an http(s) address`},
		{"name: a\ntitle: t\nurl: wiki/runbooks/a\nmatch: {alerts: [x]}\nsteps: [{name: a, kind: manual, text: b}]", "give an http(s) address"},
	}
	for _, tt := range tests {
		_, ps := runbooks.Parse("x.yaml", []byte(tt.yaml), runbooks.Options{})
		if !strings.Contains(ps.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want %q", tt.yaml, ps, tt.want)
		}
	}
}

func TestThresholdsAndParams(t *testing.T) {
	errs := &runbooks.Thresholds{Warning: 0.0005, Critical: 0.001}
	hits := &runbooks.Thresholds{Warning: 0.90, Critical: 0.85, Below: true}
	for _, tt := range []struct {
		t    *runbooks.Thresholds
		v    float64
		want string
	}{{errs, 0.0001, "✅"}, {errs, 0.0007, "⚠️"}, {errs, 0.002, "🔴"}, {hits, 0.97, "✅"}, {hits, 0.88, "⚠️"}, {hits, 0.5, "🔴"}, {nil, 1, ""}} {
		if got := tt.t.Judge(tt.v); got != tt.want {
			t.Errorf("Judge(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	out, missing := runbooks.Expand(`up{job="{{ job }}", pod="{{pod}}"}`, map[string]string{"job": "api"})
	if out != `up{job="api", pod="{{pod}}"}` || len(missing) != 1 || missing[0] != "pod" {
		t.Errorf("Expand = %q %v", out, missing)
	}
}

func TestMatch(t *testing.T) {
	set, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ alert, title, want string }{
		{"HighErrorRate", "", "high-error-rate"},
		{"highlatency", "", "high-latency"},
		{"", "Checkout error rate above 5%", "high-error-rate"},
		{"", "pods crashloop after deploy", "pod-crashes"},
		{"", "bad deploy of 3.2.0, roll back to blue", "blue-green-rollback"},
		{"DatabaseDown", "checkout errors", "database-down"}, // the alert name wins over words
		{"", "the office plant needs water", ""},
	} {
		rb := set.Match(tt.alert, nil, tt.title)
		got := ""
		if rb != nil {
			got = rb.Name
		}
		if got != tt.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tt.alert, tt.title, got, tt.want)
		}
	}
}

// TestOnlyRegularFilesAreRead: a FIFO (which would block start-up), a link
// to /dev/zero and a 2 MiB file are each a problem naming the file; the
// good runbook beside them still loads.
func TestOnlyRegularFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("../../runbooks/high-cpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "good.yaml"), good, 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml"))
	os.WriteFile(filepath.Join(dir, "huge.yaml"), bytes.Repeat([]byte("# x\n"), 1<<19), 0o644)
	set, err := runbooks.Load(os.DirFS(dir), ".", runbooks.Options{})
	var problems runbooks.Problems
	if !errors.As(err, &problems) || len(problems) != 3 {
		t.Fatalf("problems %v", err)
	}
	for _, want := range []string{"fifo.yaml:0: a FIFO, not a regular file", "zero.yaml:0: a device, not a regular file", "huge.yaml:0: 2097152 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lacks %q:\n%v", want, err)
		}
	}
	if set == nil || set.Get("high-cpu") == nil {
		t.Error("the good runbook did not load")
	}
}
