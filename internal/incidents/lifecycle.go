package incidents

import (
	"strings"
)

// Status is what people are told about an incident's progress.
type Status string

// The statuses of the seed's war-room header, in their usual order.
const (
	Investigating Status = "investigating"
	Identified    Status = "identified"
	Monitoring    Status = "monitoring"
	Resolved      Status = "resolved"
)

// Statuses lists every status in order.
var Statuses = []Status{Investigating, Identified, Monitoring, Resolved}

// ParseStatus accepts a status name in any case.
func ParseStatus(text string) (Status, error) {
	s := Status(strings.ToLower(strings.TrimSpace(text)))
	for _, v := range Statuses {
		if s == v {
			return s, nil
		}
	}
	return "", Errorf(EInvalid, "unknown status %q: use investigating, identified, monitoring or resolved", text)
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Label is the upper-case form of the seed's header ("INVESTIGATING").
func (s Status) Label() string { return strings.ToUpper(string(s)) }

// Phase is a step of the seed's 8-step response procedure.
type Phase string

// The procedure's phases, in order.
const (
	Detect      Phase = "detect"
	Acknowledge Phase = "acknowledge"
	Assess      Phase = "assess"
	Communicate Phase = "communicate"
	Remediate   Phase = "remediate"
	Verify      Phase = "verify"
	Document    Phase = "document"
	Review      Phase = "review"
)

// Phases lists the procedure in order.
var Phases = []Phase{Detect, Acknowledge, Assess, Communicate, Remediate, Verify, Document, Review}

var phaseHelp = map[Phase]string{
	Detect:      "alert fires or someone notices",
	Acknowledge: "an engineer acknowledges within the response time",
	Assess:      "determine severity and impact",
	Communicate: "notify stakeholders",
	Remediate:   "implement a fix or roll back",
	Verify:      "confirm the service is restored",
	Document:    "write the incident report",
	Review:      "hold the postmortem review",
}

// Index is the phase's position in the procedure (0-based), or -1.
func (p Phase) Index() int {
	for i, v := range Phases {
		if v == p {
			return i
		}
	}
	return -1
}

// Help is the one-line meaning of the phase.
func (p Phase) Help() string { return phaseHelp[p] }

// Title is the capitalised name ("Remediate").
func (p Phase) Title() string {
	if p == "" {
		return ""
	}
	return strings.ToUpper(string(p[:1])) + string(p[1:])
}

// ParsePhase accepts a phase name in any case.
func ParsePhase(text string) (Phase, error) {
	p := Phase(strings.ToLower(strings.TrimSpace(text)))
	if p.Index() < 0 {
		return "", Errorf(EInvalid, "unknown phase %q: use next or one of %s", text, joinPhases())
	}
	return p, nil
}

func joinPhases() string {
	names := make([]string, len(Phases))
	for i, p := range Phases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// Role is a responsibility in the war room.
type Role string

// The roles of the seed's incident response: the commander is the lead.
const (
	Commander Role = "commander"
	Comms     Role = "comms"
	Scribe    Role = "scribe"
)

// Roles lists every role.
var Roles = []Role{Commander, Comms, Scribe}

// ParseRole accepts a role name; "lead" and "ic" mean commander,
// "communications" means comms.
func ParseRole(text string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "commander", "lead", "ic", "incident-commander":
		return Commander, nil
	case "comms", "communications":
		return Comms, nil
	case "scribe":
		return Scribe, nil
	}
	return "", Errorf(EInvalid, "unknown role %q: use commander, comms or scribe", text)
}

// Title is the role as shown to people.
func (r Role) Title() string {
	switch r {
	case Commander:
		return "Incident commander"
	case Comms:
		return "Communications"
	case Scribe:
		return "Scribe"
	}
	return string(r)
}
