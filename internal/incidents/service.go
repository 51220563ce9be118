package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Service applies every change to incidents: it runs the transition, stores
// the new state with its events in one transaction, then tells the notifiers.
type Service struct {
	store     Store
	clock     Clock
	log       *slog.Logger
	notifiers []Notifier
	wake      chan struct{} // nudges the reminder loop after a change
}

// Config wires a Service. Store is required; the rest have defaults.
type Config struct {
	Store     Store
	Clock     Clock        // default RealClock
	Logger    *slog.Logger // default slog.Default()
	Notifiers []Notifier
}

// NewService returns a Service over cfg.Store.
func NewService(cfg Config) *Service {
	s := &Service{store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, notifiers: cfg.Notifiers, wake: make(chan struct{}, 1)}
	if s.clock == nil {
		s.clock = RealClock{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Now is the Service's clock.
func (s *Service) Now() time.Time { return s.clock.Now() }

// Declare opens a new incident.
func (s *Service) Declare(ctx context.Context, d Declaration, by Actor) (*Incident, error) {
	now := s.clock.Now().UTC()
	if d.Request != "" || d.Origin != nil {
		// Found, not declared again: the same request replayed after a crash,
		// or a message someone else declared meanwhile.
		key := Link{System: LinkRequest, Ref: d.Request}
		if d.Origin != nil {
			key = Link{System: LinkOrigin, Ref: d.Origin.Ref}
		}
		res, err := s.store.Apply(ctx, Write{Link: key, Create: func() (*Incident, []Event, error) {
			return Declare(d, by, now)
		}})
		if err != nil {
			return nil, fmt.Errorf("declare: %w", err)
		}
		if res.Created {
			s.log.Info("incident declared", "incident", res.Incident.Key(), "severity", res.Incident.Severity.String(), "by", by.Name, "source", by.Source)
			s.changed(ctx, res.Incident, res.Events)
		}
		return res.Incident, nil
	}
	inc, events, err := Declare(d, by, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Create(ctx, inc, events); err != nil {
		return nil, fmt.Errorf("declare: %w", err)
	}
	s.log.Info("incident declared", "incident", inc.Key(), "severity", inc.Severity.String(), "by", by.Name, "source", by.Source)
	s.changed(ctx, inc, events)
	return inc, nil
}

// Change applies a transition to incident id. It is the one path every
// change takes; the named methods below are shorthands for it.
func (s *Service) Change(ctx context.Context, id int64, transition func(inc *Incident, now time.Time) ([]Event, error)) (*Incident, []Event, error) {
	now := s.clock.Now().UTC()
	inc, events, err := s.store.Update(ctx, id, func(inc *Incident) ([]Event, error) {
		return transition(inc, now)
	})
	if err != nil {
		return nil, nil, err
	}
	s.changed(ctx, inc, events)
	return inc, events, nil
}

// ChangeAll applies a transition to several incidents at once, stored in
// one transaction (a merge, a link): the incidents come in the order of ids,
// and so must the event lists the transition returns.
func (s *Service) ChangeAll(ctx context.Context, ids []int64, transition func(incs []*Incident, now time.Time) ([][]Event, error)) ([]*Incident, error) {
	now := s.clock.Now().UTC()
	incs, events, err := s.store.UpdateAll(ctx, ids, func(incs []*Incident) ([][]Event, error) {
		return transition(incs, now)
	})
	if err != nil {
		return nil, err
	}
	for i, inc := range incs {
		s.changed(ctx, inc, events[i])
	}
	return incs, nil
}

// Merge merges incident dup into incident into as a duplicate; it returns both.
func (s *Service) Merge(ctx context.Context, dup, into int64, by Actor) (*Incident, *Incident, error) {
	if dup == into {
		return nil, nil, Errorf(EInvalid, "%s cannot be merged into itself", FormatID(dup))
	}
	d, i, err := s.changePair(ctx, dup, into, by, Merge)
	if err == nil {
		s.log.Info("incident merged", "incident", d.Key(), "into", i.Key(), "by", by.Name)
	}
	return d, i, err
}

// Relate links incidents a and b; it returns both.
func (s *Service) Relate(ctx context.Context, a, b int64, by Actor) (*Incident, *Incident, error) {
	if a == b {
		return nil, nil, Errorf(EInvalid, "%s cannot be linked to itself", FormatID(a))
	}
	return s.changePair(ctx, a, b, by, Relate)
}

// changePair runs a transition of two incidents (Merge, Relate) in one transaction.
func (s *Service) changePair(ctx context.Context, a, b int64, by Actor, t func(x, y *Incident, by Actor, at time.Time) ([]Event, []Event, error)) (*Incident, *Incident, error) {
	incs, err := s.ChangeAll(ctx, []int64{a, b}, func(incs []*Incident, now time.Time) ([][]Event, error) {
		x, y, err := t(incs[0], incs[1], by, now)
		return [][]Event{x, y}, err
	})
	if err != nil {
		return nil, nil, err
	}
	return incs[0], incs[1], nil
}

// Invite adds people to incident id.
func (s *Service) Invite(ctx context.Context, id int64, users []string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) { return inc.Invite(users, by, now) })
	return inc, err
}

// Publish puts an update on incident id's public status page.
func (s *Service) Publish(ctx context.Context, id int64, st Status, message string, after int, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) { return inc.Publish(st, message, after, by, now) })
	return inc, err
}

// SetPublicTitle sets incident id's title on the status page.
func (s *Service) SetPublicTitle(ctx context.Context, id int64, title string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) { return inc.SetPublicTitle(title, by, now) })
	return inc, err
}

// LinkPostmortem records where incident id's written postmortem lives.
func (s *Service) LinkPostmortem(ctx context.Context, id int64, url string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) { return inc.LinkPostmortem(url, by, now) })
	return inc, err
}

// Apply performs a Write built for the current time (webhooks: find or
// create the linked incident, change it, once per dedup key) and notifies.
func (s *Service) Apply(ctx context.Context, build func(now time.Time) Write) (Result, error) {
	res, err := s.store.Apply(ctx, build(s.clock.Now().UTC()))
	if err != nil {
		return res, err
	}
	if res.Created {
		s.log.Info("incident declared", "incident", res.Incident.Key(), "severity", res.Incident.Severity.String(), "source", res.Incident.Source)
	}
	s.changed(ctx, res.Incident, res.Events)
	return res, nil
}

func (s *Service) changed(ctx context.Context, inc *Incident, events []Event) {
	if len(events) == 0 {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	for _, n := range s.notifiers {
		n.Notify(ctx, inc, events)
	}
}

// Ack acknowledges incident id.
func (s *Service) Ack(ctx context.Context, id int64, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) { return inc.Ack(by, now) })
	return inc, err
}

// ChangeSeverity sets incident id's severity.
func (s *Service) ChangeSeverity(ctx context.Context, id int64, sev Severity, reason string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.ChangeSeverity(sev, reason, by, now)
	})
	return inc, err
}

// ChangeStatus sets incident id's status.
func (s *Service) ChangeStatus(ctx context.Context, id int64, st Status, message string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.ChangeStatus(st, message, by, now)
	})
	return inc, err
}

// AssignRole gives a role on incident id to user.
func (s *Service) AssignRole(ctx context.Context, id int64, r Role, user string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.AssignRole(r, user, by, now)
	})
	return inc, err
}

// AddNote adds a note to incident id's timeline.
func (s *Service) AddNote(ctx context.Context, id int64, text string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.AddNote(text, by, now)
	})
	return inc, err
}

// ReachPhase moves incident id to phase p ("" for the next one).
func (s *Service) ReachPhase(ctx context.Context, id int64, p Phase, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.ReachPhase(p, by, now)
	})
	return inc, err
}

// Resolve resolves incident id.
func (s *Service) Resolve(ctx context.Context, id int64, summary string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.Resolve(summary, by, now)
	})
	return inc, err
}

// Reopen reopens resolved incident id.
func (s *Service) Reopen(ctx context.Context, id int64, reason string, by Actor) (*Incident, error) {
	inc, _, err := s.Change(ctx, id, func(inc *Incident, now time.Time) ([]Event, error) {
		return inc.Reopen(reason, by, now)
	})
	return inc, err
}

// Get returns incident id.
func (s *Service) Get(ctx context.Context, id int64) (*Incident, error) { return s.store.Get(ctx, id) }

// List returns incidents passing f, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*Incident, error) {
	return s.store.List(ctx, f)
}

// Timeline streams incident id's events in order.
func (s *Service) Timeline(ctx context.Context, id int64, fn func(Event) error) error {
	return s.store.Timeline(ctx, id, fn)
}

// ByLink finds the incident linked to an outside reference.
func (s *Service) ByLink(ctx context.Context, system, ref string) (int64, error) {
	return s.store.ByLink(ctx, system, ref)
}

// ByChannel finds the incident whose war room is channel.
func (s *Service) ByChannel(ctx context.Context, channel string) (int64, error) {
	return s.store.ByChannel(ctx, channel)
}

// RemindDue re-announces every open, unacknowledged incident whose response
// time has passed, and returns how many it re-announced and when the next
// reminder falls due (zero when none is pending). All state lives in the
// store, so a restarted Service picks up exactly where the last one stopped.
func (s *Service) RemindDue(ctx context.Context) (int, time.Time, error) {
	now := s.clock.Now().UTC()
	due, next, err := s.due(ctx, now)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("reminders: %w", err)
	}
	sent := 0
	for _, inc := range due {
		if !inc.Open() && now.Sub(inc.ResolvedAt) >= FollowUpHorizon {
			continue // a follow-up this old is not sent (a file from before the due index)
		}
		updated, events, err := s.Change(ctx, inc.ID, func(inc *Incident, now time.Time) ([]Event, error) {
			events, _ := inc.Remind(now)
			return events, nil
		})
		if err != nil {
			s.log.Error("reminder failed", "incident", inc.Key(), "err", err)
			continue
		}
		if len(events) > 0 {
			sent++
			if events[0].Kind == EventNudge {
				s.log.Info("lead asked for a status update", "incident", inc.Key(), "severity", inc.Severity.String())
			} else if events[0].Fields["about"] == "" {
				s.log.Warn("incident unacknowledged past its response time", "incident", inc.Key(), "severity", inc.Severity.String())
			}
		}
		if at, ok := updated.NextReminder(); ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return sent, next, nil
}

// FollowUpHorizon is how long after resolution a follow-up reminder
// (postmortem, review) is still sent.
const FollowUpHorizon = 30 * 24 * time.Hour

// due returns the incidents with a reminder due at now and when the next
// one after now is due: from the store's due index when it has one (the
// cost follows what is due, not history), else from every incident.
func (s *Service) due(ctx context.Context, now time.Time) ([]*Incident, time.Time, error) {
	if idx, ok := s.store.(DueIndex); ok {
		ids, next, err := idx.Due(ctx, now)
		if err == nil {
			var out []*Incident
			for _, id := range ids {
				inc, err := s.store.Get(ctx, id)
				if err != nil {
					s.log.Error("reminder: incident unreadable", "incident", FormatID(id), "err", err)
					continue
				}
				out = append(out, inc)
			}
			return out, next, nil
		}
		if !errors.Is(err, ErrNoIndex) {
			return nil, time.Time{}, err
		}
	}
	all, err := s.store.List(ctx, Filter{All: true})
	if err != nil {
		return nil, time.Time{}, err
	}
	var out []*Incident
	var next time.Time
	for _, inc := range all {
		at, ok := inc.NextReminder()
		switch {
		case !ok:
		case !at.After(now):
			out = append(out, inc)
		case next.IsZero() || at.Before(next):
			next = at
		}
	}
	return out, next, nil
}

// RunReminders re-announces unacknowledged incidents at each interval of
// their response time until ctx ends. It sleeps until the next reminder is
// due, and re-plans after every change the Service makes.
func (s *Service) RunReminders(ctx context.Context) error {
	const retry = 30 * time.Second
	for {
		_, next, err := s.RemindDue(ctx)
		var timer <-chan time.Time
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			s.log.Error("reminder scan failed", "err", err)
			timer = s.clock.After(retry)
		case !next.IsZero():
			timer = s.clock.At(next) // not After(next - Now()): the clock may have moved since RemindDue read it
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
		case <-s.wake:
		}
	}
}
