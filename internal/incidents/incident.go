package incidents

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Incident is the current state of one incident. Its history is the timeline;
// every change to an Incident is stored together with the events that explain it.
type Incident struct {
	ID             int64     `json:"id"`
	Title          string    `json:"title"`
	Description    string    `json:"description,omitempty"`
	Service        string    `json:"service,omitempty"`
	Severity       Severity  `json:"severity"`
	SeverityReason string    `json:"severity_reason"`
	Status         Status    `json:"status"`
	Phase          Phase     `json:"phase"` // the furthest phase reached
	Phases         []Mark    `json:"phases"`
	Roles          []Holder  `json:"roles,omitempty"`
	DeclaredAt     time.Time `json:"declared_at"`
	DeclaredBy     string    `json:"declared_by"`
	Source         string    `json:"source"`
	AckedAt        time.Time `json:"acked_at,omitzero"`
	AckedBy        string    `json:"acked_by,omitempty"`
	// FirstAckedAt and FirstAckedBy are the first acknowledgement, kept
	// when a reopening clears AckedAt: time to acknowledge counts from the
	// declaration to it.
	FirstAckedAt time.Time `json:"first_acked_at,omitzero"`
	FirstAckedBy string    `json:"first_acked_by,omitempty"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
	Summary      string    `json:"summary,omitempty"`
	// AckClock is when the acknowledgement deadline started running: the
	// declaration, or the last reopening.
	AckClock  time.Time `json:"ack_clock"`
	Reminders int       `json:"reminders,omitempty"` // re-announcements since AckClock
	// Channel is the war room's chat channel id, when there is one;
	// ChannelName its name, and HeaderRef the adapter's reference to the
	// pinned header message it keeps current.
	Channel     string `json:"channel,omitempty"`
	ChannelName string `json:"channel_name,omitempty"`
	HeaderRef   string `json:"header_ref,omitempty"`
	// Pins are the chat messages already added to the timeline (their refs).
	Pins []string `json:"pins,omitempty"`
	// Firing counts the alerts last seen firing (each alert's own state is
	// kept beside the incident, in its Memo, so storms do not grow it).
	Firing int `json:"firing,omitempty"`
	// NoteHashes fingerprints the recent notes, so a note that comes back
	// from an outside system (PagerDuty) is not added twice.
	NoteHashes Fingerprints `json:"note_hashes,omitempty"`
	// Actions are the follow-up action items.
	Actions []ActionItem `json:"actions,omitempty"`
	// LastUpdateAt is the last status update; Nudges the reminders to post
	// one sent since, the last at NudgedAt.
	LastUpdateAt time.Time `json:"last_update_at,omitzero"`
	Nudges       int       `json:"nudges,omitempty"`
	NudgedAt     time.Time `json:"nudged_at,omitzero"`
	// FollowUps are the after-resolution reminders already sent ("document", "review").
	FollowUps []string `json:"follow_ups,omitempty"`
	// Labels are the alert's labels when an alert declared it (runbook parameters).
	Labels map[string]string `json:"labels,omitempty"`
	// Links are external references by system ("pagerduty" → incident id).
	Links map[string]string `json:"links,omitempty"`
	// ReleaseSeen counts the events of the release in Links["release"] (the
	// one whose watch declared it) that this incident has looked at, and
	// ReleaseState is that release's state as of the last of them: what its
	// card offers (no Roll back once it is rolled back).
	ReleaseSeen  uint64    `json:"release_seen,omitempty"`
	ReleaseState string    `json:"release_state,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Drill marks a game-day incident (declare --drill).
	Drill bool `json:"drill,omitempty"`
	// Private: only its members (People and Members) see it or act on it
	// (declare --private); its war room is a private channel, never announced.
	Private bool `json:"private,omitempty"`
	// Members are the people invited to it besides those it names.
	Members []string `json:"members,omitempty"`
	// MergedInto is the incident this one was merged into as a duplicate.
	MergedInto int64     `json:"merged_into,omitempty"`
	MergedAt   time.Time `json:"merged_at,omitzero"`
	// Duplicates are the incidents merged into this one, in order;
	// Related those linked to it without merging.
	Duplicates []int64 `json:"duplicates,omitempty"`
	Related    []int64 `json:"related,omitempty"`
	// Aliases are outside references taken over from merged duplicates (an
	// alert group, a PagerDuty incident): indexed like Links, so what comes
	// for them lands here. The duplicate keeps them in its Links as a record.
	Aliases []Link `json:"aliases,omitempty"`
	// PostmortemURL is where the written postmortem lives (postmortem link).
	PostmortemURL string `json:"postmortem_url,omitempty"`
	// PublicTitle is the status page's wording of the title ("" for the
	// title); Public the updates published there, oldest first.
	PublicTitle string         `json:"public_title,omitempty"`
	Public      []PublicUpdate `json:"public,omitempty"`
	PublicCount int            `json:"public_count,omitempty"` // updates ever published (Public keeps the latest)
}

// DrillMark is what marks a drill wherever an incident is named.
const DrillMark = "🧪 DRILL"

// PrivateMark marks a private incident wherever it is named.
const PrivateMark = "🔒"

// Name is the incident's title as it is shown: a drill's and a private
// incident's marked.
func (inc *Incident) Name() string {
	name := inc.Title
	if inc.Private {
		name = PrivateMark + " " + name
	}
	if inc.Drill {
		name = DrillMark + " · " + name
	}
	return name
}

// Clone returns a copy a change to which never shows in inc, nor inc's in
// it: it shares no slice or map with inc but NoteHashes, which is only
// ever appended to and is shared clipped, so an append on either side
// copies.
func (inc *Incident) Clone() *Incident {
	c := *inc
	c.Phases = slices.Clone(inc.Phases)
	c.Roles = slices.Clone(inc.Roles)
	c.Pins = slices.Clone(inc.Pins)
	c.NoteHashes = slices.Clip(inc.NoteHashes) // shared: only ever appended to (rememberNote), and a clipped slice's append copies
	c.Actions = slices.Clone(inc.Actions)
	c.FollowUps = slices.Clone(inc.FollowUps)
	c.Labels = maps.Clone(inc.Labels)
	c.Links = maps.Clone(inc.Links)
	c.Members = slices.Clone(inc.Members)
	c.Duplicates = slices.Clone(inc.Duplicates)
	c.Related = slices.Clone(inc.Related)
	c.Aliases = slices.Clone(inc.Aliases)
	c.Public = slices.Clone(inc.Public)
	return &c
}

// Mark records when a phase was reached.
type Mark struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
}

// Holder says who holds a role.
type Holder struct {
	Role Role   `json:"role"`
	User string `json:"user"`
}

// Key is the incident's human id, "INC-7".
func (inc *Incident) Key() string { return FormatID(inc.ID) }

// FormatID turns 7 into "INC-7".
func FormatID(id int64) string { return "INC-" + strconv.FormatInt(id, 10) }

// ParseID accepts "INC-7", "inc-7", "#7" or "7".
func ParseID(text string) (int64, error) {
	t := strings.TrimSpace(text)
	if len(t) > 4 && strings.EqualFold(t[:4], "INC-") {
		t = t[4:]
	}
	t = strings.TrimPrefix(t, "#")
	id, err := strconv.ParseInt(t, 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(EInvalid, "%q is not an incident id: use INC-7 or 7", text)
	}
	return id, nil
}

// Open reports whether the incident is not resolved.
func (inc *Incident) Open() bool { return inc.Status != Resolved }

// Acked reports whether someone acknowledged the incident since it was
// declared or last reopened.
func (inc *Incident) Acked() bool { return !inc.AckedAt.IsZero() }

// FirstAck is the first acknowledgement (it survives reopening), and false
// when there was none. Incidents stored before FirstAckedAt existed give
// their current acknowledgement.
func (inc *Incident) FirstAck() (string, time.Time, bool) {
	switch {
	case !inc.FirstAckedAt.IsZero():
		return inc.FirstAckedBy, inc.FirstAckedAt, true
	case inc.Acked():
		return inc.AckedBy, inc.AckedAt, true
	}
	return "", time.Time{}, false
}

// Lead is the incident commander, or "".
func (inc *Incident) Lead() string { return inc.Holder(Commander) }

// Holder returns who holds role r, or "".
func (inc *Incident) Holder(r Role) string {
	for _, h := range inc.Roles {
		if h.Role == r {
			return h.User
		}
	}
	return ""
}

// People are the people the incident names on purpose: who declared it,
// who acknowledged it and who holds its roles. Chat adapters may notify
// them; a name that only appears in outside text (a title, a note) is not
// one of them.
func (inc *Incident) People() []string {
	out := []string{inc.DeclaredBy, inc.AckedBy}
	for _, h := range inc.Roles {
		out = append(out, h.User)
	}
	return append(out, inc.Members...)
}

// CanSee reports whether the person named may see the incident: anyone,
// unless it is private; then only the people it names (People). Sitrep
// itself and the integrations see everything.
func (inc *Incident) CanSee(who Actor) bool {
	if !inc.Private || who.Source == SourceSystem || isIntegration(who.Source) {
		return true
	}
	for _, p := range inc.People() {
		if SamePerson(p, who.Name) {
			return true
		}
	}
	return false
}

// SamePerson reports whether two names are one person: "@alice" and
// "alice", or a Slack mention with and without its label ("<@U1|alice>",
// "<@U1>").
func SamePerson(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "<@") && strings.HasSuffix(s, ">") {
			id, _, _ := strings.Cut(s[2:len(s)-1], "|")
			return "<@" + strings.ToUpper(id) + ">"
		}
		return strings.ToLower(strings.TrimPrefix(s, "@"))
	}
	na := norm(a)
	return na != "" && na == norm(b)
}

// AckDeadline is when the response time runs out.
func (inc *Incident) AckDeadline() time.Time {
	return inc.AckClock.Add(inc.Severity.ResponseTime())
}

// NextReminder is when the incident is next re-announced, and false when no
// reminder is due at all (acknowledged or resolved).
func (inc *Incident) NextReminder() (time.Time, bool) {
	if _, due, ok := inc.followUp(); ok {
		return due, true
	}
	if !inc.Open() {
		return time.Time{}, false
	}
	if inc.Acked() {
		return inc.nextNudge()
	}
	return inc.AckClock.Add(time.Duration(inc.Reminders+1) * inc.Severity.ResponseTime()), true
}

// nextNudge is when an acknowledged incident's lead is next asked for a
// status update: one cadence (of the severity it has now) after the last
// sign of life — an update, the acknowledgement, the declaration or
// reopening — or after the last nudge.
func (inc *Incident) nextNudge() (time.Time, bool) {
	every := inc.Severity.UpdateCadence()
	if every <= 0 {
		return time.Time{}, false
	}
	base, _ := inc.updateBase()
	if inc.NudgedAt.After(base) {
		base = inc.NudgedAt
	}
	return base.Add(every), true
}

// updateBase is the last sign of life the update cadence counts from, and
// what it was.
func (inc *Incident) updateBase() (time.Time, string) {
	at, what := inc.AckClock, "since it was declared"
	if inc.AckClock.After(inc.DeclaredAt) {
		what = "since it was reopened"
	}
	if inc.AckedAt.After(at) {
		at, what = inc.AckedAt, "since it was acknowledged"
	}
	if !inc.LastUpdateAt.Before(at) && !inc.LastUpdateAt.IsZero() {
		at, what = inc.LastUpdateAt, "since the last one"
	}
	return at, what
}

// Reached returns when phase p was reached, and whether it was.
func (inc *Incident) Reached(p Phase) (time.Time, bool) {
	for _, m := range inc.Phases {
		if m.Phase == p {
			return m.At, true
		}
	}
	return time.Time{}, false
}

func (inc *Incident) event(kind EventKind, by Actor, at time.Time) Event {
	return Event{Incident: inc.ID, Kind: kind, At: at, Actor: by.Name, Source: by.Source}
}

// reach marks phase p (if it is beyond the current phase) and returns its event.
func (inc *Incident) reach(p Phase, by Actor, at time.Time) []Event {
	if p.Index() <= inc.Phase.Index() {
		return nil
	}
	inc.Phase = p
	inc.Phases = append(inc.Phases, Mark{Phase: p, At: at})
	ev := inc.event(EventPhaseReached, by, at)
	ev.To = string(p)
	ev.Message = fmt.Sprintf("Phase %d/%d: %s — %s", p.Index()+1, len(Phases), p.Title(), p.Help())
	return []Event{ev}
}

func (inc *Incident) setRole(r Role, user string) (previous string) {
	for i, h := range inc.Roles {
		if h.Role == r {
			inc.Roles[i].User = user
			inc.keep(h.User)
			return h.User
		}
	}
	inc.Roles = append(inc.Roles, Holder{Role: r, User: user})
	return ""
}

// keep makes someone who worked a private incident — a lead handing over,
// whoever acknowledged before a reopening — one of its members, so they
// can still see what they worked on.
func (inc *Incident) keep(user string) {
	if inc.Private && user != "" && len(inc.Members) < MaxMembers && !slices.ContainsFunc(inc.Members, func(p string) bool { return SamePerson(p, user) }) {
		inc.Members = append(inc.Members, user)
	}
}

func (inc *Incident) mustBeOpen(what string) error {
	if !inc.Open() {
		return Errorf(EConflict, "%s is resolved: cannot %s (reopen it first)", inc.Key(), what)
	}
	return nil
}

func (inc *Incident) touch(at time.Time) { inc.UpdatedAt = at }
