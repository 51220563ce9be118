package runbooks

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// read runs a step that changes nothing.
func (r *Runner) read(ctx context.Context, s Step) Result {
	failed := func(err error) Result {
		return Result{Outcome: Failed, Summary: fmt.Sprintf("%s failed: %v", s.Name, err)}
	}
	if s.Kind.Kube() && r.cluster == nil {
		return Result{Outcome: Failed, Summary: "no Kubernetes cluster is configured (KUBECONFIG, or run in a cluster)"}
	}
	if (s.Kind == PromQL || s.Kind == PromQLRange) && r.metrics == nil {
		return Result{Outcome: Failed, Summary: "no Prometheus is configured (PROMETHEUS_URL)"}
	}
	switch s.Kind {
	case Manual:
		return Result{Outcome: OK, Summary: "to do by hand: " + s.Text}
	case PromQL:
		samples, err := r.metrics.Instant(ctx, s.Query, r.now())
		if err != nil {
			return failed(err)
		}
		res := promTable(s, samples)
		if s.Gate && res.Mark != "✅" { // no data is no pass: up{job="…-green"} matching nothing is not up
			res.Outcome, res.Summary = Failed, "the gate has not passed: "+res.Summary
		}
		return res
	case WaitRollout:
		rel, ok := r.cluster.(Releaser)
		if !ok {
			return failed(fmt.Errorf("this cluster client cannot read rollouts"))
		}
		st, err := rel.Rollout(ctx, s.Namespace, s.Deployment)
		switch {
		case err != nil:
			return failed(err)
		case st.Failed != "":
			return Result{Outcome: Failed, Summary: st.Failed}
		case st.Done:
			return Result{Outcome: OK, Summary: fmt.Sprintf("%s/%s %s (%s)", s.Namespace, s.Deployment, st.Summary, strings.Join(st.Images, ", "))}
		}
		return Result{Outcome: Waiting, Summary: fmt.Sprintf("%s/%s: %s", s.Namespace, s.Deployment, st.Summary)}
	case PromQLRange:
		d, _ := parseRange(s.Range)
		end := r.now()
		png, summary, err := r.metrics.Graph(ctx, GraphSpec{Title: s.Name, Query: s.Query, Unit: s.Unit, Start: end.Add(-d), End: end, Thresholds: s.Thresholds})
		if err != nil {
			return failed(err)
		}
		return Result{Outcome: OK, Summary: summary, Image: png}
	case RolloutHistory:
		h, err := r.cluster.RolloutHistory(ctx, s.Namespace, s.Deployment)
		if err != nil {
			return failed(err)
		}
		lines := make([]string, 0, len(h))
		current := ""
		for _, rev := range h {
			lines = append(lines, r.revisionLine(rev))
			if rev.Current {
				current = fmt.Sprintf("; current: revision %d, %s", rev.Number, strings.Join(rev.Images, ", "))
			}
		}
		return Result{Outcome: OK, Summary: fmt.Sprintf("%d revisions of %s/%s, newest first%s", len(h), s.Namespace, s.Deployment, current), Lines: lines}
	case Events:
		limit := s.Tail
		if limit <= 0 {
			limit = 20
		}
		evs, err := r.cluster.Events(ctx, s.Namespace, limit)
		if err != nil {
			return failed(err)
		}
		var lines []string
		for _, e := range evs {
			lines = append(lines, fmt.Sprintf("%s  %-7s %-18s %s: %s", e.At.UTC().Format("15:04:05"), e.Type, e.Reason, e.Object, e.Message))
		}
		return Result{Outcome: OK, Summary: fmt.Sprintf("%d recent events in %s", len(evs), s.Namespace), Lines: lines}
	case PodStatus:
		pods, err := r.cluster.Pods(ctx, s.Namespace, s.Deployment, s.Pod)
		if err != nil {
			return failed(err)
		}
		var lines []string
		oom, restarts := 0, int32(0)
		for _, p := range pods {
			restarts += p.Restarts
			if strings.Contains(p.LastState, "OOMKilled") {
				oom++
			}
			lines = append(lines, fmt.Sprintf("%s  %s ready=%v restarts=%d last=%s  limits: %s", p.Name, p.Phase, p.Ready, p.Restarts, orDash(p.LastState), p.Limits))
		}
		summary := fmt.Sprintf("%d pods, %d restarts", len(pods), restarts)
		if oom > 0 {
			summary += fmt.Sprintf(", %d OOMKilled: raise the memory limit or roll back", oom)
		}
		return Result{Outcome: OK, Summary: summary, Lines: lines}
	case Logs:
		q := LogQuery{Namespace: s.Namespace, Deployment: s.Deployment, Pod: s.Pod, Container: s.Container, Previous: s.Previous, Tail: cmp.Or(s.Tail, 100), Contains: s.Contains}
		want := q.Tail
		if q.Contains != "" { // kubectl logs | grep ERROR | tail -50: look further back for them
			q.Tail = min(max(want*20, 1000), maxLogScan)
		}
		logs, err := r.cluster.Logs(ctx, q)
		if err != nil {
			return failed(err)
		}
		return logResult(logs, q, want)
	}
	return Result{Outcome: Refused, Summary: fmt.Sprintf("unknown step kind %q", s.Kind)}
}

// revisionLine is one revision as the history shows it: "→" marks the
// current one; then its images, age and change-cause.
func (r *Runner) revisionLine(rev Revision) string {
	mark, cause := "  ", rev.ChangeCause
	if rev.Current {
		mark = "→ "
	}
	if cause == "" {
		cause = "(no change-cause)"
	}
	line := fmt.Sprintf("%srevision %d  %s  %s ago  %s", mark, rev.Number, strings.Join(rev.Images, ", "), incidents.Human(r.now().Sub(rev.Created)), cause)
	if rev.Current {
		line += "  (current)"
	}
	return line
}

// RevisionLabel names a revision for a choice: "revision 3 · api:3.1.0 · 2h ago".
func (r *Runner) RevisionLabel(rev Revision) string {
	return fmt.Sprintf("revision %d · %s · %s ago", rev.Number, strings.Join(rev.Images, ", "), incidents.Human(r.now().Sub(rev.Created)))
}

// maxLogScan is how far back a logs step with contains looks, per pod.
const maxLogScan = 5000

// logResult keeps each pod's last want lines (containing q.Contains, when
// set), under a line naming the pod, and says what it found in words: how
// many lines of which pods, or why there are none — "no logs yet" for a
// pod that has not started, what the API server said otherwise.
func logResult(logs []PodLog, q LogQuery, want int) Result {
	if len(logs) == 0 {
		return Result{Outcome: OK, Summary: fmt.Sprintf("no pods to read logs from (deployment %s/%s has none)", q.Namespace, q.Deployment)}
	}
	var lines, pods []string
	var reasons []string // distinct, in order
	without := map[string][]string{}
	total, read := 0, 0
	revisions := map[int64]bool{}
	for _, p := range logs {
		revisions[p.Revision] = true
		pods = append(pods, p.Pod)
		if p.NoLogs != "" {
			why := noLogs(p)
			lines = append(lines, fmt.Sprintf("── %s%s: %s", p.Pod, revisionNote(p.Revision), why))
			if without[why] == nil {
				reasons = append(reasons, why)
			}
			without[why] = append(without[why], p.Pod)
			continue
		}
		read++
		var kept []string
		for _, l := range p.Lines {
			if q.Contains == "" || strings.Contains(l, q.Contains) {
				kept = append(kept, l)
			}
		}
		kept = kept[max(0, len(kept)-want):]
		total += len(kept)
		lines = append(lines, fmt.Sprintf("── %s%s: %s", p.Pod, revisionNote(p.Revision), lineCount(len(kept), q.Contains)))
		lines = append(lines, kept...)
	}
	note := "" // the revision, when the pods share one
	if len(revisions) == 1 {
		note = revisionNote(logs[0].Revision)
	}
	of := fmt.Sprintf("%s%s (%s)", say.Count(len(logs), "pod", "pods"), note, strings.Join(pods, ", "))
	var summary string
	switch {
	case read == 0 && len(reasons) == 1:
		summary = fmt.Sprintf("%s: %s", reasons[0], of)
	case read == 0:
		summary = "no log lines from " + of
	case total == 0 && q.Contains != "":
		summary = fmt.Sprintf("no lines containing %q in the last %d of %s", q.Contains, q.Tail, of)
	default:
		summary = lineCount(total, q.Contains) + " from " + of + ", newest revision first"
	}
	if read > 0 || len(reasons) > 1 {
		for _, why := range reasons {
			summary += fmt.Sprintf("; %s: %s", why, strings.Join(without[why], ", "))
		}
	}
	return Result{Outcome: OK, Summary: summary, Lines: lines}
}

// noLogs words why a pod has no lines: not started yet, or what the API
// server answered.
func noLogs(p PodLog) string {
	if p.Phase == "Pending" {
		return "no logs yet (" + p.NoLogs + ")"
	}
	return "could not read logs (" + p.NoLogs + ")"
}

func revisionNote(rev int64) string {
	if rev == 0 {
		return ""
	}
	return fmt.Sprintf(" of revision %d", rev)
}

func lineCount(n int, contains string) string {
	s := say.Count(n, "line", "lines")
	if contains != "" {
		s += fmt.Sprintf(" containing %q", contains)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parseRange(s string) (time.Duration, error) {
	if s == "" {
		return time.Hour, nil
	}
	if strings.HasSuffix(s, "d") {
		d, err := time.ParseDuration(strings.TrimSuffix(s, "d") + "h")
		return d * 24, err
	}
	return time.ParseDuration(s)
}

// promTable shows an instant query's series, each judged by the thresholds.
func promTable(s Step, samples []Sample) Result {
	if len(samples) == 0 {
		return Result{Outcome: OK, Summary: "no data: the query matched no series"}
	}
	samples = slices.DeleteFunc(slices.Clone(samples), func(smp Sample) bool { return math.IsNaN(smp.Value) })
	if len(samples) == 0 { // 0/0: a ratio with no requests to divide by
		return Result{Outcome: OK, Summary: "no value: the query gives NaN (a ratio over no requests?)"}
	}
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Value > samples[j].Value })
	worst := ""
	var lines []string
	for _, smp := range samples[:min(len(samples), 20)] {
		mark := s.Thresholds.Judge(smp.Value)
		if rank(mark) > rank(worst) {
			worst = mark
		}
		lines = append(lines, strings.TrimSpace(fmt.Sprintf("%s %s  %s", mark, formatValue(smp.Value, s.Unit), labelString(smp.Labels))))
	}
	summary := fmt.Sprintf("%d series; highest %s", len(samples), formatValue(samples[0].Value, s.Unit))
	if worst != "" { // the lines it was judged by, in the query's unit
		t, cmp := s.Thresholds, ">"
		if t.Below {
			cmp = "<"
		}
		summary = fmt.Sprintf("%s %s (warning %s %s, critical %s %s)", worst, summary, cmp, formatValue(t.Warning, s.Unit), cmp, formatValue(t.Critical, s.Unit))
	}
	return Result{Outcome: OK, Summary: summary, Lines: lines, Mark: worst}
}

func rank(mark string) int { return map[string]int{"✅": 1, "⚠️": 2, "🔴": 3}[mark] }

func formatValue(v float64, unit string) string {
	switch unit {
	case "ratio":
		return fmt.Sprintf("%.2f%%", v*100)
	case "seconds":
		return fmt.Sprintf("%.0f ms", v*1000)
	case "rate":
		return fmt.Sprintf("%.4g/s", v)
	}
	return fmt.Sprintf("%.4g", v)
}

func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+l[k])
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// FormatValue writes a query's value in its unit (ratio as a percentage,
// seconds as milliseconds), as steps show it.
func FormatValue(v float64, unit string) string { return formatValue(v, unit) }
