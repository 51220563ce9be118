// Package postmortem writes an incident's blameless postmortem, in Markdown
// or JSON, from the incident and its full timeline. The timeline is
// streamed twice (once to gather tagged notes, once to write it), so an
// incident of any length exports in bounded memory.
package postmortem

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// Source streams an incident's timeline; *incidents.Service is one.
type Source interface {
	Timeline(ctx context.Context, id int64, fn func(incidents.Event) error) error
}

// Options shape an export.
type Options struct {
	Format string      // "md" (default) or "json"
	Budget *slo.Budget // what the incident took from the error budget, when known
	// Changes are the service's releases in the day before it was
	// declared, one line each (most incidents follow a change).
	Changes []string
}

// Tags that sort notes into the postmortem's sections: "note #cause the pool
// was too small".
var tags = map[string]string{"impact": "impact", "cause": "root_cause", "rootcause": "root_cause", "factor": "contributing_factors",
	"contributing": "contributing_factors", "lesson": "lessons", "lessons": "lessons"}

// noteTags returns the sections a note is tagged for, and its text without
// the tags. Words are scanned by hand: this runs on every note of timelines
// of any length.
func noteTags(msg string) ([]string, string) {
	if strings.IndexByte(msg, '#') < 0 {
		return nil, msg
	}
	var secs []string
	words := strings.Fields(msg)
	kept := words[:0:0]
	for _, w := range words {
		if len(w) > 1 && w[0] == '#' {
			if sec, ok := tags[strings.ToLower(strings.TrimRight(w[1:], ".,;:!?"))]; ok {
				secs = append(secs, sec)
				continue
			}
		}
		kept = append(kept, w)
	}
	return secs, strings.Join(kept, " ")
}

// maxTagged bounds each tagged section (the full timeline has them all).
const maxTagged = 200

// gathered is what the first pass over the timeline collects.
type gathered struct {
	sections  map[string][]string
	detection []string // the first alert events
	steps     []incidents.Event
	events    int
}

// gather walks the timeline once: it collects what the sections above and
// below the timeline need, and hands each event to row, which writes the
// timeline (to a temporary file: memory stays flat however long it is).
func gather(ctx context.Context, src Source, inc *incidents.Incident, row func(incidents.Event) error) (*gathered, error) {
	g := &gathered{sections: map[string][]string{}}
	err := mergedTimeline(ctx, src, inc, func(ev incidents.Event) error {
		g.events++
		switch ev.Kind {
		case incidents.EventNote:
			secs, text := noteTags(ev.Message)
			for _, sec := range secs {
				if len(g.sections[sec]) < maxTagged {
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
		case incidents.EventRunbookStep:
			if len(g.steps) < maxTagged {
				g.steps = append(g.steps, ev)
			}
		}
		return row(ev)
	})
	return g, err
}

// format is one output format: the timeline's rows, and what goes around them.
type format struct {
	row  func(w *bufio.Writer, first bool, ev incidents.Event) error
	head func(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error
	tail func(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error
}

var formats = map[string]format{
	"md": {mdRow, mdHead, mdTail}, "markdown": {mdRow, mdHead, mdTail}, "": {mdRow, mdHead, mdTail},
	"json": {jsonRow, jsonHead, jsonTail},
}

// Write exports the postmortem of inc: one pass over the timeline writes its
// rows to a temporary file while gathering the other sections; then the
// head, the rows and the tail go out in order.
func Write(ctx context.Context, w io.Writer, src Source, inc *incidents.Incident, opt Options) error {
	f, ok := formats[opt.Format]
	if !ok {
		return incidents.Errorf(incidents.EInvalid, "unknown postmortem format %q: use md or json", opt.Format)
	}
	tmp, err := os.CreateTemp("", "sitrep-timeline-*")
	if err != nil {
		return fmt.Errorf("postmortem: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	rows := bufio.NewWriterSize(tmp, 64<<10)
	first := true
	g, err := gather(ctx, src, inc, func(ev incidents.Event) error {
		err := f.row(rows, first, ev)
		first = false
		return err
	})
	if err == nil {
		err = rows.Flush()
	}
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("postmortem of %s: %w", inc.Key(), err)
	}
	out := bufio.NewWriterSize(w, 64<<10)
	if err := f.head(out, inc, g, opt); err != nil {
		return err
	}
	if _, err := io.Copy(out, tmp); err != nil {
		return fmt.Errorf("postmortem of %s: %w", inc.Key(), err)
	}
	if err := f.tail(out, inc, g, opt); err != nil {
		return err
	}
	return out.Flush()
}

// Times are the response measures of an incident.
type Times struct {
	Acknowledge, Mitigate, Resolve time.Duration
	AckedAt, MitigatedAt           time.Time
	AckedBy                        string // who acknowledged first
}

// Measure computes time to acknowledge, to mitigate (the service restored:
// the Verify phase, reached by status monitoring or by resolving) and to resolve.
func Measure(inc *incidents.Incident) Times {
	var t Times
	if by, at, ok := inc.FirstAck(); ok { // from the declaration to the first acknowledgement, reopened or not
		t.AckedBy, t.AckedAt, t.Acknowledge = by, at, at.Sub(inc.DeclaredAt)
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
