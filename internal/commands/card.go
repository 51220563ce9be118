package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// Card is the incident's summary: what the war-room header shows.
func Card(inc *incidents.Incident, now time.Time) Reply {
	sev := inc.Severity
	fields := []Field{
		{"Severity", fmt.Sprintf("%s — %s (respond within %s)", sev.Label(), sev.Impact(), say.Human(sev.ResponseTime()))},
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
	if rb := inc.Links["runbook"]; rb != "" {
		fields = append(fields, Field{"Runbook", rb})
	}
	fields = append(fields, Field{"Declared", fmt.Sprintf("%s by %s (%s)", say.Stamp(inc.DeclaredAt), inc.DeclaredBy, inc.Source)})
	if len(inc.Members) > 0 {
		fields = append(fields, Field{"Invited", strings.Join(inc.Members[:min(len(inc.Members), 10)], ", ") + more(len(inc.Members), 10)})
	}
	if inc.MergedInto != 0 {
		fields = append(fields, Field{"Merged into", incidents.FormatID(inc.MergedInto) + " — work there"})
	}
	if len(inc.Duplicates) > 0 {
		fields = append(fields, Field{"Duplicates", keys(inc.Duplicates)})
	}
	if len(inc.Related) > 0 {
		fields = append(fields, Field{"Related", keys(inc.Related)})
	}
	if inc.PostmortemURL != "" {
		fields = append(fields, Field{"Postmortem", inc.PostmortemURL})
	}
	if !inc.Open() {
		resolved := fmt.Sprintf("%s, after %s", say.Stamp(inc.ResolvedAt), say.Human(inc.ResolvedAt.Sub(inc.DeclaredAt)))
		if inc.Summary != "" {
			resolved += ": " + inc.Summary
		}
		fields = append(fields, Field{"Resolved", resolved})
	}
	return Reply{
		Text:     inc.Key() + " · " + inc.Name(),
		Fields:   fields,
		Buttons:  Buttons(inc),
		Incident: inc,
	}
}

// keys names incidents by id, the first ten of them.
func keys(ids []int64) string {
	out := make([]string, 0, min(len(ids), 10))
	for _, id := range ids[:min(len(ids), 10)] {
		out = append(out, incidents.FormatID(id))
	}
	return strings.Join(out, ", ") + more(len(ids), 10)
}

func more(n, shown int) string {
	if n > shown {
		return fmt.Sprintf(" and %d more", n-shown)
	}
	return ""
}

// AckState describes the acknowledgement deadline as of now.
func AckState(inc *incidents.Incident, now time.Time) string {
	switch {
	case inc.Acked():
		return fmt.Sprintf("acknowledged by %s at %s", inc.AckedBy, say.Clock(inc.AckedAt))
	case !inc.Open():
		if by, at, ok := inc.FirstAck(); ok {
			return fmt.Sprintf("acknowledged by %s at %s, before it was reopened", by, say.Clock(at))
		}
		return "resolved without acknowledgement"
	}
	due := inc.AckDeadline()
	if left := due.Sub(now); left > 0 {
		return fmt.Sprintf("%s (in %s)", say.Clock(due), say.Human(left))
	}
	return fmt.Sprintf("%s (overdue by %s)", say.Clock(due), say.Human(now.Sub(due)))
}

// Buttons are the choices that fit the incident's state.
func Buttons(inc *incidents.Incident) []Button {
	k := inc.Key()
	if inc.MergedInto != 0 {
		return []Button{{Label: "Timeline", Command: "timeline " + k}}
	}
	if !inc.Open() {
		return []Button{
			{Label: "Reopen", Command: "reopen " + k, Confirm: "Reopen " + k + "?"},
			{Label: "Timeline", Command: "timeline " + k},
		}
	}
	var b []Button
	if rel := inc.Links[releases.LinkRelease]; rel != "" && inc.ReleaseState != string(releases.RolledBack) { // declared by a release's watch: the way back first, until it is taken
		b = append(b, Button{Label: "Roll back " + rel, Command: "release rollback " + rel, Style: Danger})
	}
	if !inc.Acked() {
		b = append(b, Button{Label: "Acknowledge", Command: "ack " + k, Style: Primary})
	}
	if inc.Links["runbook"] != "" {
		b = append(b, Button{Label: "Runbook", Command: "runbook " + k})
	}
	b = append(b,
		Button{Label: "Severity", Command: "severity " + k, Input: "<P1-P4> [reason]", Options: severityOptions(inc)},
		UpdateButton(inc))
	if (inc.Holder(incidents.Comms) != "" || inc.Published()) && !inc.Private && !inc.Drill {
		b = append(b, PublishButton(inc)) // the comms role's
	}
	return append(b,
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
		inc.Key(), inc.Severity, inc.Status.Label(), ack, inc.Name(), orNone(inc.Lead(), "unassigned"), say.Human(now.Sub(inc.DeclaredAt)))
}

func orNone(s, none string) string {
	if strings.TrimSpace(s) == "" {
		return none
	}
	return s
}
