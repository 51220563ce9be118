package commands

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// Builtins returns a registry with the incident commands of the core.
func Builtins() *Registry {
	r := NewRegistry()
	for _, c := range []Command{
		{Name: "declare", Args: "[--private] [--drill] [P1-P4] <title>", Summary: "declare an incident (severity from the title's impact words when not given)", Run: declare},
		{Name: "ack", Incident: true, Summary: "acknowledge: stops the re-announcements", Run: ack},
		{Name: "severity", Incident: true, Args: "<P1-P4> [reason]", Summary: "change the severity, saying why", Run: severity},
		{Name: "status", Incident: true, Args: "<investigating|identified|monitoring|resolved> [message]", Summary: "post a status update", Run: status},
		{Name: "update", Incident: true, Args: "[investigating|identified|monitoring] <message>", Summary: "post a status update for the people waiting (the status stays unless given)", Run: update},
		{Name: "lead", Incident: true, Args: "@user", Summary: "make someone the incident commander", Run: lead},
		{Name: "role", Incident: true, Args: "<commander|comms|scribe> @user", Summary: "give someone a role", Run: role},
		{Name: "invite", Incident: true, Args: "@user [@user…]", Summary: "bring people into the incident and its war room (a private incident's only way in)", Run: invite},
		{Name: "merge", Incident: true, Args: "into <INC-n>", Summary: "resolve a duplicate into the incident it duplicates, after a preview: its alerts, pages and people move there", Run: merge},
		{Name: "link", Incident: true, Args: "<INC-n>", Summary: "record that two incidents are related, without merging them", Run: link},
		{Name: "publish", Incident: true, Args: "[status] <public message> | --title <public title>", Summary: "put an update on the public status page, after a preview (the comms role or the lead)", Run: publish},
		{Name: "note", Incident: true, Args: "<text>", Summary: "add a note to the timeline", Run: note},
		{Name: "phase", Incident: true, Args: "<next|phase>", Summary: "record reaching a phase: detect, acknowledge, assess, communicate, remediate, verify, document, review", Run: phase},
		{Name: "resolve", Incident: true, Args: "[summary]", Summary: "resolve the incident", Run: resolve},
		{Name: "reopen", Incident: true, Args: "[reason]", Summary: "reopen a resolved incident", Run: reopen},
		{Name: "list", Args: "[--all] [--severity P1-P4]", Summary: "list open incidents (--all includes resolved)", Run: list},
		{Name: "show", Incident: true, Summary: "show an incident", Run: show},
		{Name: "timeline", Incident: true, Summary: "show an incident's timeline", Run: timeline},
		{Name: "runbook", Incident: true, Args: "[name]", Summary: "show the incident's runbook (or the one named) with a button per step", Run: runbookCmd},
		{Name: "step", Incident: true, Args: "<runbook> <n> [replicas=N]", Summary: "run step n of a runbook (actions ask to confirm a dry run first)", Run: stepCmd},
		{Name: "action", Incident: true, Args: "<text> [@owner]", Summary: "add a follow-up action item", Run: action},
		{Name: "actions", Incident: true, Args: "[done <n>]", Summary: "list the action items, or mark one done", Run: actions},
		{Name: "postmortem", Incident: true, Args: "[md|json] | link <url>", Summary: "export the blameless postmortem (tag notes #impact #cause #factor #lesson), or record where the written one lives", Run: postmortemCmd},
		{Name: "slo", Summary: "availability, error budget and latency against the SLO (needs PROMETHEUS_URL)", Run: sloCmd},
		releaseCommand(),
		{Name: "stats", Args: "[30d]", Summary: "incidents by severity, MTTA and MTTR over a period", Run: stats},
	} {
		if err := r.Register(c); err != nil {
			panic(err) // a programming error in this list, caught by every test
		}
	}
	help := Command{Name: "help", Summary: "list the commands", Run: func(context.Context, *Call) (Reply, error) { return r.Help(), nil }}
	if err := r.Register(help); err != nil {
		panic(err)
	}
	return r
}

func invalid(format string, args ...any) error {
	return incidents.Errorf(incidents.EInvalid, format, args...)
}

func declare(ctx context.Context, c *Call) (Reply, error) {
	d := incidents.Declaration{Title: c.Rest}
	args := c.Args
	for len(args) > 0 && (args[0] == "--drill" || args[0] == "--private") {
		switch args[0] {
		case "--drill": // a game day's incident
			d.Drill = true
		case "--private": // only the people in it see it
			d.Private = true
		}
		args = args[1:]
		_, d.Title = splitWord(d.Title)
	}
	if len(args) > 0 { // "P2", "P2:", "sev2", "SEV-2" first; not a bare digit, which may begin a title
		sev, ok, err := incidents.SeverityToken(args[0])
		if err != nil {
			return Reply{}, err
		}
		if ok {
			d.Signals.Explicit = sev
			_, d.Title = splitWord(d.Title)
		}
	}
	d.Request = c.Request.ID
	inc, err := Declare(ctx, c.Svc, c.Env, d, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	out := Card(inc, c.Svc.Now())
	out.Fields = append(out.Fields, changeFields(ctx, c.Env, inc)...)
	out.Text = "🚨 Declared " + out.Text
	out.Private = true // the war room gets the header; only the declarer needs the card
	return out, nil
}

// Declare opens an incident: the one path every person's declaration takes
// (the declare command, Slack's form), so each gets its runbook offered.
func Declare(ctx context.Context, svc *incidents.Service, env *Env, d incidents.Declaration, by incidents.Actor) (*incidents.Incident, error) {
	if env != nil && d.Runbook == "" {
		d.Runbook = env.Runbooks.MatchName("", nil, d.Title)
	}
	inc, err := svc.Declare(ctx, d, by)
	if err == nil && !inc.CanSee(by) { // found, not declared: the message's incident is someone else's private one
		return nil, incidents.Errorf(incidents.EConflict, "this message already declared a private incident: ask the people in it to invite you")
	}
	return inc, err
}

// changed is the reply to a change: one line, the incident and its buttons.
func changed(c *Call, inc *incidents.Incident, what string) Reply {
	return Reply{Text: fmt.Sprintf("✓ %s %s", inc.Key(), what), Buttons: Buttons(inc), Incident: inc}
}

func ack(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Ack(ctx, c.ID, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, fmt.Sprintf("acknowledged by %s; lead is %s", c.Actor.Name, inc.Lead())), nil
}

func severity(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) == 0 {
		return Reply{}, invalid("give the new severity: P1, P2, P3 or P4")
	}
	sev, err := incidents.ParseSeverity(c.Args[0])
	if err != nil {
		return Reply{}, err
	}
	_, reason := splitWord(c.Rest)
	inc, err := c.Svc.ChangeSeverity(ctx, c.ID, sev, strings.TrimSpace(reason), c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, fmt.Sprintf("is now %s — %s (respond within %s). Why: %s", sev.Label(), sev.Impact(), say.Human(sev.ResponseTime()), inc.SeverityReason)), nil
}

func status(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) == 0 {
		return Reply{}, invalid("give the new status")
	}
	st, err := incidents.ParseStatus(c.Args[0])
	if err != nil {
		return Reply{}, err
	}
	_, msg := splitWord(c.Rest)
	inc, err := c.Svc.ChangeStatus(ctx, c.ID, st, strings.TrimSpace(msg), c.Actor)
	if err != nil {
		return Reply{}, err
	}
	what := "status is " + inc.Status.Label()
	if m := strings.TrimSpace(msg); m != "" {
		what += ": " + m
	}
	out := changed(c, inc, what)
	out.Private = true // chat adapters echo status updates to the war room themselves
	return out, nil
}

// update posts a status update: the message, with the status kept unless
// its first word names another. It silences the update nudges for a cadence.
func update(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	st, msg := inc.Status, strings.TrimSpace(c.Rest)
	if first, rest := splitWord(c.Rest); first != "" {
		if s, err := incidents.ParseStatus(first); err == nil && s != incidents.Resolved {
			st, msg = s, strings.TrimSpace(rest)
		}
	}
	if msg == "" {
		return Reply{}, invalid("give the update: what is known, what is being done, when the next one comes")
	}
	inc, err = c.Svc.ChangeStatus(ctx, c.ID, st, msg, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	out := changed(c, inc, "update posted ("+inc.Status.Label()+"): "+msg)
	out.Private = true // chat adapters post the update to the war room themselves
	return out, nil
}

// UpdateButton asks for a status update: in the terminal it prompts for
// the message; in Slack it opens the update form.
func UpdateButton(inc *incidents.Incident) Button {
	return Button{Label: "Post update", Command: "update " + inc.Key(), Input: "[identified|monitoring] <message>", Form: true}
}

// userName is kept simple: a bounded repetition of a Unicode class ({1,80})
// compiles to a program of megabytes at start-up; the length is checked apart.
var userName = regexp.MustCompile(`^@?[\p{L}\p{N}._-]+$`)
var slackMention = regexp.MustCompile(`^<@[A-Z0-9]+(\|[^>]*)?>$`)

// parseUser accepts @alice, alice or a Slack mention <@U123>.
func parseUser(word string) (string, error) {
	switch {
	case slackMention.MatchString(word):
		return word, nil
	case len(word) <= 81 && userName.MatchString(word):
		return "@" + strings.TrimPrefix(word, "@"), nil
	}
	return "", invalid("%q is not a user: use @name", word)
}

func lead(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) != 1 {
		return Reply{}, invalid("say who leads: one user, like @alice")
	}
	return assign(ctx, c, incidents.Commander, c.Args[0])
}

func role(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) != 2 {
		return Reply{}, invalid("give a role and one user, like: role comms @bob")
	}
	r, err := incidents.ParseRole(c.Args[0])
	if err != nil {
		return Reply{}, err
	}
	return assign(ctx, c, r, c.Args[1])
}

func assign(ctx context.Context, c *Call, r incidents.Role, who string) (Reply, error) {
	user, err := parseUser(who)
	if err != nil {
		return Reply{}, err
	}
	inc, err := c.Svc.AssignRole(ctx, c.ID, r, user, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, fmt.Sprintf("%s is now %s", user, strings.ToLower(r.Title()))), nil
}

func note(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.AddNote(ctx, c.ID, c.Rest, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return Reply{Text: "✓ note added to " + inc.Key() + "'s timeline", Incident: inc, Private: true}, nil
}

func phase(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) != 1 {
		return Reply{}, invalid("give one phase name, or next")
	}
	var p incidents.Phase
	if !strings.EqualFold(c.Args[0], "next") {
		var err error
		if p, err = incidents.ParsePhase(c.Args[0]); err != nil {
			return Reply{}, err
		}
	}
	inc, err := c.Svc.ReachPhase(ctx, c.ID, p, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, fmt.Sprintf("reached phase %d/%d: %s — %s", inc.Phase.Index()+1, len(incidents.Phases), inc.Phase.Title(), inc.Phase.Help())), nil
}

func resolve(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Resolve(ctx, c.ID, c.Rest, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	out := changed(c, inc, fmt.Sprintf("resolved by %s after %s", c.Actor.Name, say.Human(inc.ResolvedAt.Sub(inc.DeclaredAt))))
	out.Text += stillPublic(inc)
	return out, nil
}

func reopen(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Reopen(ctx, c.ID, c.Rest, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return changed(c, inc, fmt.Sprintf("reopened by %s; acknowledge within %s", c.Actor.Name, say.Human(inc.Severity.ResponseTime()))), nil
}
