package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/webhook"
)

// MaxBody is the largest webhook body accepted (PagerDuty's are a few KiB).
const MaxBody = 1 << 20

// MaxEventAge is how old an event may be and still be applied: shorter than
// the seven days its dedup key is kept, so no replay outlives its key.
const MaxEventAge = 6 * 24 * time.Hour

// LinkSystem is the link name under which a Sitrep incident records its
// PagerDuty incident id.
const LinkSystem = "pagerduty"

// Receiver is the POST /webhooks/pagerduty handler.
type Receiver struct {
	svc     *incidents.Service
	secrets [][]byte
	log     *slog.Logger
	timeout time.Duration
	// Runbook, when set, names the runbook to offer for a new incident's title.
	Runbook func(title string) string
}

// NewReceiver checks signatures against every secret (rotation).
func NewReceiver(svc *incidents.Service, secrets []string, log *slog.Logger) *Receiver {
	r := &Receiver{svc: svc, log: log, timeout: 4 * time.Second}
	for _, s := range secrets {
		if s = strings.TrimSpace(s); s != "" {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	return r
}

// ServeHTTP verifies, parses and records one event; it answers 2xx only
// once the change is durably stored, and within PagerDuty's 5 s.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, ok := webhook.ReadBody(w, req, MaxBody)
	if !ok {
		return
	}
	if !Verify(body, req.Header.Get(SignatureHeader), r.secrets) {
		r.log.Warn("pagerduty webhook refused: missing or bad signature", "remote", req.RemoteAddr)
		webhook.Answer(w, http.StatusUnauthorized, map[string]any{"error": "missing or bad " + SignatureHeader})
		return
	}
	ev, err := Parse(body)
	if err != nil {
		webhook.Answer(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	if age := r.svc.Now().Sub(ev.OccurredAt); !ev.OccurredAt.IsZero() && age > MaxEventAge {
		// v3 signatures carry no timestamp: a captured event replayed after its
		// dedup key expired would act again. PagerDuty itself gives up long before.
		r.log.Warn("pagerduty event older than the replay window; acknowledged, not applied", "event", ev.ID, "type", ev.Type, "occurred_at", ev.OccurredAt, "age", age.Round(time.Hour))
		webhook.Answer(w, http.StatusAccepted, map[string]any{"ignored": "older than " + MaxEventAge.String() + ": a replay"})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.timeout)
	defer cancel()
	res, handled, err := r.Apply(ctx, ev)
	switch {
	case err != nil:
		r.log.Error("pagerduty event not recorded; PagerDuty will retry", "event", ev.ID, "type", ev.Type, "err", err)
		webhook.Answer(w, http.StatusServiceUnavailable, map[string]any{"error": "not recorded, retry"})
	case !handled:
		webhook.Answer(w, http.StatusAccepted, map[string]any{"ignored": ev.Type})
	default:
		out := webhook.Stored{Created: res.Created, Duplicate: res.Duplicate, Events: len(res.Events)}
		if res.Incident != nil { // a duplicate is answered without looking the incident up
			out.Incident = res.Incident.Key()
		}
		webhook.Answer(w, http.StatusAccepted, out)
	}
}

// Apply records one PagerDuty event: handled is false for events Sitrep
// does not act on (other types, or incidents it never saw triggered).
func (r *Receiver) Apply(ctx context.Context, ev Event) (incidents.Result, bool, error) {
	change, create := r.change(ev)
	if change == nil && create == nil {
		return incidents.Result{}, false, nil
	}
	res, err := r.svc.Apply(ctx, func(now time.Time) incidents.Write {
		w := incidents.Write{Dedup: "pagerduty:" + ev.ID, Link: incidents.Link{System: LinkSystem, Ref: ev.Incident.ID}}
		if change != nil {
			w.Change = func(inc *incidents.Incident, _ incidents.Memo) ([]incidents.Event, error) {
				if own := inc.Links[LinkSystem]; own != ev.Incident.ID && ev.Type != "incident.annotated" {
					// It came through a merged duplicate's link: the survivor
					// hears of it, but a duplicate's resolution (Sitrep's own,
					// echoed back) must not resolve the survivor.
					return inc.Record(incidents.EventDuplicateUpdate, fmt.Sprintf("PagerDuty %s (a merged duplicate's): %s", ev.Incident.ID, strings.TrimPrefix(ev.Type, "incident.")),
						map[string]string{"pagerduty_incident": ev.Incident.ID, "pagerduty_event": ev.Type}, incidents.Actor{Name: orDefault(ev.Agent, "PagerDuty"), Source: incidents.SourcePagerDuty}, now)
				}
				return tolerate(change(inc, now))
			}
		}
		if create != nil {
			w.Create = func() (*incidents.Incident, []incidents.Event, error) { return create(now) }
		}
		return w
	})
	if errors.Is(err, incidents.ErrNotFound) {
		r.log.Info("pagerduty event for an incident Sitrep does not track", "type", ev.Type, "pagerduty_incident", ev.Incident.ID)
		return res, false, nil
	}
	return res, err == nil, err
}

// tolerate turns a transition that does not apply (acknowledging an
// acknowledged incident: often the echo of Sitrep's own change) into no change.
func tolerate(events []incidents.Event, err error) ([]incidents.Event, error) {
	if errors.Is(err, incidents.ErrConflict) {
		return nil, nil
	}
	return events, err
}

type transition func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error)

// change maps an event type to what it does in Sitrep.
func (r *Receiver) change(ev Event) (transition, func(now time.Time) (*incidents.Incident, []incidents.Event, error)) {
	by := incidents.Actor{Name: orDefault(ev.Agent, "PagerDuty"), Source: incidents.SourcePagerDuty}
	declare := func(now time.Time) (*incidents.Incident, []incidents.Event, error) {
		links := map[string]string{LinkSystem: ev.Incident.ID}
		if ev.Incident.URL != "" {
			links["pagerduty_url"] = ev.Incident.URL
		}
		if ev.Incident.Number != 0 {
			links["pagerduty_number"] = fmt.Sprint(ev.Incident.Number)
		}
		title := orDefault(ev.Incident.Title, "PagerDuty incident "+ev.Incident.ID)
		runbook := ""
		if r.Runbook != nil {
			runbook = r.Runbook(title)
		}
		return incidents.Declare(incidents.Declaration{
			Title: title, Service: ev.Incident.Service, Links: links, Runbook: runbook,
			Signals: incidents.Signals{PagerDutyPriority: ev.Incident.Priority, PagerDutyUrgency: ev.Incident.Urgency},
		}, by, now)
	}
	change, carries := r.transition(ev, by)
	switch {
	case ev.Type == "incident.triggered":
		return nil, declare
	case carries && ev.Incident.Title != "":
		// PagerDuty does not promise order: an acknowledgement (or an
		// escalation…) may come before its trigger. It carries the whole
		// incident, so the incident is declared from it, then changed.
		return change, declare
	}
	return change, nil
}

// transition is what an event on a known incident does; carries is true for
// the events whose data is the whole incident, which may come before the
// trigger and so may declare it.
func (r *Receiver) transition(ev Event, by incidents.Actor) (transition, bool) {
	switch ev.Type {
	case "incident.acknowledged":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) { return inc.Ack(by, now) }, true
	case "incident.unacknowledged":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			return inc.Unacknowledge(by, now)
		}, true
	case "incident.resolved":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			return inc.Resolve("resolved in PagerDuty", by, now)
		}, false // an incident Sitrep never saw, over already: nothing to open
	case "incident.reopened":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			return inc.Reopen("reopened in PagerDuty", by, now)
		}, false
	case "incident.priority_updated":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			if _, ok := incidents.PagerDutyPriority(ev.Incident.Priority); !ok {
				return nil, nil // removed, or a name of the account's own ("Urgent"): keep Sitrep's severity
			}
			c := incidents.Classify(incidents.Signals{PagerDutyPriority: ev.Incident.Priority})
			return inc.ChangeSeverity(c.Severity, c.Reason, by, now)
		}, true
	case "incident.escalated", "incident.reassigned", "incident.delegated":
		verb := strings.TrimPrefix(ev.Type, "incident.")
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			msg := verb + " in PagerDuty"
			if len(ev.Assignees) > 0 {
				msg += " to " + strings.Join(ev.Assignees, ", ")
			}
			if ev.Incident.Policy != "" {
				msg += " (policy " + ev.Incident.Policy + ")"
			}
			return inc.Record(incidents.EventEscalated, msg, map[string]string{"pagerduty_event": ev.Type}, by, now)
		}, true
	case "incident.annotated":
		return func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			return inc.AddNoteOnce(ev.Note, by, now) // nothing when empty, the echo of a note Sitrep sent, or one already here
		}, false // a note's data is the note, not the incident
	}
	return nil, false
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
