package incidents

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ActionItem is a follow-up that comes out of an incident.
type ActionItem struct {
	ID        int       `json:"id"`
	Text      string    `json:"text"`
	Owner     string    `json:"owner,omitempty"`
	Done      bool      `json:"done,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	DoneAt    time.Time `json:"done_at,omitzero"`
}

// State is "done" or "open".
func (a ActionItem) State() string {
	if a.Done {
		return "done"
	}
	return "open"
}

// MaxActions bounds the action items of one incident.
const MaxActions = 200

// AddAction records an action item, with an optional owner.
func (inc *Incident) AddAction(text, owner string, by Actor, at time.Time) ([]Event, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, Errorf(EInvalid, "an action item needs text")
	case len(text) > MaxNote:
		return nil, Errorf(EInvalid, "the action item is %d bytes long; keep it under %d", len(text), MaxNote)
	case len(inc.Actions) >= MaxActions:
		return nil, Errorf(EConflict, "%s already has %d action items", inc.Key(), MaxActions)
	}
	a := ActionItem{ID: len(inc.Actions) + 1, Text: text, Owner: owner, CreatedAt: at, CreatedBy: by.Name}
	inc.Actions = append(inc.Actions, a)
	ev := inc.event(EventActionAdded, by, at)
	ev.Message = text
	ev.Fields = map[string]string{"action": strconv.Itoa(a.ID), "owner": owner}
	inc.touch(at)
	return []Event{ev}, nil
}

// CompleteAction marks action item id done.
func (inc *Incident) CompleteAction(id int, by Actor, at time.Time) ([]Event, error) {
	if id < 1 || id > len(inc.Actions) {
		return nil, Errorf(EInvalid, "%s has no action item %d", inc.Key(), id)
	}
	a := &inc.Actions[id-1]
	if a.Done {
		return nil, Errorf(EConflict, "action item %d of %s is already done", id, inc.Key())
	}
	a.Done, a.DoneAt = true, at
	ev := inc.event(EventActionDone, by, at)
	ev.Message = a.Text
	ev.Fields = map[string]string{"action": strconv.Itoa(id), "owner": a.Owner}
	inc.touch(at)
	return []Event{ev}, nil
}

// MarkPostmortem records that the postmortem was produced: the Document phase.
func (inc *Incident) MarkPostmortem(format string, by Actor, at time.Time) ([]Event, error) {
	ev := inc.event(EventPostmortem, by, at)
	ev.Message = "postmortem exported as " + format
	inc.touch(at)
	return append([]Event{ev}, inc.reach(Document, by, at)...), nil
}

// How long after resolution Sitrep reminds the lead of the last two steps of
// the procedure: write the postmortem, then hold the review.
const (
	DocumentAfter = 24 * time.Hour
	ReviewAfter   = 3 * 24 * time.Hour
)

// followUp says which after-resolution reminder is next, and when.
func (inc *Incident) followUp() (string, time.Time, bool) {
	if inc.Open() || inc.ResolvedAt.IsZero() {
		return "", time.Time{}, false
	}
	if inc.MergedInto != 0 { // a duplicate has no postmortem of its own: its room closes
		if inc.Channel == "" || slices.Contains(inc.FollowUps, "archive") {
			return "", time.Time{}, false
		}
		return "archive", inc.MergedAt.Add(ArchiveGrace()), true
	}
	docAt, documented := inc.Reached(Document)
	if !documented {
		if slices.Contains(inc.FollowUps, "document") {
			return "", time.Time{}, false
		}
		return "document", inc.ResolvedAt.Add(DocumentAfter), true
	}
	if _, reviewed := inc.Reached(Review); reviewed || slices.Contains(inc.FollowUps, "review") {
		return "", time.Time{}, false
	}
	return "review", docAt.Add(ReviewAfter), true
}

func (inc *Incident) remindFollowUp(what string, at time.Time) []Event {
	inc.FollowUps = append(inc.FollowUps, what)
	if what == "archive" {
		ev := inc.event(EventRoomArchived, System, at)
		ev.Message = fmt.Sprintf("War room archived: %s was merged into %s %s ago", inc.Key(), FormatID(inc.MergedInto), Human(at.Sub(inc.MergedAt)))
		ev.Fields = map[string]string{"about": what, "into": FormatID(inc.MergedInto)}
		inc.touch(at)
		return []Event{ev}
	}
	ev := inc.event(EventReminder, System, at)
	lead := orName(inc.Lead(), "the team")
	switch what {
	case "document":
		ev.Message = fmt.Sprintf("%s was resolved %s ago and has no postmortem yet: %s, please write it (postmortem %s)", inc.Key(), Human(at.Sub(inc.ResolvedAt)), lead, inc.Key())
	default:
		ev.Message = fmt.Sprintf("%s's postmortem is written; %s, please hold the review and record it (phase %s review)", inc.Key(), lead, inc.Key())
	}
	ev.Fields = map[string]string{"about": what}
	inc.touch(at)
	return []Event{ev}
}
