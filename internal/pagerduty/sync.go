package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Consumer is the PagerDuty sync's name in the outbox.
const Consumer = "pagerduty"

// Subscription is the sync's outbox subscription: Sitrep's own
// acknowledgements, resolutions and notes on a PagerDuty-linked incident.
// Changes that came from PagerDuty are never sent back (no echo loop).
func Subscription() incidents.Subscription {
	return incidents.Subscription{Consumer: Consumer, Events: func(inc *incidents.Incident, ev incidents.Event) bool {
		if inc.Links[LinkSystem] == "" || ev.Source == incidents.SourcePagerDuty || inc.Drill { // a drill never pages
			return false
		}
		switch ev.Kind {
		case incidents.EventAcknowledged, incidents.EventResolved, incidents.EventNote:
			return true
		}
		return false
	}}
}

// Sync makes the linked PagerDuty incident follow what people do in Sitrep:
// acknowledge, resolve, add a note. Each change is an effect in the outbox,
// written with the change itself, so it survives a restart; a failure
// leaves the Sitrep change as it is, goes on the timeline, and is retried
// with backoff until PagerDuty takes it or refuses it for good (4xx).
type Sync struct {
	client *pagerduty.Client
	from   string
	svc    *incidents.Service
	log    *slog.Logger
	runner *effects.Runner
}

// SyncConfig is a Sync's complete configuration.
type SyncConfig struct {
	Token, From string // a REST API token, and the email of the PagerDuty user it acts as
	APIURL      string // PagerDuty's when empty
	Service     *incidents.Service
	Outbox      incidents.Outbox
	Logger      *slog.Logger
	// Effects tunes the runner (retries, Observe); Consumer, Outbox and
	// Handle are set here.
	Effects effects.Config
}

// NewSync returns a Sync; Start runs it.
func NewSync(cfg SyncConfig) *Sync {
	opts := []pagerduty.ClientOptions{}
	if cfg.APIURL != "" {
		opts = append(opts, pagerduty.WithAPIEndpoint(cfg.APIURL))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sync{client: pagerduty.NewClient(cfg.Token, opts...), from: cfg.From, svc: cfg.Service, log: cfg.Logger}
	ec := cfg.Effects
	ec.Consumer, ec.Outbox, ec.Handle, ec.Refused, ec.Logger = Consumer, cfg.Outbox, s.handle, s.refused, cfg.Logger
	if ec.RetryBase == 0 {
		ec.RetryBase = 2 * time.Second
	}
	if ec.RetryMax == 0 {
		ec.RetryMax = 5 * time.Minute
	}
	ec.Describe = func(e incidents.Effect) string { return action(e) }
	s.runner = effects.New(ec)
	return s
}

// Runner is the sync's outbox runner (metrics, readiness).
func (s *Sync) Runner() *effects.Runner { return s.runner }

// Start sends pending changes until ctx ends.
func (s *Sync) Start(ctx context.Context) error { return s.runner.Start(ctx) }

func action(e incidents.Effect) string {
	if e.Event == nil {
		return "unknown"
	}
	switch e.Event.Kind {
	case incidents.EventAcknowledged:
		return "acknowledge"
	case incidents.EventResolved:
		return "resolve"
	case incidents.EventNote:
		return "note"
	}
	return "unknown"
}

var what = map[string]string{"acknowledge": "acknowledgement", "resolve": "resolution", "note": "note"}

func (s *Sync) handle(ctx context.Context, e *incidents.Effect, _ func() error) error {
	inc, err := s.svc.Get(ctx, e.Incident)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	pdID, act := inc.Links[LinkSystem], action(*e)
	if pdID == "" || act == "unknown" {
		return nil
	}
	err = s.call(ctx, act, pdID, e.Event.Message)
	if err == nil {
		// PagerDuty has it: a failure to record that is logged, not retried
		// (a note sent again would be a second note).
		rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		s.record(rec, e.Incident, pdID, act, incidents.EventSynced, fmt.Sprintf("%s sent to PagerDuty %s", what[act], pdID))
		return nil
	}
	var api pagerduty.APIError
	if errors.As(err, &api) && api.StatusCode >= 400 && api.StatusCode < 500 && api.StatusCode != 429 && api.StatusCode != 408 {
		return effects.Permanent(err)
	}
	if e.Attempts == 0 {
		s.record(ctx, e.Incident, pdID, act, incidents.EventSyncFailed, fmt.Sprintf("PagerDuty did not take the %s (%v); retrying", what[act], err))
	}
	return err
}

func (s *Sync) refused(ctx context.Context, e incidents.Effect, err error) {
	act := action(e)
	inc, gerr := s.svc.Get(ctx, e.Incident)
	if gerr != nil {
		return
	}
	pdID := inc.Links[LinkSystem]
	s.record(ctx, e.Incident, pdID, act, incidents.EventSyncFailed, fmt.Sprintf("PagerDuty refused the %s (%v); do it there by hand", what[act], err))
}

func (s *Sync) call(ctx context.Context, act, pdID, note string) error {
	switch act {
	case "acknowledge", "resolve":
		status := map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[act]
		_, err := s.client.ManageIncidentsWithContext(ctx, s.from, []pagerduty.ManageIncidentsOptions{{ID: pdID, Status: status}})
		return err
	case "note":
		_, err := s.client.CreateIncidentNoteWithContext(ctx, pdID, pagerduty.IncidentNote{
			Content: note, User: pagerduty.APIObject{Summary: s.from},
		})
		return err
	}
	return fmt.Errorf("unknown action %q", act)
}

func (s *Sync) record(ctx context.Context, id int64, pdID, act string, kind incidents.EventKind, msg string) error {
	_, _, err := s.svc.Change(ctx, id, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.Record(kind, msg, map[string]string{"pagerduty_incident": pdID, "action": act}, incidents.System, now)
	})
	if err != nil {
		s.log.Error("pagerduty sync result not recorded", "incident", incidents.FormatID(id), "err", err)
	}
	return err
}
