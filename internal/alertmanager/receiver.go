package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/webhook"
)

// MaxBody is the largest notification accepted.
const MaxBody = 32 << 20 // a group of tens of thousands of alerts

// LinkSystem names the group-key link of an incident.
const LinkSystem = "alertmanager"

// Receiver is the POST /webhooks/alertmanager handler.
type Receiver struct {
	svc      *incidents.Service
	token    string
	log      *slog.Logger
	runbooks *runbooks.Set
}

// UseRunbooks attaches the matching runbook to the incidents it declares.
func (r *Receiver) UseRunbooks(set *runbooks.Set) { r.runbooks = set }

// NewReceiver returns a receiver; a non-empty token must come as a bearer token.
func NewReceiver(svc *incidents.Service, token string, log *slog.Logger) *Receiver {
	return &Receiver{svc: svc, token: token, log: log}
}

// ServeHTTP records a notification; 2xx means every alert in it is stored.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost && !authorized(req.Header.Get("Authorization"), r.token) {
		webhook.Answer(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer token"})
		return
	}
	body, ok := webhook.ReadBody(w, req, MaxBody)
	if !ok {
		return
	}
	m, err := Parse(body)
	if err != nil {
		webhook.Answer(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	res, err := r.Apply(ctx, m)
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		webhook.Answer(w, http.StatusOK, map[string]any{"ignored": "resolved alerts of a group with no open incident"})
	case err != nil:
		r.log.Error("alertmanager notification not recorded; it will retry", "group", m.GroupKey, "err", err)
		webhook.Answer(w, http.StatusServiceUnavailable, map[string]any{"error": "not recorded, retry"})
	default:
		webhook.Answer(w, http.StatusOK, webhook.Stored{Incident: res.Incident.Key(), Created: res.Created, Duplicate: res.Duplicate, Events: len(res.Events)})
	}
}

var actor = incidents.Actor{Name: "Alertmanager", Source: incidents.SourceAlertmanager}

// Apply stores a notification: the group's open incident gets each alert's
// new state; a firing group without one declares it.
func (r *Receiver) Apply(ctx context.Context, m Message) (incidents.Result, error) {
	return r.svc.Apply(ctx, func(now time.Time) incidents.Write {
		w := incidents.Write{
			Link: incidents.Link{System: LinkSystem, Ref: m.GroupKey}, OpenOnly: true,
			Probe: true, // most notifications repeat what the group already said
			Change: func(inc *incidents.Incident, memo incidents.Memo) ([]incidents.Event, error) {
				return observe(inc, memo, m, now)
			},
		}
		if m.Status == "firing" {
			w.Create = func() (*incidents.Incident, []incidents.Event, error) {
				return declare(m, r.runbooks.MatchName(m.CommonLabels["alertname"], m.CommonLabels, m.Title()), now)
			}
		}
		return w
	})
}

func declare(m Message, runbook string, now time.Time) (*incidents.Incident, []incidents.Event, error) {
	links := map[string]string{LinkSystem: m.GroupKey}
	if u := alertURL(m); u != "" {
		links["alert_url"] = u
	}
	service := m.CommonLabels["service"]
	if service == "" {
		service = m.CommonLabels["job"]
	}
	inc, events, err := incidents.Declare(incidents.Declaration{
		Title: m.Title(), Description: m.CommonAnnotations["description"], Service: service, Links: links, Runbook: runbook,
		Signals: incidents.Signals{Labels: m.CommonLabels, Text: m.Title()},
	}, actor, now)
	if err != nil {
		return nil, nil, err
	}
	return inc, events, nil // Apply hands the new incident its first alerts through Change
}

func alertURL(m Message) string {
	for _, a := range m.Alerts {
		if a.GeneratorURL != "" {
			return a.GeneratorURL
		}
	}
	return m.ExternalURL
}

// observe records each alert's state once, and the moment the whole group resolves.
func observe(inc *incidents.Incident, memo incidents.Memo, m Message, now time.Time) ([]incidents.Event, error) {
	firingBefore := inc.AlertsFiring()
	var events []incidents.Event
	folded := 0
	for _, a := range m.Alerts {
		if incidents.AlertSeen(a.Fingerprint, a.Status, a.StartsAt, memo) {
			continue // a repeat: no summary or labels to put together for it
		}
		summary := a.Annotations["summary"]
		for _, k := range []string{"message", "description"} {
			if summary == "" {
				summary = a.Annotations[k]
			}
		}
		evs, err := inc.ObserveAlert(incidents.Alert{
			Fingerprint: a.Fingerprint, Name: a.Labels["alertname"], Status: a.Status,
			StartsAt: a.StartsAt, Summary: summary, URL: a.GeneratorURL, Detail: ownLabels(a.Labels, m.CommonLabels),
		}, memo, actor, now)
		if err != nil {
			return nil, err
		}
		if len(events) >= MaxAlertEvents { // the state is kept; the event is folded into one
			folded += len(evs)
			continue
		}
		events = append(events, evs...)
	}
	if folded > 0 {
		ev, _ := inc.Record(incidents.EventAlert, fmt.Sprintf("and %d more alerts changed state in this notification (folded into this line; each alert's state is kept)", folded),
			map[string]string{"folded": strconv.Itoa(folded)}, actor, now)
		events = append(events, ev...)
	}
	if m.Status == "resolved" && firingBefore > 0 && inc.AlertsFiring() == 0 && inc.Open() {
		ev, _ := inc.Record(incidents.EventAlertsResolved, "every alert of the group has resolved; resolve the incident when the service is confirmed healthy", nil, actor, now)
		events = append(events, ev...)
	}
	return events, nil
}

// ownLabels are an alert's labels that the rest of its group does not share
// ("instance=10.0.0.7, pod=api-2"), sorted, at most four: what tells the
// alerts of one group apart on the timeline.
func ownLabels(labels, common map[string]string) string {
	var own []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if v := labels[k]; v != "" && common[k] != v && k != "alertname" {
			own = append(own, k+"="+v)
		}
	}
	if len(own) > 4 {
		own = append(own[:4], "…")
	}
	return strings.Join(own, ", ")
}
