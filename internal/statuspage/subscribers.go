package statuspage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Consumer is the subscriber webhooks' name in the outbox.
const Consumer = "status-webhooks"

// Signature headers of a delivery: the HMAC-SHA256 of "<timestamp>.<body>"
// with the shared secret, hex, as "sha256=…"; the timestamp in Unix
// seconds; and the delivery id (the same on every retry: a subscriber
// that sees it twice drops the second).
const (
	SignatureHeader = "X-Sitrep-Signature"
	TimestampHeader = "X-Sitrep-Timestamp"
	DeliveryHeader  = "X-Sitrep-Delivery"
)

// Subscription is the webhooks' outbox subscription: every public update.
func Subscription() incidents.Subscription {
	return incidents.Subscription{Consumer: Consumer, Events: func(inc *incidents.Incident, ev incidents.Event) bool {
		return ev.Kind == incidents.EventPublished && !inc.Private && !inc.Drill
	}}
}

// Sign is the signature header's value for body sent at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery is what a subscriber receives for one public update.
type Delivery struct {
	ID       string    `json:"id"`
	Incident string    `json:"incident"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"`
	URL      string    `json:"url"` // the incident's page, relative to the status page
}

// Notifier posts each public update to the subscribers, through the outbox:
// written with the update itself, retried with backoff until each
// subscriber answers 2xx (or refuses for good, 4xx), surviving restarts.
// Each subscriber done is saved in the effect's progress, so a retry or a
// restart sends only to those that have not taken it.
type Notifier struct {
	urls   []string
	secret []byte
	client *http.Client
	svc    *incidents.Service
	log    *slog.Logger
	runner *effects.Runner
}

// NotifierConfig is a Notifier's complete configuration.
type NotifierConfig struct {
	URLs    []string
	Secret  string
	Service *incidents.Service
	Outbox  incidents.Outbox
	Logger  *slog.Logger
	Effects effects.Config
	Client  *http.Client // default: 10 s timeout, no redirects
}

// NewNotifier returns a Notifier; Start runs it.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	n := &Notifier{urls: cfg.URLs, secret: []byte(cfg.Secret), client: cfg.Client, svc: cfg.Service, log: cfg.Logger}
	ec := cfg.Effects
	ec.Consumer, ec.Outbox, ec.Handle, ec.Logger = Consumer, cfg.Outbox, n.handle, cfg.Logger
	ec.Describe = func(incidents.Effect) string { return "public update" }
	n.runner = effects.New(ec)
	return n
}

// Runner is the notifier's outbox runner (metrics, readiness).
func (n *Notifier) Runner() *effects.Runner { return n.runner }

// Start delivers pending updates until ctx ends.
func (n *Notifier) Start(ctx context.Context) error { return n.runner.Start(ctx) }

func (n *Notifier) handle(ctx context.Context, e *incidents.Effect, save func() error) error {
	if e.Event == nil || e.Event.Kind != incidents.EventPublished {
		return nil
	}
	inc, err := n.svc.Get(ctx, e.Incident)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !Public(inc) {
		return nil
	}
	ev := e.Event
	d := Delivery{ID: fmt.Sprintf("%s-%d", inc.Key(), ev.Seq), Incident: inc.Key(), Title: cmp.Or(ev.Fields["public_title"], inc.PublicName()),
		Status: ev.To, Message: ev.Message, At: ev.At, URL: "/status/incidents/" + inc.Key()}
	body, err := json.Marshal(d)
	if err != nil {
		return effects.Permanent(err)
	}
	if e.Progress == nil {
		e.Progress = map[string]string{}
	}
	var failed error
	for i, url := range n.urls {
		key := "sent" + strconv.Itoa(i)
		if e.Progress[key] != "" {
			continue
		}
		err := n.post(ctx, url, d.ID, body)
		var refused refusal
		switch {
		case errors.As(err, &refused):
			n.log.Warn("status subscriber refused the update for good", "subscriber", i, "status", int(refused), "delivery", d.ID)
			e.Progress[key] = "refused"
		case err != nil:
			n.log.Warn("status subscriber did not take the update; retrying", "subscriber", i, "delivery", d.ID, "err", err)
			failed = err
			continue
		default:
			e.Progress[key] = "1"
		}
		if err := save(); err != nil {
			return err
		}
	}
	return failed
}

// refusal is a subscriber's 4xx other than 408 and 429: no retry helps.
type refusal int

func (r refusal) Error() string { return "HTTP " + strconv.Itoa(int(r)) }

func (n *Notifier) post(ctx context.Context, url, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return refusal(0)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sitrep status page")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(DeliveryHeader, id)
	req.Header.Set(SignatureHeader, Sign(n.secret, ts, body))
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != 408 && c != 429:
		return refusal(c)
	}
	return fmt.Errorf("HTTP %d", resp.StatusCode)
}
