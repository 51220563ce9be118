package slackbot

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// The declare modal's callback and block ids.
const (
	modalDeclare  = "declare"
	blockTitle    = "title"
	blockSeverity = "severity"
	blockDesc     = "description"
	blockService  = "service"
	blockLead     = "lead"
	blockPrivate  = "private"
	severityAuto  = "auto"
)

// shortcutDeclare is the message shortcut's callback id (slack/manifest.yaml).
const shortcutDeclare = "declare_from_message"

// origin is the message a declare form was opened from, carried through
// Slack in the form's private metadata (3,000 characters at most: the text
// is cut to fit; the description field holds it whole for editing).
type origin struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Author  string `json:"author"`
	Text    string `json:"text"`
}

func (o origin) ref() string { return o.Channel + "/" + o.TS }

// maxInput is Slack's longest plain-text input (max_length at most 3,000).
const maxInput = 3000

// readable turns Slack's markup into the text people saw: mentions as
// @U123, channels as #name, links as their label and address, special
// mentions as words, &lt; &gt; &amp; as themselves. A form filled from a
// message shows that, and nothing in it is markup any more.
func readable(s string) string {
	s = slackToken.ReplaceAllStringFunc(s, func(tok string) string {
		in := tok[1 : len(tok)-1]
		target, label, _ := strings.Cut(in, "|")
		switch {
		case strings.HasPrefix(target, "@"):
			return "@" + cmp.Or(label, target[1:])
		case strings.HasPrefix(target, "#"):
			return "#" + cmp.Or(label, target[1:])
		case strings.HasPrefix(target, "!"):
			return "@" + strings.TrimPrefix(cmp.Or(label, strings.SplitN(target[1:], "^", 2)[0]), "@")
		case label != "":
			return label + " (" + target + ")"
		}
		return target
	})
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

var slackToken = regexp.MustCompile(`<[^<>\n]+>`)

// What a channel id and a message timestamp look like: nothing else is
// taken from a form's metadata into a link.
var (
	channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)
	messageTS = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,8}$`)
)

// parseRef splits an origin reference back into channel and timestamp.
func parseRef(ref string) (channel, ts string, ok bool) {
	channel, ts, _ = strings.Cut(ref, "/")
	return channel, ts, channelID.MatchString(channel) && messageTS.MatchString(ts)
}

// DeclareModal is the form `/incident declare` opens: title, severity (each
// level with its impact and response time), description, affected service,
// optional lead.
func DeclareModal() slack.ModalViewRequest { return declareModal(nil) }

// declareModalFrom is the declare form opened from a message (the
// "Declare incident" shortcut): its first line as the title, its text as the
// description, and the message itself carried to the declaration.
func declareModalFrom(o origin) slack.ModalViewRequest {
	return declareModal(&o)
}

func declareModal(from *origin) slack.ModalViewRequest {
	opts := []*slack.OptionBlockObject{
		slack.NewOptionBlockObject(severityAuto, plain("Classify from the description", 75), plain("Sitrep picks the level from the impact words and says why", 75)),
	}
	for _, s := range incidents.Severities {
		label := fmt.Sprintf("%s — %s", s.Label(), s.Impact())
		desc := fmt.Sprintf("respond within %s · e.g. %s", say.Human(s.ResponseTime()), s.Example())
		opts = append(opts, slack.NewOptionBlockObject(s.String(), plain(label, 75), plain(desc, 75)))
	}
	sev := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose a severity", 150), blockSeverity, opts...)
	sev.InitialOption = opts[0]

	title := slack.NewPlainTextInputBlockElement(plain("e.g. Checkout error rate above 5%", 150), blockTitle)
	title.MaxLength = incidents.MaxTitle
	desc := slack.NewPlainTextInputBlockElement(plain("What is happening, who is affected", 150), blockDesc)
	desc.Multiline = true
	desc.MaxLength = maxInput
	service := slack.NewPlainTextInputBlockElement(plain("e.g. architect-api", 150), blockService)
	lead := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("You, unless you pick someone", 150), blockLead, nil...)
	private := slack.NewCheckboxGroupsBlockElement(blockPrivate, slack.NewOptionBlockObject(blockPrivate, plain("Private incident", 75),
		plain("A private war room for you, the lead and those invited; never announced or listed for anyone else", 75)))

	optional := func(b *slack.InputBlock) *slack.InputBlock { b.Optional = true; return b }
	meta := ""
	if from != nil {
		text := readable(from.Text)
		first, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
		title.InitialValue = incidents.Cut(strings.TrimSpace(first), incidents.MaxTitle)
		desc.InitialValue = incidents.Cut(strings.TrimSpace(text), maxInput)
		o := *from
		o.Text = "" // the timeline keeps what the declarer leaves in the description, not the whole message
		b, _ := json.Marshal(o)
		meta = string(b)
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		PrivateMetadata: meta,
		CallbackID:      modalDeclare,
		Title:           plain("Declare an incident", 24),
		Submit:          plain("Declare", 24),
		Close:           plain("Cancel", 24),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock(blockTitle, plain("Title", 2000), nil, title),
			slack.NewInputBlock(blockSeverity, plain("Severity", 2000), nil, sev),
			optional(slack.NewInputBlock(blockDesc, plain("Description", 2000), nil, desc)),
			optional(slack.NewInputBlock(blockService, plain("Affected service", 2000), nil, service)),
			optional(slack.NewInputBlock(blockLead, plain("Incident lead", 2000), nil, lead)),
			optional(slack.NewInputBlock(blockPrivate, plain("Visibility", 2000), nil, private)),
		}},
	}
}

// declarationFromModal reads a submitted declare form, or returns the
// errors to show next to its fields.
func declarationFromModal(cb slack.InteractionCallback) (incidents.Declaration, map[string]string) {
	if cb.View.CallbackID != modalDeclare {
		return incidents.Declaration{}, map[string]string{blockTitle: "this form is not Sitrep's declare form"}
	}
	d := incidents.Declaration{
		Title:       strings.TrimSpace(field(cb, blockTitle).Value),
		Description: strings.TrimSpace(field(cb, blockDesc).Value),
		Service:     strings.TrimSpace(field(cb, blockService).Value),
	}
	if u := field(cb, blockLead).SelectedUser; u != "" {
		d.Lead = "<@" + u + ">"
	}
	for _, o := range field(cb, blockPrivate).SelectedOptions {
		d.Private = d.Private || o.Value == blockPrivate
	}
	var from origin
	if cb.View.PrivateMetadata != "" && json.Unmarshal([]byte(cb.View.PrivateMetadata), &from) == nil && channelID.MatchString(from.Channel) && messageTS.MatchString(from.TS) {
		d.Origin = &incidents.Origin{Ref: from.ref(), Author: from.Author, Text: d.Description}
	}
	if v := field(cb, blockSeverity).SelectedOption.Value; v != "" && v != severityAuto {
		sev, err := incidents.ParseSeverity(v)
		if err != nil {
			return d, map[string]string{blockSeverity: incidents.ErrorMessage(err)}
		}
		d.Signals.Explicit = sev
	}
	switch {
	case d.Title == "":
		return d, map[string]string{blockTitle: "give the incident a title"}
	case len([]rune(d.Title)) > incidents.MaxTitle:
		return d, map[string]string{blockTitle: fmt.Sprintf("keep the title under %d characters", incidents.MaxTitle)}
	}
	return d, nil
}

func (b *Bot) declareFromModal(ctx context.Context, userID string, d incidents.Declaration, id string) {
	d.Request = id
	if _, err := b.handler.Declare(ctx, d, actor(userID)); err != nil {
		b.log.Error("declare from the modal failed", "user", userID, "err", err)
	}
}

// The update form's callback and block ids.
const (
	modalUpdate  = "update"
	blockStatus  = "status"
	blockMessage = "message"
)

// updateForm is what an update form carries through Slack: the command it
// completes ("update INC-7") and the channel its answer goes to.
type updateForm struct {
	Command string `json:"cmd"`
	Channel string `json:"channel"`
}

// UpdateModal is the status update form a Post update button opens: the
// status (the current one first) and the message for the people waiting.
//
// A Publish update button ("publish INC-7") opens the same form for the
// status page: resolved is one of its statuses, and submitting it shows
// the preview to confirm, not the update itself.
func UpdateModal(command, channel string, current incidents.Status) slack.ModalViewRequest {
	public := strings.HasPrefix(command, "publish ")
	var opts []*slack.OptionBlockObject
	var initial *slack.OptionBlockObject
	for _, s := range incidents.Statuses {
		if s == incidents.Resolved && !public {
			continue // resolving has its own button and its own summary
		}
		o := slack.NewOptionBlockObject(string(s), plain(s.Label(), 75), nil)
		if s == current {
			initial = o
		}
		opts = append(opts, o)
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Status", 150), blockStatus, opts...)
	sel.InitialOption = initial
	msg := slack.NewPlainTextInputBlockElement(plain("What is known, what is being done, when the next update comes", 150), blockMessage)
	msg.Multiline, msg.MaxLength = true, maxInput
	title, submit, label := "Post an update", "Post", "Update"
	if public {
		msg.Placeholder = plain("What customers notice, what is being done, when the next update comes", 150)
		msg.MaxLength = incidents.MaxPublicMessage
		title, submit, label = "Publish update", "Preview", "Public update (shown to everyone)"
	}
	meta, _ := json.Marshal(updateForm{Command: command, Channel: channel})
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      modalUpdate,
		PrivateMetadata: string(meta),
		Title:           plain(title, 24),
		Submit:          plain(submit, 24),
		Close:           plain("Cancel", 24),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock(blockStatus, plain("Status", 2000), nil, sel),
			slack.NewInputBlock(blockMessage, plain(label, 2000), nil, msg),
		}},
	}
}

// updateFromModal reads a submitted update form: the command line to run
// and its channel, or the errors to show next to its fields.
func updateFromModal(cb slack.InteractionCallback) (string, string, map[string]string) {
	var form updateForm
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &form); err != nil || !strings.HasPrefix(form.Command, "update ") && !strings.HasPrefix(form.Command, "publish ") ||
		strings.ContainsAny(form.Command, "\n\r") || strings.Contains(form.Command, "--confirm") {
		return "", "", map[string]string{blockMessage: "this form is not Sitrep's update form"}
	}
	msg := strings.TrimSpace(field(cb, blockMessage).Value)
	if msg == "" {
		return "", "", map[string]string{blockMessage: "write the update: what is known, what is being done, when the next one comes"}
	}
	status := field(cb, blockStatus).SelectedOption.Value
	if _, err := incidents.ParseStatus(status); err != nil && strings.HasPrefix(form.Command, "publish ") {
		return "", "", map[string]string{blockStatus: "choose the status the public sees"} // the message never comes right after the command
	}
	if st, err := incidents.ParseStatus(status); err != nil || st == incidents.Resolved && !strings.HasPrefix(form.Command, "publish ") {
		status = "" // keep the incident's
	}
	return strings.TrimSpace(form.Command + " " + status + " " + msg), form.Channel, nil
}

// field is what a submitted form holds in the input of block (each input
// is its block's only element, with the block's id as its action id).
func field(cb slack.InteractionCallback, block string) slack.BlockAction {
	if cb.View.State == nil || cb.View.State.Values == nil {
		return slack.BlockAction{}
	}
	return cb.View.State.Values[block][block]
}
