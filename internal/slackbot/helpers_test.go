package slackbot_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// samples is the team's folder of real Slack payloads.
const samples = "../../../shared/samples/slack/"

type env struct {
	srv      *slacktest.Server
	store    *boltstore.Store
	svc      *incidents.Service
	bot      *slackbot.Bot
	announce string
	general  string
	ctx      context.Context
	router   *commands.Router
	stop     func() // stops the adapter and closes the store, once
}

// testScale is the rate scale of most Slack tests: the sender and the
// test server's tiers both run that much faster, so the server is exactly as
// strict relative to the sender as Slack is. Tests of the limits themselves
// run at scale 1 (startAt).
const testScale = 1000

func start(t testing.TB, tweak ...func(*slackbot.Config)) *env {
	t.Helper()
	return startAt(t, testScale, filepath.Join(t.TempDir(), "s.db"), nil, tweak...)
}

// startAt runs the adapter against a server enforcing Slack's tiers at
// scale, on the database at path (srv reused when given: a restart).
func startAt(t testing.TB, scale float64, path string, srv *slacktest.Server, tweak ...func(*slackbot.Config)) *env {
	t.Helper()
	return startHooked(t, scale, path, srv, nil, tweak...)
}

// hook wires more into a test's adapter once its store, service and router
// exist (releases).
type hook func(store *boltstore.Store, svc *incidents.Service, router *commands.Router, cfg *slackbot.Config)

func startHooked(t testing.TB, scale float64, path string, srv *slacktest.Server, h hook, tweak ...func(*slackbot.Config)) *env {
	t.Helper()
	if srv == nil {
		srv = slacktest.NewScaled(scale)
		t.Cleanup(srv.Close)
	}
	store, err := boltstore.Open(path, boltstore.Options{Subscriptions: slackbot.Subscriptions()})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	if os.Getenv("SITREP_TEST_LOG") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc := incidents.NewService(incidents.Config{Store: store, Logger: quiet, Notifiers: []incidents.Notifier{
		incidents.NotifierFunc(func(context.Context, *incidents.Incident, []incidents.Event) { srv.Poke() }),
	}})
	e := &env{srv: srv, store: store, svc: svc}
	if e.announce = srv.ChannelID("incidents"); e.announce == "" {
		e.announce = srv.CreateChannel("incidents")
	}
	if e.general = srv.ChannelID("general"); e.general == "" {
		e.general = srv.CreateChannel("general")
	}
	cfg := slackbot.Config{
		BotToken: slacktest.BotToken, AppToken: slacktest.AppToken, APIURL: srv.URL,
		Responders: []string{"UONCALL"}, AnnounceChannel: e.announce, Logger: quiet,
		Sender: slackbot.SenderConfig{RateScale: scale, RetryBase: 5 * time.Millisecond},
		Inbox:  store, Outbox: store,
		Effects: effects.Config{RetryBase: 5 * time.Millisecond, RetryMax: 200 * time.Millisecond},
	}
	if scale == 1 {
		cfg.Sender.RetryBase = 500 * time.Millisecond
		cfg.Effects = effects.Config{RetryBase: time.Second, RetryMax: 10 * time.Second}
	}
	for _, f := range tweak {
		f(&cfg)
	}
	router := commands.NewRouter(svc, quiet)
	books, err := runbooks.Load(os.DirFS("../.."), "runbooks", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router.UseRunbooks(books)
	router.UseRunner(runbooks.NewRunner(nil, nil, runbooks.Guardrails{}))
	if h != nil {
		h(store, svc, router, &cfg)
	}
	bot, err := slackbot.New(cfg, svc, router)
	if err != nil {
		t.Fatal(err)
	}
	e.router = router
	e.bot = bot
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bot.Start(ctx); close(done) }()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done; store.Close() }) }
	t.Cleanup(func() { e.stop() })
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(wcancel)
	e.ctx = wctx
	e.until(t, "the socket to connect", func() bool { return bot.Ready(ctx) == nil })
	return e
}

// until waits for state the server does not see (the bot's own), checking
// every few milliseconds; it asserts nothing about time.
func (e *env) until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-e.ctx.Done():
			t.Fatalf("waiting for %s: %v", what, e.ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// wait blocks until cond holds (woken by every change on the server).
func (e *env) wait(t testing.TB, what string, cond func(v *slacktest.View) bool) {
	t.Helper()
	if err := e.srv.Wait(e.ctx, cond); err != nil {
		var calls []string
		e.srv.Look(func(v *slacktest.View) {
			for _, c := range v.Calls("") {
				calls = append(calls, c.Method)
			}
		})
		t.Fatalf("waiting for %s: %v (calls: %s)", what, err, strings.Join(calls, " "))
	}
}

func sample(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(samples + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// send writes an envelope built from a sample and waits for its ack.
func (e *env) send(t testing.TB, env slacktest.Envelope) (string, slacktest.Ack) {
	t.Helper()
	id, err := e.srv.Send(env)
	if err != nil {
		t.Fatal(err)
	}
	var ack slacktest.Ack
	e.wait(t, "the ack of "+id, func(v *slacktest.View) bool {
		var ok bool
		ack, ok = v.Ack(id)
		return ok
	})
	return id, ack
}

// slash is the sample slash command with this user, channel and text.
func (e *env) slash(t testing.TB, user, channel, text string) slacktest.Envelope {
	m := sample(t, "java_sdk_slash_commands_envelope.json")
	p := m["payload"].(map[string]any)
	p["user_id"], p["channel_id"], p["text"], p["command"] = user, channel, text, "/incident"
	p["response_url"] = e.srv.ResponseURL("cmd-" + user)
	return slacktest.Envelope{Type: m["type"].(string), Payload: p, AcceptsResponsePayload: true}
}

// click is the sample block_actions envelope with one action.
func (e *env) click(t testing.TB, user, channel string, action map[string]any) slacktest.Envelope {
	m := sample(t, "java_sdk_interactive_block_actions_button_envelope.json")
	p := m["payload"].(map[string]any)
	p["user"].(map[string]any)["id"] = user
	p["channel"].(map[string]any)["id"] = channel
	p["container"].(map[string]any)["channel_id"] = channel
	p["response_url"] = e.srv.ResponseURL("click-" + user)
	action["block_id"] = "actions-0"
	action["action_ts"] = "1764126000.000001"
	p["actions"] = []any{action}
	return slacktest.Envelope{Type: "interactive", Payload: p}
}

func button(actionID, value string) map[string]any {
	return map[string]any{"type": "button", "action_id": actionID, "value": value, "text": map[string]any{"type": "plain_text", "text": "x"}}
}

// event is the sample events_api envelope carrying another inner event.
func event(t testing.TB, inner map[string]any) slacktest.Envelope {
	m := sample(t, "slackgo_events_api_app_mention_envelope.json")
	p := m["payload"].(map[string]any)
	p["event"] = inner
	return slacktest.Envelope{Type: "events_api", Payload: p}
}

func (e *env) incident(t testing.TB, id int64) *incidents.Incident {
	t.Helper()
	inc, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func (e *env) kinds(t testing.TB, id int64, kind incidents.EventKind) []incidents.Event {
	var out []incidents.Event
	e.svc.Timeline(context.Background(), id, func(ev incidents.Event) error {
		if ev.Kind == kind {
			out = append(out, ev)
		}
		return nil
	})
	return out
}

// warRoom waits for incident id's war room to be bound and returns it.
func (e *env) warRoom(t testing.TB, id int64) *slacktest.Channel {
	t.Helper()
	var ch *slacktest.Channel
	e.wait(t, "the war room of "+incidents.FormatID(id), func(v *slacktest.View) bool {
		inc, err := e.svc.Get(context.Background(), id)
		if err != nil || inc.Channel == "" {
			return false
		}
		ch = v.ChannelByID(inc.Channel)
		return ch != nil && len(ch.Pins) == 1
	})
	return ch
}

func blocksText(m *slacktest.Message) string { return string(m.Blocks) }
