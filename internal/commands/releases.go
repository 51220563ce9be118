package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// UseReleases turns on the release command.
func (r *Router) UseReleases(rel *releases.Service) { r.env.Releases = rel }

const releaseUsage = "start <service> <version> [blue-green|canary|rolling] | list [--all] | show|report <REL-n> [md|json] | " +
	"sign <REL-n> <role> | tick <REL-n> <item> | step <REL-n> <n> | rollback <REL-n> [n] | abort <REL-n> [reason]"

func releaseCommand() Command {
	return Command{Name: "release", Args: "start|list|show|sign|tick|step|rollback|abort|report …", Summary: "run a deployment by the production guide: sign-offs, checklist, steps with dry runs, the SLI watch and the rollback", Run: releaseCmd}
}

func releaseCmd(ctx context.Context, c *Call) (Reply, error) {
	if c.Env == nil || c.Env.Releases == nil {
		return Reply{}, invalid("releases are off: no release procedures are loaded (SITREP_RELEASES)")
	}
	rel := c.Env.Releases
	if len(c.Args) == 0 {
		return Reply{}, invalid("what about releases? %s", releaseUsage)
	}
	sub, args := strings.ToLower(c.Args[0]), c.Args[1:]
	var out Reply
	var err error
	switch sub {
	case "start":
		out, err = releaseStart(ctx, c, rel, args)
	case "list":
		out, err = releaseList(ctx, c, rel, args)
	case "show", "sign", "tick", "step", "rollback", "abort", "report":
		if len(args) == 0 {
			return Reply{}, invalid("which release? give its id: release %s REL-3", sub)
		}
		id, perr := releases.ParseKey(args[0])
		if perr != nil {
			return Reply{}, invalid("%v", perr)
		}
		out, err = releaseOn(ctx, c, rel, sub, id, args[1:])
	default:
		return Reply{}, invalid("unknown release command %q: %s", c.Args[0], releaseUsage)
	}
	return out, releaseError(err)
}

// releaseError words the releases package's errors for the asker.
func releaseError(err error) error {
	switch {
	case err == nil:
		return nil
	case releases.IsRefusal(err):
		return incidents.Errorf(incidents.EConflict, "%s", err.Error())
	case errors.Is(err, releases.ErrNotFound):
		return incidents.Errorf(incidents.ENotFound, "%s", err.Error())
	}
	return err
}

func releaseStart(ctx context.Context, c *Call, rel *releases.Service, args []string) (Reply, error) {
	if len(args) < 2 || len(args) > 3 {
		return Reply{}, invalid("give the service and the version: release start architect-api 3.2.0 [blue-green|canary|rolling]")
	}
	proc := ""
	if len(args) == 3 {
		proc = args[2]
	}
	r, err := rel.Start(ctx, args[0], args[1], proc, c.Actor)
	if err != nil {
		return Reply{}, err
	}
	return mine(ReleaseCard(rel, r, c.Svc.Now())), nil
}

func releaseList(ctx context.Context, c *Call, rel *releases.Service, args []string) (Reply, error) {
	f := releases.Filter{Active: true, Limit: 50}
	if slices.Contains(args, "--all") {
		f.Active = false
	}
	rs, err := rel.List(ctx, f)
	if err != nil {
		return Reply{}, err
	}
	if len(rs) == 0 {
		return Reply{Text: "no releases in progress (release list --all shows the finished ones too)", Private: true}, nil
	}
	now := c.Svc.Now()
	lines := make([]string, 0, len(rs))
	var people []string
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("%-6s %s %s  %-11s %-10s by %s, %s ago", r.Key(), r.Service, r.Version, r.Strategy, r.State, r.StartedBy, say.Human(now.Sub(r.StartedAt))))
		people = append(people, r.StartedBy)
	}
	return Reply{Text: fmt.Sprintf("%s:", say.Count(len(rs), "release", "releases")), Lines: lines, Private: true, People: people}, nil
}

func releaseOn(ctx context.Context, c *Call, rel *releases.Service, sub string, id int64, args []string) (Reply, error) {
	switch sub {
	case "show":
		r, err := rel.Get(ctx, id)
		if err != nil {
			return Reply{}, err
		}
		out := ReleaseCard(rel, r, c.Svc.Now())
		out.Private = true
		return out, nil
	case "report":
		r, err := rel.Get(ctx, id)
		if err != nil {
			return Reply{}, err
		}
		format := "md"
		if len(args) > 0 {
			format = strings.ToLower(args[0])
		}
		var b strings.Builder
		if err := WriteReleaseReport(&b, rel, r, format); err != nil {
			return Reply{}, err
		}
		ext := map[string]string{"md": "md", "json": "json"}[format]
		return Reply{Text: fmt.Sprintf("📄 Release report of %s (%s %s)", r.Key(), r.Service, r.Version), Private: true,
			File: &File{Name: fmt.Sprintf("%s-report.%s", r.Key(), ext), Title: r.Key() + " release report", Content: []byte(b.String())}}, nil
	case "sign":
		if len(args) != 1 {
			return Reply{}, invalid("give the role you sign for: release sign REL-%d devops", id)
		}
		r, err := rel.Sign(ctx, id, strings.ToLower(args[0]), c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return mine(ReleaseCard(rel, r, c.Svc.Now())), nil
	case "tick":
		n, err := strconv.Atoi(strings.Join(args, " "))
		if err != nil || len(args) != 1 {
			return Reply{}, invalid("give the checklist item's number: release tick REL-%d 1", id)
		}
		r, err := rel.Tick(ctx, id, n, c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return mine(ReleaseCard(rel, r, c.Svc.Now())), nil
	case "abort":
		r, err := rel.Abort(ctx, id, strings.Join(args, " "), c.Actor)
		if err != nil {
			return Reply{}, err
		}
		return ReleaseCard(rel, r, c.Svc.Now()), nil
	case "step", "rollback":
		return releaseStep(ctx, c, rel, id, sub == "rollback", args)
	}
	return Reply{}, invalid("unknown release command %q", sub)
}

func releaseStep(ctx context.Context, c *Call, rel *releases.Service, id int64, rollback bool, args []string) (Reply, error) {
	req := releases.StepRequest{Rollback: rollback, By: c.Actor}
	if len(args) == 0 && !rollback {
		return Reply{}, invalid("give the step's number: release step REL-%d 2", id)
	}
	if len(args) == 0 { // the rollback's next step
		r, err := rel.Get(ctx, id)
		if err != nil {
			return Reply{}, err
		}
		proc, err := rel.Procedure(r)
		if err != nil {
			return Reply{}, err
		}
		if req.Step = nextRollback(r, proc); req.Step == 0 {
			return Reply{}, invalid("%s's rollback steps that act are done; a follow-up by hand is marked with its number: release rollback %s <n>", r.Key(), r.Key())
		}
	}
	for i, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && k == "confirm" {
			req.Confirm = v
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil || i > 0 {
			return Reply{}, invalid("%q: give the step's number, and confirm=… only from the preview's button", a)
		}
		req.Step = n
	}
	r, res, err := rel.Step(ctx, id, req)
	if err != nil {
		return Reply{}, err
	}
	proc, err := rel.Procedure(r)
	if err != nil {
		return Reply{}, err
	}
	steps, verb, label := proc.Steps, "step", "step"
	if rollback {
		steps, verb, label = proc.Rollback, "rollback", "rollback step"
	}
	step := steps[req.Step-1]
	out := Reply{
		Release: r,
		Text:    fmt.Sprintf("▶ %s · %s %d/%d: %s", r.Key(), label, req.Step, len(steps), step.Name),
		Fields:  []Field{{"Result", fmt.Sprintf("%s — %s", res.Outcome, res.Summary)}},
		Lines:   res.Lines,
		Thread:  r.Key(),
	}
	if step.Text != "" && step.Kind != runbooks.Manual {
		out.Fields = append(out.Fields, Field{"Note", step.Text})
	}
	if res.Outcome == runbooks.DryRun {
		label, prefix, end := "Confirm: "+step.Name, "", "Go ahead?"
		if res.Warning != "" {
			out.Fields = append(out.Fields, Field{"⚠️ Warning", res.Warning})
			label, prefix, end = "Confirm anyway: "+step.Name, "⚠️ "+res.Warning+". ", "Go ahead anyway?"
		}
		out.Buttons = append(out.Buttons, Button{Label: label, Command: fmt.Sprintf("release %s %s %d confirm=%s", verb, r.Key(), req.Step, res.Token),
			Style: Danger, Confirm: confirmQuestion(prefix, step.Name, res, end)})
	}
	if next := nextButton(r, proc); next != nil && res.Outcome != runbooks.DryRun {
		out.Buttons = append(out.Buttons, *next)
	}
	if n := nextRollback(r, proc); rollback && n > 0 && r.Waiting == nil && res.Outcome != runbooks.DryRun { // the way back goes on
		out.Buttons = append(out.Buttons, rollbackButton(r, n, fmt.Sprintf("Roll back step %d: %s", n, proc.Rollback[n-1].Name)))
	}
	return out, nil
}

// mine is a card for the asker alone: everyone else sees the header, which
// shows the same change.
func mine(r Reply) Reply {
	r.Private = true
	return r
}

// ReleaseCard is a release's summary: what its header shows.
func ReleaseCard(rel *releases.Service, r *releases.Release, now time.Time) Reply {
	out := Reply{Text: fmt.Sprintf("🚀 %s · %s %s (%s) — %s", r.Key(), r.Service, r.Version, r.Strategy, stateLabel(r.State)), Thread: r.Key(), People: r.People()}
	out.Fields = append(out.Fields, Field{"Started", fmt.Sprintf("%s by %s", say.Stamp(r.StartedAt), r.StartedBy)})
	proc, err := rel.Procedure(r)
	if err != nil {
		out.Fields = append(out.Fields, Field{"Procedure", err.Error()})
		return out
	}
	if r.Strategy == "blue-green" {
		out.Fields = append(out.Fields, Field{"Colours", fmt.Sprintf("live %s, deploying to %s", r.Params["live"], r.Params["idle"])})
	}
	if len(proc.Signoffs) > 0 {
		var parts []string
		for _, role := range proc.Signoffs {
			if m, ok := r.Signoffs[role]; ok {
				parts = append(parts, fmt.Sprintf("✅ %s (%s)", role, m.By))
			} else {
				parts = append(parts, "⬜ "+role)
			}
		}
		out.Fields = append(out.Fields, Field{"Sign-offs", strings.Join(parts, ", ")})
	}
	if len(proc.Checklist) > 0 {
		out.Fields = append(out.Fields, Field{"Staging checklist", fmt.Sprintf("%d of %d ticked", len(r.Checklist), len(proc.Checklist))})
	}
	for i, s := range proc.Steps {
		out.Lines = append(out.Lines, stepLine(i+1, s, r.Steps[i+1], r.Waiting, false))
	}
	if w := r.Waiting; w != nil {
		out.Fields = append(out.Fields, Field{"Waiting", fmt.Sprintf("for step %d's rollout since %s (until %s): %s", w.Step, say.Clock(w.Since), say.Clock(w.Deadline), w.Last)})
	}
	if w := r.Watch; w != nil {
		last := "no check yet"
		if n := len(w.Checks); n > 0 {
			last = fmt.Sprintf("check %d at %s: %s", n, say.Clock(w.Checks[n-1].At), w.Checks[n-1].Summary)
		}
		span := fmt.Sprintf("every %s until %s", say.Human(w.Every), say.Clock(w.Until))
		if w.Clean || r.State != releases.Watching {
			span = fmt.Sprintf("%s to %s", say.Clock(w.Started), say.Clock(w.Until))
		}
		out.Fields = append(out.Fields, Field{"Watch", fmt.Sprintf("after step %d, %s — %s", w.Step, span, last)})
	}
	if r.Incident != 0 {
		out.Fields = append(out.Fields, Field{"Incident", incidents.FormatID(r.Incident) + " — declared by the watch"})
	}
	if len(r.Rollback) > 0 {
		for i, s := range proc.Rollback {
			out.Lines = append(out.Lines, stepLine(i+1, s, r.Rollback[i+1], r.Waiting, true))
		}
	}
	if n := len(r.Events); n > 0 {
		out.Fields = append(out.Fields, Field{"Last", fmt.Sprintf("%s %s", say.Clock(r.Events[n-1].At), r.Events[n-1].Text)})
	}
	if r.State.Over() {
		if n := nextRollback(r, proc); r.State == releases.Aborted && n > 0 && releases.Changed(r, proc) { // aborted, its changes still there
			out.Buttons = append(out.Buttons, rollbackButton(r, n, "Roll back"))
		}
		return out
	}
	for _, role := range proc.Signoffs {
		if _, ok := r.Signoffs[role]; !ok {
			out.Buttons = append(out.Buttons, Button{Label: "Sign as " + role, Command: fmt.Sprintf("release sign %s %s", r.Key(), role), Style: Primary})
		}
	}
	for i, item := range proc.Checklist {
		if _, ok := r.Checklist[i]; !ok {
			out.Buttons = append(out.Buttons, Button{Label: fmt.Sprintf("Tick %d: %s", i+1, say.Truncate(item, 60)), Command: fmt.Sprintf("release tick %s %d", r.Key(), i+1)})
		}
	}
	if next := nextButton(r, proc); next != nil {
		out.Buttons = append(out.Buttons, *next)
	} else if why := blocked(r, proc); why != "" {
		out.Fields = append(out.Fields, Field{"Next", why})
	}
	if n := nextRollback(r, proc); n > 0 && releases.Changed(r, proc) {
		out.Buttons = append(out.Buttons, rollbackButton(r, n, "Roll back"))
	}
	if r.State == releases.Verified {
		return out // done: a rollback stays possible (a later checkpoint may find what the hour did not)
	}
	out.Buttons = append(out.Buttons,
		Button{Label: "Abort", Command: "release abort " + r.Key(), Input: "[reason]", Confirm: "Abort " + r.Key() + "? Nothing more runs in it; what it changed stays (roll back first to undo it)."})
	return out
}

func stateLabel(s releases.State) string {
	return map[releases.State]string{releases.Started: "in progress", releases.Watching: "👀 watching", releases.Verified: "✅ verified",
		releases.Breached: "🔴 breached", releases.RolledBack: "↩️ rolled back", releases.Aborted: "aborted"}[s]
}

func stepLine(n int, s runbooks.Step, run releases.StepRun, w *releases.Wait, rollback bool) string {
	mark := "⬜"
	switch {
	case w != nil && w.Step == n && w.Rollback == rollback:
		mark = "⏳"
	case run.Done():
		mark = "✅"
	case run.Outcome != "":
		mark = "❌"
	}
	prefix := ""
	if rollback {
		prefix = "rollback "
	}
	line := fmt.Sprintf("%s %s%d. %s (%s)", mark, prefix, n, s.Name, s.Kind)
	if s.Gate {
		line += " — gate"
	}
	if run.Outcome != "" {
		line += fmt.Sprintf(" — %s by %s at %s", run.Outcome, run.By, say.Clock(run.At))
	}
	return line
}

// next is the first step not done (0 when every one is).
func next(r *releases.Release, proc *runbooks.Runbook) int {
	for i := range proc.Steps {
		if !r.Steps[i+1].Done() {
			return i + 1
		}
	}
	return 0
}

// blocked says why the next step has no button: it changes production
// and sign-offs or checklist items are missing (the service refuses it
// too), or a rollout is being waited for.
func blocked(r *releases.Release, proc *runbooks.Runbook) string {
	n := next(r, proc)
	switch {
	case r.State.Over() || n == 0 || r.RollbackBegun():
		return ""
	case r.Waiting != nil:
		return fmt.Sprintf("step %d waits for the rollout: %s", r.Waiting.Step, r.Waiting.Last)
	case !proc.Steps[n-1].Kind.Destructive():
		return ""
	}
	var missing []string
	if left := r.Unsigned(proc.Signoffs); len(left) > 0 {
		missing = append(missing, "sign-offs from "+strings.Join(left, ", "))
	}
	if left := r.Unticked(proc.Checklist); len(left) > 0 {
		missing = append(missing, say.Count(len(left), "checklist item", "checklist items"))
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("step %d. %s changes production: it waits for %s", n, proc.Steps[n-1].Name, strings.Join(missing, " and "))
}

// nextButton runs the first step not done, or nil when every one is done,
// a rollout is being waited for, the step waits for sign-offs, or the
// rollback has begun (nothing goes forward: the Roll back is the way).
func nextButton(r *releases.Release, proc *runbooks.Runbook) *Button {
	if r.State.Over() || r.Waiting != nil || r.RollbackBegun() || blocked(r, proc) != "" {
		return nil
	}
	for i, s := range proc.Steps {
		if r.Steps[i+1].Done() {
			continue
		}
		b := Button{Label: fmt.Sprintf("Run step %d: %s", i+1, s.Name), Command: fmt.Sprintf("release step %s %d", r.Key(), i+1)}
		if s.Kind == runbooks.Manual {
			b.Label, b.Confirm = fmt.Sprintf("Done step %d: %s", i+1, s.Name), fmt.Sprintf("Mark step %d done? %s", i+1, say.Truncate(s.Text, 200))
		}
		if s.Kind.Destructive() {
			b.Style = Danger
		}
		return &b
	}
	return nil
}

// rollbackButton runs rollback step n of r.
func rollbackButton(r *releases.Release, n int, label string) Button {
	return Button{Label: label, Command: fmt.Sprintf("release rollback %s %d", r.Key(), n), Style: Danger}
}

// nextRollback is the rollback's next step that acts (0 when they are
// all done): a manual follow-up is never pressed through a Roll back button.
func nextRollback(r *releases.Release, proc *runbooks.Runbook) int {
	for i, st := range proc.Rollback {
		if st.Kind != runbooks.Manual && !r.Rollback[i+1].Done() {
			return i + 1
		}
	}
	return 0
}
