package incidents

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// What the public sees: the status page shows only what someone published
// — a public title and public updates, each a status and a message. Notes,
// the timeline, people and runbook results stay inside. Drill and private
// incidents are never published.

// PublicUpdate is one update published to the status page, with the
// severity it was published under: the page's impact is what was
// published, not what the incident's severity became since.
type PublicUpdate struct {
	At       time.Time `json:"at"`
	Status   Status    `json:"status"`
	Message  string    `json:"message"`
	Severity Severity  `json:"severity,omitempty"`
}

// MaxPublicMessage bounds one public update, in characters, and
// MaxPublicBytes in bytes: it travels in a Slack button (2,000 characters at
// most) and its preview, escaped, in one Slack section (3,000).
const (
	MaxPublicMessage = 500
	MaxPublicBytes   = 1000
	maxPublicLines   = 10
)

// maxPublic bounds the public updates an incident keeps (the page shows the
// latest; the timeline keeps them all).
const maxPublic = 100

// PublicImpact is what a published incident of this severity shows on its
// component: P1 a major outage, P2 a partial one, P3 and P4 degraded
// performance.
func (s Severity) PublicImpact() string {
	switch s {
	case P1:
		return "Major outage"
	case P2:
		return "Partial outage"
	}
	return "Degraded performance"
}

// PublicName is the title the status page shows.
func (inc *Incident) PublicName() string {
	if inc.PublicTitle != "" {
		return inc.PublicTitle
	}
	return inc.Title
}

// Published reports whether anything of the incident is public.
func (inc *Incident) Published() bool { return len(inc.Public) > 0 }

// PublicStatus is the status last published, and when the incident went
// public (its first update) and was published resolved (zero when not).
func (inc *Incident) PublicStatus() (st Status, since, resolved time.Time) {
	if len(inc.Public) == 0 {
		return "", time.Time{}, time.Time{}
	}
	last := inc.Public[len(inc.Public)-1]
	if last.Status == Resolved {
		resolved = last.At
	}
	return last.Status, inc.Public[0].At, resolved
}

// Publisher reports whether who may publish for the incident: the comms
// role when someone holds it, and the lead.
func (inc *Incident) Publisher(who Actor) bool {
	for _, r := range []Role{Comms, Commander} {
		if u := inc.Holder(r); u != "" && SamePerson(u, who.Name) {
			return true
		}
	}
	return false
}

func (inc *Incident) mayPublish(by Actor) error {
	switch {
	case inc.Drill:
		return Errorf(EInvalid, "%s is a drill: a game day never goes on the status page", inc.Key())
	case inc.Private:
		return Errorf(EInvalid, "%s is private: it never goes on the status page", inc.Key())
	case !inc.Publisher(by):
		who := inc.Lead()
		if c := inc.Holder(Comms); c != "" {
			who = c + " (comms) or " + orName(who, "the lead")
		}
		return Errorf(EConflict, "only %s may publish for %s: give someone the comms role first (role %s comms @user)", orName(who, "the lead"), inc.Key(), inc.Key())
	}
	return nil
}

// CheckPublish says whether by may publish message with status st, and
// what the update would be: the preview a confirmation is bound to.
func (inc *Incident) CheckPublish(st Status, message string, by Actor) (PublicUpdate, error) {
	if err := inc.mayPublish(by); err != nil {
		return PublicUpdate{}, err
	}
	message = PublicText(message)
	switch {
	case message == "":
		return PublicUpdate{}, Errorf(EInvalid, "give the public update: what customers notice, what is being done, when the next update comes")
	case utf8.RuneCountInString(message) > MaxPublicMessage || len(message) > MaxPublicBytes:
		return PublicUpdate{}, Errorf(EInvalid, "keep a public update under %d characters (it is %d)", MaxPublicMessage, utf8.RuneCountInString(message))
	case strings.Count(message, "\n") >= maxPublicLines:
		return PublicUpdate{}, Errorf(EInvalid, "keep a public update to %d lines", maxPublicLines)
	case !st.Valid():
		return PublicUpdate{}, Errorf(EInvalid, "%q is not a status: use investigating, identified, monitoring or resolved", st)
	}
	if last, _, resolved := inc.PublicStatus(); last == Resolved && st == Resolved && !resolved.IsZero() {
		return PublicUpdate{}, Errorf(EConflict, "%s is already resolved on the status page", inc.Key())
	}
	return PublicUpdate{Status: st, Message: message, Severity: inc.Severity}, nil
}

// PublicText is a public message as it is published: each line's spaces
// collapsed, blank lines and trailing space dropped, line breaks kept.
func PublicText(message string) string {
	var lines []string
	for _, line := range strings.Split(message, "\n") {
		if l := strings.Join(strings.Fields(line), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Publish puts an update on the status page. after is how many updates
// the preview it confirms was made after (-1 for none): a preview
// confirmed twice, or after someone else published, is refused.
func (inc *Incident) Publish(st Status, message string, after int, by Actor, at time.Time) ([]Event, error) {
	u, err := inc.CheckPublish(st, message, by)
	if err != nil {
		return nil, err
	}
	if after >= 0 && after != inc.PublicCount {
		return nil, Errorf(EConflict, "%s's status page changed since that preview (an update was published): preview again", inc.Key())
	}
	inc.PublicCount++
	u.At = at
	inc.Public = append(inc.Public, u)
	if len(inc.Public) > maxPublic {
		inc.Public = append(inc.Public[:1], inc.Public[len(inc.Public)-maxPublic+1:]...) // the first says when it went public
	}
	ev := inc.event(EventPublished, by, at)
	ev.To, ev.Message = string(st), u.Message
	ev.Fields = map[string]string{"public_title": inc.PublicName(), "update": fmt.Sprint(inc.PublicCount), "severity": inc.Severity.String()}
	inc.touch(at)
	return append([]Event{ev}, inc.reach(Communicate, by, at)...), nil
}

// SetPublicTitle gives the incident a title for the status page.
func (inc *Incident) SetPublicTitle(title string, by Actor, at time.Time) ([]Event, error) {
	if err := inc.mayPublish(by); err != nil {
		return nil, err
	}
	title = strings.Join(strings.Fields(title), " ")
	switch {
	case title == "":
		return nil, Errorf(EInvalid, "give the public title: what customers would call it (\"Checkout is slow\")")
	case utf8.RuneCountInString(title) > MaxTitle:
		return nil, Errorf(EInvalid, "keep the public title under %d characters", MaxTitle)
	case title == inc.PublicTitle:
		return nil, Errorf(EConflict, "%s's public title is already %q", inc.Key(), title)
	}
	ev := inc.event(EventPublicTitle, by, at)
	ev.From, ev.To = inc.PublicName(), title
	ev.Message = "Public title: " + title
	inc.PublicTitle = title
	inc.touch(at)
	return []Event{ev}, nil
}
