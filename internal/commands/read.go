package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

func list(ctx context.Context, c *Call) (Reply, error) {
	var f incidents.Filter
	for i := 0; i < len(c.Args); i++ {
		arg := c.Args[i]
		switch {
		case arg == "--all" || arg == "-a":
			f.All = true
		case arg == "--severity" || arg == "-s":
			if i+1 >= len(c.Args) {
				return Reply{}, invalid("--severity needs a value: P1, P2, P3 or P4")
			}
			i++
			arg = "--severity=" + c.Args[i]
			fallthrough
		case strings.HasPrefix(arg, "--severity="):
			sev, err := incidents.ParseSeverity(strings.TrimPrefix(arg, "--severity="))
			if err != nil {
				return Reply{}, err
			}
			f.Severity = sev
		default:
			return Reply{}, invalid("unknown option %q", arg)
		}
	}
	listed, err := c.Svc.List(ctx, f)
	if err != nil {
		return Reply{}, err
	}
	all := listed[:0]
	for _, inc := range listed { // a private incident only for the people in it
		if inc.CanSee(c.Actor) {
			all = append(all, inc)
		}
	}
	what := "open incident"
	if f.All {
		what = "incident"
	}
	if f.Severity.Valid() {
		what = f.Severity.String() + " " + what
	}
	if len(all) == 0 {
		return Reply{Text: "No " + what + "s.", Private: true}, nil
	}
	if len(all) > 1 {
		what += "s"
	}
	now := c.Svc.Now()
	lines := make([]string, len(all))
	var leads []string
	for i, inc := range all {
		lines[i] = ListLine(inc, now)
		leads = append(leads, inc.Lead())
	}
	return Reply{Text: fmt.Sprintf("%d %s:", len(all), what), Lines: lines, Private: true, People: leads}, nil
}

func show(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	out := Card(inc, c.Svc.Now())
	out.Fields = append(out.Fields, changeFields(ctx, c.Env, inc)...)
	out.Private = true
	return out, nil
}

// TimelineTail is how many events the timeline command shows at most (the
// postmortem export has them all).
const TimelineTail = 200

func timeline(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	ring := make([]string, 0, TimelineTail)
	total := 0
	actors := map[string]bool{}
	err = c.Svc.Timeline(ctx, c.ID, func(ev incidents.Event) error {
		line := say.EventLine(ev)
		if ev.Source == incidents.SourceSlack || ev.Source == incidents.SourceConsole {
			actors[ev.Actor] = true // people who acted here, not names an integration sent
		}
		if len(ring) < TimelineTail {
			ring = append(ring, line)
		} else {
			ring[total%TimelineTail] = line
		}
		total++
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	if total > TimelineTail { // rotate the ring into order
		k := total % TimelineTail
		ring = append(ring[k:], ring[:k]...)
	}
	head := fmt.Sprintf("Timeline of %s · %s (%s, UTC):", inc.Key(), inc.Title, say.Count(total, "event", "events"))
	if total > TimelineTail {
		head = fmt.Sprintf("Timeline of %s · %s (last %d of %d events, UTC):", inc.Key(), inc.Title, TimelineTail, total)
	}
	return Reply{Text: head, Lines: ring, Private: true, Incident: inc, People: slices.Sorted(maps.Keys(actors))}, nil
}
