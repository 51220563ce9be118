package slackbot_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/slackbot"
	"github.com/sitrep-oncall/sitrep/internal/slackbot/slacktest"
)

// releaseRig is a Slack test server with a release channel, and what a
// started bot's release service is wired to: the runner its steps run on
// (nil: no cluster), and the service and bot each start stores.
type releaseRig struct {
	srv           *slacktest.Server
	channel, path string
	runner        *runbooks.Runner
	rel           atomic.Pointer[releases.Service]
	bot           atomic.Pointer[slackbot.Bot]
}

func newReleaseRig(t *testing.T, runner *runbooks.Runner) *releaseRig {
	srv := slacktest.NewScaled(testScale)
	t.Cleanup(srv.Close)
	if runner == nil {
		runner = runbooks.NewRunner(nil, nil, runbooks.Guardrails{})
	}
	return &releaseRig{srv: srv, channel: srv.CreateChannel("releases", "UDANA"), path: filepath.Join(t.TempDir(), "s.db"), runner: runner}
}

// start starts the bot on the rig's database, the adapter given the
// shipped procedures, the release channel and signers.
func (g *releaseRig) start(t *testing.T) *env {
	e := startHooked(t, testScale, g.path, g.srv, func(store *boltstore.Store, svc *incidents.Service, router *commands.Router, cfg *slackbot.Config) {
		procs, err := runbooks.LoadProcedures(os.DirFS("../.."), "releases", runbooks.Options{})
		if err != nil {
			panic(err)
		}
		s := releases.New(releases.Config{Store: store, Procedures: procs, Runner: g.runner,
			Signers: map[string][]string{"engineering": {"UDANA"}, "devops": {"UDANA"}}, Incidents: svc,
			Notify: func(ctx context.Context, r *releases.Release) {
				if b := g.bot.Load(); b != nil {
					b.NotifyRelease(ctx, r)
				}
			}})
		g.rel.Store(s)
		router.UseReleases(s)
		cfg.Releases, cfg.ReleaseChannel = s, g.channel
	})
	g.bot.Store(e.bot)
	return e
}

func (e *env) releaseSlash(t testing.TB, user, channel, text string) slacktest.Envelope {
	env := e.slash(t, user, channel, text)
	env.Payload.(map[string]any)["command"] = "/release"
	return env
}

// TestReleaseThreadKeptCurrent: /release start posts one header in the
// release channel; a sign-off clicked on it edits it; a change made while
// the adapter was down is on the header once it is back; hostile input is
// refused with nothing posted.
func TestReleaseThreadKeptCurrent(t *testing.T) {
	g := newReleaseRig(t, nil)
	channel, path := g.channel, g.path
	e := g.start(t)

	e.send(t, e.releaseSlash(t, "UDANA", e.general, "start architect-api <script>alert(1)</script>"))
	e.send(t, e.releaseSlash(t, "UDANA", e.general, "start architect-api 3.2.0 rolling"))
	var header *slacktest.Message
	e.wait(t, "the release header", func(v *slacktest.View) bool {
		msgs := v.Messages(channel)
		if len(msgs) == 1 {
			header = msgs[0]
		}
		return header != nil && strings.Contains(blocksText(header), "REL-1")
	})
	if strings.Contains(blocksText(header), "script") {
		t.Fatalf("the refused start posted: %s", blocksText(header))
	}
	e.wait(t, "the refusal, to the asker alone", func(v *slacktest.View) bool {
		for _, r := range v.Responses() {
			if r.Body["response_type"] == "ephemeral" && strings.Contains(fmtAny(r.Body), "version") {
				return true
			}
		}
		return false
	})
	if !strings.Contains(blocksText(header), "⬜ engineering") || !strings.Contains(blocksText(header), "release sign REL-1 engineering") {
		t.Fatalf("header %s", blocksText(header))
	}
	// an incident of the service: its war room's header names the release
	inc, err := e.svc.Declare(e.ctx, incidents.Declaration{Title: "checkout errors", Service: "architect-api", Signals: incidents.Signals{Explicit: incidents.P2}}, incidents.System)
	if err != nil {
		t.Fatal(err)
	}
	room := e.warRoom(t, inc.ID)
	e.wait(t, "the war room's header with the recent change", func(v *slacktest.View) bool {
		for _, m := range v.Messages(room.ID) {
			if strings.Contains(blocksText(m), "Recent change") && strings.Contains(blocksText(m), "REL-1 architect-api 3.2.0 (rolling): started by") {
				return true
			}
		}
		return false
	})
	e.send(t, e.click(t, "UDANA", channel, button("cmd0", "release sign REL-1 engineering")))
	e.wait(t, "the header edited with the sign-off", func(v *slacktest.View) bool {
		m := v.Messages(channel)[0]
		return m.Updates >= 1 && (strings.Contains(blocksText(m), `✅ engineering (\u003c@UDANA\u003e)`) || strings.Contains(blocksText(m), "✅ engineering (<@UDANA>)"))
	})
	e.stop()

	// signed while Slack's adapter was down: the header catches up at start
	offline, err := boltstore.Open(path, boltstore.Options{Subscriptions: slackbot.Subscriptions()})
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := runbooks.LoadProcedures(os.DirFS("../.."), "releases", runbooks.Options{})
	s := releases.New(releases.Config{Store: offline, Procedures: procs, Signers: map[string][]string{"devops": {"@dana"}}})
	if _, err := s.Sign(context.Background(), 1, "devops", incidents.Actor{Name: "@dana", Source: incidents.SourceConsole}); err != nil {
		t.Fatal(err)
	}
	offline.Close()
	e = g.start(t)
	e.wait(t, "the header brought up to date after the restart", func(v *slacktest.View) bool {
		msgs := v.Messages(channel)
		return len(msgs) == 1 && strings.Contains(blocksText(msgs[0]), "✅ devops (@dana)")
	})
	var roots int
	e.srv.Look(func(v *slacktest.View) {
		for _, m := range v.Messages(channel) {
			if m.ThreadTS == "" || m.ThreadTS == m.TS {
				roots++
			}
		}
	})
	if roots != 1 {
		t.Fatalf("%d headers in the release channel, want 1", roots)
	}
}

func fmtAny(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestReleaseHeaderPostedOnceWhenTheAnswerIsLost: Slack posts the header
// but its answer is lost; the retry finds it in the channel and edits it
// instead of posting a second one.
func TestReleaseHeaderPostedOnceWhenTheAnswerIsLost(t *testing.T) {
	g := newReleaseRig(t, nil)
	channel, rel := g.channel, &g.rel
	e := g.start(t)
	e.srv.Fail("chat.postMessage", slacktest.Fault{Status: 500, Lost: true})
	e.send(t, e.releaseSlash(t, "UDANA", e.general, "start architect-api 3.2.0 rolling"))
	e.until(t, "the header's place stored", func() bool {
		r, err := rel.Load().Get(context.Background(), 1)
		return err == nil && r.Chat["ts"] != "" && r.Chat["rev"] == strconv.FormatUint(r.Rev, 10)
	})
	e.srv.Look(func(v *slacktest.View) {
		if n := len(v.Messages(channel)); n != 1 {
			t.Fatalf("%d messages in the release channel, want the one header", n)
		}
	})
}

// undoer is the cluster of the war-room rollback test: an undo, previewed,
// and its rollout done.
type undoer struct{ runbooks.Cluster }

func (undoer) Undo(_ context.Context, ns, d string, _ int64, a runbooks.Apply) (runbooks.Change, error) {
	return runbooks.Change{Summary: "image api:3.2.0 → api:3.1.0 (revision 2 → 1)", Version: "2", Revision: 1}, nil
}

func (undoer) Rollout(context.Context, string, string) (runbooks.RolloutState, error) {
	return runbooks.RolloutState{Done: true, Summary: "2 of 2 replicas updated and available"}, nil
}

func (undoer) SetImage(context.Context, string, string, string, string, runbooks.Apply) (runbooks.Change, error) {
	return runbooks.Change{}, errors.New("not in this test")
}

func (undoer) Weight(context.Context, string, string, string, int, runbooks.Apply) (runbooks.Change, error) {
	return runbooks.Change{}, errors.New("not in this test")
}

func (undoer) Selector(context.Context, string, string) (map[string]string, error) {
	return nil, errors.New("not in this test")
}

func (undoer) RolloutHistory(context.Context, string, string) ([]runbooks.Revision, error) {
	return nil, nil
}

// TestRollbackClickedInAWarRoom: the incident's Roll back is answered in
// the war room, with its Confirm button, and copied without buttons into
// the release's thread; once confirmed, the rollback is on the incident's
// timeline and the war room's header offers it no more.
func TestRollbackClickedInAWarRoom(t *testing.T) {
	g := newReleaseRig(t, runbooks.NewRunner(undoer{}, nil, runbooks.Guardrails{Operators: []string{"UDANA"}, Namespaces: []string{"architect-production"}}))
	channel, rel := g.channel, &g.rel
	e := g.start(t)
	e.send(t, e.releaseSlash(t, "UDANA", e.general, "start architect-api 3.2.0 rolling"))
	e.until(t, "the header posted", func() bool {
		r, err := rel.Load().Get(context.Background(), 1)
		return err == nil && r.Chat["ts"] != ""
	})
	inc, err := e.svc.Declare(e.ctx, incidents.Declaration{Title: "REL-1 breached", Service: "architect-api", Links: map[string]string{releases.LinkRelease: "REL-1"},
		Signals: incidents.Signals{Explicit: incidents.P2}}, incidents.System)
	if err != nil {
		t.Fatal(err)
	}
	// the new image was set (as if confirmed), then its breach declared the incident
	if _, err := e.store.UpdateRelease(context.Background(), 1, func(r *releases.Release) error {
		r.Steps = map[int]releases.StepRun{1: {Outcome: "confirmed", By: "<@UDANA>"}}
		r.Incident, r.IncidentFrom = inc.ID, r.Recorded
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	room := e.warRoom(t, inc.ID)
	header := func(v *slacktest.View) string {
		pins := v.ChannelByID(room.ID).Pins
		for _, m := range v.Messages(room.ID) {
			if len(pins) > 0 && m.TS == pins[0] {
				return blocksText(m)
			}
		}
		return ""
	}
	e.wait(t, "the header offers the rollback", func(v *slacktest.View) bool { return strings.Contains(header(v), "release rollback REL-1") })
	e.send(t, e.click(t, "UDANA", room.ID, button("cmd0", "release rollback REL-1")))
	r, _ := rel.Load().Get(context.Background(), 1)
	e.wait(t, "the preview answered in the war room with its Confirm, and copied to the thread", func(v *slacktest.View) bool {
		answered := false
		for _, resp := range v.Responses() {
			if b := fmtAny(resp.Body); strings.Contains(b, "rollback step 1/2") && strings.Contains(b, "release rollback REL-1 1 confirm=") {
				answered = true
			}
		}
		copied := false
		for _, m := range v.Messages(channel) {
			if m.ThreadTS == r.Chat["ts"] && strings.Contains(blocksText(m), "rollback step 1/2") && !strings.Contains(blocksText(m), "confirm=") {
				copied = true
			}
		}
		return answered && copied
	})
	var token string
	confirm := regexp.MustCompile(`release rollback REL-1 1 confirm=([\w-]+)`)
	e.wait(t, "the preview's token", func(v *slacktest.View) bool {
		for _, resp := range v.Responses() {
			if m := confirm.FindStringSubmatch(fmtAny(resp.Body)); m != nil {
				token = m[1]
			}
		}
		return token != ""
	})
	e.send(t, e.click(t, "UDANA", room.ID, button("cmd0", "release rollback REL-1 1 confirm="+token)))
	e.wait(t, "the confirmed step answered with the rollback's next step, and no step forward", func(v *slacktest.View) bool {
		for _, resp := range v.Responses() {
			if b := fmtAny(resp.Body); strings.Contains(b, "confirmed — image api:3.2.0") {
				if strings.Contains(b, "release step REL-1") {
					t.Fatalf("a step forward offered after the rollback began: %s", b)
				}
				return strings.Contains(b, `"value":"release rollback REL-1 2"`)
			}
		}
		return false
	})
	e.send(t, e.click(t, "UDANA", room.ID, button("cmd0", "release rollback REL-1 2")))
	e.until(t, "the rollback on the incident's timeline", func() bool {
		for _, ev := range e.kinds(t, inc.ID, incidents.EventRelease) {
			if strings.HasPrefix(ev.Message, "REL-1: rolled back") {
				return true
			}
		}
		return false
	})
	e.wait(t, "the header without the rollback", func(v *slacktest.View) bool {
		h := header(v)
		return h != "" && !strings.Contains(h, "release rollback REL-1") && strings.Contains(h, "Resolve")
	})
}
