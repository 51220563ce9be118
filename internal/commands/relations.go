package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// The commands between incidents and people: invite, merge, link.

// visible returns incident id when who may see it: a private incident is
// refused to everyone it does not name, without a word of what it is.
func visible(ctx context.Context, svc *incidents.Service, id int64, who incidents.Actor) (*incidents.Incident, error) {
	inc, err := svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !inc.CanSee(who) {
		return nil, incidents.Errorf(incidents.ENotFound, "%s is private: only the people in it can see it; ask one of them to invite you", inc.Key())
	}
	return inc, nil
}

func invite(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) == 0 {
		return Reply{}, invalid("say who to invite: invite @alice @bob")
	}
	var users []string
	for _, w := range c.Args {
		u, err := parseUser(w)
		if err != nil {
			return Reply{}, err
		}
		users = append(users, u)
	}
	inc, err := c.Svc.Invite(ctx, c.ID, users, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	what := "invited " + strings.Join(users, ", ")
	if inc.Private {
		what += " (they can see this private incident now)"
	}
	return changed(c, inc, what), nil
}

// otherIncident reads the second incident a command names ("into INC-7"),
// refusing one the caller may not see.
func otherIncident(ctx context.Context, c *Call, usage string) (*incidents.Incident, error) {
	args := c.Args
	if len(args) > 0 && strings.EqualFold(args[0], "into") {
		args = args[1:]
	}
	if len(args) != 1 {
		return nil, invalid("%s", usage)
	}
	id, err := incidents.ParseID(args[0])
	if err != nil {
		return nil, err
	}
	return visible(ctx, c.Svc, id, c.Actor)
}

// merge asks first: merging resolves the duplicate (and its PagerDuty
// incident) and cannot be undone, so the answer is a preview naming both,
// with a Merge button bound to that pair (merge … --confirm).
func merge(ctx context.Context, c *Call) (Reply, error) {
	confirmed := len(c.Args) > 0 && c.Args[len(c.Args)-1] == "--confirm"
	if confirmed {
		c.Args = c.Args[:len(c.Args)-1]
	}
	into, err := otherIncident(ctx, c, "say which incident it duplicates: merge INC-8 into INC-7")
	if err != nil {
		return Reply{}, err
	}
	if !confirmed {
		dup, err := c.Svc.Get(ctx, c.ID)
		if err != nil {
			return Reply{}, err
		}
		if c.ID == into.ID {
			return Reply{}, invalid("%s cannot be merged into itself", dup.Key())
		}
		if _, _, err := incidents.Merge(dup.Clone(), into.Clone(), c.Actor, c.Svc.Now()); err != nil {
			return Reply{}, err // refused now, not after the click
		}
		what := fmt.Sprintf("Merge %s (%s, %s, %s) into %s (%s, %s, %s)? %s is resolved as a duplicate and cannot be reopened; its alerts, pages and people go to %s.",
			dup.Key(), dup.Name(), dup.Severity, dup.Status.Label(), into.Key(), into.Name(), into.Severity, into.Status.Label(), dup.Key(), into.Key())
		return Reply{Text: "🔀 " + what, Private: true, Buttons: []Button{{Label: "Merge", Style: Danger,
			Command: fmt.Sprintf("merge %s into %s --confirm", dup.Key(), into.Key()), Confirm: fmt.Sprintf("Merge %s into %s? %s cannot be reopened.", dup.Key(), into.Key(), dup.Key())}}}, nil
	}
	dup, into, err := c.Svc.Merge(ctx, c.ID, into.ID, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	text := fmt.Sprintf("✓ %s merged into %s (%s): it is resolved as a duplicate", dup.Key(), into.Key(), into.Name())
	if len(into.Aliases) > 0 {
		text += "; its alerts and pages land on " + into.Key() + " from now on"
	}
	if dup.Channel != "" {
		text += fmt.Sprintf("; its war room points there and is archived in %s", incidents.Human(incidents.ArchiveGrace()))
	}
	text += stillPublic(dup)
	return Reply{Text: text, Buttons: Buttons(into), Incident: into}, nil
}

func link(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) == 0 && c.Channel != "" { // "link INC-9" in a war room: the room's incident and INC-9
		if room, err := c.Svc.ByChannel(ctx, c.Channel); err == nil && room != c.ID {
			if _, err := visible(ctx, c.Svc, room, c.Actor); err != nil {
				return Reply{}, err
			}
			c.Args, c.ID = []string{incidents.FormatID(c.ID)}, room
		}
	}
	other, err := otherIncident(ctx, c, "say which incident it relates to: link INC-3 INC-9")
	if err != nil {
		return Reply{}, err
	}
	a, b, err := c.Svc.Relate(ctx, c.ID, other.ID, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	name := b.Name()
	if b.Private {
		name = "private"
	}
	out := changed(c, a, "is linked to "+b.Key()+" ("+name+")")
	out.Private = out.Private || a.Private || b.Private
	return out, nil
}
