package slackbot

import (
	"context"
	"encoding/json"
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
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// The Slack adapter's effects, two consumers of the outbox: "slack" (the
// war room and every message a stored event implies, then the header edited
// to the latest state) and "slack-topic" (the channel topic, on its own so
// Tier 2's one call every three seconds never holds up a header edit).
const (
	ConsumerRooms = "slack"
	ConsumerTopic = "slack-topic"
)

// Subscriptions are the Slack adapter's outbox subscriptions: give them to
// the store so the events that imply Slack work write it in the same
// transaction.
func Subscriptions() []incidents.Subscription {
	return []incidents.Subscription{
		{Consumer: ConsumerRooms, Events: roomEvent, Changes: headerChange},
		{Consumer: ConsumerTopic, Changes: topicChange},
	}
}

func roomEvent(inc *incidents.Incident, ev incidents.Event) bool {
	switch ev.Kind {
	case incidents.EventDeclared, incidents.EventStatusChanged, incidents.EventResolved, incidents.EventReopened,
		incidents.EventReminder, incidents.EventAlertsResolved, incidents.EventNudge, incidents.EventMerged, incidents.EventRoomArchived, incidents.EventPublished:
		return true
	case incidents.EventRoleAssigned, incidents.EventMembersAdded, incidents.EventMergedIn, incidents.EventPostmortemLink:
		return inc.Channel != "" // before the room exists, opening it invites the people and bookmarks the links
	}
	return false
}

// headerChange: what the header shows, once there is a header (the binding
// marks it, so what changed while the room was being set up shows then). Records of outside work (its
// own failures among them) do not change it, so a refused edit cannot loop.
func headerChange(inc *incidents.Incident, ev incidents.Event) bool {
	if inc.Channel == "" {
		return false
	}
	switch ev.Kind {
	case incidents.EventEffectFailed, incidents.EventSynced, incidents.EventSyncFailed,
		incidents.EventMessagePinned, incidents.EventNote, incidents.EventRunbookStep, incidents.EventAlert:
		return false
	}
	return true // the binding too: changes made while the room was set up show then
}

func topicChange(inc *incidents.Incident, ev incidents.Event) bool {
	if inc.Channel == "" {
		return false
	}
	switch ev.Kind {
	case incidents.EventSeverityChanged, incidents.EventStatusChanged, incidents.EventRoleAssigned,
		incidents.EventResolved, incidents.EventReopened, incidents.EventAcknowledged, incidents.EventWarRoomOpened:
		return true
	}
	return false
}

// rooms does the "slack" and "slack-topic" effects.
type rooms struct {
	b        *Bot
	mu       sync.Mutex
	rendered map[string]string // "header:7", "topic:7" → what Slack shows now, as far as this process knows
}

func newRooms(b *Bot) *rooms { return &rooms{b: b, rendered: map[string]string{}} }

// shown reports whether key already shows content.
func (r *rooms) shown(key, content string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rendered[key] == content
}

func (r *rooms) remember(key, content string) {
	r.mu.Lock()
	r.rendered[key] = content
	r.mu.Unlock()
}

// handle does one "slack" effect.
func (r *rooms) handle(ctx context.Context, e *incidents.Effect, save func() error) error {
	inc, err := r.b.svc.Get(ctx, e.Incident)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.Progress == nil {
		e.Progress = map[string]string{}
	}
	if e.Changed() {
		return r.header(ctx, inc)
	}
	if e.Event == nil {
		if e.Kind == kindUpload {
			return r.b.uploadEffect(ctx, e)
		}
		return nil // an adapter effect this version does not know
	}
	ev := *e.Event
	switch ev.Kind {
	case incidents.EventDeclared:
		return r.open(ctx, inc, e, save)
	case incidents.EventStatusChanged, incidents.EventResolved, incidents.EventReopened:
		return r.statusUpdate(ctx, inc, ev, e, save)
	case incidents.EventReminder:
		return r.reminder(ctx, inc, ev, e, save)
	case incidents.EventNudge:
		return r.nudge(ctx, inc, ev, e, save)
	case incidents.EventAlertsResolved:
		if inc.Channel == "" || !inc.Open() {
			return nil
		}
		text := "✅ *Every alert of " + inc.Key() + " has resolved.* Resolve the incident once the service is confirmed healthy."
		var resolve []commands.Button
		for _, btn := range commands.Buttons(inc) {
			if btn.Label == "Resolve" {
				resolve = append(resolve, btn)
			}
		}
		blocks := append([]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, ActionBlocks(resolve)...)
		return r.postOnce(ctx, e, save, "post", inc.Channel, text, blocks)
	case incidents.EventRoleAssigned:
		if u := slackUser(ev.To); u != "" && inc.Channel != "" {
			return r.inviteUsers(ctx, inc.Channel, []string{u})
		}
	case incidents.EventMembersAdded:
		return r.invited(ctx, inc, ev)
	case incidents.EventMerged:
		return r.merged(ctx, inc, e, save)
	case incidents.EventMergedIn:
		return r.mergedIn(ctx, inc, ev, e, save)
	case incidents.EventRoomArchived:
		return r.archive(ctx, inc)
	case incidents.EventPublished:
		return r.published(ctx, inc, ev, e, save)
	case incidents.EventPostmortemLink:
		if inc.Channel != "" {
			return r.bookmark(ctx, inc.Channel, []Bookmark{{Title: "Postmortem", URL: ev.To}}, e, save)
		}
	}
	return nil
}

// handleTopic does one "slack-topic" effect: the topic shows the latest state.
func (r *rooms) handleTopic(ctx context.Context, e *incidents.Effect, _ func() error) error {
	inc, err := r.b.svc.Get(ctx, e.Incident)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil
	}
	if err != nil || inc.Channel == "" {
		return err // no room yet: opening it sets the topic
	}
	topic := Topic(inc)
	key := "topic:" + strconv.FormatInt(inc.ID, 10)
	if r.shown(key, topic) {
		return nil
	}
	err = r.b.send.Do(ctx, "conversations.setTopic", inc.Channel, func(ctx context.Context) error {
		_, err := r.b.api.SetTopicOfConversationContext(ctx, inc.Channel, topic)
		return err
	})
	if err == nil {
		r.remember(key, topic)
	}
	return slackErr(err)
}

// header edits the pinned header to the incident's latest state.
func (r *rooms) header(ctx context.Context, inc *incidents.Incident) error {
	if inc.Channel == "" || inc.HeaderRef == "" {
		return nil
	}
	blocks, fallback := Header(inc, r.b.changes(ctx, inc)...)
	content := renderKey(blocks, fallback)
	key := "header:" + strconv.FormatInt(inc.ID, 10)
	if r.shown(key, content) {
		return nil
	}
	err := r.b.send.Do(ctx, "chat.update", inc.Channel, func(ctx context.Context) error {
		_, _, _, err := r.b.api.UpdateMessageContext(ctx, inc.Channel, inc.HeaderRef, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err == nil {
		r.remember(key, content)
	}
	return slackErr(err)
}

func renderKey(blocks []slack.Block, fallback string) string {
	b, _ := json.Marshal(blocks)
	return fallback + "\x00" + string(b)
}

// open creates incident inc's war room, once, resuming where an earlier
// attempt (or process) stopped: each step done is saved in the effect's
// progress before the next one, the channel name is saved before Slack is
// asked to create it, and a post Slack took just before a crash is found in
// the channel rather than made twice.
func (r *rooms) open(ctx context.Context, inc *incidents.Incident, e *incidents.Effect, save func() error) error {
	b, p := r.b, e.Progress
	if inc.Channel != "" && len(p) == 0 {
		// Bound already by another effect this one never took part in (a
		// replica's start-up reconcile that raced the binding): nothing to do.
		return nil
	}
	if inc.Channel == "" {
		channel, name := p["channel"], p["name"]
		if channel == "" {
			var err error
			if channel, name, err = r.create(ctx, inc, e, save); err != nil {
				return err
			}
			// Saved with the next step: a crash before it finds the channel by
			// its saved name (name_taken, then ours).
			p["channel"], p["name"] = channel, name
		}
		if p["invited"] == "" {
			if err := r.invite(ctx, channel, inc); err != nil {
				return err
			}
			p["invited"] = "1" // saved with the next step
		}
		if p["topic"] == "" {
			topic := Topic(inc)
			err := b.send.Do(ctx, "conversations.setTopic", channel, func(ctx context.Context) error {
				_, err := b.api.SetTopicOfConversationContext(ctx, channel, topic)
				return err
			})
			if err != nil {
				return slackErr(err)
			}
			r.remember("topic:"+strconv.FormatInt(inc.ID, 10), topic)
			p["topic"] = "1"
		}
		blocks, fallback := Header(inc, r.b.changes(ctx, inc)...)
		if p["header"] == "" {
			if err := r.postOnce(ctx, e, save, "header", channel, fallback, blocks); err != nil {
				return err
			}
			if p["header_shown"] == "" { // posted by this attempt: Slack shows this
				r.remember("header:"+strconv.FormatInt(inc.ID, 10), renderKey(blocks, fallback))
			}
		}
		ts := p["header"]
		if p["pinned"] == "" {
			err := b.send.Do(ctx, "pins.add", channel, func(ctx context.Context) error {
				return b.api.AddPinContext(ctx, channel, slack.ItemRef{Channel: channel, Timestamp: ts})
			})
			var se slack.SlackErrorResponse
			if err != nil && !(errors.As(err, &se) && se.Err == "already_pinned") {
				return slackErr(err)
			}
			p["pinned"] = "1"
		}
		bound, _, err := b.svc.Change(ctx, inc.ID, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
			if inc.Channel == channel {
				return nil, nil // bound by an earlier attempt
			}
			return inc.OpenWarRoom(channel, name, ts, incidents.System, now)
		})
		if err != nil {
			if incidents.ErrorMessage(err) == "" {
				return err // the store: try again
			}
			b.log.Error("war room created but not bound; archiving it", "channel", channel, "err", err)
			b.send.Do(ctx, "conversations.archive", channel, func(ctx context.Context) error {
				return b.api.ArchiveConversationContext(ctx, channel)
			})
			return effects.Permanent(err)
		}
		inc = bound // the binding marked the header and topic: what changed meanwhile shows next
	}
	if r.announceChannel(inc) != "" {
		if err := r.announce(ctx, inc, e, save); err != nil {
			return err
		}
	}
	if ref := inc.Links[incidents.LinkOrigin]; ref != "" { // after the announcement: a link never holds it up
		if err := r.origin(ctx, inc, ref, e, save); err != nil {
			return err
		}
	}
	return r.bookmark(ctx, inc.Channel, r.bookmarks(inc), e, save) // last, and best effort: nothing waits for it
}

// origin links the war room and the message an incident was declared from,
// both ways: the message's permalink in the war room, and the war room in
// the message's thread (when Sitrep may post in that channel).
func (r *rooms) origin(ctx context.Context, inc *incidents.Incident, ref string, e *incidents.Effect, save func() error) error {
	channel, ts, ok := parseRef(ref)
	if !ok {
		return nil
	}
	p := e.Progress
	var se slack.SlackErrorResponse
	if p["permalink"] == "" {
		err := r.b.send.Do(ctx, "chat.getPermalink", "", func(ctx context.Context) error {
			var err error
			p["permalink"], err = r.b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
			return err
		})
		switch {
		case errors.As(err, &se): // Slack said no (a DM, a channel Sitrep cannot see): the room says so without a link
			p["permalink"] = "-"
		case err != nil:
			return slackErr(err) // try again
		}
	}
	text := fmt.Sprintf("📎 Declared from <%s|this message> in <#%s>", p["permalink"], channel)
	if p["permalink"] == "-" {
		text = "📎 Declared from a message Sitrep cannot link to (a direct message, or a channel it is not in)"
	}
	if err := r.postOnce(ctx, e, save, "origin", inc.Channel, text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}); err != nil {
		return err
	}
	if p["origin_thread"] != "" || inc.Private { // a private incident is never named where others read
		return nil
	}
	reply := fmt.Sprintf("🚨 %s declared from this message — war room <#%s>", inc.Key(), inc.Channel)
	if p["permalink"] != "-" {
		if _, err := r.b.postMessage(ctx, r.b.send.DoOnce, channel, reply, nil, slack.MsgOptionTS(ts)); err != nil && !errors.As(err, &se) {
			return slackErr(err) // not Slack's no (not_in_channel and the like): try again
		}
	}
	p["origin_thread"] = "1" // or Sitrep may not post there: the war room's link is enough
	return save()
}

// create makes the channel, adding a suffix while the name is someone
// else's. The name is saved before each try; when Slack says it is taken,
// a channel of that name that Sitrep created for this incident (a try Slack
// completed but whose answer was lost, or a crash) is found and used.
func (r *rooms) create(ctx context.Context, inc *incidents.Incident, e *incidents.Effect, save func() error) (string, string, error) {
	base := ChannelName(inc)
	for i := 1; i <= 10; i++ {
		name := base
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			name = strings.TrimRight(base[:min(len(base), 80-len(suffix))], "-_") + suffix
		}
		e.Progress["name"] = name
		if err := save(); err != nil {
			return "", "", err
		}
		var ch *slack.Channel
		err := r.b.send.DoOnce(ctx, "conversations.create", "", func(ctx context.Context) error {
			var err error
			ch, err = r.b.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name, IsPrivate: inc.Private})
			return err
		})
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "name_taken" {
			id, err := r.ours(ctx, name, inc)
			if err != nil {
				return "", "", err
			}
			if id != "" {
				r.b.log.Info("war room found, created before its answer was lost", "incident", inc.Key(), "channel", id, "name", name)
				return id, name, nil
			}
			continue
		}
		if err != nil {
			return "", "", slackErr(fmt.Errorf("conversations.create %s: %w", name, err))
		}
		return ch.ID, name, nil
	}
	return "", "", effects.Permanent(fmt.Errorf("conversations.create: every name from %s to %s-10 is taken", base, base))
}

// ours finds the channel called name if Sitrep created it for inc and no
// incident has it: "" when the name is someone else's.
func (r *rooms) ours(ctx context.Context, name string, inc *incidents.Incident) (string, error) {
	bot, err := r.b.self(ctx)
	if err != nil {
		return "", err // not knowing who Sitrep is must not pass for "someone else's"
	}
	params := &slack.GetConversationsParameters{ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"}}
	for {
		var chans []slack.Channel
		var next string
		err := r.b.send.Do(ctx, "conversations.list", "", func(ctx context.Context) error {
			var err error
			chans, next, err = r.b.api.GetConversationsContext(ctx, params)
			return err
		})
		if err != nil {
			return "", slackErr(err)
		}
		for _, ch := range chans {
			if ch.Name != name {
				continue
			}
			if ch.Creator != bot || int64(ch.Created) < inc.DeclaredAt.Unix()-60 {
				return "", nil
			}
			if _, err := r.b.svc.ByChannel(ctx, ch.ID); err == nil {
				return "", nil // another incident's room
			}
			return ch.ID, nil
		}
		if next == "" {
			return "", nil
		}
		params.Cursor = next
	}
}

// invite brings in the people the incident names (the declarer, the lead,
// those invited) and the responders — not into a private incident's room:
// only its own people.
func (r *rooms) invite(ctx context.Context, channel string, inc *incidents.Incident) error {
	seen := map[string]bool{}
	var users []string
	for _, u := range inc.People() {
		users = append(users, slackUser(u))
	}
	if !inc.Private {
		users = append(users, r.b.cfg.Responders...)
	}
	var invite []string
	for _, u := range users {
		if u != "" && !seen[u] && (r.b.botUser.Load() == nil || u != *r.b.botUser.Load()) {
			seen[u] = true
			invite = append(invite, u)
		}
	}
	return r.inviteUsers(ctx, channel, invite)
}

// reconcile queues a war room for every open incident that has none and
// no effect to open one (incidents recorded before Slack was configured);
// an effect already pending is kept.
func (r *rooms) reconcile(ctx context.Context) error {
	open, err := r.b.svc.List(ctx, incidents.Filter{})
	if err != nil {
		return fmt.Errorf("war rooms not reconciled: %w", err)
	}
	for _, inc := range open {
		if inc.Channel != "" {
			continue
		}
		// the declared event is the timeline's first
		if err := r.b.cfg.Outbox.AddEffect(ctx, incidents.Effect{Consumer: ConsumerRooms, Incident: inc.ID, Seq: 1, Kind: incidents.EventDeclared}); err != nil {
			return fmt.Errorf("war room of %s not queued: %w", inc.Key(), err)
		}
	}
	return nil
}

func (r *rooms) inviteUsers(ctx context.Context, channel string, users []string) error {
	if len(users) == 0 {
		return nil
	}
	err := r.b.send.Do(ctx, "conversations.invite", channel, func(ctx context.Context) error {
		_, err := r.b.api.InviteUsersToConversationContext(ctx, channel, users...)
		return err
	})
	var se slack.SlackErrorResponse
	if err != nil && errors.As(err, &se) {
		switch se.Err {
		case "already_in_channel", "cant_invite_self":
			return nil
		case "user_not_found", "cant_invite", "user_is_restricted", "ura_max_channels", "user_is_ultra_restricted":
			r.b.log.Warn("invite to the war room refused", "channel", channel, "users", users, "err", err)
			return nil // a person Slack will not add does not stop the room
		}
	}
	return slackErr(err)
}

var nonSlug = regexp.MustCompile(`[^a-z0-9_]+`)

// ChannelName is the war room's name: inc-<n>-<slug>, lowercase, at most 80.
func ChannelName(inc *incidents.Incident) string {
	slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(inc.Title), "-"), "-_")
	prefix := "inc"
	if inc.Drill {
		prefix = "drill" // a game day's room reads as one in the channel list
	}
	name := fmt.Sprintf("%s-%d", prefix, inc.ID)
	if slug != "" {
		name += "-" + slug
	}
	if len(name) > 80 {
		name = strings.TrimRight(name[:80], "-_")
	}
	return name
}

// slackUser turns "<@U123>" into "U123", and anything else into "".
func slackUser(who string) string {
	if strings.HasPrefix(who, "<@") && strings.HasSuffix(who, ">") {
		id, _, _ := strings.Cut(who[2:len(who)-1], "|")
		return id
	}
	return ""
}

// Header is the war room's pinned message; extra fields (the service's
// recent releases) go after the card's own.
func Header(inc *incidents.Incident, extra ...commands.Field) ([]slack.Block, string) {
	card := commands.Card(inc, inc.UpdatedAt)
	card.Fields = append(card.Fields, extra...)
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
