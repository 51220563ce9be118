package runbooks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
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
		return promTable(s, samples)
	case PromQLRange:
		d, _ := parseRange(s.Range)
		end := r.now()
		png, summary, err := r.metrics.Graph(ctx, s.Name, s.Query, s.Unit, end.Add(-d), end)
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
		text, err := r.cluster.Logs(ctx, LogQuery{Namespace: s.Namespace, Deployment: s.Deployment, Pod: s.Pod, Container: s.Container, Previous: s.Previous, Tail: s.Tail, Contains: s.Contains})
		if err != nil {
			return failed(err)
		}
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		return Result{Outcome: OK, Summary: fmt.Sprintf("%d log lines", len(lines)), Lines: lines}
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
	if worst != "" {
		summary = worst + " " + summary
	}
	return Result{Outcome: OK, Summary: summary, Lines: lines}
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
