// Package slackbot is Sitrep's Slack adapter, the only package that imports
// slack-go. It connects in socket mode (no public URL), acknowledges every
// envelope at once and does the work on a bounded pool; it renders neutral
// replies as Block Kit; and, as an incidents.Notifier, it opens a war room
// per incident and keeps its pinned header current. Every Web API call goes
// through one rate-limited Sender.
package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Handler runs a neutral request; *commands.Router is one.
type Handler interface {
	Handle(ctx context.Context, req commands.Request) commands.Reply
}

// Config wires the Slack adapter.
type Config struct {
	BotToken, AppToken string
	APIURL             string   // Web API base; default https://slack.com/api/
	Responders         []string // user ids invited to every war room
	AnnounceChannel    string   // channel id where new P1/P2 incidents are announced
	Workers            int      // envelopes handled at once; default 8
	JobTimeout         time.Duration
	Sender             SenderConfig
	Logger             *slog.Logger
}

// Bot is the running Slack adapter.
type Bot struct {
	cfg     Config
	api     *slack.Client
	sm      *socketmode.Client
	send    *Sender
	handler Handler
	svc     *incidents.Service
	log     *slog.Logger

	jobs      chan func(context.Context)
	groupsMu  sync.Mutex
	groups    map[string]groupMembers // user group id → members, cached
	threadsMu sync.Mutex
	threads   map[string]string // channel/thread key → the thread's root ts
	orderMu   sync.Mutex
	ordered   map[string][]func(context.Context) // key present: a drain is queued or running
	seen      *recent
	rooms     *rooms
	connected atomic.Bool
	lastErr   atomic.Pointer[string]
	botUser   atomic.Pointer[string]
	hooksHost string // the only host response_url posts may go to besides hooks.slack.com
}

var _ incidents.Notifier = (*Bot)(nil)

// New builds the adapter; Start connects it.
func New(cfg Config, svc *incidents.Service, h Handler) (*Bot, error) {
	if !strings.HasPrefix(cfg.BotToken, "xoxb-") {
		return nil, errors.New("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
	}
	if !strings.HasPrefix(cfg.AppToken, "xapp-") {
		return nil, errors.New("SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Sender.Logger = cfg.Logger
	opts := []slack.Option{slack.OptionAppLevelToken(cfg.AppToken)}
	hooksHost := ""
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("SLACK_API_URL %q is not an http(s) URL", cfg.APIURL)
		}
		hooksHost = u.Host
		opts = append(opts, slack.OptionAPIURL(strings.TrimSuffix(cfg.APIURL, "/")+"/"))
	}
	api := slack.New(cfg.BotToken, opts...)
	b := &Bot{
		cfg: cfg, api: api, sm: socketmode.New(api), send: NewSender(cfg.Sender), handler: h, svc: svc, log: cfg.Logger,
		jobs: make(chan func(context.Context), 1024), ordered: map[string][]func(context.Context){}, threads: map[string]string{}, groups: map[string]groupMembers{}, seen: newRecent(10 * time.Minute), hooksHost: hooksHost,
	}
	b.rooms = newRooms(b)
	none := "not connected yet"
	b.lastErr.Store(&none)
	return b, nil
}

// Ready reports whether the socket is connected (for /readyz).
func (b *Bot) Ready(context.Context) error {
	if b.connected.Load() {
		return nil
	}
	return fmt.Errorf("slack: %s", *b.lastErr.Load())
}

// Start connects and serves until ctx ends. A lost connection or a refused
// token is logged and retried with backoff; incidents keep being recorded
// meanwhile.
func (b *Bot) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.work(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.events(ctx)
	}()
	if resp, err := b.api.AuthTestContext(ctx); err == nil {
		b.botUser.Store(&resp.UserID)
		b.log.Info("slack authenticated", "team", resp.Team, "bot_user", resp.UserID)
	} else {
		b.log.Error("slack auth.test failed; check SLACK_BOT_TOKEN", "err", err)
	}
	backoff := time.Second
	for ctx.Err() == nil {
		err := b.sm.RunContext(ctx)
		b.connected.Store(false)
		if ctx.Err() != nil {
			break
		}
		msg := err.Error()
		b.lastErr.Store(&msg)
		b.log.Error("slack socket mode disconnected; reconnecting", "err", err, "in", backoff)
		if sleep(ctx, backoff) != nil {
			break
		}
		backoff = min(backoff*2, time.Minute)
	}
	wg.Wait()
	return nil
}

// work runs queued jobs, each with its own timeout.
func (b *Bot) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-b.jobs:
			jctx, cancel := context.WithTimeout(ctx, b.cfg.JobTimeout)
			func() {
				defer cancel()
				defer func() {
					if p := recover(); p != nil {
						b.log.Error("slack job panicked", "panic", fmt.Sprint(p))
					}
				}()
				job(jctx)
			}()
		}
	}
}

// submit queues work for the pool without blocking the event loop for long.
func (b *Bot) submit(ctx context.Context, job func(context.Context)) {
	select {
	case b.jobs <- job:
	case <-ctx.Done():
	}
}

// submitInOrder queues work that must run after the earlier work with the
// same key (one channel's commands apply in the order they were sent); jobs
// with different keys still run in parallel on the pool.
func (b *Bot) submitInOrder(ctx context.Context, key string, job func(context.Context)) {
	if key == "" {
		b.submit(ctx, job)
		return
	}
	b.orderMu.Lock()
	q, running := b.ordered[key]
	b.ordered[key] = append(q, job)
	b.orderMu.Unlock()
	if running {
		return
	}
	b.submit(ctx, func(ctx context.Context) {
		for {
			b.orderMu.Lock()
			q := b.ordered[key]
			if len(q) == 0 {
				delete(b.ordered, key)
				b.orderMu.Unlock()
				return
			}
			next := q[0]
			b.ordered[key] = q[1:]
			b.orderMu.Unlock()
			next(ctx)
		}
	})
}

// recent remembers ids for a while: a redelivered envelope acts once.
type recent struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
}

func newRecent(ttl time.Duration) *recent { return &recent{ttl: ttl, seen: map[string]time.Time{}} }

// first reports whether id is new, and remembers it.
func (r *recent) first(id string) bool {
	if id == "" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if len(r.seen) > 10000 {
		for k, t := range r.seen {
			if now.Sub(t) > r.ttl {
				delete(r.seen, k)
			}
		}
	}
	if t, ok := r.seen[id]; ok && now.Sub(t) < r.ttl {
		return false
	}
	r.seen[id] = now
	return true
}

type groupMembers struct {
	ids []string
	at  time.Time
}

// groupTTL is how long a user group's members are trusted before asking again.
const groupTTL = 5 * time.Minute

// GroupMembers returns a Slack user group's members (cached for a few
// minutes): how SITREP_OPERATORS can name a group such as @oncall.
func (b *Bot) GroupMembers(ctx context.Context, group string) ([]string, error) {
	b.groupsMu.Lock()
	g, ok := b.groups[group]
	b.groupsMu.Unlock()
	if ok && time.Since(g.at) < groupTTL {
		return g.ids, nil
	}
	var ids []string
	err := b.send.Do(ctx, "usergroups.users.list", "", func(ctx context.Context) error {
		var err error
		ids, err = b.api.GetUserGroupMembersContext(ctx, group)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("members of user group %s: %w", group, err)
	}
	b.groupsMu.Lock()
	b.groups[group] = groupMembers{ids: ids, at: time.Now()}
	b.groupsMu.Unlock()
	return ids, nil
}
