package slackbot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// rooms opens one war room per incident and keeps its header and topic current.
type rooms struct {
	b       *Bot
	mu      sync.Mutex
	opening map[int64]bool
	dirty   map[string]bool // "header:7", "topic:7": a refresh is queued
}

func newRooms(b *Bot) *rooms {
	return &rooms{b: b, opening: map[int64]bool{}, dirty: map[string]bool{}}
}

// Notify reacts to a stored change: a new incident gets a war room; any
// change refreshes the header; status updates and reminders are posted.
func (b *Bot) Notify(ctx context.Context, inc *incidents.Incident, events []incidents.Event) {
	r := b.rooms
	for _, ev := range events {
		switch ev.Kind {
		case incidents.EventDeclared:
			id := inc.ID
			b.submit(context.WithoutCancel(ctx), func(ctx context.Context) { r.open(ctx, id) })
		case incidents.EventStatusChanged, incidents.EventResolved, incidents.EventReopened:
			r.statusUpdate(ctx, inc, ev)
		case incidents.EventReminder:
			r.reminder(ctx, inc, ev)
		case incidents.EventAlertsResolved:
			if inc.Channel != "" && inc.Open() {
				text := "✅ *Every alert of " + inc.Key() + " has resolved.* Resolve the incident once the service is confirmed healthy."
				var resolve []commands.Button
				for _, btn := range commands.Buttons(inc) {
					if btn.Label == "Resolve" {
						resolve = append(resolve, btn)
					}
				}
				blocks := append([]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, ActionBlocks(resolve)...)
				r.b.send.Go(ctx, "chat.postMessage", inc.Channel, r.poster(inc.Channel, text, blocks))
			}
		case incidents.EventRoleAssigned:
			if u := slackUser(ev.To); u != "" && inc.Channel != "" {
				r.b.send.Go(ctx, "conversations.invite", inc.Channel, func(ctx context.Context) error {
					_, err := b.api.InviteUsersToConversationContext(ctx, inc.Channel, u)
					return err
				})
			}
		}
	}
	if inc.Channel == "" || inc.HeaderRef == "" {
		return
	}
	r.refresh(ctx, "header", inc)
	for _, ev := range events {
		switch ev.Kind {
		case incidents.EventSeverityChanged, incidents.EventStatusChanged, incidents.EventRoleAssigned,
			incidents.EventResolved, incidents.EventReopened, incidents.EventAcknowledged:
			r.refresh(ctx, "topic", inc)
			return
		}
	}
}

var nonSlug = regexp.MustCompile(`[^a-z0-9_]+`)

// ChannelName is the war room's name: inc-<n>-<slug>, lowercase, at most 80.
func ChannelName(inc *incidents.Incident) string {
	slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(inc.Title), "-"), "-_")
	name := fmt.Sprintf("inc-%d", inc.ID)
	if slug != "" {
		name += "-" + slug
	}
	if len(name) > 80 {
		name = strings.TrimRight(name[:80], "-_")
	}
	return name
}

// open creates the war room of incident id, once.
func (r *rooms) open(ctx context.Context, id int64) {
	r.mu.Lock()
	if r.opening[id] {
		r.mu.Unlock()
		return
	}
	r.opening[id] = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.opening, id); r.mu.Unlock() }()

	b := r.b
	log := b.log.With("incident", incidents.FormatID(id))
	inc, err := b.svc.Get(ctx, id)
	if err != nil || inc.Channel != "" {
		return
	}
	channel, name, err := r.create(ctx, inc)
	if err != nil {
		log.Error("war room not created; the incident is recorded, Slack is not", "err", err)
		return
	}
	r.invite(ctx, channel, inc)
	b.send.Do(ctx, "conversations.setTopic", channel, func(ctx context.Context) error {
		_, err := b.api.SetTopicOfConversationContext(ctx, channel, Topic(inc))
		return err
	})
	blocks, fallback := Header(inc)
	ts := b.post(ctx, channel, fallback, blocks)
	if ts != "" {
		if err := b.send.Do(ctx, "pins.add", channel, func(ctx context.Context) error {
			return b.api.AddPinContext(ctx, channel, slack.ItemRef{Channel: channel, Timestamp: ts})
		}); err != nil {
			log.Warn("header not pinned", "err", err)
		}
	}
	bound, _, err := b.svc.Change(ctx, id, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.OpenWarRoom(channel, name, ts, incidents.System, now)
	})
	if err != nil {
		log.Error("war room created but not bound; archiving it", "channel", channel, "err", err)
		b.send.Do(ctx, "conversations.archive", channel, func(ctx context.Context) error {
			return b.api.ArchiveConversationContext(ctx, channel)
		})
		return
	}
	if bound.UpdatedAt.After(inc.UpdatedAt) {
		r.refresh(ctx, "header", bound) // it changed while the room was being set up
	}
	if bound.Severity <= incidents.P2 && b.cfg.AnnounceChannel != "" {
		r.announce(ctx, bound)
	}
}

// reconcile opens the war rooms that could not be opened while Slack was
// unreachable (or before Slack was configured).
func (r *rooms) reconcile(ctx context.Context) {
	open, err := r.b.svc.List(ctx, incidents.Filter{})
	if err != nil {
		r.b.log.Error("war rooms not reconciled", "err", err)
		return
	}
	for _, inc := range open {
		if inc.Channel == "" {
			r.open(ctx, inc.ID)
		}
	}
}

// create makes the channel, adding a suffix while the name is taken.
func (r *rooms) create(ctx context.Context, inc *incidents.Incident) (string, string, error) {
	base := ChannelName(inc)
	for i := 1; i <= 10; i++ {
		name := base
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			name = strings.TrimRight(base[:min(len(base), 80-len(suffix))], "-_") + suffix
		}
		var ch *slack.Channel
		err := r.b.send.Do(ctx, "conversations.create", "", func(ctx context.Context) error {
			var err error
			ch, err = r.b.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name})
			return err
		})
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "name_taken" {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("conversations.create %s: %w", name, err)
		}
		return ch.ID, name, nil
	}
	return "", "", fmt.Errorf("conversations.create: every name from %s to %s-10 is taken", base, base)
}

// invite brings in the declarer, the lead and the responders.
func (r *rooms) invite(ctx context.Context, channel string, inc *incidents.Incident) {
	seen := map[string]bool{}
	var users []string
	for _, u := range append([]string{slackUser(inc.DeclaredBy), slackUser(inc.Lead())}, r.b.cfg.Responders...) {
		if u != "" && !seen[u] && (r.b.botUser.Load() == nil || u != *r.b.botUser.Load()) {
			seen[u] = true
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return
	}
	err := r.b.send.Do(ctx, "conversations.invite", channel, func(ctx context.Context) error {
		_, err := r.b.api.InviteUsersToConversationContext(ctx, channel, users...)
		return err
	})
	var se slack.SlackErrorResponse
	if err != nil && !(errors.As(err, &se) && se.Err == "already_in_channel") {
		r.b.log.Warn("invite to the war room failed", "channel", channel, "users", users, "err", err)
	}
}

// slackUser turns "<@U123>" into "U123", and anything else into "".
func slackUser(who string) string {
	if strings.HasPrefix(who, "<@") && strings.HasSuffix(who, ">") {
		id, _, _ := strings.Cut(who[2:len(who)-1], "|")
		return id
	}
	return ""
}

// refresh queues one update of the header or topic; updates already queued
// render the latest state when they run, so a burst of changes costs one call.
func (r *rooms) refresh(ctx context.Context, what string, inc *incidents.Incident) {
	key := what + ":" + strconv.FormatInt(inc.ID, 10)
	r.mu.Lock()
	if r.dirty[key] {
		r.mu.Unlock()
		return
	}
	r.dirty[key] = true
	r.mu.Unlock()
	b, id, channel := r.b, inc.ID, inc.Channel
	method := "chat.update"
	if what == "topic" {
		method = "conversations.setTopic"
	}
	b.send.Go(ctx, method, channel, func(ctx context.Context) error {
		r.mu.Lock()
		delete(r.dirty, key)
		r.mu.Unlock()
		cur, err := b.svc.Get(ctx, id)
		if err != nil {
			return err
		}
		if what == "topic" {
			_, err = b.api.SetTopicOfConversationContext(ctx, channel, Topic(cur))
			return err
		}
		blocks, fallback := Header(cur)
		_, _, _, err = b.api.UpdateMessageContext(ctx, channel, cur.HeaderRef, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

// Header is the war room's pinned message.
func Header(inc *incidents.Incident) ([]slack.Block, string) {
	card := commands.Card(inc, inc.UpdatedAt)
	card.Text = "🚨 " + card.Text
	for i, f := range card.Fields {
		if f.Label == "Ack deadline" && !inc.Acked() && inc.Open() {
			card.Fields[i].Value = fmt.Sprintf("%s (respond within %s)", say.Clock(inc.AckDeadline()), say.Human(inc.Severity.ResponseTime()))
			if inc.Reminders > 0 {
				card.Fields[i].Value += fmt.Sprintf(" — overdue, re-announced %d×", inc.Reminders)
			}
		}
	}
	for _, l := range []struct{ key, label string }{{"pagerduty_url", "PagerDuty"}, {"alert_url", "Alert"}} {
		if u := inc.Links[l.key]; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			card.Fields = append(card.Fields, commands.Field{Label: l.label, Value: u}) // Slack links bare URLs
		}
	}
	return Blocks(card)
}

func (r *rooms) announce(ctx context.Context, inc *incidents.Incident) {
	lead := inc.Lead()
	if lead == "" {
		lead = "unassigned"
	}
	text := fmt.Sprintf("*%s - %s*\nSeverity: %s\nStatus: %s\nLead: %s\nWar room: <#%s>",
		inc.Key(), escape(inc.Title), inc.Severity, inc.Status.Label(), escape(lead), inc.Channel)
	r.b.post(ctx, r.b.cfg.AnnounceChannel, fmt.Sprintf("%s %s %s", inc.Severity, inc.Key(), inc.Title),
		[]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)})
}

// statusUpdate echoes a status change to the war room and, for P1/P2, to the
// announce channel.
func (r *rooms) statusUpdate(ctx context.Context, inc *incidents.Incident, ev incidents.Event) {
	text := fmt.Sprintf("📣 *%s status: %s*", inc.Key(), strings.ToUpper(ev.To))
	if ev.Message != "" {
		text += " — " + escape(ev.Message)
	}
	text += " (" + escape(ev.Actor) + ")"
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}
	if inc.Channel != "" {
		r.b.send.Go(ctx, "chat.postMessage", inc.Channel, r.poster(inc.Channel, text, blocks))
	}
	if inc.Severity <= incidents.P2 && r.b.cfg.AnnounceChannel != "" {
		r.b.send.Go(ctx, "chat.postMessage", r.b.cfg.AnnounceChannel, r.poster(r.b.cfg.AnnounceChannel, text, blocks))
	}
}

func (r *rooms) reminder(ctx context.Context, inc *incidents.Incident, ev incidents.Event) {
	ch := inc.Channel
	if ch == "" {
		ch = r.b.cfg.AnnounceChannel
	}
	if ch == "" {
		return
	}
	if ev.Fields["about"] != "" { // after resolution: write the postmortem, hold the review
		text := "📝 " + escape(ev.Message)
		r.b.send.Go(ctx, "chat.postMessage", ch, r.poster(ch, text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}))
		return
	}
	text := fmt.Sprintf("⏰ *%s is not acknowledged* — %s", inc.Key(), escape(ev.Message))
	if lead := inc.Lead(); lead != "" {
		text += " " + escape(lead)
	}
	blocks := append([]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, ActionBlocks(commands.Buttons(inc)[:1])...)
	r.b.send.Go(ctx, "chat.postMessage", ch, r.poster(ch, text, blocks))
}

func (r *rooms) poster(channel, text string, blocks []slack.Block) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, _, err := r.b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return err
	}
}

// pin adds a war-room message to the timeline (📌 reaction or pin).
func (b *Bot) pin(ctx context.Context, user, channel, ts string, msg *slackevents.ItemMessage) {
	id, err := b.svc.ByChannel(ctx, channel)
	if err != nil {
		return // not a war room: chatter elsewhere is not stored
	}
	p := incidents.Pin{Ref: channel + "/" + ts}
	if msg != nil {
		p.Author, p.Text = "<@"+msg.User+">", msg.Text
	} else {
		err := b.send.Do(ctx, "conversations.history", "", func(ctx context.Context) error {
			h, err := b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: channel, Latest: ts, Oldest: ts, Inclusive: true, Limit: 1})
			if err == nil && len(h.Messages) > 0 {
				p.Author, p.Text = "<@"+h.Messages[0].User+">", h.Messages[0].Text
			}
			return err
		})
		if err != nil {
			b.log.Warn("pinned message not read", "channel", channel, "ts", ts, "err", err)
		}
	}
	if sec, err := strconv.ParseFloat(ts, 64); err == nil {
		p.At = time.Unix(int64(sec), 0).UTC()
	}
	b.send.Do(ctx, "chat.getPermalink", "", func(ctx context.Context) error {
		var err error
		p.Permalink, err = b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
		return err
	})
	if _, _, err := b.svc.Change(ctx, id, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.PinMessage(p, actor(user), now)
	}); err != nil {
		b.log.Error("pinned message not recorded", "incident", incidents.FormatID(id), "err", err)
	}
}
