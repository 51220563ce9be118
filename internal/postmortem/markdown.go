package postmortem

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// cell makes text safe inside a Markdown table cell.
// cell makes outside text one line of Markdown that renders as the text
// it is: no table cell ends early (|), no raw HTML (<img onerror=…>), no
// image or link a note wrote (![pixel](http://…), [ok](javascript:…)) —
// postmortems are pasted into wikis and viewers that render all of them.
// A "<" is escaped only where Markdown would read a tag or an autolink
// (<img, </b, <!--, <?, <http:): a Slack mention (<@U2>) stays as it is.
func cell(s string) string {
	s = mdEscaper.Replace(strings.Join(strings.Fields(s), " "))
	return tagOpen.ReplaceAllString(s, "&lt;$1")
}

var (
	mdEscaper = strings.NewReplacer("|", `\|`, "[", `\[`, "]", `\]`)
	tagOpen   = regexp.MustCompile(`<([A-Za-z/!?])`)
)

func mdRow(w *bufio.Writer, _ bool, ev incidents.Event) error {
	what := say.Describe(ev)
	if link := ev.Fields["permalink"]; link != "" {
		what += " (" + link + ")"
	}
	w.WriteString("| ")
	w.WriteString(ev.At.UTC().Format("2006-01-02 15:04:05"))
	w.WriteString(" | ")
	w.WriteString(cell(ev.Actor))
	w.WriteString(" | ")
	w.WriteString(ev.Source)
	w.WriteString(" | ")
	w.WriteString(cell(what))
	_, err := w.WriteString(" |\n")
	return err
}

func mdHead(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	t := Measure(inc)
	sev := inc.Severity

	p("# Postmortem: %s · %s\n\n", inc.Key(), cell(inc.Name()))
	if inc.Drill {
		p("> %s: a game-day exercise, not an incident. It is left out of stats and metrics and was never sent to PagerDuty.\n\n", incidents.DrillMark)
	}
	p("_Blameless: this describes what happened and how the system and our process let it happen, not who to blame._\n\n")
	p("| | |\n|---|---|\n")
	p("| Severity | %s — %s (respond within %s). Why: %s |\n", sev.Label(), sev.Impact(), say.Human(sev.ResponseTime()), cell(inc.SeverityReason))
	p("| Status | %s |\n", inc.Status.Label())
	p("| Declared | %s by %s (%s) |\n", say.Stamp(inc.DeclaredAt), cell(inc.DeclaredBy), inc.Source)
	if !inc.Open() {
		p("| Resolved | %s |\n| Duration | %s |\n", say.Stamp(inc.ResolvedAt), say.Human(t.Resolve))
	}
	if inc.Service != "" {
		p("| Service | %s |\n", cell(inc.Service))
	}
	for _, h := range inc.Roles {
		p("| %s | %s |\n", h.Role.Title(), cell(h.User))
	}
	if inc.ChannelName != "" {
		p("| War room | #%s |\n", inc.ChannelName)
	}
	if inc.Private {
		p("| Visibility | %s private: only the people in it could see it |\n", incidents.PrivateMark)
	}
	if inc.MergedInto != 0 {
		p("| Merged into | %s (this one was a duplicate) |\n", incidents.FormatID(inc.MergedInto))
	}
	if len(inc.Duplicates) > 0 {
		p("| Duplicates | %s (their events are in the timeline, marked with their id) |\n", ids(inc.Duplicates))
	}
	if len(inc.Related) > 0 {
		p("| Related | %s |\n", ids(inc.Related))
	}
	if inc.PostmortemURL != "" {
		p("| Written postmortem | %s |\n", cell(inc.PostmortemURL))
	}

	p("\n## Detection\n\n- Detected by %s.\n", cell(detectionSource(inc)))
	for _, d := range g.detection {
		p("- Alert: %s\n", cell(d))
	}
	if len(opt.Changes) > 0 {
		p("\n## Recent changes\n\nReleases of the service in the day before it was declared:\n\n")
		for _, c := range opt.Changes {
			p("- %s\n", cell(c))
		}
	}

	p("\n## Response times\n\n| Measure | Time | Detail |\n|---|---|---|\n")
	if !t.AckedAt.IsZero() {
		verdict := "within the response time"
		if late := t.Acknowledge - sev.ResponseTime(); late > 0 {
			verdict = say.Human(late) + " over the response time"
		}
		p("| Time to acknowledge | %s | by %s at %s, %s (%s) |\n", say.Human(t.Acknowledge), cell(t.AckedBy), say.Clock(t.AckedAt), verdict, say.Human(sev.ResponseTime()))
	} else {
		p("| Time to acknowledge | — | not acknowledged |\n")
	}
	if !t.MitigatedAt.IsZero() {
		p("| Time to mitigate | %s | service restored (Verify) at %s |\n", say.Human(t.Mitigate), say.Clock(t.MitigatedAt))
	} else {
		p("| Time to mitigate | — | not yet |\n")
	}
	if !inc.Open() {
		p("| Time to resolve | %s | resolved at %s |\n", say.Human(t.Resolve), say.Clock(inc.ResolvedAt))
	} else {
		p("| Time to resolve | — | still open |\n")
	}

	p("\n## Phases of the response\n\n| Phase | Reached (UTC) |\n|---|---|\n")
	for i, ph := range incidents.Phases {
		at := "—"
		if when, ok := inc.Reached(ph); ok {
			at = when.UTC().Format("2006-01-02 15:04:05")
		}
		p("| %d. %s | %s |\n", i+1, ph.Title(), at)
	}

	p("\n## Impact\n\n")
	if inc.Description != "" {
		p("- As declared: %s\n", cell(inc.Description))
	}
	list(p, g.sections["impact"], "")
	if b := opt.Budget; b != nil {
		if b.Error != "" {
			p("- Error budget: not computed (%s)\n", cell(b.Error))
		} else {
			p("- Error budget: this incident consumed %.1f%% of the %s budget (SLO %.2f%%, %.0f minutes of full outage); %.0f failed requests.\n",
				b.ConsumedPercent, say.Human(b.Window), b.Target*100, b.BudgetMinutes, b.FailedRequests)
		}
	}
	if inc.Description == "" && len(g.sections["impact"]) == 0 && opt.Budget == nil {
		p("_No impact recorded: add notes tagged #impact._\n")
	}

	p("\n## Timeline\n\nAll %s, in UTC.\n\n| Time | Who | Source | What |\n|---|---|---|---|\n", say.Count(g.events, "event", "events"))
	return nil
}

func mdTail(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n## Runbook steps run\n\n")
	if len(g.steps) == 0 {
		p("_No runbook steps were run._\n")
	}
	for _, s := range g.steps {
		p("- %s %s: %s\n", s.At.UTC().Format("15:04:05"), cell(s.Actor), cell(s.Message))
	}
	p("\n## Contributing factors\n\n")
	list(p, g.sections["contributing_factors"], "_None recorded: add notes tagged #factor._\n")
	p("\n## Root cause\n\n")
	list(p, g.sections["root_cause"], "_Not recorded yet: add a note tagged #cause._\n")
	p("\n## Action items\n\n")
	if len(inc.Actions) == 0 {
		p("_None yet: add them with `action <text> [@owner]`._\n")
	} else {
		p("| # | Action | Owner | State |\n|---|---|---|---|\n")
		for _, a := range inc.Actions {
			p("| %d | %s | %s | %s |\n", a.ID, cell(a.Text), cell(orDash(a.Owner)), a.State())
		}
	}
	p("\n## Lessons learned\n\n")
	list(p, g.sections["lessons"], "_None recorded: add notes tagged #lesson._\n")
	return nil
}

func ids(list []int64) string {
	out := make([]string, len(list))
	for i, id := range list {
		out[i] = incidents.FormatID(id)
	}
	return strings.Join(out, ", ")
}

func list(p func(string, ...any), items []string, empty string) {
	if len(items) == 0 {
		p("%s", empty)
	}
	for _, it := range items {
		p("- %s\n", cell(it))
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
