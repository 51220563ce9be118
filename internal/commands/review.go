package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/postmortem"
	"github.com/sitrep-oncall/sitrep/internal/say"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// The review commands: action items, the postmortem, the SLO and stats.

func action(ctx context.Context, c *Call) (Reply, error) {
	text, owner := c.Rest, ""
	if n := len(c.Args); n > 1 {
		if u, err := parseUser(c.Args[n-1]); err == nil && (strings.HasPrefix(c.Args[n-1], "@") || strings.HasPrefix(c.Args[n-1], "<@")) {
			owner = u
			text = strings.TrimSpace(strings.TrimSuffix(c.Rest, c.Args[n-1]))
		}
	}
	inc, _, err := c.Svc.Change(ctx, c.ID, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.AddAction(text, owner, c.Actor, now)
	})
	if err != nil {
		return Reply{}, err
	}
	a := inc.Actions[len(inc.Actions)-1]
	return Reply{Text: fmt.Sprintf("✓ action item #%d on %s: %s%s", a.ID, inc.Key(), a.Text, ownerSuffix(a.Owner)), Incident: inc}, nil
}

func ownerSuffix(owner string) string {
	if owner == "" {
		return " (no owner yet)"
	}
	return " (owner " + owner + ")"
}

func actions(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) > 0 {
		if len(c.Args) != 2 || c.Args[0] != "done" {
			return Reply{}, invalid("to mark an action item done: actions done <n>")
		}
		n, err := strconv.Atoi(c.Args[1])
		if err != nil {
			return Reply{}, invalid("%q is not an action item number", c.Args[1])
		}
		inc, _, err := c.Svc.Change(ctx, c.ID, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			return inc.CompleteAction(n, c.Actor, now)
		})
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: fmt.Sprintf("✓ action item #%d of %s is done: %s", n, inc.Key(), inc.Actions[n-1].Text), Incident: inc}, nil
	}
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	if len(inc.Actions) == 0 {
		return Reply{Text: inc.Key() + " has no action items yet: action " + inc.Key() + " <text> [@owner]", Private: true}, nil
	}
	lines := make([]string, len(inc.Actions))
	for i, a := range inc.Actions {
		lines[i] = fmt.Sprintf("#%d [%s] %s%s", a.ID, a.State(), a.Text, ownerSuffix(a.Owner))
	}
	return Reply{Text: fmt.Sprintf("Action items of %s:", inc.Key()), Lines: lines, Private: true}, nil
}

// MaxChatPostmortem bounds a postmortem handed over in chat; longer ones are
// exported with `bot postmortem export`.
const MaxChatPostmortem = 8 << 20

// WritePostmortem writes an incident's postmortem ("md" when format is
// empty), with the error budget it consumed when Prometheus is configured:
// the chat command and `bot postmortem export` both go through it.
func WritePostmortem(ctx context.Context, w io.Writer, svc *incidents.Service, env *Env, inc *incidents.Incident, format string) error {
	if format == "" {
		format = "md"
	}
	opt := postmortem.Options{Format: format}
	if env != nil {
		opt.Changes = RecentChanges(ctx, env.Releases, inc.Service, inc.DeclaredAt)
	}
	if env != nil && env.SLO != nil && !inc.Open() {
		b := slo.IncidentBudget(ctx, env.SLO, env.SLOConfig, inc.DeclaredAt, inc.ResolvedAt)
		opt.Budget = &b
	}
	return postmortem.Write(ctx, w, svc, inc, opt)
}

func postmortemCmd(ctx context.Context, c *Call) (Reply, error) {
	format := "md"
	if len(c.Args) > 0 {
		format = strings.ToLower(c.Args[0])
	}
	if format == "link" {
		if len(c.Args) != 2 {
			return Reply{}, invalid("give the written postmortem's address: postmortem link https://…")
		}
		inc, err := c.Svc.LinkPostmortem(ctx, c.ID, c.Args[1], c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return changed(c, inc, "postmortem is at "+inc.PostmortemURL), nil
	}
	if format != "md" && format != "json" {
		return Reply{}, invalid("unknown format %q: use md or json", format)
	}
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	var buf bytes.Buffer
	if err := WritePostmortem(ctx, &buf, c.Svc, c.Env, inc, format); err != nil {
		return Reply{}, err
	}
	content := buf.Bytes()
	if len(content) > MaxChatPostmortem {
		return Reply{}, invalid("the postmortem of %s is %d MB; export it with: bot postmortem export %s -o file", inc.Key(), len(content)>>20, inc.Key())
	}
	inc, _, err = c.Svc.Change(ctx, c.ID, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.MarkPostmortem(format, c.Actor, now)
	})
	if err != nil {
		return Reply{}, err
	}
	return Reply{
		Text:     fmt.Sprintf("📝 Postmortem of %s (%s). Hold the review, then record it: phase %s review", inc.Key(), format, inc.Key()),
		File:     &File{Name: inc.Key() + "-postmortem." + format, Title: "Postmortem: " + inc.Key() + " · " + inc.Title, Content: content},
		Incident: inc,
	}, nil
}

func sloCmd(ctx context.Context, c *Call) (Reply, error) {
	if c.Env == nil || c.Env.SLO == nil {
		return Reply{}, invalid("no Prometheus configured: set PROMETHEUS_URL")
	}
	cfg := c.Env.SLOConfig
	r, err := slo.Measure(ctx, c.Env.SLO, cfg, c.Svc.Now())
	if err != nil {
		return Reply{}, incidents.Errorf(incidents.EInvalid, "the SLO could not be measured: %v", err)
	}
	state := "✅"
	switch {
	case r.ConsumedPercent >= 100:
		state = "🔴"
	case r.BurnRate > 1:
		state = "⚠️"
	}
	over := "over " + say.Human(r.Window)
	switch {
	case r.Partial(): // six minutes of data are not thirty days
		over = fmt.Sprintf("over the %s of data in the last %s", say.Human(r.Covered), say.Human(r.Window))
	case r.CoverageErr != "":
		over += " (how much of it has data is not known: " + r.CoverageErr + ")"
	}
	fields := []Field{
		{"Availability", fmt.Sprintf("%.3f%% %s (objective %.2f%%)", r.Availability*100, over, r.Target*100)},
		{"Error budget", budgetLine(r)},
		{"Burn rate", fmt.Sprintf("%.2f× over the last %s (1× spends the budget exactly over the window)", r.BurnRate, say.Human(r.BurnWindow))},
	}
	if r.LatencyErr != "" {
		fields = append(fields, Field{"Latency", "not measured: " + r.LatencyErr})
	} else {
		fields = append(fields,
			Field{"Latency P95", latency(r.P95, r.P95Target, cfg.P95Warning, cfg.P95Critical)},
			Field{"Latency P99", latency(r.P99, r.P99Target, cfg.P99Warning, cfg.P99Critical)})
	}
	return Reply{Text: state + " SLO", Fields: fields, Private: true}, nil
}

// budgetLine is the error budget used and left; overspent says so, and a
// window only partly covered says the figure is the failures so far.
func budgetLine(r slo.Report) string {
	var out string
	if r.RemainingPercent < 0 {
		out = fmt.Sprintf("%.1f%% used: overspent by %.1f minutes of a %.1f-minute budget", r.ConsumedPercent, -r.RemainingMinutes, r.BudgetMinutes)
	} else {
		out = fmt.Sprintf("%.1f%% used, %.1f%% left (%.1f of %.1f minutes)", r.ConsumedPercent, r.RemainingPercent, r.RemainingMinutes, r.BudgetMinutes)
	}
	if r.Partial() {
		out += fmt.Sprintf(" — the error ratio of the %s of data, held against the whole %s's budget", say.Human(r.Covered), say.Human(r.Window))
	}
	return out
}

// latency judges a percentile against its objective and, where they
// differ, says what the SLI table (the runbooks' and alerts' lines) makes
// of it: 225 ms misses a 100 ms objective and is only a warning there.
func latency(got, objective, warning, critical time.Duration) string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	if got <= objective {
		return fmt.Sprintf("✅ %s (objective < %s)", ms(got), ms(objective))
	}
	out := fmt.Sprintf("🔴 %s: misses the objective (< %s)", ms(got), ms(objective))
	switch {
	case warning <= 0 || critical <= 0:
	case got > critical:
		out += fmt.Sprintf(", and is 🔴 critical by the SLI table (> %s)", ms(critical))
	case got > warning:
		out += fmt.Sprintf("; the SLI table, which runbook steps and alerts judge by, calls it ⚠️ warning (> %s; critical > %s)", ms(warning), ms(critical))
	default:
		out += fmt.Sprintf("; the SLI table, which runbook steps and alerts judge by, calls it ✅ (warning from %s)", ms(warning))
	}
	return out
}

// parseWindow reads a period as people write one: 30d, 7d, 1d12h, 24h.
func parseWindow(s string) (time.Duration, error) {
	d, err := say.ParseDuration(s)
	if err != nil || d < time.Hour || d > 3650*24*time.Hour {
		return 0, invalid("%q is not a period: use e.g. 30d, 1d12h or 24h", s)
	}
	return d, nil
}

func stats(ctx context.Context, c *Call) (Reply, error) {
	window := 30 * 24 * time.Hour
	if len(c.Args) > 1 {
		return Reply{}, invalid("give one period, e.g. 30d")
	}
	if len(c.Args) == 1 {
		var err error
		if window, err = parseWindow(c.Args[0]); err != nil {
			return Reply{}, err
		}
	}
	s, err := Stats(ctx, c.Svc, c.Svc.Now().Add(-window))
	if err != nil {
		return Reply{}, err
	}
	lines := []string{strings.TrimRight(fmt.Sprintf("%-4s %5s  %-18s %-18s", "", "count", "MTTA median / p90", "MTTR median / p90"), " ")}
	for _, sev := range incidents.Severities {
		st := s.BySeverity[sev]
		lines = append(lines, strings.TrimRight(fmt.Sprintf("%-4s %5d  %-18s %-18s", sev, st.Count, pair(st.Ack), pair(st.Resolve)), " "))
	}
	if len(s.Runbooks) == 0 {
		lines = append(lines, "Runbooks used: none yet")
	}
	for _, r := range s.Runbooks {
		lines = append(lines, fmt.Sprintf("Runbook %s: %s run", r.Name, say.Count(r.Steps, "step", "steps")))
	}
	return Reply{Text: fmt.Sprintf("%s in the last %s:", say.Count(s.Total, "incident", "incidents"), say.Human(window)), Lines: lines, Private: true}, nil
}

func pair(d []time.Duration) string {
	if len(d) == 0 {
		return "—"
	}
	return say.Human(quantile(d, 0.5)) + " / " + say.Human(quantile(d, 0.9))
}

// quantile is the nearest-rank quantile of d (sorted in place).
func quantile(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	i := int(q*float64(len(d)) + 0.999999) // ceil
	return d[min(max(i, 1), len(d))-1]
}

// Summary is the stats of the incidents declared since a time.
type Summary struct {
	Total      int
	BySeverity map[incidents.Severity]*SeverityStats
	Runbooks   []RunbookUse
}

// SeverityStats holds one severity's counts and durations, as /metrics
// has them: Count by the severity at declaration; Ack, from the declaration
// to the first acknowledgement (reopening does not reset it), under the
// severity at that moment; Resolve, from the declaration to each
// resolution, under the severity at that moment.
type SeverityStats struct {
	Count        int
	Ack, Resolve []time.Duration
}

// RunbookUse counts the steps run of one runbook.
type RunbookUse struct {
	Name  string
	Steps int
}

// Stats summarises the incidents declared since `since`.
func Stats(ctx context.Context, svc *incidents.Service, since time.Time) (Summary, error) {
	all, err := svc.List(ctx, incidents.Filter{All: true, Since: since}) // the window only, through the store's index
	if err != nil {
		return Summary{}, err
	}
	s := Summary{BySeverity: map[incidents.Severity]*SeverityStats{}}
	for _, sev := range incidents.Severities {
		s.BySeverity[sev] = &SeverityStats{}
	}
	runbooks := map[string]int{}
	for _, inc := range all {
		if inc.Drill {
			continue // a game day is not in the figures
		}
		if inc.DeclaredAt.Before(since) {
			continue
		}
		s.Total++
		// As /metrics counts them: declared under the first severity, the
		// first acknowledgement and each resolution under the severity of
		// that moment, all from the declaration.
		sev, acked := inc.Severity, false
		err := svc.Timeline(ctx, inc.ID, func(ev incidents.Event) error {
			switch ev.Kind {
			case incidents.EventDeclared, incidents.EventSeverityChanged:
				if v, err := incidents.ParseSeverity(ev.To); err == nil {
					sev = v
				}
				if ev.Kind == incidents.EventDeclared {
					s.BySeverity[sev].Count++
				}
			case incidents.EventAcknowledged:
				if !acked {
					acked = true
					s.BySeverity[sev].Ack = append(s.BySeverity[sev].Ack, ev.At.Sub(inc.DeclaredAt))
				}
			case incidents.EventResolved:
				if !inc.MergedAt.Equal(ev.At) || inc.MergedInto == 0 { // a duplicate's merge is not a time to resolve
					s.BySeverity[sev].Resolve = append(s.BySeverity[sev].Resolve, ev.At.Sub(inc.DeclaredAt))
				}
			case incidents.EventRunbookStep:
				runbooks[ev.Fields["runbook"]]++
			}
			return nil
		})
		if err != nil {
			return Summary{}, err
		}
	}
	for name, n := range runbooks {
		s.Runbooks = append(s.Runbooks, RunbookUse{name, n})
	}
	slices.SortFunc(s.Runbooks, func(a, b RunbookUse) int { return b.Steps - a.Steps })
	return s, nil
}
