// Package postmortem writes an incident's blameless postmortem, in Markdown
// or JSON, from the incident and its full timeline. The timeline is
// streamed twice (once to gather tagged notes, once to write it), so an
// incident of any length exports in bounded memory.
package postmortem

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Source streams an incident's timeline; *incidents.Service is one.
type Source interface {
	Timeline(ctx context.Context, id int64, fn func(incidents.Event) error) error
}

// Budget is the error budget an incident consumed, when Prometheus knows it.
type Budget struct {
	Target          float64 // e.g. 0.9995
	Window          time.Duration
	BudgetMinutes   float64 // the window's whole budget, in minutes of full outage
	ConsumedPercent float64 // of the window's budget, by this incident
	FailedRequests  float64
	Error           string // why it could not be computed
}

// Options shape an export.
type Options struct {
	Format string // "md" (default) or "json"
	Budget *Budget
}

// Tags that sort notes into the postmortem's sections: "note #cause the pool
// was too small".
var tags = map[string]string{"impact": "impact", "cause": "root_cause", "rootcause": "root_cause", "factor": "contributing_factors",
	"contributing": "contributing_factors", "lesson": "lessons", "lessons": "lessons"}

var tagRE = regexp.MustCompile(`(?i)(^|\s)#(impact|cause|rootcause|factor|contributing|lessons?)\b`)

// maxTagged bounds each tagged section (the full timeline has them all).
const maxTagged = 200

// gathered is what the first pass over the timeline collects.
type gathered struct {
	sections  map[string][]string
	detection []string // the first alert events
	steps     []incidents.Event
	events    int
}

func gather(ctx context.Context, src Source, id int64) (*gathered, error) {
	g := &gathered{sections: map[string][]string{}}
	err := src.Timeline(ctx, id, func(ev incidents.Event) error {
		g.events++
		switch ev.Kind {
		case incidents.EventNote:
			for _, m := range tagRE.FindAllStringSubmatch(ev.Message, -1) {
				sec := tags[strings.ToLower(m[2])]
				if len(g.sections[sec]) < maxTagged {
					text := strings.TrimSpace(tagRE.ReplaceAllString(ev.Message, " "))
					g.sections[sec] = append(g.sections[sec], fmt.Sprintf("%s (%s, %s)", text, ev.Actor, ev.At.UTC().Format("15:04 UTC")))
				}
			}
		case incidents.EventAlert:
			if len(g.detection) < 5 && ev.To == "firing" {
				line := ev.Message
				if u := ev.Fields["url"]; u != "" {
					line += " — query: " + u
				}
				g.detection = append(g.detection, line)
			}
		case "runbook_step":
			if len(g.steps) < maxTagged {
				g.steps = append(g.steps, ev)
			}
		}
		return nil
	})
	return g, err
}

// Write exports the postmortem of inc.
func Write(ctx context.Context, w io.Writer, src Source, inc *incidents.Incident, opt Options) error {
	g, err := gather(ctx, src, inc.ID)
	if err != nil {
		return fmt.Errorf("postmortem of %s: %w", inc.Key(), err)
	}
	switch opt.Format {
	case "", "md", "markdown":
		return writeMarkdown(ctx, w, src, inc, g, opt)
	case "json":
		return writeJSON(ctx, w, src, inc, g, opt)
	}
	return incidents.Errorf(incidents.EInvalid, "unknown postmortem format %q: use md or json", opt.Format)
}

// Times are the response measures of an incident.
type Times struct {
	Acknowledge, Mitigate, Resolve time.Duration
	AckedAt, MitigatedAt           time.Time
}

// Measure computes time to acknowledge, to mitigate (the service restored:
// the Verify phase, reached by status monitoring or by resolving) and to resolve.
func Measure(inc *incidents.Incident) Times {
	var t Times
	if inc.Acked() {
		t.AckedAt, t.Acknowledge = inc.AckedAt, inc.AckedAt.Sub(inc.AckClock)
	}
	if at, ok := inc.Reached(incidents.Verify); ok {
		t.MitigatedAt, t.Mitigate = at, at.Sub(inc.DeclaredAt)
	}
	if !inc.Open() {
		t.Resolve = inc.ResolvedAt.Sub(inc.DeclaredAt)
	}
	return t
}

// detectionSource says who or what noticed.
func detectionSource(inc *incidents.Incident) string {
	switch inc.Source {
	case incidents.SourcePagerDuty:
		s := "PagerDuty incident " + inc.Links["pagerduty"]
		if u := inc.Links["pagerduty_url"]; u != "" {
			s += " (" + u + ")"
		}
		return s
	case incidents.SourceAlertmanager:
		return "Alertmanager, alert group " + inc.Links["alertmanager"]
	}
	return "a person: " + inc.DeclaredBy + " (" + inc.Source + ")"
}
