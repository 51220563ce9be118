package slackbot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// Slack's limits for the blocks Sitrep builds.
const (
	maxSectionText = 3000
	maxBlocks      = 50
	maxFieldsPer   = 10
	maxPerActions  = 5 // buttons per row: more fit, fewer read better
)

// Action ids: a button or menu's value is the command line it runs.
const (
	actionCommand = "cmd"  // button, or static menu whose option value is the full command line
	actionUser    = "user" // users menu: "user" + index; the block id carries the command
	actionForm    = "form" // button opening the update form; its value is the command the form completes
)

// mention matches any Slack reference (to strip the bot's own mention
// from a command typed as "@sitrep ack").
var mention = regexp.MustCompile(`<[@#!][A-Za-z0-9^|._-]+>`)

// ref is the only markup outside text may keep: a plain reference to one
// person or one channel, the form Sitrep writes (<@U123>, <#C123>). A
// channel reference notifies nobody; a person reference is kept only for
// the people the message names on purpose (see people). Everything else —
// <!channel>, <!here>, <!everyone>, <!subteam^…>, links with a label of
// their own choosing — is shown as text.
var ref = regexp.MustCompile(`<@([UW][A-Z0-9]{1,20})>|<#C[A-Z0-9]{1,20}>`)

// people are the Slack users a message may mention: the ones Sitrep names
// on purpose — an incident's declarer, acknowledger and role holders, the
// person who asked, the author of a status update. A reference to anyone
// else came from outside text (an alert's summary, a PagerDuty title, a
// pasted note) and is shown as text, so an integration cannot ping people.
type people map[string]bool

// peopleOf collects the Slack users among an incident's people and names.
func peopleOf(inc *incidents.Incident, names ...string) people {
	if inc != nil {
		names = append(names, inc.People()...)
	}
	p := people{}
	for _, n := range names {
		if id := slackUser(n); id != "" {
			p[id] = true
		}
	}
	return p
}

// escape makes outside text safe for mrkdwn and plain text alike: every
// <, > and & escaped but channel references and references to p's people,
// and the controls that reorder or hide text (bidi overrides, C0) removed.
// Every renderer of this package passes text that came from outside
// through it.
func (p people) escape(s string) string {
	s = stripControls(s)
	var b strings.Builder
	last := 0
	for _, m := range ref.FindAllStringSubmatchIndex(s, -1) {
		if m[2] >= 0 && !p[s[m[2]:m[3]]] {
			continue // a person nobody named: stays text
		}
		b.WriteString(escapeAll(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(escapeAll(s[last:]))
	return b.String()
}

// escape is people{}.escape: outside text that mentions no one.
func escape(s string) string { return people(nil).escape(s) }

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeAll(s string) string { return escaper.Replace(stripControls(s)) }

// stripControls removes C0 controls (but newline and tab), DEL, C1 controls
// and the Unicode bidi controls that can make "gpj.exe" read "exe.jpg".
func stripControls(s string) string {
	if strings.IndexFunc(s, say.Hidden) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if say.Hidden(r) {
			return -1
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxSectionText), false, false)
}

func plain(text string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(stripControls(text), max), false, false)
}

// Blocks renders a neutral reply as Block Kit, and the plain-text fallback
// Slack shows in notifications.
func Blocks(r commands.Reply) ([]slack.Block, string) {
	p := peopleOf(r.Incident, r.People...)
	escape := p.escape
	if r.Error {
		text := ":warning: " + escape(r.Text)
		if r.Usage != "" {
			text += "\nUsage: `" + escapeAll(r.Usage) + "`"
		}
		return []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}, truncate("error: "+escape(r.Text), maxSectionText)
	}
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn("*"+escape(r.Text)+"*"), nil, nil)}
	for i := 0; i < len(r.Fields); i += maxFieldsPer {
		var fields []*slack.TextBlockObject
		for _, f := range r.Fields[i:min(i+maxFieldsPer, len(r.Fields))] {
			fields = append(fields, mrkdwn(truncate("*"+escapeAll(f.Label)+"*\n"+escape(f.Value), 2000)))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	blocks = append(blocks, lineSections(r.Lines, p)...)
	blocks = append(blocks, ActionBlocks(r.Buttons)...)
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], slack.NewContextBlock("", mrkdwn("… cut to fit one message")))
	}
	return blocks, truncate(escape(r.Text), maxSectionText) // Slack refuses a message whose text is too long
}

// lineSections packs lines into as few sections as fit Slack's text limit.
func lineSections(lines []string, p people) []slack.Block {
	var out []slack.Block
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil))
			b.Reset()
		}
	}
	for _, l := range lines {
		l = truncate(p.escape(l), maxSectionText-1)
		if b.Len()+len(l)+1 > maxSectionText {
			flush()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	flush()
	return out
}

// ActionBlocks renders buttons: plain buttons, menus for buttons with
// options, a user picker for buttons that take a user.
func ActionBlocks(buttons []commands.Button) []slack.Block {
	var out []slack.Block
	var row []slack.BlockElement
	rowID := 0
	flush := func() {
		if len(row) > 0 {
			out = append(out, slack.NewActionBlock("actions-"+strconv.Itoa(rowID), row...))
			rowID++
			row = nil
		}
	}
	for i, btn := range buttons {
		row = append(row, element(i, btn))
		if len(row) == maxPerActions {
			flush()
		}
	}
	flush()
	return out
}

func element(i int, btn commands.Button) slack.BlockElement {
	switch {
	case len(btn.Options) > 0:
		opts := make([]*slack.OptionBlockObject, len(btn.Options))
		for k, o := range btn.Options {
			opts[k] = slack.NewOptionBlockObject(btn.Command+" "+o.Value, plain(o.Label, 75), nil)
		}
		menu := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(btn.Label, 150), actionCommand+strconv.Itoa(i), opts...)
		return menu
	case btn.User:
		return slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain(btn.Label, 150), actionUser+":"+btn.Command, nil...)
	case btn.Form:
		b := slack.NewButtonBlockElement(actionForm+strconv.Itoa(i), btn.Command, plain(btn.Label, 75))
		if btn.Style == commands.Primary {
			b.Style = slack.StylePrimary
		}
		return b
	}
	b := slack.NewButtonBlockElement(actionCommand+strconv.Itoa(i), btn.Command, plain(btn.Label, 75))
	switch btn.Style {
	case commands.Primary:
		b.Style = slack.StylePrimary
	case commands.Danger:
		b.Style = slack.StyleDanger
	}
	if btn.Confirm != "" {
		b.Confirm = slack.NewConfirmationBlockObject(plain(btn.Label, 100), plain(btn.Confirm, 300), plain("Yes", 30), plain("Cancel", 30))
	}
	return b
}

// Topic is the war room's channel topic: severity · status · lead.
func Topic(inc *incidents.Incident) string {
	lead := inc.Lead()
	if lead == "" {
		lead = "no lead"
	}
	return truncate(peopleOf(inc).escape(fmt.Sprintf("%s %s · %s · lead %s · %s", inc.Severity, inc.Severity.Name(), inc.Status.Label(), lead, inc.Name())), 250)
}
