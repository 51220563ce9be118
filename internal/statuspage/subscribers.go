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
	"sync"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Consumer names a subscriber's deliveries in the outbox: one consumer per
// subscriber ("status-webhook:" and a hash of its URL), so one that is down
// holds up nobody else, and a change of the list keeps each one's place.
func Consumer(url string) string {
	sum := sha256.Sum256([]byte(url))
	return "status-webhook:" + hex.EncodeToString(sum[:6])
}

// GiveUpAfter is how long an update is retried to a subscriber that does
// not take it; then the timeline says it was given up.
const GiveUpAfter = 24 * time.Hour

// Signature headers of a delivery: the HMAC-SHA256 of "<timestamp>.<body>"
// with the shared secret, hex, as "sha256=…"; the timestamp in Unix
// seconds; and the delivery id (the same on every retry: a subscriber
// that sees it twice drops the second).
const (
	SignatureHeader = "X-Sitrep-Signature"
	TimestampHeader = "X-Sitrep-Timestamp"
	DeliveryHeader  = "X-Sitrep-Delivery"
)

// Subscriptions are the webhooks' outbox subscriptions, one per
// subscriber: every public update.
func Subscriptions(urls []string) []incidents.Subscription {
	var out []incidents.Subscription
	for _, u := range urls {
		out = append(out, incidents.Subscription{Consumer: Consumer(u), Events: func(inc *incidents.Incident, ev incidents.Event) bool {
			return ev.Kind == incidents.EventPublished && !inc.Private && !inc.Drill
		}})
	}
	return out
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
// written with the update itself, retried with backoff until the subscriber
// answers 2xx, refuses for good (a 3xx or a 4xx other than 408/429), or
// GiveUpAfter passes — each of those last on the incident's timeline —
// surviving restarts. Each subscriber has its own consumer and runner.
type Notifier struct {
	secret  []byte
	client  *http.Client
	svc     *incidents.Service
	log     *slog.Logger
	runners []*effects.Runner
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
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Client.Timeout <= 0 {
		c := *cfg.Client
		c.Timeout = 10 * time.Second
		cfg.Client = &c
	}
	n := &Notifier{secret: []byte(cfg.Secret), client: cfg.Client, svc: cfg.Service, log: cfg.Logger}
	for i, url := range cfg.URLs {
		ec := cfg.Effects
		ec.Consumer, ec.Outbox, ec.Logger = Consumer(url), cfg.Outbox, cfg.Logger.With("subscriber", i+1)
		ec.Handle = func(ctx context.Context, e *incidents.Effect, _ func() error) error { return n.handle(ctx, url, e) }
		ec.Refused = func(ctx context.Context, e incidents.Effect, err error) { n.refused(ctx, i+1, e, err) }
		ec.Describe = func(incidents.Effect) string { return "public update" }
		n.runners = append(n.runners, effects.New(ec))
	}
	return n
}

// Runners are the notifier's outbox runners (metrics, readiness).
func (n *Notifier) Runners() []*effects.Runner { return n.runners }

// Start delivers pending updates until ctx ends.
func (n *Notifier) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range n.runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.Start(ctx) }()
	}
	wg.Wait()
	return nil
}

func (n *Notifier) handle(ctx context.Context, url string, e *incidents.Effect) error {
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
	d := Delivery{ID: inc.Key() + "-" + cmp.Or(ev.Fields["update"], strconv.FormatUint(ev.Seq, 10)), Incident: inc.Key(), Title: cmp.Or(ev.Fields["public_title"], inc.PublicName()),
		Status: ev.To, Message: ev.Message, At: ev.At, URL: "/status/incidents/" + inc.Key()}
	body, err := json.Marshal(d)
	if err != nil {
		return effects.Permanent(err)
	}
	err = n.post(ctx, url, d.ID, body)
	var refused refusal
	switch {
	case errors.As(err, &refused):
		return effects.Permanent(err)
	case err != nil && time.Since(e.Created) > GiveUpAfter:
		return effects.Permanent(fmt.Errorf("no answer for %s (last: %w)", GiveUpAfter, err))
	}
	return err
}

// refused puts a delivery given up on the incident's timeline.
func (n *Notifier) refused(ctx context.Context, subscriber int, e incidents.Effect, err error) {
	msg := fmt.Sprintf("Status subscriber %d did not take the public update: %v", subscriber, err)
	if _, _, rerr := n.svc.Change(ctx, e.Incident, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.Record(incidents.EventEffectFailed, msg, map[string]string{"system": "status-webhook"}, incidents.System, now)
	}); rerr != nil {
		n.log.Error("status subscriber failure not recorded", "incident", incidents.FormatID(e.Incident), "err", rerr)
	}
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
	case c >= 300 && c < 400: // a redirect is a wrong address: said, not followed
		return fmt.Errorf("%w: it redirects to %q; give the final address in SITREP_STATUS_WEBHOOKS", refusal(c), resp.Header.Get("Location"))
	case c >= 400 && c < 500 && c != 408 && c != 429:
		return refusal(c)
	}
	return fmt.Errorf("HTTP %d", resp.StatusCode)
}
