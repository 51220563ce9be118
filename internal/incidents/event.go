package incidents

import "time"

// EventKind names what happened. Later capabilities add kinds; readers must
// treat an unknown kind as a plain entry with a message.
type EventKind string

// The timeline's kinds.
const (
	EventDeclared        EventKind = "declared"
	EventAcknowledged    EventKind = "acknowledged"
	EventSeverityChanged EventKind = "severity_changed"
	EventStatusChanged   EventKind = "status_changed"
	EventPhaseReached    EventKind = "phase_reached"
	EventRoleAssigned    EventKind = "role_assigned"
	EventNote            EventKind = "note"
	EventResolved        EventKind = "resolved"
	EventReopened        EventKind = "reopened"
	EventReminder        EventKind = "reminder"
	EventNudge           EventKind = "update_nudge"  // no status update for the severity's cadence: the lead is asked for one
	EventOrigin          EventKind = "declared_from" // the chat message the incident was declared from: its author and text
	EventWarRoomOpened   EventKind = "war_room_opened"
	EventMessagePinned   EventKind = "message_pinned"
	EventUnacknowledged  EventKind = "unacknowledged"  // PagerDuty's ack timeout ran out
	EventEscalated       EventKind = "escalated"       // PagerDuty escalated, reassigned or delegated
	EventAlert           EventKind = "alert"           // one alert of a group fired or resolved
	EventAlertsResolved  EventKind = "alerts_resolved" // every alert of the group resolved
	EventSynced          EventKind = "synced"          // a change was made in an outside system
	EventSyncFailed      EventKind = "sync_failed"     // an outside system did not take a change (retried)
	EventActionAdded     EventKind = "action_added"
	EventActionDone      EventKind = "action_done"
	EventPostmortem      EventKind = "postmortem_exported"
	EventRunbookStep     EventKind = "runbook_step"      // a runbook step run: who, which, parameters, outcome, duration
	EventEffectFailed    EventKind = "effect_failed"     // a chat platform refused for good what a change implied (the war room, a post)
	EventMembersAdded    EventKind = "members_added"     // people invited to the incident (and its war room)
	EventMerged          EventKind = "merged"            // on a duplicate: merged into another incident (Fields "into")
	EventMergedIn        EventKind = "merged_in"         // on the survivor: a duplicate merged into it (Fields "from")
	EventLinked          EventKind = "linked"            // a related incident, on both (Fields "incident")
	EventRoomArchived    EventKind = "war_room_archived" // a merged duplicate's war room, after the grace period
	EventDuplicateUpdate EventKind = "duplicate_update"  // an outside change that came for a merged duplicate's link
	EventPostmortemLink  EventKind = "postmortem_linked" // where the written postmortem lives
	EventPublished       EventKind = "status_published"  // an update published to the status page (To: its status)
	EventPublicTitle     EventKind = "public_title"      // the status page's wording of the title
	EventRelease         EventKind = "release"           // a step, rollout or end of the release whose watch declared it (Fields "release", "kind", "at")
)

// Sources of changes that come from outside systems.
const (
	SourcePagerDuty    = "pagerduty"
	SourceAlertmanager = "alertmanager"
)

// Sources: where a change came from.
const (
	SourceConsole = "console"
	SourceSlack   = "slack"
	SourceSystem  = "sitrep" // timers and other changes Sitrep makes itself
)

// Event is one entry of an incident's timeline. It is append-only: once
// stored, an event never changes.
type Event struct {
	Seq      uint64    `json:"seq"` // position in the timeline, from 1; set by the store
	Incident int64     `json:"incident"`
	Kind     EventKind `json:"kind"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor,omitempty"`  // who did it ("@alice", "sitrep")
	Source   string    `json:"source,omitempty"` // console, slack, pagerduty, alertmanager, sitrep
	From     string    `json:"from,omitempty"`   // previous value for changes
	To       string    `json:"to,omitempty"`     // new value for changes
	Message  string    `json:"message,omitempty"`
	// Fields carries kind-specific details (role name, reminder count, ...).
	Fields map[string]string `json:"fields,omitempty"`
}

// Actor is who asks for a change and through which channel.
type Actor struct {
	Name   string // "@alice", or "sitrep" for Sitrep itself
	Source string // console, slack, ...
}

// System is Sitrep acting on its own (timers).
var System = Actor{Name: "sitrep", Source: SourceSystem}
