package postmortem

import (
	"bufio"
	"encoding/json"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// head is everything in the JSON export before the timeline.
type head struct {
	Incident struct {
		ID          string             `json:"id"`
		Title       string             `json:"title"`
		Description string             `json:"description,omitempty"`
		Service     string             `json:"service,omitempty"`
		Severity    string             `json:"severity"`
		Reason      string             `json:"severity_reason"`
		Status      string             `json:"status"`
		DeclaredAt  string             `json:"declared_at"`
		DeclaredBy  string             `json:"declared_by"`
		Source      string             `json:"source"`
		ResolvedAt  string             `json:"resolved_at,omitempty"`
		Duration    float64            `json:"duration_seconds,omitempty"`
		Roles       []incidents.Holder `json:"roles,omitempty"`
		Links       map[string]string  `json:"links,omitempty"`
		WarRoom     string             `json:"war_room,omitempty"`
		Drill       bool               `json:"drill,omitempty"` // a game day's: not an incident
		Private     bool               `json:"private,omitempty"`
		MergedInto  string             `json:"merged_into,omitempty"`
		Duplicates  []string           `json:"duplicates,omitempty"` // their events are in the timeline (each event's "incident")
		Related     []string           `json:"related,omitempty"`
		Postmortem  string             `json:"postmortem_url,omitempty"`
	} `json:"incident"`
	Detection struct {
		Source string   `json:"source"`
		Alerts []string `json:"alerts,omitempty"`
		// Changes are the service's releases in the day before.
		Changes []string `json:"recent_changes,omitempty"`
	} `json:"detection"`
	Response struct {
		AcknowledgeSeconds *float64 `json:"time_to_acknowledge_seconds"`
		AcknowledgedBy     string   `json:"acknowledged_by,omitempty"`
		MitigateSeconds    *float64 `json:"time_to_mitigate_seconds"`
		ResolveSeconds     *float64 `json:"time_to_resolve_seconds"`
		ResponseSeconds    float64  `json:"response_time_seconds"`
	} `json:"response"`
	Phases []incidents.Mark `json:"phases"`
	Impact struct {
		Declared string      `json:"declared,omitempty"`
		Notes    []string    `json:"notes"`
		Budget   *slo.Budget `json:"error_budget,omitempty"`
	} `json:"impact"`
	Events int `json:"timeline_events"`
}

// tail is everything after the timeline.
type tail struct {
	Steps   []step                 `json:"runbook_steps"`
	Factors []string               `json:"contributing_factors"`
	Causes  []string               `json:"root_cause"`
	Actions []incidents.ActionItem `json:"action_items"`
	Lessons []string               `json:"lessons"`
}

type step struct {
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Summary string `json:"summary"`
}

func seconds(d float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jsonRow(w *bufio.Writer, first bool, ev incidents.Event) error {
	if !first {
		w.WriteByte(',')
	}
	b, err := json.Marshal(struct {
		incidents.Event
		Summary string `json:"summary"`
	}{ev, say.Describe(ev)})
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// jsonHead writes the object up to the opening of the timeline array.
func jsonHead(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error {
	var h head
	h.Incident.ID, h.Incident.Title, h.Incident.Description, h.Incident.Service = inc.Key(), inc.Title, inc.Description, inc.Service
	h.Incident.Drill, h.Incident.Private, h.Incident.Postmortem = inc.Drill, inc.Private, inc.PostmortemURL
	if inc.MergedInto != 0 {
		h.Incident.MergedInto = incidents.FormatID(inc.MergedInto)
	}
	for _, id := range inc.Duplicates {
		h.Incident.Duplicates = append(h.Incident.Duplicates, incidents.FormatID(id))
	}
	for _, id := range inc.Related {
		h.Incident.Related = append(h.Incident.Related, incidents.FormatID(id))
	}
	h.Incident.Severity, h.Incident.Reason, h.Incident.Status = inc.Severity.String(), inc.SeverityReason, string(inc.Status)
	h.Incident.DeclaredAt, h.Incident.DeclaredBy, h.Incident.Source = inc.DeclaredAt.UTC().Format(rfc3339), inc.DeclaredBy, inc.Source
	h.Incident.Roles, h.Incident.Links, h.Incident.WarRoom = inc.Roles, inc.Links, inc.ChannelName
	t := Measure(inc)
	if !inc.Open() {
		h.Incident.ResolvedAt, h.Incident.Duration = inc.ResolvedAt.UTC().Format(rfc3339), t.Resolve.Seconds()
	}
	h.Detection.Source, h.Detection.Alerts, h.Detection.Changes = detectionSource(inc), g.detection, opt.Changes
	h.Response.AcknowledgeSeconds = seconds(t.Acknowledge.Seconds(), !t.AckedAt.IsZero())
	h.Response.AcknowledgedBy = t.AckedBy
	h.Response.MitigateSeconds = seconds(t.Mitigate.Seconds(), !t.MitigatedAt.IsZero())
	h.Response.ResolveSeconds = seconds(t.Resolve.Seconds(), !inc.Open())
	h.Response.ResponseSeconds = inc.Severity.ResponseTime().Seconds()
	h.Phases = inc.Phases
	h.Impact.Declared, h.Impact.Notes, h.Impact.Budget = inc.Description, nonNil(g.sections["impact"]), opt.Budget
	h.Events = g.events
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	w.Write(b[:len(b)-1]) // leave the object open
	_, err = w.WriteString(`,"timeline":[`)
	return err
}

// jsonTail closes the timeline and writes the sections after it.
func jsonTail(w *bufio.Writer, inc *incidents.Incident, g *gathered, opt Options) error {
	tl := tail{Factors: nonNil(g.sections["contributing_factors"]), Causes: nonNil(g.sections["root_cause"]),
		Actions: inc.Actions, Lessons: nonNil(g.sections["lessons"]), Steps: []step{}}
	if tl.Actions == nil {
		tl.Actions = []incidents.ActionItem{}
	}
	for _, s := range g.steps {
		tl.Steps = append(tl.Steps, step{At: s.At.UTC().Format(rfc3339), Actor: s.Actor, Summary: s.Message})
	}
	b, err := json.Marshal(tl)
	if err != nil {
		return err
	}
	w.WriteString("],")
	w.Write(b[1:]) // the tail's fields close the object
	return w.WriteByte('\n')
}

const rfc3339 = "2006-01-02T15:04:05Z07:00"
