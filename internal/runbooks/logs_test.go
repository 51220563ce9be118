package runbooks_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// logCluster answers a logs step with fixed pod logs and records the query.
type logCluster struct {
	runbooks.Cluster
	logs []runbooks.PodLog
	q    runbooks.LogQuery
}

func (c *logCluster) Logs(_ context.Context, q runbooks.LogQuery) ([]runbooks.PodLog, error) {
	c.q = q
	return c.logs, nil
}

// TestLogsSayWhatTheyShow: contains keeps only the lines containing it
// (looking further back for them), each pod's lines under its name and
// revision; pods with nothing to read say why instead of counting lines.
func TestLogsSayWhatTheyShow(t *testing.T) {
	step := func(contains string, tail int) *runbooks.Runbook {
		return &runbooks.Runbook{Name: "logs", Params: map[string]string{"namespace": "prod"}, Steps: []runbooks.Step{
			{Name: "Logs", Kind: runbooks.Logs, Namespace: "prod", Deployment: "api", Contains: contains, Tail: tail}}}
	}
	running := []runbooks.PodLog{
		{Pod: "api-new-1", Revision: 5, Phase: "Running", Lines: []string{"GET / 200", "ERROR db timeout", "GET / 200", "ERROR db timeout again"}},
		{Pod: "api-new-2", Revision: 5, Phase: "Running", Lines: []string{"GET / 200"}},
	}
	run := func(c *logCluster, rb *runbooks.Runbook) runbooks.Result {
		return runbooks.NewRunner(c, nil, runbooks.Guardrails{}).Run(context.Background(), runbooks.Request{Runbook: rb, Step: 1})
	}

	c := &logCluster{logs: running}
	res := run(c, step("ERROR", 50))
	if c.q.Tail != 1000 {
		t.Errorf("with contains, asked for the last %d lines; want 1000, to find 50 matches", c.q.Tail)
	}
	if res.Summary != `2 lines containing "ERROR" from 2 pods of revision 5 (api-new-1, api-new-2), newest revision first` {
		t.Errorf("summary %q", res.Summary)
	}
	want := []string{`── api-new-1 of revision 5: 2 lines containing "ERROR"`, "ERROR db timeout", "ERROR db timeout again", `── api-new-2 of revision 5: 0 lines containing "ERROR"`}
	if strings.Join(res.Lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s", strings.Join(res.Lines, "\n"))
	}
	for _, l := range res.Lines {
		if !strings.HasPrefix(l, "──") && !strings.Contains(l, "ERROR") {
			t.Errorf("a line without ERROR: %q", l)
		}
	}

	// Only the last tail matches are kept.
	if res := run(&logCluster{logs: running}, step("ERROR", 1)); len(res.Lines) != 3 || res.Lines[1] != "ERROR db timeout again" {
		t.Errorf("tail 1: %q", res.Lines)
	}
	// Nothing matches.
	if res := run(&logCluster{logs: running}, step("panic", 50)); res.Summary != `no lines containing "panic" in the last 1000 of 2 pods of revision 5 (api-new-1, api-new-2)` {
		t.Errorf("no match: %q", res.Summary)
	}
	// Pods that never ran: no count of lines, the reason.
	pending := []runbooks.PodLog{{Pod: "api-1", Revision: 2, Phase: "Pending", NoLogs: "Pending, not scheduled to a node yet"},
		{Pod: "api-2", Revision: 2, Phase: "Pending", NoLogs: "Pending, not scheduled to a node yet"}}
	res = run(&logCluster{logs: pending}, step("", 100))
	if res.Summary != "no logs yet (Pending, not scheduled to a node yet): 2 pods of revision 2 (api-1, api-2)" || strings.Contains(res.Summary, "line") {
		t.Errorf("pending: %q", res.Summary)
	}
	// One running, one not.
	res = run(&logCluster{logs: append(running[:1:1], pending[0])}, step("", 100))
	if res.Summary != "4 lines from 2 pods (api-new-1, api-1), newest revision first; no logs yet (Pending, not scheduled to a node yet): api-1" {
		t.Errorf("mixed: %q", res.Summary)
	}
	// Running pods whose logs cannot be read say what the API server said,
	// once for all of them.
	forbidden := []runbooks.PodLog{{Pod: "api-1", Phase: "Running", NoLogs: `pods "api-1" is forbidden: cannot get resource "pods/log"`},
		{Pod: "api-2", Phase: "Running", NoLogs: `previous terminated container "api" not found`},
		{Pod: "api-3", Phase: "Running", NoLogs: `previous terminated container "api" not found`}}
	res = run(&logCluster{logs: forbidden}, step("", 100))
	if res.Summary != `no log lines from 3 pods (api-1, api-2, api-3); could not read logs (pods "api-1" is forbidden: cannot get resource "pods/log"): api-1; could not read logs (previous terminated container "api" not found): api-2, api-3` {
		t.Errorf("unreadable: %q", res.Summary)
	}
}

// TestANaNReadingSaysSo: an error ratio over no requests is 0/0; the step
// says so rather than "NaN%".
func TestANaNReadingSaysSo(t *testing.T) {
	rb := &runbooks.Runbook{Name: "ratio", Steps: []runbooks.Step{{Name: "Error ratio", Kind: runbooks.PromQL, Query: "x", Unit: "ratio",
		Thresholds: &runbooks.Thresholds{Warning: 0.0005, Critical: 0.001}}}}
	res := runbooks.NewRunner(nil, fakeMetrics{samples: []runbooks.Sample{{Value: math.NaN()}}}, runbooks.Guardrails{}).Run(context.Background(), runbooks.Request{Runbook: rb, Step: 1})
	if res.Summary != "no value: the query gives NaN (a ratio over no requests?)" {
		t.Errorf("%+v", res)
	}
}
