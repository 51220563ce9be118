package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Card is the incident's summary: what the war-room header shows.
func Card(inc *incidents.Incident, now time.Time) Reply {
	sev := inc.Severity
	fields := []Field{
		{"Severity", fmt.Sprintf("%s — %s (respond within %s)", sev.Label(), sev.Impact(), Human(sev.ResponseTime()))},
		{"Why", inc.SeverityReason},
		{"Status", inc.Status.Label()},
		{"Phase", fmt.Sprintf("%s (%d/%d)", inc.Phase.Title(), inc.Phase.Index()+1, len(incidents.Phases))},
		{"Lead", orNone(inc.Lead(), "unassigned — assign one with: lead "+inc.Key()+" @user")},
	}
	for _, r := range []incidents.Role{incidents.Comms, incidents.Scribe} {
		if u := inc.Holder(r); u != "" {
			fields = append(fields, Field{r.Title(), u})
		}
	}
	fields = append(fields, Field{"Ack deadline", AckState(inc, now)})
	fields = append(fields, Field{"Declared", fmt.Sprintf("%s by %s (%s)", Stamp(inc.DeclaredAt), inc.DeclaredBy, inc.Source)})
	if !inc.Open() {
		resolved := fmt.Sprintf("%s, after %s", Stamp(inc.ResolvedAt), Human(inc.ResolvedAt.Sub(inc.DeclaredAt)))
		if inc.Summary != "" {
			resolved += ": " + inc.Summary
		}
		fields = append(fields, Field{"Resolved", resolved})
	}
	return Reply{
		Text:     inc.Key() + " · " + inc.Title,
		Fields:   fields,
		Buttons:  Buttons(inc),
		Incident: inc,
	}
}

// AckState describes the acknowledgement deadline as of now.
func AckState(inc *incidents.Incident, now time.Time) string {
	switch {
	case inc.Acked():
		return fmt.Sprintf("acknowledged by %s at %s", inc.AckedBy, Clock(inc.AckedAt))
	case !inc.Open():
		return "resolved without acknowledgement"
	}
	due := inc.AckDeadline()
	if left := due.Sub(now); left > 0 {
		return fmt.Sprintf("%s (in %s)", Clock(due), Human(left))
	}
	return fmt.Sprintf("%s (overdue by %s)", Clock(due), Human(now.Sub(due)))
}

// Buttons are the choices that fit the incident's state.
func Buttons(inc *incidents.Incident) []Button {
	k := inc.Key()
	if !inc.Open() {
		return []Button{
			{Label: "Reopen", Command: "reopen " + k, Confirm: "Reopen " + k + "?"},
			{Label: "Timeline", Command: "timeline " + k},
		}
	}
	var b []Button
	if !inc.Acked() {
		b = append(b, Button{Label: "Acknowledge", Command: "ack " + k, Style: Primary})
	}
	return append(b,
		Button{Label: "Severity", Command: "severity " + k, Input: "<P1-P4> [reason]", Options: severityOptions(inc)},
		Button{Label: "Status", Command: "status " + k, Input: "<investigating|identified|monitoring|resolved> [message]", Options: statusOptions(inc)},
		Button{Label: "Assign lead", Command: "lead " + k, Input: "@user", User: true},
		Button{Label: "Timeline", Command: "timeline " + k},
		Button{Label: "Resolve", Command: "resolve " + k, Style: Danger, Confirm: "Resolve " + k + "?"},
	)
}

func severityOptions(inc *incidents.Incident) []Option {
	var out []Option
	for _, s := range incidents.Severities {
		if s != inc.Severity {
			out = append(out, Option{Label: s.Label() + " — " + s.Impact(), Value: s.String()})
		}
	}
	return out
}

func statusOptions(inc *incidents.Incident) []Option {
	var out []Option
	for _, s := range incidents.Statuses {
		if s != inc.Status {
			out = append(out, Option{Label: s.Label(), Value: string(s)})
		}
	}
	return out
}

// ListLine is one incident in a list.
func ListLine(inc *incidents.Incident, now time.Time) string {
	ack := "unacked"
	if inc.Acked() {
		ack = "acked"
	}
	if !inc.Open() {
		ack = "-"
	}
	return fmt.Sprintf("%-7s %s  %-13s %-7s %s — lead %s, declared %s ago",
		inc.Key(), inc.Severity, inc.Status.Label(), ack, inc.Title, orNone(inc.Lead(), "unassigned"), Human(now.Sub(inc.DeclaredAt)))
}

// EventLine is one timeline entry as a person reads it.
func EventLine(ev incidents.Event) string {
	who := ev.Actor
	if ev.Source != "" {
		who += " (" + ev.Source + ")"
	}
	return fmt.Sprintf("%s  %-16s %s", ev.At.UTC().Format("2006-01-02 15:04:05"), who, Describe(ev))
}

// Describe says what an event means in a few words.
func Describe(ev incidents.Event) string {
	withMsg := func(s string) string {
		if ev.Message == "" {
			return s
		}
		return s + ": " + ev.Message
	}
	switch ev.Kind {
	case incidents.EventDeclared:
		return fmt.Sprintf("declared %s: %s — %s", ev.To, ev.Message, ev.Fields["severity_reason"])
	case incidents.EventAcknowledged:
		return withMsg("acknowledged")
	case incidents.EventSeverityChanged:
		return withMsg(fmt.Sprintf("severity %s → %s", ev.From, ev.To))
	case incidents.EventStatusChanged:
		return withMsg(fmt.Sprintf("status %s → %s", ev.From, ev.To))
	case incidents.EventResolved:
		return withMsg("resolved after " + ev.Fields["duration"])
	case incidents.EventReopened:
		return withMsg("reopened")
	case incidents.EventNote:
		return "note: " + ev.Message
	case incidents.EventReminder:
		return "re-announced: " + ev.Message
	case incidents.EventPhaseReached, incidents.EventRoleAssigned, incidents.EventWarRoomOpened:
		return ev.Message
	case incidents.EventMessagePinned:
		return fmt.Sprintf("pinned message from %s: %s", ev.Fields["author"], ev.Message)
	}
	return withMsg(string(ev.Kind))
}

// Stamp is a UTC date and time: "2026-11-26 02:47 UTC".
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// Clock is a UTC time of day: "02:47 UTC".
func Clock(t time.Time) string { return t.UTC().Format("15:04 UTC") }

// Human is a short duration: 45s, 14m, 1h05m, 2d3h.
func Human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d >= time.Minute {
		d = d.Round(time.Minute)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

func orNone(s, none string) string {
	if strings.TrimSpace(s) == "" {
		return none
	}
	return s
}
