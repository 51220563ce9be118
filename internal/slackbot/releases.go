package slackbot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
)

// Each release has a thread in the release channel (SITREP_RELEASE_CHANNEL):
// its root is the header, edited at every change as a war room's is, and
// what the watch finds (a rollout done, a breach, the verification, each
// checkpoint) is posted in the thread. Where the header is and which Rev
// it shows are kept in the release (Chat), so a header a crash left stale
// is brought up to date at the next start.

// threadKinds are the events posted in a release's thread besides the
// header's edit: what people must not miss.
var threadKinds = map[string]bool{releases.EvRollout: true, releases.EvBreach: true, releases.EvVerified: true,
	releases.EvCheckpoint: true, releases.EvRollback: true, releases.EvAborted: true, releases.EvWatch: true}

type releaseHeaders struct {
	b     *Bot
	rel   *releases.Service
	where string // the release channel
	mu    sync.Mutex
	dirty map[int64]bool
	wake  chan struct{}
}

func newReleaseHeaders(b *Bot, rel *releases.Service, channel string) *releaseHeaders {
	return &releaseHeaders{b: b, rel: rel, where: channel, dirty: map[int64]bool{}, wake: make(chan struct{}, 1)}
}

// NotifyRelease queues the release's header to be brought up to date.
func (b *Bot) NotifyRelease(_ context.Context, r *releases.Release) {
	if h := b.releases; h != nil {
		h.mark(r.ID)
	}
}

func (h *releaseHeaders) mark(id int64) {
	h.mu.Lock()
	h.dirty[id] = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run keeps the headers current until ctx ends: first the recent releases
// whose header is behind (a crash, Slack away), then each change.
func (h *releaseHeaders) run(ctx context.Context) {
	if recent, err := h.rel.List(ctx, releases.Filter{Limit: 100}); err == nil {
		for _, r := range recent {
			if r.Chat["rev"] != strconv.FormatUint(r.Rev, 10) {
				h.mark(r.ID)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		h.mu.Lock()
		ids := h.dirty
		h.dirty = map[int64]bool{}
		h.mu.Unlock()
		for id := range ids {
			if err := h.sync(ctx, id); err != nil && ctx.Err() == nil {
				h.b.log.Warn("release header not brought up to date; retried", "release", releases.Key(id), "err", err)
				time.AfterFunc(10*time.Second, func() { h.mark(id) })
			}
		}
	}
}

// sync posts or edits one release's header, then posts its new notable
// events in the thread.
func (h *releaseHeaders) sync(ctx context.Context, id int64) error {
	r, err := h.rel.Get(ctx, id)
	if err != nil {
		return err
	}
	rev := strconv.FormatUint(r.Rev, 10)
	if r.Chat["rev"] == rev {
		return nil
	}
	blocks, fallback := ReleaseHeader(h.rel, r, time.Now())
	channel, ts := r.Chat["channel"], r.Chat["ts"]
	switch {
	case ts == "":
		channel = h.where
		// posted once: a mark stored before the post; after a crash or an
		// answer lost, the channel is searched for it before posting again
		root := "🚀 " + r.Key() + " · "
		if r.Chat["sent"] != "" {
			if ts, err = h.b.rooms.findPost(ctx, channel, func(text string) bool { return strings.HasPrefix(text, root) }); err != nil {
				return err
			}
		}
		if ts == "" {
			if err := h.rel.SetChat(ctx, id, map[string]string{"sent": "1"}); err != nil {
				return err
			}
			ts, err = h.b.postMessage(ctx, h.b.send.DoOnce, channel, fallback, blocks)
			if err != nil {
				return fmt.Errorf("post the header: %w", err)
			}
		} else if err := h.b.send.Do(ctx, "chat.update", channel, func(ctx context.Context) error { // found: bring it up to date
			_, _, _, err := h.b.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
			return err
		}); err != nil {
			return fmt.Errorf("edit the header: %w", err)
		}
		// where it is, before anything else: a retry edits it, never posts a second
		if err := h.rel.SetChat(ctx, id, map[string]string{"channel": channel, "ts": ts}); err != nil {
			return err
		}
	default:
		err = h.b.send.Do(ctx, "chat.update", channel, func(ctx context.Context) error {
			_, _, _, err := h.b.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
			return err
		})
		if err != nil {
			return fmt.Errorf("edit the header: %w", err)
		}
	}
	posted, _ := strconv.ParseUint(r.Chat["posted"], 10, 64) // counted in Recorded: the timeline keeps only its last events
	if r.Chat["posted"] == "" {
		posted = r.Recorded // a new thread: the header says what happened so far
	}
	people := peopleOf(nil, r.People()...)
	for _, ev := range r.After(posted) {
		if !threadKinds[ev.Kind] {
			continue
		}
		text := fmt.Sprintf("%s %s", releaseMark(ev.Kind), people.escape(ev.Text))
		if _, err := h.b.postMessage(ctx, h.b.send.Do, channel, text, nil, slack.MsgOptionTS(ts)); err != nil {
			return fmt.Errorf("post in the thread: %w", err)
		}
	}
	return h.rel.SetChat(ctx, id, map[string]string{"rev": rev, "posted": strconv.FormatUint(r.Recorded, 10)})
}

func releaseMark(kind string) string {
	return map[string]string{releases.EvRollout: "⏳", releases.EvBreach: "🔴", releases.EvVerified: "✅", releases.EvCheckpoint: "🕓",
		releases.EvRollback: "↩️", releases.EvAborted: "⏹", releases.EvWatch: "👀"}[kind]
}

// ReleaseHeader is a release thread's root message: the release card.
func ReleaseHeader(rel *releases.Service, r *releases.Release, now time.Time) ([]slack.Block, string) {
	return Blocks(commands.ReleaseCard(rel, r, now))
}

// changes are an incident header's "Recent change" fields: its service's
// releases in the day before it was declared.
func (b *Bot) changes(ctx context.Context, inc *incidents.Incident) []commands.Field {
	var out []commands.Field
	for _, line := range commands.RecentChanges(ctx, b.cfg.Releases, inc.Service, inc.DeclaredAt) {
		out = append(out, commands.Field{Label: "Recent change", Value: line})
	}
	return out
}
