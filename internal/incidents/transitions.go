package incidents

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Each transition changes the incident in memory and returns the events that
// record it, or an *Error and no change at all. The Service stores the new
// state and its events in one transaction.

// Declaration is what starts an incident.
type Declaration struct {
	Title       string
	Description string
	Service     string
	Lead        string // defaults to the declarer when a person declares
	Signals     Signals
	Links       map[string]string
	Runbook     string // the runbook offered for it, when one matches
	// Request is the id of the request that declares it (a Slack envelope):
	// the same request replayed after a crash finds this incident instead
	// of declaring a second one.
	Request string
	// Origin is the chat message it was declared from, when it was (a
	// Slack message shortcut): the timeline starts with it.
	Origin *Origin
	// Drill declares a game-day incident: marked everywhere, left out of
	// stats and metrics and never sent to PagerDuty.
	Drill bool
	// Private declares an incident only its members see: a private war
	// room, never announced, left out of lists for everyone else.
	Private bool
}

// Origin is a chat message an incident was declared from.
type Origin struct {
	Ref    string // the adapter's reference ("C024BE91L/1764126000.000100"), kept in Links[LinkOrigin]
	Author string // who wrote it ("<@U123>")
	Text   string
}

// LinkOrigin links an incident to the message it was declared from: the
// same message declared again finds this incident.
const LinkOrigin = "origin"

// LinkRequest links an incident to the request that declared it.
const LinkRequest = "request"

// MaxTitle bounds an incident title (Slack channel names and headers stay usable).
const MaxTitle = 200

// Declare builds a new incident (ID is set by the store) and its first events.
func Declare(d Declaration, by Actor, at time.Time) (*Incident, []Event, error) {
	title := strings.Join(strings.Fields(d.Title), " ")
	if title == "" {
		return nil, nil, Errorf(EInvalid, "an incident needs a title, e.g. \"declare P2 Checkout error rate above 5%%\"")
	}
	full := title
	title = Cut(title, MaxTitle) // shown cut; the declared event keeps it whole
	if d.Signals.Text == "" {
		d.Signals.Text = title + " " + d.Description
	}
	c := Classify(d.Signals)
	inc := &Incident{
		Title: title, Description: d.Description, Service: d.Service,
		Severity: c.Severity, SeverityReason: c.Reason,
		Status: Investigating, Phase: Detect, Phases: []Mark{{Phase: Detect, At: at}},
		DeclaredAt: at, DeclaredBy: by.Name, Source: by.Source, AckClock: at, UpdatedAt: at,
		Drill: d.Drill, Private: d.Private,
	}
	if len(d.Links) > 0 || d.Runbook != "" || d.Request != "" || d.Origin != nil {
		inc.Links = make(map[string]string, len(d.Links)+3)
		for k, v := range d.Links {
			inc.Links[k] = v
		}
		if d.Runbook != "" {
			inc.Links["runbook"] = d.Runbook
		}
		if d.Request != "" {
			inc.Links[LinkRequest] = d.Request
		}
		if d.Origin != nil && d.Origin.Ref != "" {
			inc.Links[LinkOrigin] = d.Origin.Ref
		}
	}
	if len(d.Signals.Labels) > 0 {
		inc.Labels = make(map[string]string, len(d.Signals.Labels))
		for k, v := range d.Signals.Labels {
			inc.Labels[k] = v
		}
	}
	declared := inc.event(EventDeclared, by, at)
	declared.To = c.Severity.String()
	declared.Message = Cut(full, MaxStored)
	declared.Fields = map[string]string{"severity_reason": c.Reason}
	if d.Drill {
		declared.Fields["drill"] = "true"
	}
	if d.Private {
		declared.Fields["private"] = "true"
	}
	if d.Runbook != "" {
		declared.Fields["runbook"] = d.Runbook
	}
	events := []Event{declared}
	if o := d.Origin; o != nil {
		ev := inc.event(EventOrigin, by, at)
		ev.Message = Cut(strings.TrimSpace(o.Text), MaxStored)
		ev.Fields = map[string]string{"origin": o.Ref, "author": o.Author}
		events = append(events, ev)
	}
	lead := d.Lead
	if lead == "" && by.Source != SourceSystem && !isIntegration(by.Source) {
		lead = by.Name
	}
	if lead != "" {
		inc.setRole(Commander, lead)
		events = append(events, roleEvent(inc, Commander, "", lead, by, at))
	}
	return inc, events, nil
}

// isIntegration reports whether a source is a machine (webhook) rather than a person.
func isIntegration(source string) bool {
	return source == SourcePagerDuty || source == SourceAlertmanager
}

// Ack acknowledges the incident; the acknowledger becomes lead if there is none.
func (inc *Incident) Ack(by Actor, at time.Time) ([]Event, error) {
	if err := inc.mustBeOpen("acknowledge"); err != nil {
		return nil, err
	}
	if inc.Acked() {
		return nil, Errorf(EConflict, "%s was already acknowledged by %s at %s UTC", inc.Key(), inc.AckedBy, inc.AckedAt.UTC().Format("15:04"))
	}
	inc.AckedAt, inc.AckedBy = at, by.Name
	if inc.FirstAckedAt.IsZero() {
		inc.FirstAckedAt, inc.FirstAckedBy = at, by.Name
	}
	ev := inc.event(EventAcknowledged, by, at)
	late := at.Sub(inc.AckDeadline())
	ev.Fields = map[string]string{"after": at.Sub(inc.AckClock).Round(time.Second).String()}
	if late > 0 {
		ev.Message = fmt.Sprintf("acknowledged %s after the %s response time", Human(late), inc.Severity)
	} else {
		ev.Message = "acknowledged within the response time"
	}
	events := []Event{ev}
	if inc.Lead() == "" {
		inc.setRole(Commander, by.Name)
		events = append(events, roleEvent(inc, Commander, "", by.Name, by, at))
	}
	events = append(events, inc.reach(Acknowledge, by, at)...)
	inc.touch(at)
	return events, nil
}

// ChangeSeverity sets a new severity with the reason for it.
func (inc *Incident) ChangeSeverity(s Severity, reason string, by Actor, at time.Time) ([]Event, error) {
	if !s.Valid() {
		return nil, Errorf(EInvalid, "unknown severity: use P1, P2, P3 or P4")
	}
	if s == inc.Severity {
		return nil, Errorf(EConflict, "%s is already %s", inc.Key(), s)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "set by " + by.Name
	}
	ev := inc.event(EventSeverityChanged, by, at)
	ev.From, ev.To, ev.Message = inc.Severity.String(), s.String(), reason
	inc.Severity, inc.SeverityReason = s, reason
	inc.touch(at)
	return append([]Event{ev}, inc.reach(Assess, by, at)...), nil
}

// statusPhase is the procedure phase a status implies.
var statusPhase = map[Status]Phase{Identified: Remediate, Monitoring: Verify}

// ChangeStatus moves between investigating, identified and monitoring;
// "resolved" is Resolve.
func (inc *Incident) ChangeStatus(s Status, message string, by Actor, at time.Time) ([]Event, error) {
	if s == Resolved {
		return inc.Resolve(message, by, at)
	}
	if err := inc.mustBeOpen("change its status"); err != nil {
		return nil, err
	}
	if s == inc.Status && strings.TrimSpace(message) == "" {
		return nil, Errorf(EConflict, "%s is already %s: give a message to post an update", inc.Key(), s)
	}
	ev := inc.event(EventStatusChanged, by, at) // the same status with a message: an update
	ev.From, ev.To, ev.Message = string(inc.Status), string(s), strings.TrimSpace(message)
	inc.Status = s
	inc.LastUpdateAt, inc.Nudges = at, 0
	inc.touch(at)
	events := []Event{ev}
	if p, ok := statusPhase[s]; ok {
		events = append(events, inc.reach(p, by, at)...)
	}
	return events, nil
}

// AssignRole gives role r to user.
func (inc *Incident) AssignRole(r Role, user string, by Actor, at time.Time) ([]Event, error) {
	user = strings.TrimSpace(user)
	if user == "" {
		return nil, Errorf(EInvalid, "say who: a user like @alice")
	}
	prev := inc.Holder(r)
	if prev == user {
		return nil, Errorf(EConflict, "%s is already %s of %s", user, strings.ToLower(r.Title()), inc.Key())
	}
	inc.setRole(r, user)
	inc.touch(at)
	return []Event{roleEvent(inc, r, prev, user, by, at)}, nil
}

func roleEvent(inc *Incident, r Role, from, to string, by Actor, at time.Time) Event {
	ev := inc.event(EventRoleAssigned, by, at)
	ev.From, ev.To = from, to
	ev.Fields = map[string]string{"role": string(r)}
	ev.Message = fmt.Sprintf("%s is %s", to, strings.ToLower(r.Title()))
	return ev
}

// MaxNote is how much of a note or a pinned message is shown at once, and
// bounds an action item.
const MaxNote = 4000

// MaxStored bounds what one event keeps of outside text (a note, a title):
// past it the text is cut with "…". Nothing valid is refused for length.
const MaxStored = 64 << 10

// Cut shortens s to at most n runes, ending in "…" when it was longer.
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// AddNote records a free-text note; notes are allowed on resolved incidents
// (for the postmortem).
func (inc *Incident) AddNote(text string, by Actor, at time.Time) ([]Event, error) {
	text = storedNote(text) // a long note is kept (renderers cut it for display)
	if text == "" {
		return nil, Errorf(EInvalid, "a note needs text")
	}
	return inc.addNote(text, noteHash(text), by, at), nil
}

// addNote adds a stored note's text, with its fingerprint h.
func (inc *Incident) addNote(text string, h uint64, by Actor, at time.Time) []Event {
	ev := inc.event(EventNote, by, at)
	ev.Message = text
	inc.rememberNote(h)
	inc.touch(at)
	return []Event{ev}
}

// ReachPhase marks phase p (or the phase after the current one when p is
// empty). Phases only move forward.
func (inc *Incident) ReachPhase(p Phase, by Actor, at time.Time) ([]Event, error) {
	if p == "" {
		i := inc.Phase.Index() + 1
		if i >= len(Phases) {
			return nil, Errorf(EConflict, "%s has reached the last phase (%s)", inc.Key(), inc.Phase)
		}
		p = Phases[i]
	}
	if p.Index() < 0 {
		return nil, Errorf(EInvalid, "unknown phase %q", p)
	}
	if p.Index() <= inc.Phase.Index() {
		return nil, Errorf(EConflict, "%s is already at phase %s; phases only move forward", inc.Key(), inc.Phase)
	}
	events := inc.reach(p, by, at)
	inc.touch(at)
	return events, nil
}

// Resolve closes the incident with an optional summary.
func (inc *Incident) Resolve(summary string, by Actor, at time.Time) ([]Event, error) {
	if !inc.Open() {
		return nil, Errorf(EConflict, "%s is already resolved (at %s UTC)", inc.Key(), inc.ResolvedAt.UTC().Format("2006-01-02 15:04"))
	}
	ev := inc.event(EventResolved, by, at)
	ev.From, ev.To = string(inc.Status), string(Resolved)
	ev.Message = strings.TrimSpace(summary)
	ev.Fields = map[string]string{"duration": at.Sub(inc.DeclaredAt).Round(time.Second).String()}
	inc.Status, inc.ResolvedAt, inc.Summary = Resolved, at, ev.Message
	inc.touch(at)
	return append([]Event{ev}, inc.reach(Verify, by, at)...), nil
}

// Reopen makes a resolved incident open again; it must be acknowledged anew.
func (inc *Incident) Reopen(reason string, by Actor, at time.Time) ([]Event, error) {
	if inc.Open() {
		return nil, Errorf(EConflict, "%s is not resolved (it is %s)", inc.Key(), inc.Status)
	}
	if inc.MergedInto != 0 {
		return nil, Errorf(EConflict, "%s was merged into %s as a duplicate: work there", inc.Key(), FormatID(inc.MergedInto))
	}
	ev := inc.event(EventReopened, by, at)
	ev.From, ev.To, ev.Message = string(Resolved), string(Investigating), strings.TrimSpace(reason)
	inc.keep(inc.AckedBy)
	inc.Status, inc.ResolvedAt, inc.Summary = Investigating, time.Time{}, ""
	inc.AckedAt, inc.AckedBy, inc.AckClock, inc.Reminders = time.Time{}, "", at, 0
	inc.Nudges, inc.NudgedAt = 0, time.Time{}
	inc.touch(at)
	return []Event{ev}, nil
}

// Remind records a re-announcement if one is due at `at`, and reports false
// when none is. After a long outage it sends one reminder, not one per missed
// interval, and the next comes at the following interval boundary.
func (inc *Incident) Remind(at time.Time) ([]Event, bool) {
	due, ok := inc.NextReminder()
	if !ok || at.Before(due) {
		return nil, false
	}
	if what, _, ok := inc.followUp(); ok {
		return inc.remindFollowUp(what, at), true
	}
	if inc.Acked() {
		return inc.nudge(at), true
	}
	overdue := at.Sub(inc.AckClock)
	inc.Reminders = int(overdue / inc.Severity.ResponseTime())
	ev := inc.event(EventReminder, System, at)
	ev.Fields = map[string]string{"reminder": strconv.Itoa(inc.Reminders)}
	ev.Message = fmt.Sprintf("%s (%s) is still unacknowledged after %s; its response time is %s",
		inc.Key(), inc.Severity, Human(overdue), Human(inc.Severity.ResponseTime()))
	inc.touch(at)
	return []Event{ev}, true
}

// nudge asks the lead for a status update, once per cadence without one:
// after a long outage of Sitrep one nudge, not one per missed interval.
func (inc *Incident) nudge(at time.Time) []Event {
	base, last := inc.updateBase()
	every, since := inc.Severity.UpdateCadence(), at.Sub(base)
	inc.Nudges++
	inc.NudgedAt = at
	ev := inc.event(EventNudge, System, at)
	ev.Fields = map[string]string{"nudge": strconv.Itoa(inc.Nudges), "since": since.Round(time.Second).String(), "every": every.String()}
	ev.Message = fmt.Sprintf("%s has had no status update for %s %s (%s incidents get one every %s): %s, post one for the people waiting",
		inc.Key(), Human(since), last, inc.Severity, Human(every), orName(inc.Lead(), "the team"))
	inc.touch(at)
	return []Event{ev}
}
