package slackbot

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Sender makes every Web API call Sitrep sends. It keeps each method within
// its Slack rate tier (and chat.postMessage to about one a second per
// channel), honours 429 Retry-After, retries transient failures with
// backoff, and runs the calls for one channel strictly in the order they
// were queued.
type Sender struct {
	scale       float64
	retryBase   time.Duration
	maxAttempts int
	callTimeout time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	queues  map[string]*queue

	observe func(method string, err error) // after each final outcome
}

// perMinute is each method's Slack tier: Tier 2 ≈ 20/min, Tier 3 ≈ 50/min,
// Tier 4 ≈ 100/min. Methods not listed are treated as Tier 3.
var perMinute = map[string]float64{
	"conversations.create":   20,
	"pins.add":               20,
	"conversations.setTopic": 20,
	"bookmarks.add":          20,
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
		log: cfg.Logger, buckets: map[string]*bucket{}, queues: map[string]*queue{}, observe: func(string, error) {}}
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
	ctx     context.Context
	method  string
	channel string
	call    func(ctx context.Context) error
	done    chan error
}

type queue struct {
	jobs    []*job
	running bool
}

// Do makes one call and waits for its outcome. Calls with a channel run
// after every call queued before them for that channel.
func (s *Sender) Do(ctx context.Context, method, channel string, call func(ctx context.Context) error) error {
	if channel == "" {
		return s.attempt(ctx, method, channel, call)
	}
	// Wait for the job even when ctx ends: it sees ctx too and stops soon, and
	// the caller may read what call wrote only once call has returned.
	return <-s.enqueue(ctx, method, channel, call).done
}

// Go queues a call for a channel without waiting for it.
func (s *Sender) Go(ctx context.Context, method, channel string, call func(ctx context.Context) error) {
	s.enqueue(context.WithoutCancel(ctx), method, channel, call)
}

func (s *Sender) enqueue(ctx context.Context, method, channel string, call func(ctx context.Context) error) *job {
	j := &job{ctx: ctx, method: method, channel: channel, call: call, done: make(chan error, 1)}
	s.mu.Lock()
	q := s.queues[channel]
	if q == nil {
		q = &queue{}
		s.queues[channel] = q
	}
	q.jobs = append(q.jobs, j)
	if !q.running {
		q.running = true
		go s.drain(channel, q)
	}
	s.mu.Unlock()
	return j
}

// drain runs one channel's calls in order; it ends when the queue is empty.
func (s *Sender) drain(channel string, q *queue) {
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
		j.done <- s.attempt(j.ctx, j.method, j.channel, j.call)
	}
}

func (s *Sender) attempt(ctx context.Context, method, channel string, call func(ctx context.Context) error) error {
	var err error
	for i := 0; i < s.maxAttempts; i++ {
		if err = s.bucket(method, perMinute[method]).wait(ctx); err != nil {
			return err
		}
		if method == "chat.postMessage" && channel != "" {
			if err = s.bucket(method+" "+channel, postPerChannel).wait(ctx); err != nil {
				return err
			}
		}
		callCtx, cancel := context.WithTimeout(ctx, s.callTimeout)
		err = call(callCtx)
		cancel()
		if err == nil {
			s.observe(method, nil)
			return nil
		}
		wait, retry := s.retryAfter(err, i)
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

func (s *Sender) bucket(key string, perMin float64) *bucket {
	if perMin == 0 {
		perMin = 50
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		rate := perMin * s.scale / 60
		burst := max(1, perMin/20) // Slack tolerates short bursts; stay well inside them
		b = &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
		s.buckets[key] = b
	}
	return b
}

// bucket is a token bucket: rate tokens a second, at most burst saved up.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *bucket) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if err := sleep(ctx, need); err != nil {
			return err
		}
	}
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
