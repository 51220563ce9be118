package slackbot

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// events reads the socket's events, one at a time in arrival order.
func (b *Bot) events(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt, ok := <-b.sm.Events:
			if !ok {
				return
			}
			b.dispatch(ctx, evt)
		}
	}
}

func (b *Bot) dispatch(ctx context.Context, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		if !b.connected.Swap(true) {
			b.log.Info("slack socket mode connected")
		}
		return
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeDisconnect:
		b.connected.Store(false)
		msg := string(evt.Type)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok && e.ErrorObj != nil {
			msg += ": " + e.ErrorObj.Error()
		}
		b.lastErr.Store(&msg)
		b.log.Warn("slack connection", "state", msg)
		return
	}
	if evt.Request == nil {
		return
	}
	req := *evt.Request
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			b.sm.Ack(req)
			return
		}
		b.receive(ctx, req, evt.Type, cmd.ChannelID)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		switch {
		case ok && cb.Type == slack.InteractionTypeViewSubmission:
			var errs map[string]string
			if cb.View.CallbackID == modalUpdate {
				_, _, errs = updateFromModal(cb)
			} else {
				_, errs = declarationFromModal(cb)
			}
			if errs != nil { // shown next to the fields; nothing stored
				b.sm.Ack(req, map[string]any{"response_action": "errors", "errors": errs})
				return
			}
			b.receive(ctx, req, evt.Type, "")
		case ok && cb.Type == slack.InteractionTypeBlockActions:
			b.receive(ctx, req, evt.Type, cb.Channel.ID)
		case ok && cb.Type == slack.InteractionTypeMessageAction && cb.CallbackID == shortcutDeclare:
			b.receive(ctx, req, evt.Type, cb.Channel.ID)
		default:
			b.sm.Ack(req)
		}
	case socketmode.EventTypeEventsAPI:
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if ch := eventChannel(ev); ok && ch != "" {
			b.receive(ctx, req, evt.Type, ch)
			return
		}
		b.sm.Ack(req)
	default:
		b.sm.Ack(req)
	}
}

// source names Slack's envelopes in the inbox.
const source = "slack"

// receive stores an envelope in the inbox, then acknowledges it, then has
// it processed in order with the channel's earlier envelopes. The stores of
// envelopes that arrive together share one fsync; an envelope that could
// not be stored is not acknowledged, so Slack delivers it again.
func (b *Bot) receive(ctx context.Context, req socketmode.Request, typ socketmode.EventType, channel string) {
	env := incidents.Envelope{Key: b.arrivals.Add(1), Source: source, ID: req.EnvelopeID, Type: string(typ),
		Channel: channel, Payload: req.Payload, At: time.Now().UTC()}
	stored := make(chan bool, 1)
	b.submitInOrder(ctx, channel, func(ctx context.Context) {
		if <-stored {
			b.process(ctx, env)
		}
	})
	b.intake.Add(1)
	go func() {
		defer b.intake.Done()
		dup, err := b.cfg.Inbox.Receive(ctx, env)
		if err != nil && b.cfg.Spool != nil {
			if _, serr := b.cfg.Spool.Receive(ctx, env); serr == nil {
				b.log.Warn("slack envelope kept in the local spool: the database did not take it; it is done once the database is back", "envelope", req.EnvelopeID, "err", err)
				b.ack(ctx, req)
				stored <- false // done by drainSpool, after the database has it
				return
			}
		}
		if err != nil {
			b.log.Error("slack envelope not stored, so not acknowledged; Slack will deliver it again", "envelope", req.EnvelopeID, "err", err)
			stored <- false
			return
		}
		b.ack(ctx, req)
		stored <- !dup
	}()
}

// ack acknowledges a stored envelope, giving up after a few seconds (a
// socket gone or stopping): Slack delivers it again and the inbox knows it.
func (b *Bot) ack(ctx context.Context, req socketmode.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := b.sm.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
		b.log.Warn("slack envelope stored but not acknowledged; Slack will deliver it again", "envelope", req.EnvelopeID, "err", err)
	}
}

// replay queues the envelopes an earlier run acknowledged but did not finish.
func (b *Bot) replay(ctx context.Context) {
	pending, err := b.cfg.Inbox.Unprocessed(ctx, source)
	if err != nil {
		b.log.Error("slack inbox not read", "err", err)
		return
	}
	b.queue(ctx, pending, "processing slack envelopes received before the restart")
}

// queue has stored envelopes done, each in its channel's order, saying so.
func (b *Bot) queue(ctx context.Context, envs []incidents.Envelope, what string) {
	if len(envs) > 0 {
		b.log.Info(what, "count", len(envs))
	}
	for _, env := range envs {
		b.submitInOrder(ctx, env.Channel, func(ctx context.Context) { b.process(ctx, env) })
	}
}

// spoolEvery is how often the spool is offered to the database again.
const spoolEvery = time.Second

// drainSpool moves what the spool kept into the inbox, oldest first, as
// soon as the inbox takes it again, and has each done.
func (b *Bot) drainSpool(ctx context.Context) {
	t := time.NewTicker(spoolEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kept, err := b.cfg.Spool.Unprocessed(ctx, source)
		if err != nil || len(kept) == 0 {
			continue
		}
		moved := 0
		for _, env := range kept {
			dup, err := b.cfg.Inbox.Receive(ctx, env)
			if err != nil {
				break // still down: next time
			}
			moved++
			if !dup {
				b.submitInOrder(ctx, env.Channel, func(ctx context.Context) { b.process(ctx, env) })
			}
			if err := b.cfg.Spool.Processed(ctx, env.Key); err != nil {
				b.log.Error("spooled slack envelope moved but not removed from the spool", "envelope", env.ID, "err", err)
			}
		}
		if moved > 0 {
			b.log.Info("slack envelopes kept while the database was down are in it now", "count", moved)
		}
	}
}

// orphanEvery is how often a replica looks for envelopes a dead one left.
const orphanEvery = 3 * time.Second

// adoptOrphans queues, until ctx ends, the envelopes another replica
// acknowledged and died before doing (the shared inbox hands them over once
// its heartbeat has lapsed).
func (b *Bot) adoptOrphans(ctx context.Context, inbox incidents.SharedInbox) {
	t := time.NewTicker(orphanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		orphans, err := inbox.Orphaned(ctx, source)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("slack envelopes of other replicas not checked", "err", err)
			}
			continue
		}
		b.queue(ctx, orphans, "doing slack envelopes a stopped replica acknowledged")
	}
}

// process does an envelope's work and then removes it from the inbox. Work
// cut short by shutdown stays in the inbox for the next start.
func (b *Bot) process(ctx context.Context, env incidents.Envelope) {
	defer func() {
		if b.runCtx.Err() != nil {
			return // stopping: replay it next time
		}
		done, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := b.cfg.Inbox.Processed(done, env.Key); err != nil {
			b.log.Error("slack envelope done but still in the inbox; it will run again after a restart", "envelope", env.ID, "err", err)
		}
	}()
	switch socketmode.EventType(env.Type) {
	case socketmode.EventTypeSlashCommand:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(env.Payload, &cmd); err != nil {
			b.log.Error("stored slash command unreadable; dropped", "envelope", env.ID, "err", err)
			return
		}
		b.slash(ctx, cmd, env.ID)
	case socketmode.EventTypeInteractive:
		var cb slack.InteractionCallback
		if err := json.Unmarshal(env.Payload, &cb); err != nil {
			b.log.Error("stored interaction unreadable; dropped", "envelope", env.ID, "err", err)
			return
		}
		switch cb.Type {
		case slack.InteractionTypeViewSubmission:
			if cb.View.CallbackID == modalUpdate {
				if text, channel, errs := updateFromModal(cb); errs == nil {
					reply := b.handler.Handle(ctx, commands.Request{ID: env.ID, Actor: actor(cb.User.ID), Channel: channel, Text: text})
					b.respond(ctx, channel, cb.User.ID, "", reply)
				}
				return
			}
			if d, errs := declarationFromModal(cb); errs == nil {
				b.declareFromModal(ctx, cb.User.ID, d, env.ID)
			}
		case slack.InteractionTypeBlockActions:
			b.actions(ctx, cb, env.ID)
		case slack.InteractionTypeMessageAction:
			b.declareFromMessage(ctx, cb)
		}
	case socketmode.EventTypeEventsAPI:
		ev, err := slackevents.ParseEvent(env.Payload, slackevents.OptionNoVerifyToken())
		if err != nil {
			b.log.Error("stored event unreadable; dropped", "envelope", env.ID, "err", err)
			return
		}
		b.event(ctx, ev, env.ID)
	}
}

// eventChannel is the channel an Events API event happened in.
func eventChannel(ev slackevents.EventsAPIEvent) string {
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.ReactionAddedEvent:
		return e.Item.Channel
	case *slackevents.PinAddedEvent:
		return orDefault(e.Item.Channel, e.Channel)
	case *slackevents.AppMentionEvent:
		return e.Channel
	}
	return ""
}

func actor(userID string) incidents.Actor {
	return incidents.Actor{Name: "<@" + userID + ">", Source: incidents.SourceSlack}
}

func (b *Bot) slash(ctx context.Context, cmd slack.SlashCommand, id string) {
	if strings.EqualFold(strings.TrimSpace(cmd.Text), "declare") {
		b.openForm(ctx, cmd.TriggerID, DeclareModal(), cmd.ChannelID, cmd.UserID, cmd.ResponseURL, "/incident declare <title>")
		return
	}
	text := cmd.Text
	if cmd.Command == "/release" { // its own slash command: the release command's subcommands
		text = "release " + text
	}
	reply := b.handler.Handle(ctx, commands.Request{ID: id, Actor: actor(cmd.UserID), Channel: cmd.ChannelID, Text: text})
	b.respond(ctx, cmd.ChannelID, cmd.UserID, cmd.ResponseURL, reply)
}

// actions runs the commands behind clicked buttons and chosen menu options.
func (b *Bot) actions(ctx context.Context, cb slack.InteractionCallback, id string) {
	for i, a := range cb.ActionCallback.BlockActions {
		var text string
		switch {
		case strings.HasPrefix(a.ActionID, actionUser+":") && a.SelectedUser != "":
			text = strings.TrimPrefix(a.ActionID, actionUser+":") + " <@" + a.SelectedUser + ">"
		case strings.HasPrefix(a.ActionID, actionCommand) && a.SelectedOption.Value != "":
			text = a.SelectedOption.Value
		case strings.HasPrefix(a.ActionID, actionCommand):
			text = a.Value
		case strings.HasPrefix(a.ActionID, actionForm):
			b.openUpdateForm(ctx, cb, a.Value)
			continue
		default:
			continue
		}
		reply := b.handler.Handle(ctx, commands.Request{ID: fmt.Sprintf("%s/%d", id, i), Actor: actor(cb.User.ID), Channel: cb.Channel.ID, Text: text})
		b.respond(ctx, cb.Channel.ID, cb.User.ID, cb.ResponseURL, reply)
	}
}

// declareFromMessage answers the "Declare incident" message shortcut: the
// declare form, filled from the message — or, when the message already
// declared an incident, where that one is.
func (b *Bot) declareFromMessage(ctx context.Context, cb slack.InteractionCallback) {
	o := origin{Channel: cb.Channel.ID, TS: cb.Message.Timestamp, Author: "<@" + cb.Message.User + ">", Text: cb.Message.Text}
	if cb.Message.User == "" {
		o.Author = orDefault(cb.Message.Username, "a bot")
	}
	if id, err := b.svc.ByLink(ctx, incidents.LinkOrigin, o.ref()); err == nil {
		inc, err := b.svc.Get(ctx, id)
		if err == nil && !inc.CanSee(actor(cb.User.ID)) {
			b.respond(ctx, cb.Channel.ID, cb.User.ID, cb.ResponseURL, commands.Reply{Text: "This message already declared a private incident: ask the people in it to invite you.", Private: true})
			return
		}
		if err == nil {
			where := "its war room is being opened"
			if inc.Channel != "" {
				where = "war room <#" + inc.Channel + ">"
			}
			b.respond(ctx, cb.Channel.ID, cb.User.ID, cb.ResponseURL, commands.Reply{Text: fmt.Sprintf("This message already declared %s (%s).", inc.Key(), where), Private: true})
			return
		}
	}
	b.openForm(ctx, cb.TriggerID, declareModalFrom(o), cb.Channel.ID, cb.User.ID, cb.ResponseURL, "/incident declare <title>")
}

// openUpdateForm opens the update form for command ("update INC-7") on
// the trigger of the click that asked for it.
func (b *Bot) openUpdateForm(ctx context.Context, cb slack.InteractionCallback, command string) {
	current := incidents.Investigating
	_, key, _ := strings.Cut(command, " ") // "update INC-7", "publish INC-7"
	if id, err := incidents.ParseID(key); err == nil {
		if inc, err := b.svc.Get(ctx, id); err == nil && inc.CanSee(actor(cb.User.ID)) {
			current = inc.Status // (submitting is refused to anyone else anyway)
			if st, _, _ := inc.PublicStatus(); st != "" && strings.HasPrefix(command, "publish ") {
				current = st // the page's, not the war room's
			}
		}
	}
	b.openForm(ctx, cb.TriggerID, UpdateModal(command, cb.Channel.ID, current), cb.Channel.ID, cb.User.ID, cb.ResponseURL, command+" <message>")
}

// openForm opens a modal on a request's trigger — now, not queued: a
// trigger lasts 3 s — or, when Slack will not, tells the person what to
// type instead.
func (b *Bot) openForm(ctx context.Context, trigger string, view slack.ModalViewRequest, channel, user, responseURL, instead string) {
	err := b.send.Do(ctx, "views.open", "", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, trigger, view)
		return err
	})
	if err != nil {
		b.log.Error("open a form", "form", view.CallbackID, "err", err)
		b.respond(ctx, channel, user, responseURL, commands.Reply{Error: true, Text: "could not open the form; type " + instead + " instead"})
	}
}

func (b *Bot) event(ctx context.Context, ev slackevents.EventsAPIEvent, id string) {
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.ReactionAddedEvent:
		if e.Reaction == "pushpin" && e.Item.Type == "message" {
			b.pin(ctx, e.User, e.Item.Channel, e.Item.Timestamp, nil)
		}
	case *slackevents.PinAddedEvent:
		if e.Item.Message != nil {
			b.pin(ctx, e.User, orDefault(e.Item.Channel, e.Channel), e.Item.Message.Timestamp, e.Item.Message)
		}
	case *slackevents.AppMentionEvent:
		if e.BotID != "" {
			return // never answer bots (or ourselves)
		}
		text := mention.ReplaceAllString(e.Text, "")
		reply := b.handler.Handle(ctx, commands.Request{ID: id, Actor: actor(e.User), Channel: e.Channel, Text: text})
		if reply.Private {
			b.respond(ctx, e.Channel, e.User, "", reply)
			return
		}
		blocks, fallback := Blocks(reply)
		thread := orDefault(e.ThreadTimeStamp, e.TimeStamp)
		b.send.Queue(e.Channel, func(ctx context.Context) { b.post(ctx, e.Channel, fallback, blocks, slack.MsgOptionTS(thread)) })
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// respond answers the person who asked, queued behind the earlier answers
// in the channel: the work that recorded the request does not wait for Slack.
// A file (a postmortem, a graph) is shared through the outbox: stored before
// the request counts as done, uploaded when Slack takes it.
func (b *Bot) respond(ctx context.Context, channel, user, responseURL string, reply commands.Reply) {
	if f, inc := reply.File, reply.Incident; f != nil && inc != nil {
		target := channel
		if inc.Channel != "" {
			target = inc.Channel // documents go to the war room
		}
		if err := b.queueUpload(ctx, inc.ID, target, reply); err != nil {
			b.log.Error("file upload not queued", "incident", inc.Key(), "file", f.Name, "err", err)
			reply = commands.Reply{Error: true, Text: "the file could not be shared (internal error); export it with the bot command line"}
		} else {
			reply = commands.Reply{Text: reply.Text + " — sharing it as " + f.Name, Private: true}
		}
	}
	b.send.Queue(channel, func(ctx context.Context) { b.respondNow(ctx, channel, user, responseURL, reply) })
}

// kindUpload marks the adapter's own file-sharing effects.
const kindUpload incidents.EventKind = "upload"

func (b *Bot) queueUpload(ctx context.Context, id int64, channel string, reply commands.Reply) error {
	f := reply.File
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return b.cfg.Outbox.AddEffect(ctx, incidents.Effect{Consumer: ConsumerRooms, Incident: id, Seq: incidents.AdapterSeq + b.arrivals.Add(1)%incidents.AdapterSeq,
		Kind: kindUpload, Progress: map[string]string{"channel": channel, "name": f.Name, "title": f.Title, "comment": reply.Text,
			"content": base64.StdEncoding.EncodeToString(f.Content)}})
}

// uploadEffect shares a queued file.
func (b *Bot) uploadEffect(ctx context.Context, e *incidents.Effect) error {
	p := e.Progress
	content, err := base64.StdEncoding.DecodeString(p["content"])
	if err != nil {
		return effects.Permanent(fmt.Errorf("stored file %s unreadable: %w", p["name"], err))
	}
	reply := commands.Reply{Text: p["comment"], File: &commands.File{Name: p["name"], Title: p["title"], Content: content}}
	return slackErr(b.upload(ctx, p["channel"], reply))
}

// respondNow answers through the interaction's response_url when there is
// one, else in the channel.
func (b *Bot) respondNow(ctx context.Context, channel, user, responseURL string, reply commands.Reply) {
	if reply.File != nil {
		if inc := reply.Incident; inc != nil && inc.Channel != "" {
			channel = inc.Channel // documents go to the war room
		}
		if err := b.upload(ctx, channel, reply); err != nil {
			b.log.Error("file upload failed", "channel", channel, "file", reply.File.Name, "err", err)
			reply = commands.Reply{Error: true, Text: "the file could not be shared in this channel (is Sitrep a member?); export it with the bot command line"}
		} else {
			reply = commands.Reply{Text: reply.Text + " — shared as " + reply.File.Name, Private: true}
		}
	}
	blocks, fallback := Blocks(reply)
	if rel := reply.Release; rel != nil && !reply.Private && !reply.Error && rel.Chat["ts"] != "" {
		if channel == rel.Chat["channel"] { // clicked in the release channel: the answer goes in its thread
			b.post(ctx, channel, fallback, blocks, slack.MsgOptionTS(rel.Chat["ts"]))
			return
		}
		// clicked elsewhere (an incident's Roll back): answered there, with
		// its buttons, and a copy without them in the release's thread
		copyOf := reply
		copyOf.Buttons = nil
		cb, cf := Blocks(copyOf)
		b.post(ctx, rel.Chat["channel"], cf, cb, slack.MsgOptionTS(rel.Chat["ts"]))
	}
	if reply.Thread != "" && !reply.Private && !reply.Error && reply.Incident != nil && reply.Incident.Channel == channel {
		b.postInThread(ctx, channel, reply.Thread, fallback, blocks)
		return
	}
	if responseURL != "" && b.allowedHook(responseURL) {
		kind := slack.ResponseTypeInChannel
		if reply.Private || reply.Error {
			kind = slack.ResponseTypeEphemeral
		}
		msg := &slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}, ResponseType: kind}
		err := b.send.Do(ctx, "response_url", channel, func(ctx context.Context) error {
			return slack.PostWebhookContext(ctx, responseURL, msg)
		})
		if err == nil {
			return
		}
		b.log.Warn("response_url failed; answering in the channel", "err", err)
	}
	if reply.Private || reply.Error {
		err := b.send.Do(ctx, "chat.postEphemeral", channel, func(ctx context.Context) error {
			_, err := b.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
			return err
		})
		if err != nil {
			b.log.Error("ephemeral reply failed", "channel", channel, "err", err)
		}
		return
	}
	b.post(ctx, channel, fallback, blocks)
}

// allowedHook accepts response URLs on Slack's hooks host or the configured
// Slack-compatible server only: a payload never makes Sitrep post elsewhere.
func (b *Bot) allowedHook(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return (u.Scheme == "https" && u.Host == "hooks.slack.com") || (b.hooksHost != "" && u.Host == b.hooksHost)
}

// post sends a reply message to a channel, logging a failure.
func (b *Bot) post(ctx context.Context, channel, fallback string, blocks []slack.Block, opts ...slack.MsgOption) string {
	ts, err := b.postMessage(ctx, b.send.Do, channel, fallback, blocks, opts...)
	if err != nil {
		b.log.Error("post failed", "channel", channel, "err", err)
	}
	return ts
}

// postMessage posts through send — Sender.Do for replies, Sender.DoOnce for
// effects that must not post twice — and returns the message's ts.
func (b *Bot) postMessage(ctx context.Context, send func(context.Context, string, string, func(context.Context) error) error,
	channel, fallback string, blocks []slack.Block, opts ...slack.MsgOption) (string, error) {
	var ts string
	err := send(ctx, "chat.postMessage", channel, func(ctx context.Context) error {
		o := append([]slack.MsgOption{slack.MsgOptionText(fallback, false)}, opts...)
		if len(blocks) > 0 {
			o = append(o, slack.MsgOptionBlocks(blocks...))
		}
		var err error
		_, ts, err = b.api.PostMessageContext(ctx, channel, o...)
		return err
	})
	return ts, err
}

// upload shares a reply's file in a channel (files upload v2).
func (b *Bot) upload(ctx context.Context, channel string, reply commands.Reply) error {
	f := reply.File
	return b.send.Do(ctx, "files.upload", channel, func(ctx context.Context) error {
		_, err := b.api.UploadFileContext(ctx, slack.UploadFileParameters{
			Filename: f.Name, Title: f.Title, Content: string(f.Content), FileSize: len(f.Content),
			Channel: channel, InitialComment: truncate(peopleOf(reply.Incident, reply.People...).escape(reply.Text), maxSectionText),
		})
		return err
	})
}

// postInThread posts into the war-room thread of a runbook: its first
// message starts the thread, later ones reply in it.
func (b *Bot) postInThread(ctx context.Context, channel, thread, fallback string, blocks []slack.Block) {
	b.threadsMu.Lock()
	root := b.threads[channel+"/"+thread]
	b.threadsMu.Unlock()
	var opts []slack.MsgOption
	if root != "" {
		opts = append(opts, slack.MsgOptionTS(root))
	}
	ts := b.post(ctx, channel, fallback, blocks, opts...)
	if root == "" && ts != "" {
		b.threadsMu.Lock()
		if b.threads[channel+"/"+thread] == "" {
			b.threads[channel+"/"+thread] = ts
		}
		b.threadsMu.Unlock()
	}
}
