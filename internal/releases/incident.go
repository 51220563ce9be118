package releases

import (
	"context"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// toldKinds are the release events its breach's incident gets on its
// timeline: what was done about the breach and how the release ended —
// the postmortem is written from that timeline.
var toldKinds = map[string]bool{EvStep: true, EvRollout: true, EvRollback: true, EvAborted: true, EvVerified: true}

// tellIncident records on r's incident what r did since the incident last
// looked (each step, rollout and its end, under the release's key) and,
// with them, r's state, which its card shows (no Roll back once rolled
// back). The incident counts what it has seen (ReleaseSeen) in the same
// write, so a retry after a crash adds nothing twice; tellRecent is that
// retry.
func (s *Service) tellIncident(ctx context.Context, r *Release) {
	if s.cfg.Incidents == nil || r.Incident == 0 {
		return
	}
	inc, err := s.cfg.Incidents.Get(ctx, r.Incident)
	if err != nil {
		s.cfg.Logger.Warn("releases: read the incident to tell it", "release", r.Key(), "incident", incidents.FormatID(r.Incident), "err", err)
		return
	}
	if len(told(inc, r)) == 0 {
		return // its state moves only with events it is told of (a rollback's end among them)
	}
	_, _, err = s.cfg.Incidents.Change(ctx, r.Incident, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		var events []incidents.Event
		for _, ev := range told(inc, r) {
			by := incidents.System
			if ev.Actor != "" {
				by = incidents.Actor{Name: ev.Actor, Source: incidents.SourceSystem} // relayed by Sitrep
			}
			recorded, _ := inc.Record(incidents.EventRelease, r.Key()+": "+ev.Text,
				map[string]string{"release": r.Key(), "kind": ev.Kind, "at": ev.At.Format(time.RFC3339)}, by, now)
			events = append(events, recorded...)
		}
		if len(events) == 0 {
			return nil, nil // told meanwhile (another replica)
		}
		inc.ReleaseSeen, inc.ReleaseState = r.Recorded, string(r.State)
		return events, nil
	})
	if err != nil {
		s.cfg.Logger.Warn("releases: tell the incident (retried at the next start)", "release", r.Key(), "incident", incidents.FormatID(r.Incident), "err", err)
	}
}

// told are r's events the incident has not yet seen and gets: those of
// the kinds it is told of, recorded since it was declared.
func told(inc *incidents.Incident, r *Release) []Event {
	seen := max(inc.ReleaseSeen, incidentFrom(r))
	if inc.Links[LinkRelease] != r.Key() || r.Recorded <= seen {
		return nil
	}
	var out []Event
	for _, ev := range r.After(seen) {
		if toldKinds[ev.Kind] {
			out = append(out, ev)
		}
	}
	return out
}

// incidentFrom is r.IncidentFrom or, for a release linked to its incident
// before that was kept, the count up to the event of the declaration (all
// of them when the timeline no longer has it): nothing from before is told.
func incidentFrom(r *Release) uint64 {
	if r.IncidentFrom > 0 {
		return r.IncidentFrom
	}
	for i := len(r.Events) - 1; i >= 0; i-- {
		if r.Events[i].Kind == EvBreach {
			return r.Recorded - uint64(len(r.Events)-1-i)
		}
	}
	return r.Recorded
}

// tellRecent tells the recent releases' incidents what a crash kept from
// them.
func (s *Service) tellRecent(ctx context.Context) {
	recent, err := s.List(ctx, Filter{Limit: 100})
	if err != nil {
		return
	}
	for _, r := range recent {
		s.tellIncident(ctx, r)
	}
}
