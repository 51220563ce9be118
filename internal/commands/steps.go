package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

func (e *Env) runbook(name string, inc *incidents.Incident) (*runbooks.Runbook, error) {
	if e == nil || e.Runbooks == nil {
		return nil, invalid("no runbooks are loaded (SITREP_RUNBOOKS)")
	}
	if name == "" {
		name = inc.Links["runbook"]
	}
	if name == "" {
		return nil, invalid("%s has no runbook attached: name one (%s)", inc.Key(), strings.Join(e.names(), ", "))
	}
	rb := e.Runbooks.Get(name)
	if rb == nil {
		return nil, invalid("no runbook %q: use one of %s", name, strings.Join(e.names(), ", "))
	}
	return rb, nil
}

func (e *Env) names() []string {
	var out []string
	for _, rb := range e.Runbooks.Runbooks() {
		out = append(out, rb.Name)
	}
	return out
}

// stepButton runs step n of rb.
func stepButton(inc *incidents.Incident, rb *runbooks.Runbook, n int) Button {
	s := rb.Steps[n-1]
	// "Run step 4: …", not "4. …": in the terminal the button has a choice
	// number of its own, and a step number beside it read as another choice.
	b := Button{Label: fmt.Sprintf("Run step %d: %s", n, s.Name), Command: fmt.Sprintf("step %s %s %d", inc.Key(), rb.Name, n)}
	if s.Kind.Destructive() {
		b.Style = Danger
	}
	if s.Kind == runbooks.Undo {
		b.Input = "[revision=N]" // the preview offers the others to pick from
	}
	if s.Kind == runbooks.Scale && s.Replicas > 0 {
		b.Input = "[replicas=N]"
		for _, r := range []int{s.Replicas, s.Replicas + 5, s.Replicas * 2} {
			b.Options = append(b.Options, Option{Label: fmt.Sprintf("%d replicas", r), Value: "replicas=" + strconv.Itoa(r)})
		}
	}
	return b
}

func runbookCmd(ctx context.Context, c *Call) (Reply, error) {
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	name := ""
	if len(c.Args) > 0 {
		name = c.Args[0]
	}
	rb, err := c.Env.runbook(name, inc)
	if err != nil {
		return Reply{}, err
	}
	lines := []string{}
	if rb.Trigger != "" {
		lines = append(lines, "Trigger: "+rb.Trigger)
	}
	for i, s := range rb.Steps {
		lines = append(lines, fmt.Sprintf("%d. %s (%s)", i+1, s.Name, s.Kind))
	}
	lines = append(lines, fmt.Sprintf("Run any step with: step %s %s <n>", inc.Key(), rb.Name))
	return Reply{Text: fmt.Sprintf("📖 Runbook %s for %s", rb.Title, inc.Key()), Lines: lines, Buttons: []Button{stepButton(inc, rb, 1)},
		Incident: inc, Thread: inc.Key() + "/" + rb.Name}, nil
}

func stepCmd(ctx context.Context, c *Call) (Reply, error) {
	if len(c.Args) < 2 {
		return Reply{}, invalid("give the runbook and the step number")
	}
	if c.Env == nil || c.Env.Runner == nil {
		return Reply{}, invalid("runbook steps cannot run here: no runner is configured")
	}
	inc, err := c.Svc.Get(ctx, c.ID)
	if err != nil {
		return Reply{}, err
	}
	rb, err := c.Env.runbook(c.Args[0], inc)
	if err != nil {
		return Reply{}, err
	}
	n, err := strconv.Atoi(c.Args[1])
	if err != nil || n < 1 || n > len(rb.Steps) {
		return Reply{}, invalid("%s has steps 1 to %d", rb.Name, len(rb.Steps))
	}
	req := runbooks.Request{Incident: inc, Runbook: rb, Step: n, Actor: c.Actor}
	for _, opt := range c.Args[2:] {
		k, v, ok := strings.Cut(opt, "=")
		if _, err := strconv.Atoi(opt); err == nil { // a bare number answers the step's one choice: [replicas=N], [revision=N]
			switch rb.Steps[n-1].Kind {
			case runbooks.Scale:
				k, v, ok = "replicas", opt, true
			case runbooks.Undo:
				k, v, ok = "revision", opt, true
			}
		}
		switch {
		case ok && k == "replicas":
			if req.Replicas, err = strconv.Atoi(v); err != nil || req.Replicas < 0 || req.Replicas > 1000 {
				return Reply{}, invalid("replicas=%s: a count from 0 to 1000", v)
			}
		case ok && k == "revision":
			if req.Revision, err = strconv.ParseInt(v, 10, 64); err != nil || req.Revision < 1 {
				return Reply{}, invalid("revision=%s: a revision number from the rollout history (1 or more)", v)
			}
		case ok && k == "confirm":
			req.Confirm = v
		default:
			return Reply{}, invalid("unknown option %q: use replicas=N or revision=N", opt)
		}
	}
	res := c.Env.Runner.Run(ctx, req)
	step := rb.Steps[n-1]
	// The audit record is written whatever happened to the request's own
	// deadline (a step that hung until it): detached, with a short timeout.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	inc, _, err = c.Svc.Change(rec, c.ID, func(inc *incidents.Incident, now time.Time) ([]incidents.Event, error) {
		return inc.Record(incidents.EventRunbookStep, fmt.Sprintf("%s · %d. %s: %s — %s", rb.Title, n, step.Name, res.Outcome, res.Summary), map[string]string{
			"runbook": rb.Name, "step": strconv.Itoa(n), "name": step.Name, "kind": string(step.Kind), "outcome": string(res.Outcome),
			"params": paramString(res.Params), "duration": res.Duration.Round(time.Millisecond).String(),
		}, c.Actor, now)
	})
	if err != nil {
		return Reply{}, err
	}
	out := Reply{
		Text:     fmt.Sprintf("▶ %s · step %d/%d: %s", rb.Title, n, len(rb.Steps), step.Name),
		Fields:   []Field{{"Result", fmt.Sprintf("%s — %s", res.Outcome, res.Summary)}},
		Lines:    res.Lines,
		Incident: inc,
		Thread:   inc.Key() + "/" + rb.Name,
	}
	if step.Text != "" && step.Kind != runbooks.Manual {
		out.Fields = append(out.Fields, Field{"Note", step.Text})
	}
	if res.Image != nil {
		out.File = &File{Name: fmt.Sprintf("%s-%s-step%d.png", inc.Key(), rb.Name, n), Title: step.Name, Content: res.Image}
	}
	if res.Outcome == runbooks.DryRun {
		cmd := fmt.Sprintf("step %s %s %d confirm=%s", inc.Key(), rb.Name, n, res.Token)
		if req.Replicas > 0 {
			cmd += " replicas=" + strconv.Itoa(req.Replicas)
		}
		if req.Revision > 0 {
			cmd += " revision=" + strconv.FormatInt(req.Revision, 10)
		}
		label, prefix, end := "Confirm: "+step.Name, "", "Go ahead?"
		if inc.Drill { // a game day's action still changes the real cluster
			prefix = incidents.DrillMark + " — the change is real. "
		}
		if res.Warning != "" { // said beside the result, and again in the question
			out.Fields = append(out.Fields, Field{"⚠️ Warning", res.Warning})
			label, prefix, end = "Confirm anyway: "+step.Name, prefix+"⚠️ "+res.Warning+". ", "Go ahead anyway?"
		}
		ask := confirmQuestion(prefix, step.Name, res, end)
		out.Buttons = append(out.Buttons, Button{Label: label, Command: cmd, Style: Danger, Confirm: ask})
	}
	// An undo offers the other revisions, newest first: each button
	// previews that one instead (nothing changes before its confirmation).
	for _, rev := range res.Revisions[:min(len(res.Revisions), maxRevisionChoices)] {
		out.Buttons = append(out.Buttons, Button{Label: "Preview " + c.Env.Runner.RevisionLabel(rev),
			Command: fmt.Sprintf("step %s %s %d revision=%d", inc.Key(), rb.Name, n, rev.Number)})
	}
	if n < len(rb.Steps) {
		out.Buttons = append(out.Buttons, stepButton(inc, rb, n+1))
	}
	return out, nil
}

// maxQuestion is the longest confirmation question: Slack's confirm
// dialog shows 300 characters.
const maxQuestion = 300

// confirmQuestion asks to confirm a previewed step, after prefix (a drill's
// mark, a warning), in the longest form that fits: what it does on what;
// the step and its object (the result above says the rest); the step alone.
func confirmQuestion(prefix, name string, res runbooks.Result, end string) string {
	tail := fmt.Sprintf("Only you can confirm, within %s. %s", say.Human(runbooks.ConfirmTTL), end)
	short := fmt.Sprintf("%s on %s, as the dry run above shows. %s", name, res.Target, tail)
	q := fmt.Sprintf("%s on %s: %s (checked by a server dry run). %s", name, res.Target, res.Summary, tail)
	if res.Summary == "" || len([]rune(q)) > maxQuestion-60 {
		q = short
	}
	for _, q := range []string{prefix + q, prefix + short} {
		if len([]rune(q)) <= maxQuestion {
			return q
		}
	}
	return fmt.Sprintf("%s%s%s Only you can confirm, within %s.", prefix, name, strings.TrimPrefix(end, "Go ahead"), say.Human(runbooks.ConfirmTTL))
}

// maxRevisionChoices is how many other revisions an undo's preview offers
// (Deployments keep 10 by default).
const maxRevisionChoices = 5

func paramString(p map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if p[k] != "" {
			parts = append(parts, k+"="+p[k])
		}
	}
	return strings.Join(parts, " ")
}
