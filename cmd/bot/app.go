package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sitrep-oncall/sitrep/internal/alertmanager"
	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/console"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/kube"
	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/prom"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/server"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
	"github.com/sitrep-oncall/sitrep/internal/slo"
	"github.com/sitrep-oncall/sitrep/internal/statuspage"
	"github.com/sitrep-oncall/sitrep/internal/telemetry"
)

// app is the running Sitrep: store, service, router, adapters, HTTP server,
// timers — all built by newApp before anything starts.
type app struct {
	cfg    config
	log    *slog.Logger
	store  database
	spool  *boltstore.Store // the Slack spool, with PostgreSQL
	svc    *incidents.Service
	router *commands.Router
	http   *server.Server
	ln     net.Listener
	pdSync *pagerduty.Sync
	bot    *slackbot.Bot
	status http.Handler         // the public status page (SITREP_STATUS_LISTEN), or nil
	notify *statuspage.Notifier // its subscriber webhooks, or nil
	runner *runbooks.Runner
	rel    *releases.Service // nil without release procedures
}

// newApp opens the store and wires everything, complete, before anything
// runs; close releases it.
func newApp(cfg config, log *slog.Logger, notifiers ...incidents.Notifier) (a *app, err error) {
	// The store writes each consumer's effects in the same transaction as the
	// events that imply them: the consumers are known before it opens.
	var subs []incidents.Subscription
	if cfg.slack() {
		subs = append(subs, slackbot.Subscriptions()...)
	}
	pdSync := cfg.PDToken != "" && cfg.PDFrom != ""
	if pdSync {
		subs = append(subs, pagerduty.Subscription())
	}
	if len(cfg.StatusWebhooks) > 0 {
		subs = append(subs, statuspage.Subscriptions(cfg.StatusWebhooks)...)
	}
	store, err := openDatabase(cfg, subs)
	if err != nil {
		return nil, err
	}
	self := &app{cfg: cfg, log: log, store: store}
	a = self
	defer func() {
		if err != nil { // (a is nil by now: the returned one)
			if self.spool != nil {
				self.spool.Close()
			}
			store.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.New(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	effectMetrics, err := telemetry.NewEffects(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	open, err := store.List(context.Background(), incidents.Filter{})
	if err != nil {
		return nil, fmt.Errorf("read open incidents: %w", err)
	}
	metrics.Seed(open)
	if n := store.Unreadable(); n > 0 {
		log.Warn("incident records that cannot be read are skipped; the rest of Sitrep runs", "count", n, "check", "bot check "+redact(cfg.DB))
	}
	a.svc = incidents.NewService(incidents.Config{Store: store, Logger: log, Notifiers: append([]incidents.Notifier{metrics}, notifiers...)})
	a.router = commands.NewRouter(a.svc, log)
	books, err := loadRunbooks(cfg, log)
	if err != nil {
		return nil, err
	}
	a.router.UseRunbooks(books)
	// One Prometheus client serves the runbook steps and the SLO.
	var promMetrics runbooks.Metrics
	var sloQ slo.Querier
	if cfg.PromURL != "" {
		pc, err := prom.New(cfg.PromURL)
		if err != nil {
			return nil, err
		}
		promMetrics, sloQ = pc, pc
		a.router.UseSLO(pc, cfg.SLO)
	}
	var cluster runbooks.Cluster
	if cfg.Kubeconfig != "" || cfg.KubeInPod {
		kc, err := kube.FromKubeconfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		cluster = kc
	}
	a.runner = runbooks.NewRunner(cluster, promMetrics, runbooks.Guardrails{Operators: cfg.Operators, Namespaces: cfg.Namespaces})
	a.router.UseRunner(a.runner)
	procs, err := loadProcedures(cfg, log)
	if err != nil {
		return nil, err
	}
	if procs != nil {
		releaser, _ := cluster.(runbooks.Releaser)
		var hear []releases.Notifier
		for _, n := range notifiers {
			if rn, ok := n.(releases.Notifier); ok {
				hear = append(hear, rn)
			}
		}
		a.rel = releases.New(releases.Config{Store: store, Procedures: procs, Runner: a.runner, Cluster: releaser, Metrics: promMetrics,
			Signers: cfg.Signers, Incidents: a.svc, Logger: log, Notify: func(ctx context.Context, r *releases.Release) {
				for _, n := range hear {
					n.NotifyRelease(ctx, r)
				}
				if a.bot != nil { // set below, before anything runs
					a.bot.NotifyRelease(ctx, r)
				}
			}})
		a.router.UseReleases(a.rel)
	}
	env := &commands.Env{SLO: sloQ, SLOConfig: cfg.SLO, Releases: a.rel}
	checks := []server.Check{{Name: "database", Fn: store.Ping}}
	effectsCfg := effects.Config{Observe: effectMetrics.Observe}
	if cfg.slack() {
		var spool incidents.Inbox
		if postgres(cfg.DB) { // PostgreSQL may fail over: envelopes wait in a local file meanwhile
			path := cmp.Or(cfg.Spool, defaultSpool(cfg))
			sp, err := boltstore.Open(path, boltstore.Options{LockTimeout: cfg.LockTimeout})
			if err != nil {
				return nil, fmt.Errorf("the Slack spool (SITREP_SPOOL): %w", err)
			}
			a.spool, spool = sp, sp
		}
		a.bot, err = slackbot.New(slackbot.Config{
			BotToken: cfg.SlackBot, AppToken: cfg.SlackApp, APIURL: cfg.SlackAPI,
			Responders: cfg.Responders, AnnounceChannel: cfg.Announce, Bookmarks: bookmarksFor(books, cfg.Dashboards),
			Sender: slackbot.SenderConfig{RateScale: cfg.SlackScale}, Logger: log,
			Inbox: store, Outbox: store, Spool: spool, Effects: effectsCfg,
			Releases: a.rel, ReleaseChannel: cfg.ReleaseChannel,
		}, a.svc, a.router)
		if err != nil {
			return nil, err
		}
		a.runner.ResolveGroupsWith(a.bot.GroupMembers) // SITREP_OPERATORS may name Slack user groups
		if a.rel != nil {
			a.rel.ResolveGroupsWith(a.bot.GroupMembers) // and SITREP_RELEASE_SIGNERS
		}
		checks = append(checks, server.Check{Name: "slack", Fn: a.bot.Ready})
		for _, r := range a.bot.Runners() {
			effectMetrics.Watch(r)
			checks = append(checks, backlogCheck(r))
		}
	}
	if pdSync {
		a.pdSync = pagerduty.NewSync(pagerduty.SyncConfig{Token: cfg.PDToken, From: cfg.PDFrom, APIURL: cfg.PDAPI,
			Service: a.svc, Outbox: store, Logger: log, Effects: effectsCfg})
		effectMetrics.Watch(a.pdSync.Runner())
		checks = append(checks, backlogCheck(a.pdSync.Runner()))
	}
	if len(cfg.StatusWebhooks) > 0 {
		a.notify = statuspage.NewNotifier(statuspage.NotifierConfig{URLs: cfg.StatusWebhooks, Secret: cfg.StatusSecret,
			Service: a.svc, Outbox: store, Logger: log, Effects: effectsCfg})
		for _, r := range a.notify.Runners() {
			effectMetrics.Watch(r)
			checks = append(checks, backlogCheck(r))
		}
	}
	if cfg.StatusListen != "" {
		a.status = statuspage.Handler(statuspage.Config{Source: a.svc, Title: cfg.StatusTitle, Components: statusComponents(cfg, books), Logger: log})
	}
	a.http = server.New(server.Config{
		Gatherer:   reg,
		Checks:     checks,
		Backup:     backuper(store),
		Database:   databaseName(cfg.DB),
		AdminToken: cfg.AdminToken,
		Logger:     log,
		Postmortem: func(ctx context.Context, w io.Writer, id int64, format string) error {
			inc, err := a.svc.Get(ctx, id)
			if err != nil {
				return err
			}
			return commands.WritePostmortem(ctx, w, a.svc, env, inc, format)
		},
	})
	am := alertmanager.NewReceiver(a.svc, cfg.AMToken, log)
	am.UseRunbooks(books)
	a.http.Handle("POST /webhooks/alertmanager", am)
	if len(cfg.PDSecrets) > 0 {
		pd := pagerduty.NewReceiver(a.svc, cfg.PDSecrets, log)
		pd.Runbook = func(title string) string { return books.MatchName("", nil, title) }
		a.http.Handle("POST /webhooks/pagerduty", pd)
	} else {
		a.http.Handle("POST /webhooks/pagerduty", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "PagerDuty webhooks are off: set PAGERDUTY_WEBHOOK_SECRETS", http.StatusUnauthorized)
		}))
	}
	return a, nil
}

// backlogStall is how long effects may wait with none finishing before
// /readyz names the backlog.
const backlogStall = 2 * time.Minute

// backlogCheck names, in /readyz's detail, a consumer whose effects are not
// draining. It warns rather than fails: webhooks keep being taken (and
// stored) while Slack or PagerDuty is away.
func backlogCheck(r *effects.Runner) server.Check {
	return server.Check{Name: "effects " + r.Consumer(), Warn: true, Fn: func(context.Context) error {
		st := r.Stats()
		if st.Pending == 0 || time.Since(st.Oldest) < backlogStall || time.Since(r.LastDone()) < backlogStall {
			return nil
		}
		last := "none since start"
		if t := r.LastDone(); !t.IsZero() {
			last = "last done " + time.Since(t).Round(time.Second).String() + " ago"
		}
		return fmt.Errorf("%d pending, oldest %s old, %s: not draining", st.Pending, time.Since(st.Oldest).Round(time.Second), last)
	}}
}

func (a *app) close() error {
	if a.spool != nil {
		a.spool.Close()
	}
	return a.store.Close()
}

// loopback reports whether addr listens on this host only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// start runs the HTTP server (when it can listen), the reminder timers, the
// PagerDuty sync and the Slack adapter until ctx ends; wait blocks until
// every one has stopped.
func (a *app) start(ctx context.Context) (wait func(), err error) {
	var wg sync.WaitGroup
	ln, err := net.Listen("tcp", a.cfg.Listen)
	switch {
	case err != nil && a.cfg.console():
		a.log.Warn("HTTP server not started: no webhooks, /metrics or /healthz; set SITREP_LISTEN to a free address", "listen", a.cfg.Listen, "err", err)
	case err != nil:
		return nil, fmt.Errorf("listen on %s (SITREP_LISTEN): %w", a.cfg.Listen, err)
	default:
		a.ln = ln
		a.log.Info("HTTP listening", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.http.Serve(ctx, ln); err != nil {
				a.log.Error("HTTP server stopped", "err", err)
			}
		}()
	}
	run := func(fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = fn(ctx)
		}()
	}
	run(a.svc.RunReminders)
	if a.rel != nil {
		run(a.rel.Drive) // rollouts waited for, the SLI watches, their checkpoints
	}
	run(func(ctx context.Context) error { return a.store.SweepDedupEvery(ctx, time.Hour) })
	if a.pdSync != nil {
		run(a.pdSync.Start)
	}
	if a.notify != nil {
		run(a.notify.Start)
	}
	if a.status != nil {
		sl, err := net.Listen("tcp", a.cfg.StatusListen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (SITREP_STATUS_LISTEN): %w", a.cfg.StatusListen, err)
		}
		a.log.Info("status page listening", "addr", sl.Addr().String(), "page", "http://"+sl.Addr().String()+"/status")
		srv := &http.Server{Handler: a.status, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		wg.Add(2)
		go func() { defer wg.Done(); <-ctx.Done(); srv.Close() }()
		go func() {
			defer wg.Done()
			if err := srv.Serve(sl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("status page stopped", "err", err)
			}
		}()
	}
	if a.bot != nil {
		run(a.bot.Start)
		a.log.Info("slack adapter started")
	}
	return wg.Wait, nil
}

func serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := loadConfig("serve", args, stderr, getenv)
	if err != nil {
		return err
	}
	if cfg.AMToken == "" && !cfg.AMOpen && !loopback(cfg.Listen) {
		return fmt.Errorf("SITREP_LISTEN=%s can be reached from other hosts, and /webhooks/alertmanager would take alerts from anyone: "+
			"set SITREP_ALERTMANAGER_TOKEN (and the same token as http_config.authorization.credentials in Alertmanager's webhook_configs), "+
			"listen on 127.0.0.1, or set SITREP_ALERTMANAGER_UNAUTHENTICATED=1 if something in front of Sitrep authenticates", cfg.Listen)
	}
	logs := stderr
	tty, interactive := stdin.(*os.File)
	interactive = interactive && cfg.console() && isTerminal(stdin) && isTerminal(stdout)
	base := strings.TrimSuffix(cfg.DB, filepath.Ext(cfg.DB))
	if postgres(cfg.DB) {
		base = "sitrep" // the terminal's history and log, in the working directory
	}
	if interactive { // log records would break the prompt: they go to a file, and the terminal says where
		if f, err := os.OpenFile(base+".log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			defer f.Close()
			logs = f
			where, _ := filepath.Abs(f.Name())
			fmt.Fprintf(stdout, "Logs go to %s.\n", cmp.Or(where, f.Name()))
		}
	}
	var handler slog.Handler = slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel})
	echo := &startupEcho{Handler: handler, out: stdout, on: new(atomic.Bool)}
	if interactive { // what changes what works (no webhooks, no runbooks) is said on screen too, until the prompt
		echo.on.Store(true)
		handler = echo
	}
	log := slog.New(handler)
	var term *console.Console
	var notifiers []incidents.Notifier
	if cfg.console() {
		prompt := ""
		if interactive {
			prompt = "sitrep> "
		}
		term = console.New(nil, stdout, incidents.Actor{Name: cfg.User, Source: incidents.SourceConsole}, prompt)
		term.SaveFilesIn(cfg.GraphDir)
		notifiers = append(notifiers, term)
	}
	a, err := newApp(cfg, log, notifiers...)
	if err != nil {
		return err
	}
	defer a.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait, err := a.start(ctx)
	if err != nil {
		return err
	}
	defer wait() // everything has stopped before the store closes
	defer cancel()
	if term == nil {
		log.Info("sitrep running without a terminal; stop with SIGTERM", "db", redact(cfg.DB))
		<-ctx.Done()
		return nil
	}
	term.SetHandler(a.router)
	if interactive {
		echo.on.Store(false) // from now on the screen is the prompt's
		return term.RunTerminal(ctx, tty, base+".history")
	}
	term.ErrorsTo(stderr) // a script sees its errors apart, and the exit status says whether any command failed
	return term.Run(ctx, stdin)
}

// startupEcho also prints warnings on the screen while on: before the
// terminal's prompt, a log file nobody reads would hide that webhooks or
// runbooks are off.
type startupEcho struct {
	slog.Handler
	out io.Writer
	on  *atomic.Bool // shared with the loggers made With it
}

func (e *startupEcho) WithAttrs(as []slog.Attr) slog.Handler {
	return &startupEcho{Handler: e.Handler.WithAttrs(as), out: e.out, on: e.on}
}

func (e *startupEcho) WithGroup(name string) slog.Handler {
	return &startupEcho{Handler: e.Handler.WithGroup(name), out: e.out, on: e.on}
}

func (e *startupEcho) Handle(ctx context.Context, r slog.Record) error {
	if e.on.Load() && r.Level >= slog.LevelWarn {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		line := "warning: " + r.Message
		if len(attrs) > 0 {
			line += " (" + strings.Join(attrs, ", ") + ")"
		}
		fmt.Fprintln(e.out, console.Visible(line))
	}
	return e.Handler.Handle(ctx, r)
}

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// bookmarksFor gives a war room its bookmarks: the incident's runbook's
// page (its url:) and its service's dashboards (SITREP_DASHBOARDS).
func bookmarksFor(books *runbooks.Set, dashboards []dashboard) func(*incidents.Incident) []slackbot.Bookmark {
	return func(inc *incidents.Incident) []slackbot.Bookmark {
		var out []slackbot.Bookmark
		if rb := books.Get(inc.Links["runbook"]); rb != nil && rb.URL != "" {
			out = append(out, slackbot.Bookmark{Title: "Runbook: " + rb.Title, URL: rb.URL})
		}
		service := cmp.Or(inc.Service, inc.Labels["service"])
		for _, d := range dashboards {
			if service != "" && strings.EqualFold(d.Service, service) {
				out = append(out, slackbot.Bookmark{Title: "Dashboard: " + d.Service, URL: d.URL})
			}
		}
		return out
	}
}

// statusComponents are the services the status page reports on: the
// configured ones, else those the runbooks name (their service parameter
// and match label), in order.
func statusComponents(cfg config, books *runbooks.Set) []string {
	if len(cfg.StatusComponents) > 0 {
		return cfg.StatusComponents
	}
	var out []string
	seen := map[string]bool{}
	for _, rb := range books.Runbooks() { // (none without runbooks)
		for _, s := range []string{rb.Params["service"], rb.Match.Labels["service"]} {
			if s != "" && !strings.Contains(s, "{{") && !seen[strings.ToLower(s)] {
				seen[strings.ToLower(s)] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// database is what Sitrep runs on: a bbolt file (boltstore) or PostgreSQL
// (pgstore), chosen by SITREP_DB — a path or a postgres:// URL.
type database interface {
	incidents.Store
	releases.Store
	incidents.Outbox
	incidents.Inbox
	Ping(ctx context.Context) error
	Close() error
	Unreadable() int64
	SweepDedupEvery(ctx context.Context, every time.Duration) error
}

var (
	_ database = (*boltstore.Store)(nil)
	_ database = (*pgstore.Store)(nil)
)

// postgres reports whether SITREP_DB names a PostgreSQL database.
func postgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func openDatabase(cfg config, subs []incidents.Subscription) (database, error) {
	if postgres(cfg.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return pgstore.Open(ctx, cfg.DB, pgstore.Options{Subscriptions: subs})
	}
	return boltstore.Open(cfg.DB, boltstore.Options{LockTimeout: cfg.LockTimeout, Subscriptions: subs})
}

// backuper is the store's online backup, when it has one (PostgreSQL's is
// pg_dump's business).
func backuper(db database) server.Backuper {
	if b, ok := db.(server.Backuper); ok {
		return b
	}
	return nil
}

// redact is SITREP_DB as it may be logged: a URL without its password.
func redact(db string) string {
	if !postgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// databaseName is what admin answers name their database by.
func databaseName(db string) string {
	if postgres(db) {
		return redact(db)
	}
	return absPath(db)
}

// defaultSpool is the Slack spool's file when SITREP_SPOOL is not set: in
// the temporary directory, named after the database and the listen address,
// so two Sitreps on one host never share one and a restart finds its own.
func defaultSpool(cfg config) string {
	sum := sha256.Sum256([]byte(cfg.DB + "\x00" + cfg.Listen))
	return filepath.Join(os.TempDir(), "sitrep-spool-"+hex.EncodeToString(sum[:4])+".db")
}
