package slackbot

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// Sender makes every Web API call Sitrep sends. It keeps each method within
// its Slack rate tier (and chat.postMessage to about one a second per
// channel) with golang.org/x/time/rate limiters, honours 429 Retry-After for
// the whole method (Slack's limits are per method and workspace), and
// retries transient failures with backoff. Do makes a call now; Go queues a
// reply behind the earlier replies to the same channel. Effects do not queue
// here: the outbox orders them per incident, so a slow topic update in one
// room never holds up a header edit in another.
type Sender struct {
	scale       float64
	retryBase   time.Duration
	maxAttempts int
	callTimeout time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	limits  map[string]*rate.Limiter
	paused  map[string]time.Time // method → no call before (Retry-After)
	queues  map[string]*queue
	pending sync.WaitGroup
	base    context.Context // queued replies run under it; cancelled a grace period after stop
	stop    context.CancelFunc

	observe func(method string, err error) // after each final outcome
}

// perMinute is each method's Slack tier: Tier 2 ≈ 20/min, Tier 3 ≈ 50/min,
// Tier 4 ≈ 100/min. Methods not listed are treated as Tier 3.
var perMinute = map[string]float64{
	"conversations.create":   20,
	"pins.add":               20,
	"conversations.setTopic": 20,
	"bookmarks.add":          20,
	"bookmarks.list":         50,
	"conversations.invite":   50,
	"chat.update":            50,
	"conversations.history":  50,
	"conversations.archive":  20,
	"chat.postEphemeral":     100,
	"chat.getPermalink":      100,
	"views.open":             100,
	"auth.test":              100,
	"chat.postMessage":       600, // workspace-wide; the per-channel limit below is the one that bites
}

// tierMargin is the share of a tier the sender uses.
const tierMargin = 0.9

// postPerChannel is chat.postMessage's limit in one channel.
const postPerChannel = 60 // per minute

// SenderConfig tunes a Sender. Zero values take the defaults.
type SenderConfig struct {
	// RateScale multiplies every rate (tests and load runs against a test
	// server use large values). Default 1: Slack's published tiers.
	RateScale   float64
	RetryBase   time.Duration // first backoff after a transient failure; default 500ms
	MaxAttempts int           // default 5
	CallTimeout time.Duration // each attempt; default 10s
	Logger      *slog.Logger
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) *Sender {
	s := &Sender{scale: cfg.RateScale, retryBase: cfg.RetryBase, maxAttempts: cfg.MaxAttempts, callTimeout: cfg.CallTimeout,
		log: cfg.Logger, limits: map[string]*rate.Limiter{}, paused: map[string]time.Time{}, queues: map[string]*queue{}, observe: func(string, error) {}}
	s.base, s.stop = context.WithCancel(context.Background())
	if s.scale <= 0 {
		s.scale = 1
	}
	if s.retryBase <= 0 {
		s.retryBase = 500 * time.Millisecond
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 5
	}
	if s.callTimeout <= 0 {
		s.callTimeout = 10 * time.Second
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

type job struct {
	run func(ctx context.Context)
}

type queue struct {
	jobs    []*job
	running bool
}

// Do makes one call now (rate-limited and retried) and returns its outcome.
func (s *Sender) Do(ctx context.Context, method, channel string, call func(ctx context.Context) error) error {
	return s.attempt(ctx, method, channel, call, false)
}

// DoOnce is Do for a call that must not be made twice (a post, a create):
// it is retried only when Slack certainly did not act — a 429, a refused
// connection. Any other failure is returned, for the caller to find out
// whether Slack acted before it tries again.
func (s *Sender) DoOnce(ctx context.Context, method, channel string, call func(ctx context.Context) error) error {
	return s.attempt(ctx, method, channel, call, true)
}

// Go queues a call for a channel without waiting for it: it runs after the
// calls queued before it for that channel (a person's replies stay in
// order), bounded by the Sender's attempts and call timeout.
func (s *Sender) Go(ctx context.Context, method, channel string, call func(ctx context.Context) error) {
	s.Queue(channel, func(ctx context.Context) {
		if err := s.attempt(ctx, method, channel, call, false); err != nil {
			s.log.Warn("slack reply not delivered", "method", method, "channel", channel, "err", err)
		}
	})
}

// Queue runs fn after the work queued before it for channel, without
// waiting: a reply of several calls (an upload, then a message) keeps its
// place. fn's context ends after two minutes, or a grace period after stop.
func (s *Sender) Queue(channel string, fn func(ctx context.Context)) {
	j := &job{run: fn}
	s.mu.Lock()
	q := s.queues[channel]
	if q == nil {
		q = &queue{}
		s.queues[channel] = q
	}
	q.jobs = append(q.jobs, j)
	if !q.running {
		q.running = true
		s.pending.Add(1)
		go s.drain(channel, q)
	}
	s.mu.Unlock()
}

// PausedUntil is when method may be called again after a 429 (zero: not paused).
func (s *Sender) PausedUntil(method string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused[method]
}

// Wait blocks until every queued call has run (shutdown, tests).
func (s *Sender) Wait() { s.pending.Wait() }

// StopAfter gives queued calls grace to finish once ctx ends, then cancels them.
func (s *Sender) StopAfter(ctx context.Context, grace time.Duration) {
	context.AfterFunc(ctx, func() { time.AfterFunc(grace, s.stop) })
}

// drain runs one channel's calls in order; it ends when the queue is empty.
func (s *Sender) drain(channel string, q *queue) {
	defer s.pending.Done()
	for {
		s.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			delete(s.queues, channel)
			s.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.base, 2*time.Minute)
		j.run(ctx)
		cancel()
	}
}

// wait takes a token from the method's (and the channel's) limiter, after
// any Retry-After pause Slack asked for.
func (s *Sender) wait(ctx context.Context, method, channel string) error {
	for {
		s.mu.Lock()
		until := s.paused[method]
		s.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if err := s.limiter(method, perMinute[method]).Wait(ctx); err != nil {
		return err
	}
	if method == "chat.postMessage" && channel != "" {
		return s.limiter(method+" "+channel, postPerChannel).Wait(ctx)
	}
	return nil
}

func (s *Sender) attempt(ctx context.Context, method, channel string, call func(ctx context.Context) error, once bool) error {
	var err error
	for i := 0; i < s.maxAttempts; i++ {
		if err = s.wait(ctx, method, channel); err != nil {
			return err
		}
		callCtx, cancel := context.WithTimeout(ctx, s.callTimeout)
		err = call(callCtx)
		cancel()
		if err == nil {
			s.observe(method, nil)
			return nil
		}
		wait, retry := s.retryAfter(err, i)
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			i-- // a 429 is Slack pacing us, not a failure: it does not use up an attempt
			s.mu.Lock()
			if until := time.Now().Add(wait); until.After(s.paused[method]) {
				s.paused[method] = until
			}
			s.mu.Unlock()
		}
		if once && !errors.As(err, &rl) && !notSent(err) {
			break // Slack may have acted: the caller looks before trying again
		}
		if !retry || ctx.Err() != nil {
			break
		}
		s.log.Debug("slack call retried", "method", method, "attempt", i+1, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	s.observe(method, err)
	return err
}

// notSent reports an error that happened before the request reached Slack.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryAfter says whether err is worth another try, and when.
func (s *Sender) retryAfter(err error, attempt int) (time.Duration, bool) {
	backoff := s.retryBase << attempt
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, 0), true
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		return backoff, status.Code >= 500
	}
	var resp slack.SlackErrorResponse
	if errors.As(err, &resp) {
		switch resp.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited":
			return backoff, true
		}
		return 0, false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return backoff, true
	}
	return 0, false
}

func (s *Sender) limiter(key string, perMin float64) *rate.Limiter {
	if perMin == 0 {
		perMin = 50
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits[key]
	if l == nil {
		// Slack tolerates short bursts; half of what the test server allows
		// (a tenth of a minute's calls) stays well inside them. The rate keeps
		// a tenth below the tier: calls that arrive at Slack closer together
		// than they left (a slow moment here, a fast one on the way) use up
		// the tier's slack, and the margin wins it back within ten calls.
		burst := max(1, int(perMin/20))
		l = rate.NewLimiter(rate.Limit(perMin*s.scale/60*tierMargin), burst)
		s.limits[key] = l
	}
	return l
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
