package slackbot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// What the relations between incidents and people imply in Slack: people
// invited into the war room, a merged duplicate's room pointing to the
// survivor and archived after the grace, and the war room's bookmarks.

// Bookmark is a link the war room keeps in its bookmarks bar.
type Bookmark struct {
	Title, URL string
}

// announceChannel is where the incident's announcements and echoes go, or
// "": P1 and P2 only, and never a private incident's.
func (r *rooms) announceChannel(inc *incidents.Incident) string {
	if inc.Private || inc.Severity > incidents.P2 {
		return ""
	}
	return r.b.cfg.AnnounceChannel
}

// invited brings the people an event names ("users") into the war room.
func (r *rooms) invited(ctx context.Context, inc *incidents.Incident, ev incidents.Event) error {
	if inc.Channel == "" {
		return nil // opening the room invites them
	}
	var users []string
	for _, u := range strings.Split(ev.Fields["users"], ",") {
		if id := slackUser(u); id != "" {
			users = append(users, id)
		}
	}
	return r.inviteUsers(ctx, inc.Channel, users)
}

// merged tells a duplicate's war room where the work goes on.
func (r *rooms) merged(ctx context.Context, dup *incidents.Incident, e *incidents.Effect, save func() error) error {
	if dup.Channel == "" {
		return nil
	}
	into, err := r.b.svc.Get(ctx, dup.MergedInto)
	if err != nil {
		return err
	}
	where := into.Key()
	if into.Channel != "" {
		where = fmt.Sprintf("<#%s>", into.Channel)
	}
	text := fmt.Sprintf("➡️ *%s was merged into %s* (%s) as a duplicate. Carry on in %s; this channel is archived in %s.",
		dup.Key(), into.Key(), escape(into.Name()), where, incidents.Human(incidents.ArchiveGrace()))
	return r.postOnce(ctx, e, save, "post", dup.Channel, text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)})
}

// mergedIn tells the survivor's war room what came in, and invites the
// duplicate's people.
func (r *rooms) mergedIn(ctx context.Context, inc *incidents.Incident, ev incidents.Event, e *incidents.Effect, save func() error) error {
	if inc.Channel == "" {
		return nil
	}
	text := "🔀 " + escape(ev.Message)
	if err := r.postOnce(ctx, e, save, "post", inc.Channel, text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}); err != nil {
		return err
	}
	return r.invited(ctx, inc, ev)
}

// archive closes a merged duplicate's war room after the grace.
func (r *rooms) archive(ctx context.Context, inc *incidents.Incident) error {
	if inc.Channel == "" {
		return nil
	}
	err := r.b.send.Do(ctx, "conversations.archive", inc.Channel, func(ctx context.Context) error {
		return r.b.api.ArchiveConversationContext(ctx, inc.Channel)
	})
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && se.Err == "already_archived" {
		return nil
	}
	return slackErr(err)
}

// bookmark adds bookmarks to the war room, each once and at best: the mark
// is saved before the call, and a retry after a failure Slack may have
// acted on looks for the link among the channel's bookmarks first. Any
// Slack failure — a link it will not take, a missing scope, an outage —
// is logged and the bookmark skipped: a bookmark never holds up the room
// or the incident's next effects.
func (r *rooms) bookmark(ctx context.Context, channel string, marks []Bookmark, e *incidents.Effect, save func() error) error {
	p := e.Progress
	var have map[string]bool // the channel's links, read once when a retry needs them
	for i, m := range marks {
		key := "bookmark" + strconv.Itoa(i)
		if p[key] != "" {
			continue
		}
		if p[key+"_sent"] != "" {
			if have == nil {
				var list []slack.Bookmark
				err := r.b.send.Do(ctx, "bookmarks.list", channel, func(ctx context.Context) error {
					var err error
					list, err = r.b.api.ListBookmarksContext(ctx, channel)
					return err
				})
				if err != nil {
					r.b.log.Warn("bookmarks not checked; the rest are skipped", "channel", channel, "err", err)
					return save()
				}
				have = map[string]bool{}
				for _, b := range list {
					have[b.Link] = true
				}
			}
			if have[m.URL] {
				p[key] = "found"
				continue
			}
		}
		p[key+"_sent"] = "1"
		if err := save(); err != nil {
			return err
		}
		err := r.b.send.DoOnce(ctx, "bookmarks.add", channel, func(ctx context.Context) error {
			_, err := r.b.api.AddBookmarkContext(ctx, channel, slack.AddBookmarkParameters{Title: truncate(m.Title, 100), Type: "link", Link: m.URL})
			return err
		})
		if err != nil {
			r.b.log.Warn("bookmark not added", "channel", channel, "title", m.Title, "err", err)
		}
		p[key] = "1"
	}
	return save()
}

// bookmarks are the war room's: the runbook's page and the service's
// dashboards (from configuration), and the written postmortem once linked.
func (r *rooms) bookmarks(inc *incidents.Incident) []Bookmark {
	var out []Bookmark
	if r.b.cfg.Bookmarks != nil {
		out = r.b.cfg.Bookmarks(inc)
	}
	if inc.PostmortemURL != "" {
		out = append(out, Bookmark{Title: "Postmortem", URL: inc.PostmortemURL})
	}
	return out
}

// published echoes a public update to the war room and the announce
// channel: everyone inside sees what the public was told.
func (r *rooms) published(ctx context.Context, inc *incidents.Incident, ev incidents.Event, e *incidents.Effect, save func() error) error {
	text := truncate(fmt.Sprintf("📢 *%s on the status page: %s* — %s — %s (%s)", inc.Key(), strings.ToUpper(ev.To),
		escape(inc.PublicName()), escape(ev.Message), peopleOf(inc, ev.Actor).escape(ev.Actor)), maxSectionText)
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}
	if inc.Channel != "" {
		if err := r.postOnce(ctx, e, save, "room", inc.Channel, text, blocks); err != nil {
			return err
		}
	}
	if ch := r.b.cfg.AnnounceChannel; ch != "" && !inc.Private && !inc.Drill {
		return r.postOnce(ctx, e, save, "announce", ch, text, blocks)
	}
	return nil
}
