package pagerduty

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Sync makes the linked PagerDuty incident follow what people do in Sitrep:
// acknowledge, resolve, add a note. Changes that came from PagerDuty are
// never sent back (no echo loop). A failure leaves the Sitrep change as it
// is, goes on the timeline, and is retried with backoff.
type Sync struct {
	client *pagerduty.Client
	from   string
	svc    *incidents.Service
	log    *slog.Logger

	// RetryBase is the first retry's delay (doubling, at most MaxRetryWait);
	// Attempts bounds the tries of one change.
	RetryBase    time.Duration
	MaxRetryWait time.Duration
	Attempts     int

	mu    sync.Mutex
	queue []task
	wake  chan struct{}
}

var _ incidents.Notifier = (*Sync)(nil)

type task struct {
	incident int64
	pdID     string
	action   string // acknowledge, resolve, note
	note     string
	attempt  int
}

// NewSync returns a Sync calling the REST API at apiURL (PagerDuty's when
// empty) as the user whose email is from.
func NewSync(token, from, apiURL string, svc *incidents.Service, log *slog.Logger) *Sync {
	opts := []pagerduty.ClientOptions{}
	if apiURL != "" {
		opts = append(opts, pagerduty.WithAPIEndpoint(apiURL))
	}
	return &Sync{client: pagerduty.NewClient(token, opts...), from: from, svc: svc, log: log,
		RetryBase: 2 * time.Second, MaxRetryWait: 5 * time.Minute, Attempts: 10, wake: make(chan struct{}, 1)}
}

// Notify queues the PagerDuty side of Sitrep's own changes.
func (s *Sync) Notify(_ context.Context, inc *incidents.Incident, events []incidents.Event) {
	pdID := inc.Links[LinkSystem]
	if pdID == "" {
		return
	}
	for _, ev := range events {
		if ev.Source == incidents.SourcePagerDuty {
			continue // it came from PagerDuty: sending it back would loop
		}
		t := task{incident: inc.ID, pdID: pdID}
		switch ev.Kind {
		case incidents.EventAcknowledged:
			t.action = "acknowledge"
		case incidents.EventResolved:
			t.action = "resolve"
		case incidents.EventNote:
			t.action, t.note = "note", ev.Message
		default:
			continue
		}
		s.push(t)
	}
}

func (s *Sync) push(t task) {
	s.mu.Lock()
	s.queue = append(s.queue, t)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start sends queued changes until ctx ends.
func (s *Sync) Start(ctx context.Context) error {
	for {
		s.mu.Lock()
		var t task
		ok := len(s.queue) > 0
		if ok {
			t, s.queue = s.queue[0], s.queue[1:]
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		s.run(ctx, t)
	}
}

func (s *Sync) run(ctx context.Context, t task) {
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := s.call(callCtx, t)
	cancel()
	what := map[string]string{"acknowledge": "acknowledgement", "resolve": "resolution", "note": "note"}[t.action]
	if err == nil {
		s.record(ctx, t, incidents.EventSynced, fmt.Sprintf("%s sent to PagerDuty %s", what, t.pdID))
		return
	}
	t.attempt++
	s.log.Warn("pagerduty sync failed", "incident", incidents.FormatID(t.incident), "action", t.action, "attempt", t.attempt, "err", err)
	if t.attempt == 1 {
		s.record(ctx, t, incidents.EventSyncFailed, fmt.Sprintf("PagerDuty did not take the %s (%v); retrying", what, err))
	}
	if t.attempt >= s.Attempts {
		s.record(ctx, t, incidents.EventSyncFailed, fmt.Sprintf("gave up sending the %s to PagerDuty after %d tries; do it there by hand", what, t.attempt))
		return
	}
	wait := min(s.RetryBase<<(t.attempt-1), s.MaxRetryWait)
	time.AfterFunc(wait, func() {
		if ctx.Err() == nil {
			s.push(t)
		}
	})
}

func (s *Sync) call(ctx context.Context, t task) error {
	switch t.action {
	case "acknowledge", "resolve":
		status := map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[t.action]
		_, err := s.client.ManageIncidentsWithContext(ctx, s.from, []pagerduty.ManageIncidentsOptions{{ID: t.pdID, Status: status}})
		return err
	case "note":
		_, err := s.client.CreateIncidentNoteWithContext(ctx, t.pdID, pagerduty.IncidentNote{
			Content: t.note, User: pagerduty.APIObject{Summary: s.from},
		})
		return err
	}
	return fmt.Errorf("unknown action %q", t.action)
}

func (s *Sync) record(ctx context.Context, t task, kind incidents.EventKind, msg string) {
	_, _, err := s.svc.Change(ctx, t.incident, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.Record(kind, msg, map[string]string{"pagerduty_incident": t.pdID, "action": t.action}, incidents.System, now)
	})
	if err != nil {
		s.log.Error("pagerduty sync result not recorded", "incident", incidents.FormatID(t.incident), "err", err)
	}
}
