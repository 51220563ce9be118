// Package statuspage serves the public status page: what customers and
// colleagues see, built from the store on every request (so every replica
// shows the same) and from nothing but what someone published — a public
// title, public updates, and the severity they imply for a component.
// Notes, the timeline, people and runbook results never appear, and
// private and drill incidents are never shown.
package statuspage

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Source is where the page reads incidents; *incidents.Service is one.
type Source interface {
	List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, error)
	Get(ctx context.Context, id int64) (*incidents.Incident, error)
	Now() time.Time
}

// History is how far back the page looks: the bars under each component.
const History = 90 * 24 * time.Hour

const historyDays = 90

// State is how a component is doing, worst last.
type State int

// The states a component may be in.
const (
	Operational State = iota
	Degraded
	Partial
	Major
)

// Label is the state as a visitor reads it.
func (s State) Label() string {
	return [...]string{"Operational", "Degraded performance", "Partial outage", "Major outage"}[s]
}

// Class is the state's name in the page's styles and the JSON.
func (s State) Class() string {
	return [...]string{"operational", "degraded", "partial_outage", "major_outage"}[s]
}

// impact is what a published incident of this severity does to its component.
func impact(sev incidents.Severity) State {
	switch sev {
	case incidents.P1:
		return Major
	case incidents.P2:
		return Partial
	}
	return Degraded
}

// Page is everything the status page shows.
type Page struct {
	Title      string
	Updated    time.Time // the latest public update, or now
	Overall    State
	Components []Component
	Active     []Incident // published and not yet resolved on the page
	Past       []Incident // resolved on the page within History
}

// Component is a service the page reports on.
type Component struct {
	Name  string
	State State
	Days  []Day // the last 90, oldest first
}

// Day is one bar of a component's history.
type Day struct {
	Date  time.Time
	State State
}

// Incident is what the page says of one published incident.
type Incident struct {
	Key, Title        string
	Component         string // a configured component, or ""
	Impact            State  // as last published
	Status            incidents.Status
	Started, Resolved time.Time                // the latest stretch on the page (Resolved zero while it lasts)
	Updates           []incidents.PublicUpdate // newest first
	windows           []window
}

// window is a stretch the page showed an incident ongoing: from an update
// that was not "resolved" to the next one that was (end zero: still).
type window struct {
	start, end time.Time
	impact     State
}

// Active reports whether the incident is not yet resolved on the page.
func (i Incident) Active() bool { return i.Resolved.IsZero() }

// Public reports whether inc may appear on the page at all.
func Public(inc *incidents.Incident) bool {
	return inc.Published() && !inc.Private && !inc.Drill
}

// public is what the page shows of inc, from its published updates alone:
// each update's severity is the one it was published under, so a later
// change inside does not rewrite the page.
func public(inc *incidents.Incident, components []string) Incident {
	i := Incident{Key: inc.Key(), Title: inc.PublicName()}
	for _, c := range components {
		if strings.EqualFold(c, inc.Service) {
			i.Component = c // only a component the page reports on: an internal service name stays inside
		}
	}
	var open *window
	for _, u := range inc.Public {
		sev := cmp.Or(u.Severity, inc.Severity)
		switch {
		case u.Status != incidents.Resolved && open == nil:
			i.windows = append(i.windows, window{start: u.At, impact: impact(sev)})
			open = &i.windows[len(i.windows)-1]
		case u.Status != incidents.Resolved:
			open.impact = impact(sev) // as the latest update says
		case open != nil:
			open.end, open = u.At, nil
		}
		i.Status, i.Impact = u.Status, impact(sev)
	}
	if n := len(i.windows); n > 0 {
		i.Started, i.Resolved = i.windows[n-1].start, i.windows[n-1].end
	} else if len(inc.Public) > 0 { // published straight away as resolved
		i.Started, i.Resolved = inc.Public[0].At, inc.Public[0].At
	}
	i.Updates = slices.Clone(inc.Public)
	slices.Reverse(i.Updates)
	return i
}

// Build reads the page's incidents from src as of its clock: the published
// ones, through the store's index of them (what was never published is not
// even read).
func Build(ctx context.Context, src Source, title string, components []string) (*Page, error) {
	now := src.Now().UTC()
	published, err := src.List(ctx, incidents.Filter{Public: true})
	if err != nil {
		return nil, err
	}
	p := &Page{Title: cmp.Or(title, "Status")}
	var shown []Incident
	for _, inc := range published {
		if !Public(inc) {
			continue
		}
		pi := public(inc, components)
		if !pi.Active() && now.Sub(pi.Resolved) > History {
			continue
		}
		shown = append(shown, pi)
		if at := pi.Updates[0].At; at.After(p.Updated) {
			p.Updated = at
		}
	}
	slices.SortFunc(shown, func(a, b Incident) int { return b.Started.Compare(a.Started) })
	for _, i := range shown {
		if i.Active() {
			p.Active = append(p.Active, i)
			p.Overall = max(p.Overall, i.Impact)
		} else {
			p.Past = append(p.Past, i)
		}
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for _, name := range components {
		c := Component{Name: name, Days: make([]Day, historyDays)}
		for d := range c.Days {
			c.Days[d].Date = today.AddDate(0, 0, d-historyDays+1)
		}
		for _, i := range shown {
			if i.Component != name {
				continue
			}
			if i.Active() {
				c.State = max(c.State, i.Impact)
			}
			for _, w := range i.windows {
				end := cmp.Or(w.end, now)
				for d := range c.Days {
					from := c.Days[d].Date
					if w.start.Before(from.AddDate(0, 0, 1)) && end.After(from) {
						c.Days[d].State = max(c.Days[d].State, w.impact)
					}
				}
			}
		}
		p.Components = append(p.Components, c)
	}
	return p, nil
}

// Find returns the published incident key names, or false when there is
// none the public may see (missing, unpublished, private, a drill: all
// alike); an error only when the store cannot answer.
func Find(ctx context.Context, src Source, key string) (Incident, bool, error) {
	id, err := incidents.ParseID(key)
	if err != nil || !strings.HasPrefix(strings.ToUpper(key), "INC-") {
		return Incident{}, false, nil
	}
	inc, err := src.Get(ctx, id)
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		return Incident{}, false, nil
	case err != nil:
		return Incident{}, false, err
	case !Public(inc):
		return Incident{}, false, nil
	}
	return public(inc, nil), true, nil
}
