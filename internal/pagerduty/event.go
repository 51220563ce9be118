package pagerduty

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is the part of a v3 webhook event Sitrep uses.
type Event struct {
	ID         string
	Type       string // incident.triggered, incident.acknowledged, ...
	OccurredAt time.Time
	Agent      string // who did it, as PagerDuty names them
	Incident   Incident
	Note       string   // incident.annotated
	Assignees  []string // escalated, reassigned, delegated
}

// Incident is the PagerDuty incident an event is about.
type Incident struct {
	ID, Title, URL, Status, Urgency, Priority, Service, Policy string
	Number                                                     int
}

type reference struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
	HTMLURL string `json:"html_url"`
}

type wire struct {
	Event *struct {
		ID           string          `json:"id"`
		EventType    string          `json:"event_type"`
		ResourceType string          `json:"resource_type"`
		OccurredAt   string          `json:"occurred_at"`
		Agent        *reference      `json:"agent"`
		Data         json.RawMessage `json:"data"`
	} `json:"event"`
}

type incidentData struct {
	ID               string      `json:"id"`
	Type             string      `json:"type"`
	HTMLURL          string      `json:"html_url"`
	Number           int         `json:"number"`
	Status           string      `json:"status"`
	Title            string      `json:"title"`
	Urgency          string      `json:"urgency"`
	Service          *reference  `json:"service"`
	EscalationPolicy *reference  `json:"escalation_policy"`
	Priority         *reference  `json:"priority"`
	Assignees        []reference `json:"assignees"`
	// incident_note
	Content  string     `json:"content"`
	Incident *reference `json:"incident"`
}

// ErrMalformed is returned for a body that is not a v3 webhook event.
var ErrMalformed = errors.New("malformed PagerDuty webhook")

// Parse reads a v3 webhook body. Events on other resources than incidents
// parse with an empty Incident.ID.
func Parse(body []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Event == nil || w.Event.ID == "" || w.Event.EventType == "" {
		return Event{}, fmt.Errorf("%w: no event id or type", ErrMalformed)
	}
	ev := Event{ID: w.Event.ID, Type: w.Event.EventType}
	if t, err := time.Parse(time.RFC3339, w.Event.OccurredAt); err == nil {
		ev.OccurredAt = t
	}
	if a := w.Event.Agent; a != nil {
		ev.Agent = agentName.Replace(a.Summary)
	}
	if !strings.HasPrefix(ev.Type, "incident.") || len(w.Event.Data) == 0 || string(w.Event.Data) == "null" {
		return ev, nil
	}
	var d incidentData
	if err := json.Unmarshal(w.Event.Data, &d); err != nil {
		return Event{}, fmt.Errorf("%w: data: %v", ErrMalformed, err)
	}
	if d.Type == "incident_note" {
		ev.Note = d.Content
		if d.Incident != nil {
			ev.Incident = Incident{ID: d.Incident.ID, Title: d.Incident.Summary, URL: d.Incident.HTMLURL}
		}
	} else {
		ev.Incident = Incident{ID: d.ID, Title: d.Title, URL: d.HTMLURL, Status: d.Status, Urgency: d.Urgency, Number: d.Number}
		if d.Service != nil {
			ev.Incident.Service = d.Service.Summary
		}
		if d.EscalationPolicy != nil {
			ev.Incident.Policy = d.EscalationPolicy.Summary
		}
		if d.Priority != nil {
			ev.Incident.Priority = d.Priority.Summary
		}
		for _, a := range d.Assignees {
			ev.Assignees = append(ev.Assignees, a.Summary)
		}
	}
	if ev.Incident.ID == "" {
		return Event{}, fmt.Errorf("%w: %s without an incident id", ErrMalformed, ev.Type)
	}
	return ev, nil
}

// agentName keeps a PagerDuty user's name from reading as chat markup: a
// person named "<@U123>" or "<!channel>" in PagerDuty is recorded without
// the brackets, so no renderer takes the timeline's actor for a mention.
var agentName = strings.NewReplacer("<", "", ">", "")
