// Package effects works off the outbox: for one consumer (Slack rooms,
// PagerDuty sync), it runs each pending effect, in order per incident and
// several incidents at once, retries failures with capped, jittered backoff
// for as long as it takes, and removes an effect once it is done or refused
// for good. It knows nothing of Slack or PagerDuty: a consumer is a Handler.
package effects

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Handler does one effect. It may record progress in e.Progress and call
// save to keep it across a crash. A nil error finishes the effect; an error
// wrapped by Permanent finishes it as refused; any other error is retried.
type Handler func(ctx context.Context, e *incidents.Effect, save func() error) error

// permanent marks an error no retry can fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err as a refusal: the effect is not retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Config is a Runner's complete configuration.
type Config struct {
	Consumer string
	Outbox   incidents.Outbox
	Handle   Handler
	// Refused is told of an effect refused for good (to put it on the
	// timeline, where people see it); optional.
	Refused func(ctx context.Context, e incidents.Effect, err error)
	// Describe names an effect for logs and metrics ("war_room"); optional.
	Describe func(e incidents.Effect) string
	// Observe counts each attempt's outcome: done, retry, refused; optional.
	Observe func(consumer, effect, outcome string)

	Workers   int           // incidents worked on at once; default 4
	Timeout   time.Duration // one attempt; default 2m
	RetryBase time.Duration // first retry; default 1s, doubling with jitter
	RetryMax  time.Duration // at most; default 1m
	Grace     time.Duration // after stop, how long in-flight attempts may finish; default 5s
	Logger    *slog.Logger
}

// Runner works off one consumer's effects.
type Runner struct {
	cfg Config

	mu     sync.Mutex
	stats  Stats
	lastOK atomic.Int64 // unix nanos of the last finished effect
	// When the store cannot record an outcome (disk full), the runner must
	// not take the effect's stored schedule at its word: hold keeps an
	// incident back in memory, and finishing remembers effects that are done
	// or refused but not yet removed, so they are removed, not run again.
	hold      map[int64]time.Time
	finishing map[effectKey]bool
}

type effectKey struct {
	incident int64
	seq      uint64
}

// Stats describe a consumer's backlog.
type Stats struct {
	Pending int
	Oldest  time.Time // Created of the oldest pending effect; zero when none
}

// New returns a Runner; Start runs it.
func New(cfg Config) *Runner {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Minute
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Describe == nil {
		cfg.Describe = func(e incidents.Effect) string {
			if e.Event != nil {
				return string(e.Event.Kind)
			}
			return "changed"
		}
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string, string) {}
	}
	return &Runner{cfg: cfg, hold: map[int64]time.Time{}, finishing: map[effectKey]bool{}}
}

// Consumer is the runner's consumer name.
func (r *Runner) Consumer() string { return r.cfg.Consumer }

// Stats returns the backlog as of the last scan.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// LastDone is when an effect last finished (zero if none has).
func (r *Runner) LastDone() time.Time {
	if n := r.lastOK.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Start runs pending effects until ctx ends. Attempts under way then get
// Grace to finish; what is left stays pending for the next start. No
// goroutine it starts outlives it.
func (r *Runner) Start(ctx context.Context) error {
	// Calls get a context that outlives ctx by the grace period.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(r.cfg.Grace, cancelWork) })
	defer stopGrace()

	var wg sync.WaitGroup
	defer wg.Wait()
	busy := map[int64]bool{}
	finished := make(chan int64, r.cfg.Workers)
	var timer *time.Timer
	for ctx.Err() == nil {
		changed := r.cfg.Outbox.OutboxChanged() // before reading: a write after the read closes it
		pending, err := r.cfg.Outbox.Pending(ctx, r.cfg.Consumer)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Error("effects not read; retrying", "consumer", r.cfg.Consumer, "err", err)
		}
		r.record(pending)
		now := time.Now()
		var next time.Time
		for i := 0; i < len(pending); {
			id := pending[i].Incident
			j := i
			for j < len(pending) && pending[j].Incident == id {
				j++
			}
			group := pending[i:j]
			i = j
			if busy[id] {
				continue
			}
			nb := group[0].NotBefore
			r.mu.Lock()
			if h := r.hold[id]; h.After(nb) {
				nb = h
			} else if !h.IsZero() && !h.After(now) {
				delete(r.hold, id)
			}
			r.mu.Unlock()
			if nb.After(now) {
				if next.IsZero() || nb.Before(next) {
					next = nb
				}
				continue
			}
			if c, ok := r.cfg.Outbox.(incidents.Claimer); ok {
				// Claimed as soon as it is seen — a dead replica's work changes
				// hands now, even while every worker is busy — and run when one is free.
				if _, held, err := c.Claim(ctx, r.cfg.Consumer, id); err != nil || !held {
					continue
				}
			}
			if len(busy) >= r.cfg.Workers {
				continue // claimed; a finishing worker wakes the loop
			}
			busy[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.run(ctx, work, group)
				finished <- id
			}()
		}
		if err != nil {
			next = now.Add(r.cfg.RetryBase)
		}
		var wake <-chan time.Time
		if !next.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(next))
			} else {
				timer.Reset(time.Until(next))
			}
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-wake:
		case id := <-finished:
			delete(busy, id)
		}
		// drain other finished workers without blocking
		for more := true; more; {
			select {
			case id := <-finished:
				delete(busy, id)
			default:
				more = false
			}
		}
	}
	if timer != nil {
		timer.Stop()
	}
	return nil // the deferred wg.Wait lets attempts under way finish (finished has room for each)
}

func (r *Runner) record(pending []incidents.Effect) {
	st := Stats{Pending: len(pending)}
	for _, e := range pending {
		if st.Oldest.IsZero() || e.Created.Before(st.Oldest) {
			st.Oldest = e.Created
		}
	}
	r.mu.Lock()
	r.stats = st
	r.mu.Unlock()
}

// claimRetry is how long an incident another process works is left alone.
const claimRetry = 2 * time.Second

// run does one incident's effects in order until one must wait — once
// this process holds the incident's claim, when the outbox is shared.
func (r *Runner) run(stop, work context.Context, group []incidents.Effect) {
	if c, ok := r.cfg.Outbox.(incidents.Claimer); ok && len(group) > 0 {
		fresh, held, err := c.Claim(work, r.cfg.Consumer, group[0].Incident)
		if err != nil || !held {
			if err != nil {
				r.cfg.Logger.Warn("effects not claimed; retrying", "consumer", r.cfg.Consumer, "incident", incidents.FormatID(group[0].Incident), "err", err)
			}
			r.holdBack(group[0].Incident, claimRetry)
			return
		}
		group = fresh // as they are now: the previous holder may have done some
		if len(group) == 0 {
			return
		}
		if nb := group[0].NotBefore; nb.After(time.Now()) {
			r.holdBack(group[0].Incident, time.Until(nb)) // a retry its previous holder scheduled
			return
		}
	}
	for _, e := range group {
		if stop.Err() != nil {
			return // stopping: the rest stay pending
		}
		if !r.one(work, e) {
			return
		}
	}
}

// one attempts e and reports whether the incident's next effect may run.
func (r *Runner) one(work context.Context, e incidents.Effect) bool {
	name := r.cfg.Describe(e)
	log := r.cfg.Logger.With("consumer", r.cfg.Consumer, "effect", name, "incident", incidents.FormatID(e.Incident))
	// the outcome is written whatever happened to the attempt's context
	store, cancelStore := context.WithTimeout(context.WithoutCancel(work), 10*time.Second)
	defer cancelStore()
	key := effectKey{e.Incident, e.Seq}
	r.mu.Lock()
	finishing := r.finishing[key] && !e.Changed()
	r.mu.Unlock()
	if finishing { // done (or refused) before, only its removal failed
		return r.finish(store, log, e, key)
	}
	ctx, cancel := context.WithTimeout(work, r.cfg.Timeout)
	defer cancel()
	save := func() error { return r.cfg.Outbox.SaveEffect(context.WithoutCancel(ctx), e) }
	err := r.call(ctx, &e, save)
	switch {
	case err == nil:
		r.cfg.Observe(r.cfg.Consumer, name, "done")
		return r.finish(store, log, e, key)
	case IsPermanent(err):
		r.cfg.Observe(r.cfg.Consumer, name, "refused")
		log.Error("effect refused for good", "err", err)
		if r.cfg.Refused != nil {
			r.cfg.Refused(store, e, err)
		}
		return r.finish(store, log, e, key)
	default:
		r.cfg.Observe(r.cfg.Consumer, name, "retry")
		e.Attempts++
		wait := r.backoff(e.Attempts)
		e.NotBefore = time.Now().Add(wait)
		e.LastError = err.Error()
		log.Warn("effect failed; retrying", "attempt", e.Attempts, "in", wait.Round(time.Millisecond), "err", err)
		if serr := r.cfg.Outbox.SaveEffect(store, e); serr != nil {
			log.Error("effect retry not saved; held back in memory", "err", serr)
		}
		r.holdBack(e.Incident, wait) // in memory too: the stored schedule may be stale
		return false
	}
}

// finish removes a done or refused effect; if the store cannot, the effect
// is remembered as finished and its incident held back, so it is removed
// later rather than run again at once.
func (r *Runner) finish(store context.Context, log *slog.Logger, e incidents.Effect, key effectKey) bool {
	if err := r.cfg.Outbox.FinishEffect(store, e); err != nil {
		log.Error("effect finished but not removed from the outbox; removal retried", "err", err)
		r.mu.Lock()
		if !e.Changed() {
			r.finishing[key] = true
		}
		r.mu.Unlock()
		r.holdBack(e.Incident, r.backoff(1))
		return false
	}
	r.mu.Lock()
	delete(r.finishing, key)
	r.mu.Unlock()
	r.lastOK.Store(time.Now().UnixNano())
	return true
}

func (r *Runner) holdBack(id int64, d time.Duration) {
	r.mu.Lock()
	r.hold[id] = time.Now().Add(d)
	r.mu.Unlock()
}

func (r *Runner) call(ctx context.Context, e *incidents.Effect, save func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(errors.New("panic in effect handler"))
			r.cfg.Logger.Error("effect handler panicked", "consumer", r.cfg.Consumer, "panic", p)
		}
	}()
	return r.cfg.Handle(ctx, e, save)
}

// backoff is RetryBase·2^(n-1), at most RetryMax, with ±25% jitter so a
// recovering service is not hit by every retry at once.
func (r *Runner) backoff(n int) time.Duration {
	d := r.cfg.RetryMax
	if n < 30 {
		d = min(r.cfg.RetryBase<<(n-1), r.cfg.RetryMax)
	}
	j := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+j, time.Millisecond)
}
