package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// publish puts an update on the public status page, after a preview: the
// first call shows exactly what the public will read, with a Publish
// button bound to that text and to the page as it was previewed
// (publish … --confirm <updates so far> …): pressed twice, or after someone
// else published, it is refused. "publish --title <text>" sets the status
// page's wording of the title.
func publish(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	first, rest := splitWord(c.Rest)
	if first == "--title" {
		inc, err := c.Svc.SetPublicTitle(ctx, c.ID, rest, c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return changed(c, inc, fmt.Sprintf("is called %q on the status page", inc.PublicTitle)), nil
	}
	after := -1
	if first == "--confirm" {
		n, more := splitWord(rest)
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return Reply{}, invalid("--confirm takes the number of updates the preview saw; use the Publish button of a preview")
		}
		after, rest = v, more
		first, rest = splitWord(rest)
	}
	st, msg := publicStatus(inc), strings.TrimSpace(first+" "+rest)
	if s, err := incidents.ParseStatus(first); err == nil {
		st, msg = s, strings.TrimSpace(rest)
	}
	if after < 0 {
		u, err := inc.CheckPublish(st, msg, c.Actor)
		if err != nil {
			return Reply{}, err
		}
		title := inc.PublicName()
		if inc.PublicTitle == "" {
			title += fmt.Sprintf("   (the internal title: give it a public one first with publish %s --title <what customers would call it>)", inc.Key())
		}
		return Reply{
			Text:  fmt.Sprintf("📢 Preview — nothing is public yet. The status page will show, under %s:", inc.Key()),
			Lines: []string{title, fmt.Sprintf("%s · %s", u.Status.Label(), u.Severity.PublicImpact()), u.Message},
			Buttons: []Button{{Label: "Publish", Style: Primary, Command: fmt.Sprintf("publish %s --confirm %d %s %s", inc.Key(), inc.PublicCount, u.Status, u.Message),
				Confirm: "Publish this update to the public status page?"}},
			Private: true,
		}, nil
	}
	inc, err = c.Svc.Publish(ctx, c.ID, st, msg, after, c.Actor)
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

// stillPublic is what a reply that closed an incident adds when the status
// page still shows it ongoing.
func stillPublic(inc *incidents.Incident) string {
	if st, _, _ := inc.PublicStatus(); st != "" && st != incidents.Resolved {
		return fmt.Sprintf(" — the status page still shows %s %s: publish %s resolved <message>", inc.Key(), st.Label(), inc.Key())
	}
	return ""
}
