package releases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// StepRequest is one click on a release step.
type StepRequest struct {
	Step     int // 1-based, in the steps or (Rollback) the rollback steps
	Rollback bool
	Confirm  string // the token of the dry run being confirmed
	By       incidents.Actor
}

// Step runs one step of the release: in order, each step after the ones
// before it are done; a step that changes the cluster only once every
// sign-off is in and the checklist is ticked, with the runner's
// guardrails (operator, namespace, dry run, confirmation). A rollback
// step needs no sign-off: the way back never waits for six people.
func (s *Service) Step(ctx context.Context, id int64, req StepRequest) (*Release, runbooks.Result, error) {
	r, proc, err := s.load(ctx, id)
	if err != nil {
		return nil, runbooks.Result{}, err
	}
	steps := proc.Steps
	if req.Rollback {
		steps = proc.Rollback
	}
	if req.Step < 1 || req.Step > len(steps) {
		return nil, runbooks.Result{}, refuse("%s has %s 1 to %d", r.Key(), map[bool]string{false: "steps", true: "rollback steps"}[req.Rollback], len(steps))
	}
	step := steps[req.Step-1]
	if err := s.mayRun(r, proc, req, step); err != nil {
		return nil, runbooks.Result{}, err
	}
	var res runbooks.Result
	switch step.Kind {
	case runbooks.Manual:
		res = runbooks.Result{Outcome: "done", Summary: fmt.Sprintf("done by %s: %s", req.By.Name, step.Text)}
	default:
		res = s.cfg.Runner.Run(ctx, runbooks.Request{Runbook: proc, Step: req.Step, Rollback: req.Rollback, Actor: req.By,
			Confirm: req.Confirm, Params: r.Params, Subject: r.Key()})
	}
	// Recorded whatever happened to the request's own deadline.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r, err = s.update(rec, id, func(r *Release, now time.Time) error {
		s.recordStep(r, proc, req, step, res, now)
		return nil
	})
	return r, res, err
}

// mayRun says why a step may not run yet, if it may not.
func (s *Service) mayRun(r *Release, proc *runbooks.Runbook, req StepRequest, step runbooks.Step) error {
	if r.State == Aborted || r.State == RolledBack {
		return refuse("%s is %s: nothing more runs in it", r.Key(), r.State)
	}
	if w := r.Waiting; w != nil && !(req.Rollback && !w.Rollback) { // the way back never waits for the way forward
		return refuse("%s is waiting for a rollout (step %d, %s): wait for it, or roll back", r.Key(), w.Step, w.Last)
	}
	if r.State == Breached && !req.Rollback && step.Kind.Destructive() {
		return refuse("%s breached its watch (%s): roll it back, or abort it; nothing more goes forward", r.Key(), incidentRef(r))
	}
	done := r.Steps
	if req.Rollback {
		done = r.Rollback
	}
	for n := 1; n < req.Step; n++ {
		if !done[n].Done() {
			list := proc.Steps
			if req.Rollback {
				list = proc.Rollback
			}
			why := "not run yet"
			if run, ok := done[n]; ok {
				why = run.Outcome + ": " + run.Summary
			}
			if list[n-1].Gate {
				return refuse("the gate %d. %s has not passed (%s): step %d waits for it", n, list[n-1].Name, why, req.Step)
			}
			return refuse("step %d. %s is not done (%s): steps run in order", n, list[n-1].Name, why)
		}
	}
	if req.Rollback || !step.Kind.Destructive() {
		return nil
	}
	if left := r.Unsigned(proc.Signoffs); len(left) > 0 {
		return refuse("step %d. %s changes production: it waits for every sign-off (still to sign: %s)", req.Step, step.Name, strings.Join(left, ", "))
	}
	if left := r.Unticked(proc.Checklist); len(left) > 0 {
		var items []string
		for _, i := range left {
			items = append(items, fmt.Sprintf("%d. %s", i+1, proc.Checklist[i]))
		}
		return refuse("step %d. %s changes production: the staging checklist is not done (%s)", req.Step, step.Name, strings.Join(items, "; "))
	}
	return nil
}

// recordStep writes a step's result into the release: a dry run waits for
// its confirmation; a wait_rollout still rolling is polled by the driver;
// a done watched step starts the watch; the last rollback step ends it.
func (s *Service) recordStep(r *Release, proc *runbooks.Runbook, req StepRequest, step runbooks.Step, res runbooks.Result, now time.Time) {
	label := "step"
	runs := &r.Steps
	count := len(proc.Steps)
	if req.Rollback {
		label, runs, count = "rollback step", &r.Rollback, len(proc.Rollback)
	}
	r.record(now, EvStep, req.By.Name, "%s %d/%d %s: %s — %s", label, req.Step, count, step.Name, res.Outcome, res.Summary)
	if res.Outcome == runbooks.DryRun || res.Outcome == runbooks.Refused {
		return // previewed or refused: the step is where it was
	}
	if *runs == nil {
		*runs = map[int]StepRun{}
	}
	run := StepRun{Outcome: string(res.Outcome), Summary: res.Summary, By: req.By.Name, At: now}
	if w := r.Waiting; req.Rollback && w != nil && !w.Rollback && run.Done() {
		r.Waiting = nil
		r.record(now, EvRollout, "", "no longer waiting for step %d's rollout: rolling back", w.Step)
	}
	(*runs)[req.Step] = run
	if res.Outcome == runbooks.Waiting {
		r.Waiting = &Wait{Step: req.Step, Rollback: req.Rollback, By: req.By.Name, Since: now, Deadline: now.Add(step.RolloutTimeout()),
			Next: now.Add(time.Second), Last: res.Summary} // a first look soon: a small rollout is done in a second or two
		return
	}
	if run.Done() {
		s.stepDone(r, proc, req.Step, req.Rollback, now)
	}
}

// stepDone moves the release on after a step is done.
func (s *Service) stepDone(r *Release, proc *runbooks.Runbook, n int, rollback bool, now time.Time) {
	if rollback {
		if n == len(proc.Rollback) {
			r.State, r.EndedAt, r.Waiting = RolledBack, now, nil
			if r.Watch != nil {
				r.Watch.Checkpoints = nil // nothing of this version is left to look at
			}
			r.record(now, EvRollback, "", "rolled back: every rollback step is done")
		}
		return
	}
	if proc.Steps[n-1].WatchAfter {
		every, span, checkpoints := proc.Watch.Durations()
		w := &Watch{Step: n, Started: now, Until: now.Add(span), Next: now.Add(every), Every: every}
		for _, c := range checkpoints {
			if c > span {
				w.Checkpoints = append(w.Checkpoints, now.Add(c))
			}
		}
		r.Watch = w
		if r.State != Breached {
			r.State = Watching
		}
		r.record(now, EvWatch, "", "watching %s every %s for %s, until %s (after step %d)", sliNames(proc), say.Human(every), say.Human(span), say.Clock(w.Until), n)
		return
	}
	if n == len(proc.Steps) && r.State == Started && (r.Watch == nil || r.Watch.Clean) {
		r.State = Verified
		r.record(now, EvVerified, "", "every step done")
	}
}

func sliNames(proc *runbooks.Runbook) string {
	var names []string
	for _, sli := range proc.Watch.SLIs {
		names = append(names, sli.Name)
	}
	return strings.Join(names, ", ")
}

func incidentRef(r *Release) string {
	if r.Incident == 0 {
		return "its incident is being declared"
	}
	return incidents.FormatID(r.Incident)
}
