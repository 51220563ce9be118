// Package alertmanager receives Alertmanager's webhook (version 4): one
// Sitrep incident per alert group, severity from the labels, every alert's
// firing and resolved state on the timeline, and word to the war room when
// the whole group has resolved.
package alertmanager

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/webhook"
)

// Message is one webhook notification: a group of alerts.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of the group.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ErrMalformed is returned for a body that is not a version 4 notification.
var ErrMalformed = errors.New("malformed Alertmanager webhook")

// MaxAlertEvents is how many alerts of one notification get a timeline event
// each; the state of every alert is kept (in the memo), and the rest are
// summed up in one event. A group of any size is accepted: Alertmanager does
// not retry a 4xx, so refusing the biggest outage would lose it.
const MaxAlertEvents = 200

// Parse reads and checks a notification.
func Parse(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case m.Version != "4":
		return Message{}, fmt.Errorf("%w: version %q, want 4", ErrMalformed, m.Version)
	case m.GroupKey == "":
		return Message{}, fmt.Errorf("%w: no groupKey", ErrMalformed)
	case m.Status != "firing" && m.Status != "resolved":
		return Message{}, fmt.Errorf("%w: status %q", ErrMalformed, m.Status)
	case len(m.Alerts) == 0:
		return Message{}, fmt.Errorf("%w: no alerts", ErrMalformed)
	}
	for i := range m.Alerts {
		a := &m.Alerts[i]
		if a.Status != "firing" && a.Status != "resolved" {
			return Message{}, fmt.Errorf("%w: alert %d has status %q", ErrMalformed, i, a.Status)
		}
		if a.Fingerprint == "" {
			a.Fingerprint = fingerprint(a.Labels) // Alertmanager before 0.19 sent none
		}
	}
	return m, nil
}

// fingerprint identifies an alert by its label set.
func fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Title is what the incident is called: the group's summary, or the alert
// name with the group's other labels.
func (m Message) Title() string {
	for _, k := range []string{"summary", "message", "title"} {
		if s := strings.TrimSpace(m.CommonAnnotations[k]); s != "" {
			return s
		}
	}
	name := m.CommonLabels["alertname"]
	if name == "" {
		name = m.GroupLabels["alertname"]
	}
	if name == "" {
		name = "Alert group"
	}
	var rest []string
	for k, v := range m.GroupLabels {
		if k != "alertname" {
			rest = append(rest, k+"="+v)
		}
	}
	sort.Strings(rest)
	if len(rest) > 0 {
		name += " (" + strings.Join(rest, ", ") + ")"
	}
	return name
}

// authorized checks an optional shared bearer token in constant time.
func authorized(header, token string) bool {
	if token == "" {
		return true
	}
	return webhook.Bearer(header, token)
}
