package slackbot

import (
	"context"
	"fmt"
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
	severityAuto  = "auto"
)

// DeclareModal is the form `/incident declare` opens: title, severity (each
// level with its impact and response time), description, affected service,
// optional lead.
func DeclareModal() slack.ModalViewRequest {
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
	desc.MaxLength = incidents.MaxNote
	service := slack.NewPlainTextInputBlockElement(plain("e.g. architect-api", 150), blockService)
	lead := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("You, unless you pick someone", 150), blockLead, nil...)

	optional := func(b *slack.InputBlock) *slack.InputBlock { b.Optional = true; return b }
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: modalDeclare,
		Title:      plain("Declare an incident", 24),
		Submit:     plain("Declare", 24),
		Close:      plain("Cancel", 24),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock(blockTitle, plain("Title", 2000), nil, title),
			slack.NewInputBlock(blockSeverity, plain("Severity", 2000), nil, sev),
			optional(slack.NewInputBlock(blockDesc, plain("Description", 2000), nil, desc)),
			optional(slack.NewInputBlock(blockService, plain("Affected service", 2000), nil, service)),
			optional(slack.NewInputBlock(blockLead, plain("Incident lead", 2000), nil, lead)),
		}},
	}
}

// declarationFromModal reads a submitted declare form, or returns the
// errors to show next to its fields.
func declarationFromModal(cb slack.InteractionCallback) (incidents.Declaration, map[string]string) {
	if cb.View.CallbackID != modalDeclare {
		return incidents.Declaration{}, map[string]string{blockTitle: "this form is not Sitrep's declare form"}
	}
	values := cb.View.State.Values
	get := func(block string) slack.BlockAction {
		if values == nil {
			return slack.BlockAction{}
		}
		return values[block][block]
	}
	d := incidents.Declaration{
		Title:       strings.TrimSpace(get(blockTitle).Value),
		Description: strings.TrimSpace(get(blockDesc).Value),
		Service:     strings.TrimSpace(get(blockService).Value),
	}
	if u := get(blockLead).SelectedUser; u != "" {
		d.Lead = "<@" + u + ">"
	}
	if v := get(blockSeverity).SelectedOption.Value; v != "" && v != severityAuto {
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
