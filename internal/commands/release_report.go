package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// A release's report, and the recent changes incident cards and the
// postmortem show.

// WriteReleaseReport writes a release's report: what ran, who signed,
// every check, in Markdown or JSON.
func WriteReleaseReport(w io.Writer, rel *releases.Service, r *releases.Release, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md", "":
	default:
		return invalid("unknown format %q: use md or json", format)
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# Release %s: %s %s", r.Key(), mdText(r.Service), mdText(r.Version))
	p("")
	p("- **Strategy:** %s (procedure %s)", r.Strategy, r.Procedure)
	p("- **State:** %s", stateLabel(r.State))
	p("- **Started:** %s by %s", say.Stamp(r.StartedAt), mdText(r.StartedBy))
	if !r.EndedAt.IsZero() {
		p("- **Ended:** %s", say.Stamp(r.EndedAt))
	}
	if r.Incident != 0 {
		p("- **Incident:** %s (declared by the watch)", incidents.FormatID(r.Incident))
	}
	proc, err := rel.Procedure(r)
	if err == nil {
		p("")
		p("## Sign-offs")
		p("")
		for _, role := range proc.Signoffs {
			if m, ok := r.Signoffs[role]; ok {
				p("- [x] %s — %s at %s", role, mdText(m.By), say.Stamp(m.At))
			} else {
				p("- [ ] %s", role)
			}
		}
		p("")
		p("## Staging checklist")
		p("")
		for i, item := range proc.Checklist {
			if m, ok := r.Checklist[i]; ok {
				p("- [x] %s — %s", mdText(item), mdText(m.By))
			} else {
				p("- [ ] %s", mdText(item))
			}
		}
		p("")
		p("## Steps")
		p("")
		for i, s := range proc.Steps {
			p("- %s", mdText(stepLine(i+1, s, r.Steps[i+1], r.Waiting, false)))
		}
		for i, s := range proc.Rollback {
			if _, ran := r.Rollback[i+1]; ran {
				p("- %s", mdText(stepLine(i+1, s, r.Rollback[i+1], r.Waiting, true)))
			}
		}
	}
	if r.Watch != nil && len(r.Watch.Checks) > 0 {
		p("")
		p("## Watch after step %d", r.Watch.Step)
		p("")
		p("| at (UTC) | SLIs | breach |")
		p("|---|---|---|")
		for _, ch := range r.Watch.Checks {
			p("| %s | %s | %s |", ch.At.UTC().Format("15:04:05"), mdCell(ch.Summary), mdCell(ch.Breach))
		}
	}
	p("")
	p("## Timeline (UTC)")
	p("")
	for _, ev := range r.Events {
		p("- %s %s", ev.At.UTC().Format("2006-01-02 15:04:05"), mdText(ev.Text))
	}
	return nil
}

// mdText keeps outside text from being Markdown or HTML in a report.
func mdText(s string) string {
	s = strings.Map(func(c rune) rune { // no terminal or bidi controls in a file people open
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) {
			return ' '
		}
		return c
	}, s)
	r := strings.NewReplacer("\\", "\\\\", "<", "&lt;", ">", "&gt;", "&", "&amp;", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]", "|", "\\|", "\n", " ", "\r", " ")
	return r.Replace(s)
}

func mdCell(s string) string { return mdText(s) }

// RecentChanges are the releases of service started in the day before at
// (an incident's declaration), newest first, as one line each: "REL-3
// architect-api 3.2.0 (blue-green): switched by @dana 14m before the
// declaration — 👀 watching".
func RecentChanges(ctx context.Context, rel *releases.Service, service string, at time.Time) []string {
	if rel == nil || service == "" {
		return nil
	}
	// a release may be signed for days before it changes anything: the ones
	// of the week before, kept when they changed the cluster in the day before
	rs, err := rel.List(ctx, releases.Filter{Service: service, Since: at.Add(-7 * 24 * time.Hour)})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range rs {
		if r.StartedAt.After(at) {
			continue
		}
		what, when, by := "started", r.StartedAt, r.StartedBy
		if proc, err := rel.Procedure(r); err == nil {
			for n := len(proc.Steps); n >= 1; n-- {
				if run := r.Steps[n]; run.Done() && proc.Steps[n-1].Kind.Destructive() && !run.At.After(at) {
					what, when, by = changeVerb(proc.Steps[n-1].Kind), run.At, run.By
					break
				}
			}
		}
		if at.Sub(when) > 24*time.Hour {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s (%s): %s by %s %s before the declaration — %s", r.Key(), r.Service, r.Version, r.Strategy, what, by, say.Human(at.Sub(when)), stateLabel(r.State)))
		if len(out) == 3 {
			break
		}
	}
	return out
}

func changeVerb(k runbooks.Kind) string {
	return map[runbooks.Kind]string{runbooks.Switch: "switched", runbooks.Weight: "reweighted", runbooks.SetImage: "deployed",
		runbooks.Undo: "rolled back", runbooks.Scale: "scaled", runbooks.Restart: "restarted"}[k]
}

// changeFields are an incident card's "Recent change" lines.
func changeFields(ctx context.Context, env *Env, inc *incidents.Incident) []Field {
	if env == nil {
		return nil
	}
	var out []Field
	for _, line := range RecentChanges(ctx, env.Releases, inc.Service, inc.DeclaredAt) {
		out = append(out, Field{"Recent change", line})
	}
	return out
}
