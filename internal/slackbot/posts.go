package slackbot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The messages a stored change implies — announcements, status echoes,
// reminders — each posted once, and how Slack's refusals are told apart
// from failures worth retrying.

// postOnce posts a message an effect implies, once: a mark saved before the
// call says a post may have been made, and a retry after a failure Slack may
// have acted on (a lost answer, a crash) first looks for the post in the
// channel's recent history. The post's ts is kept in Progress[key].
func (r *rooms) postOnce(ctx context.Context, e *incidents.Effect, save func() error, key, channel, fallback string, blocks []slack.Block) error {
	p := e.Progress
	if p[key] != "" {
		return nil
	}
	if p[key+"_sent"] != "" {
		ts, err := r.findPost(ctx, channel, func(text string) bool { return text == fallback })
		if err != nil {
			return err
		}
		if ts != "" {
			p[key], p[key+"_shown"] = ts, "found"
			return save()
		}
	}
	p[key+"_sent"] = "1"
	if err := save(); err != nil {
		return err
	}
	ts, err := r.b.postMessage(ctx, r.b.send.DoOnce, channel, fallback, blocks)
	if err != nil {
		return slackErr(err)
	}
	p[key] = ts
	return save()
}

// findPost looks for a message Sitrep posted whose text is the one among
// the channel's latest.
func (r *rooms) findPost(ctx context.Context, channel string, is func(text string) bool) (string, error) {
	self, err := r.b.self(ctx)
	if err != nil {
		return "", err
	}
	var msgs []slack.Message
	err = r.b.send.Do(ctx, "conversations.history", "", func(ctx context.Context) error {
		h, err := r.b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 50})
		if err == nil {
			msgs = h.Messages
		}
		return err
	})
	if err != nil {
		return "", slackErr(err)
	}
	for _, m := range msgs {
		if m.User == self && is(m.Text) {
			return m.Timestamp, nil
		}
	}
	return "", nil
}

func (r *rooms) announce(ctx context.Context, inc *incidents.Incident, e *incidents.Effect, save func() error) error {
	lead := inc.Lead()
	if lead == "" {
		lead = "unassigned"
	}
	p := peopleOf(inc)
	text := fmt.Sprintf("*%s - %s*\nSeverity: %s\nStatus: %s\nLead: %s\nWar room: <#%s>",
		inc.Key(), p.escape(inc.Title), inc.Severity, inc.Status.Label(), p.escape(lead), inc.Channel)
	return r.postOnce(ctx, e, save, "announced", r.announceChannel(inc), fmt.Sprintf("%s %s %s", inc.Severity, inc.Key(), p.escape(inc.Title)),
		[]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)})
}

// statusUpdate echoes a status change to the war room and, for P1/P2, to the
// announce channel; each post is marked done so a retry repeats neither.
func (r *rooms) statusUpdate(ctx context.Context, inc *incidents.Incident, ev incidents.Event, e *incidents.Effect, save func() error) error {
	p := peopleOf(inc)
	if ev.Source == incidents.SourceSlack {
		p = peopleOf(inc, ev.Actor) // the author, named by Slack itself
	}
	text := fmt.Sprintf("📣 *%s status: %s*", inc.Key(), strings.ToUpper(ev.To))
	if ev.From == ev.To && ev.Kind == incidents.EventStatusChanged {
		text = fmt.Sprintf("📣 *%s update* (still %s)", inc.Key(), strings.ToUpper(ev.To))
	}
	if ev.Message != "" {
		text += " — " + p.escape(ev.Message)
	}
	text = truncate(text+" ("+p.escape(ev.Actor)+")", maxSectionText)
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}
	if inc.Channel != "" {
		if err := r.postOnce(ctx, e, save, "room", inc.Channel, text, blocks); err != nil {
			return err
		}
	}
	if ch := r.announceChannel(inc); ch != "" {
		return r.postOnce(ctx, e, save, "announce", ch, text, blocks)
	}
	return nil
}

func (r *rooms) reminder(ctx context.Context, inc *incidents.Incident, ev incidents.Event, e *incidents.Effect, save func() error) error {
	ch := inc.Channel
	if ch == "" && !inc.Private {
		ch = r.b.cfg.AnnounceChannel
	}
	if ch == "" {
		return nil
	}
	if ev.Fields["about"] != "" { // after resolution: write the postmortem, hold the review
		text := truncate("📝 "+peopleOf(inc).escape(ev.Message), maxSectionText) // it names the lead
		return r.postOnce(ctx, e, save, "post", ch, text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)})
	}
	text := truncate(fmt.Sprintf("⏰ *%s is not acknowledged* — %s", inc.Key(), escape(ev.Message)), maxSectionText-200)
	if lead := inc.Lead(); lead != "" {
		text += " " + peopleOf(inc).escape(lead)
	}
	var buttons []commands.Button
	if inc.Open() && !inc.Acked() {
		buttons = commands.Buttons(inc)[:1]
	}
	blocks := append([]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, ActionBlocks(buttons)...)
	return r.postOnce(ctx, e, save, "post", ch, text, blocks)
}

// nudge asks the war room's lead for a status update, with the button that
// opens the update form. A nudge that arrives after the update it asked
// for, or after the incident closed, is not posted.
func (r *rooms) nudge(ctx context.Context, inc *incidents.Incident, ev incidents.Event, e *incidents.Effect, save func() error) error {
	if inc.Channel == "" || !inc.Open() || inc.LastUpdateAt.After(ev.At) {
		return nil
	}
	text := truncate("✍️ "+peopleOf(inc).escape(ev.Message), maxSectionText) // it names the lead
	blocks := append([]slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, ActionBlocks([]commands.Button{commands.UpdateButton(inc)})...)
	return r.postOnce(ctx, e, save, "post", inc.Channel, text, blocks)
}

// refused puts an effect Slack refused for good on the incident's timeline,
// where people see it in the terminal, `show` and the postmortem.
func (b *Bot) refused(ctx context.Context, e incidents.Effect, err error) {
	what := "the header update"
	if e.Event != nil {
		what = map[incidents.EventKind]string{
			incidents.EventDeclared: "the war room", incidents.EventStatusChanged: "the status update",
			incidents.EventResolved: "the status update", incidents.EventReopened: "the status update",
			incidents.EventReminder: "the reminder", incidents.EventAlertsResolved: "the all-clear message", incidents.EventNudge: "the update nudge",
			incidents.EventRoleAssigned: "the invitation", incidents.EventMembersAdded: "the invitation",
			incidents.EventMerged: "the merge message", incidents.EventMergedIn: "the merge message",
			incidents.EventRoomArchived: "archiving the war room", incidents.EventPostmortemLink: "the postmortem bookmark",
			incidents.EventPublished: "the public update's echo",
		}[e.Event.Kind]
	}
	switch {
	case e.Consumer == ConsumerTopic:
		what = "the channel topic"
	case e.Kind == kindUpload:
		what = "sharing " + e.Progress["name"]
	}
	msg := fmt.Sprintf("Slack refused %s: %v", what, errors.Unwrap(err))
	if errors.Unwrap(err) == nil {
		msg = fmt.Sprintf("Slack refused %s: %v", what, err)
	}
	if _, _, rerr := b.svc.Change(ctx, e.Incident, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.Record(incidents.EventEffectFailed, msg, map[string]string{"system": "slack"}, incidents.System, now)
	}); rerr != nil {
		b.log.Error("refused effect not recorded", "incident", incidents.FormatID(e.Incident), "err", rerr)
	}
}

// slackErr marks the errors no retry fixes as permanent; the Sender has
// already retried the transient ones a few times, and the outbox retries
// them again later.
func slackErr(err error) error {
	if err == nil {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited":
			return err
		case "invalid_auth", "token_revoked", "token_expired", "not_authed", "account_inactive", "missing_scope":
			// the operator fixes the token or the scopes; the work waits for it
			return fmt.Errorf("%w (Sitrep keeps trying: fix the Slack token or its scopes)", err)
		}
		return effects.Permanent(err)
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) && status.Code >= 400 && status.Code < 500 && status.Code != 429 && status.Code != 408 {
		return effects.Permanent(err)
	}
	return err
}
