// Package slackbot is Sitrep's Slack adapter, the only package that imports
// slack-go. It connects in socket mode (no public URL); it stores every
// envelope in the inbox before acknowledging it and does the work from
// there on a bounded pool; it renders neutral replies as Block Kit; and, as
// two consumers of the outbox, it opens a war room per incident and keeps
// its pinned header and topic current. Every Web API call goes through one
// rate-limited Sender.
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
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
)

// Handler runs a neutral request; *commands.Router is one.
type Handler interface {
	Handle(ctx context.Context, req commands.Request) commands.Reply
	Declare(ctx context.Context, d incidents.Declaration, by incidents.Actor) (*incidents.Incident, error)
}

// Config wires the Slack adapter.
type Config struct {
	BotToken, AppToken string
	APIURL             string   // Web API base; default https://slack.com/api/
	Responders         []string // user ids invited to every war room
	AnnounceChannel    string   // channel id where new P1/P2 incidents are announced
	// Bookmarks are the links a war room gets in its bookmarks bar (the
	// runbook's page, the service's dashboards); nil for none.
	Bookmarks  func(*incidents.Incident) []Bookmark
	Workers    int           // envelopes handled at once; default 8
	JobTimeout time.Duration // one envelope's work, from when it starts; default 30s
	Sender     SenderConfig
	Logger     *slog.Logger
	// Inbox keeps each envelope from before its ack until its work is done;
	// Outbox holds the effects (Subscriptions) this adapter works off.
	// Both are required: the store opened with Subscriptions().
	Inbox  incidents.Inbox
	Outbox incidents.Outbox
	// Spool, when set, keeps an envelope the Inbox cannot store (its
	// database is down or failing over): the envelope is acknowledged all
	// the same, and moved into the Inbox and done once the Inbox takes it
	// again. A local file; nil: such an envelope is not acknowledged and
	// Slack delivers it again.
	Spool incidents.Inbox
	// Effects tunes the outbox runners (Workers, retries, Observe); its
	// Consumer, Outbox and Handle are set by the adapter.
	Effects effects.Config
	// Releases, with ReleaseChannel, gives each release a thread in that
	// channel with its header kept current.
	Releases       *releases.Service
	ReleaseChannel string
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
	runCtx    context.Context // Start's: each job's deadline is counted from it
	arrivals  atomic.Uint64   // inbox keys, in arrival order
	runners   []*effects.Runner
	intake    sync.WaitGroup // envelopes being stored
	groupsMu  sync.Mutex
	groups    map[string]groupMembers // user group id → members, cached
	threadsMu sync.Mutex
	threads   map[string]string // channel/thread key → the thread's root ts
	orderMu   sync.Mutex
	ordered   map[string][]func(context.Context) // key present: a drain is queued or running
	rooms     *rooms
	connected atomic.Bool
	lastErr   atomic.Pointer[string]
	botUser   atomic.Pointer[string]
	hooksHost string          // the only host response_url posts may go to besides hooks.slack.com
	releases  *releaseHeaders // nil without a release channel
}

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
	if cfg.Inbox == nil || cfg.Outbox == nil {
		return nil, errors.New("slack adapter: an inbox and an outbox are required")
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
		jobs: make(chan func(context.Context), 1024), ordered: map[string][]func(context.Context){}, threads: map[string]string{}, groups: map[string]groupMembers{}, hooksHost: hooksHost,
	}
	b.rooms = newRooms(b)
	if cfg.Releases != nil && cfg.ReleaseChannel != "" {
		b.releases = newReleaseHeaders(b, cfg.Releases, cfg.ReleaseChannel)
	}
	b.arrivals.Store(uint64(time.Now().UnixNano())) // later than any key a previous run stored
	for _, c := range []struct {
		name   string
		handle effects.Handler
	}{{ConsumerRooms, b.rooms.handle}, {ConsumerTopic, b.rooms.handleTopic}} {
		ec := cfg.Effects
		ec.Consumer, ec.Outbox, ec.Handle, ec.Refused, ec.Logger = c.name, cfg.Outbox, c.handle, b.refused, cfg.Logger
		ec.Describe = describeEffect
		b.runners = append(b.runners, effects.New(ec))
	}
	none := "not connected yet"
	b.lastErr.Store(&none)
	return b, nil
}

// Runners are the adapter's outbox runners (for metrics and readiness).
func (b *Bot) Runners() []*effects.Runner { return b.runners }

func describeEffect(e incidents.Effect) string {
	switch {
	case e.Kind == kindUpload:
		return "upload"
	case e.Event == nil && !e.Changed():
		return "unknown"
	case e.Consumer == ConsumerTopic:
		return "topic"
	case e.Changed():
		return "header"
	case e.Event.Kind == incidents.EventDeclared:
		return "war_room"
	case e.Event.Kind == incidents.EventRoleAssigned:
		return "invite"
	}
	return "post_" + string(e.Event.Kind)
}

// self is the bot's own user id, asked of Slack (auth.test) until known.
func (b *Bot) self(ctx context.Context) (string, error) {
	if u := b.botUser.Load(); u != nil {
		return *u, nil
	}
	var id string
	err := b.send.Do(ctx, "auth.test", "", func(ctx context.Context) error {
		resp, err := b.api.AuthTestContext(ctx)
		if err == nil {
			id = resp.UserID
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("who Sitrep is in Slack (auth.test): %w", err)
	}
	b.botUser.Store(&id)
	return id, nil
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
// meanwhile. Envelopes left in the inbox by an earlier run are processed
// first, and the outbox runners work off pending effects throughout. When ctx
// ends, work under way gets a few seconds and the rest stays stored for the
// next start; no goroutine outlives Start.
func (b *Bot) Start(ctx context.Context) error {
	b.runCtx = ctx
	b.send.StopAfter(ctx, 5*time.Second)
	var wg sync.WaitGroup
	defer b.send.Wait()
	defer b.intake.Wait()
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
	if err := b.rooms.reconcile(ctx); err != nil {
		b.log.Error("slack", "err", err)
	}
	for _, r := range b.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Start(ctx)
		}()
	}
	b.replay(ctx)
	if b.releases != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.releases.run(ctx)
		}()
	}
	if b.cfg.Spool != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.drainSpool(ctx)
		}()
	}
	if shared, ok := b.cfg.Inbox.(incidents.SharedInbox); ok { // replicas: what a dead one acknowledged is done here
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.adoptOrphans(ctx, shared)
		}()
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

// work runs queued jobs.
func (b *Bot) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-b.jobs:
			job(ctx)
		}
	}
}

// run runs one job with its own deadline, counted from now.
func (b *Bot) run(job func(context.Context)) {
	ctx, cancel := context.WithTimeout(b.runCtx, b.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("slack job panicked", "panic", fmt.Sprint(p))
		}
	}()
	job(ctx)
}

// submit queues work for the pool without blocking the event loop for long.
func (b *Bot) submit(ctx context.Context, job func(context.Context)) {
	select {
	case b.jobs <- func(context.Context) { b.run(job) }:
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
	drain := func(context.Context) {
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
			b.run(next) // each job its own deadline: a hung one does not use up the next one's
		}
	}
	select {
	case b.jobs <- drain:
	case <-ctx.Done():
	}
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
