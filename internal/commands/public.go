package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// publish puts an update on the public status page, after a preview: the
// first call shows exactly what the public will read, with a Publish
// button bound to that text; the button (publish … --confirm) publishes it.
// "publish title <text>" sets the status page's wording of the title.
func publish(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	first, rest := splitWord(c.Rest)
	if strings.EqualFold(first, "title") {
		inc, err := c.Svc.SetPublicTitle(ctx, c.ID, rest, c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return changed(c, inc, "is called "+fmt.Sprintf("%q", inc.PublicTitle)+" on the status page"), nil
	}
	confirmed := first == "--confirm"
	if confirmed {
		first, rest = splitWord(rest)
	}
	st, msg := publicStatus(inc), strings.TrimSpace(first+" "+rest)
	if s, err := incidents.ParseStatus(first); err == nil {
		st, msg = s, strings.TrimSpace(rest)
	}
	if !confirmed {
		u, err := inc.CheckPublish(st, msg, c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return Reply{
			Text:  fmt.Sprintf("📢 Preview — nothing is public yet. The status page will show, under %s:", inc.Key()),
			Lines: []string{fmt.Sprintf("%s — %s", inc.PublicName(), u.Status.Label()), u.Message},
			Buttons: []Button{{Label: "Publish", Style: Primary, Command: fmt.Sprintf("publish %s --confirm %s %s", inc.Key(), u.Status, u.Message),
				Confirm: "Publish this update to the public status page?"}},
			Private: true,
		}, nil
	}
	inc, err = c.Svc.Publish(ctx, c.ID, st, msg, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, "published to the status page ("+st.Label()+")"), nil
}

// publicStatus is the status a public update keeps when it names none: the
// last one published, else the incident's own (never resolved by default).
func publicStatus(inc *incidents.Incident) incidents.Status {
	if st, _, _ := inc.PublicStatus(); st != "" && st != incidents.Resolved {
		return st
	}
	if inc.Status == incidents.Resolved {
		return incidents.Monitoring
	}
	return inc.Status
}

// PublishButton asks for a public update (the comms role's): a prompt in
// the terminal, a form in Slack; either way a preview comes first.
func PublishButton(inc *incidents.Incident) Button {
	return Button{Label: "Publish update", Command: "publish " + inc.Key(), Input: "[investigating|identified|monitoring|resolved] <public message>", Form: true}
}
