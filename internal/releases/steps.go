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
	if err := s.mayRun(ctx, r, proc, req, step); err != nil {
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
	first := !Changed(r, proc)
	r, err = s.update(rec, id, func(r *Release, now time.Time) error {
		s.recordStep(r, proc, req, step, res, now)
		return nil
	})
	if err == nil && !req.Rollback && first && Changed(r, proc) {
		s.endCheckpoints(rec, r) // the service's earlier releases would measure this one from now on
	}
	return r, res, err
}

// mayRun says why a step may not run yet, if it may not.
func (s *Service) mayRun(ctx context.Context, r *Release, proc *runbooks.Runbook, req StepRequest, step runbooks.Step) error {
	switch {
	case r.State == RolledBack && !(req.Rollback && step.Kind == runbooks.Manual): // a manual follow-up of the way back stays
		return refuse("%s is rolled back: nothing more runs in it", r.Key())
	case r.State == Aborted && !req.Rollback:
		return refuse("%s is aborted: nothing more goes forward (its rollback stays possible)", r.Key())
	}
	if w := r.Waiting; w != nil && !(req.Rollback && !w.Rollback) { // the way back never waits for the way forward
		return refuse("%s is waiting for a rollout (step %d, %s): wait for it, or roll back", r.Key(), w.Step, w.Last)
	}
	if req.Rollback {
		return s.mayRollBack(ctx, r, proc, req)
	}
	switch {
	case r.RollbackBegun():
		return refuse("%s's rollback has begun: finish it (release rollback %s); nothing goes forward", r.Key(), r.Key())
	case r.State == Breached:
		return refuse("%s breached its watch (%s): roll it back, or abort it; nothing more goes forward", r.Key(), incidentRef(r))
	case r.State == Verified:
		return refuse("%s is verified: every step is done (a rollback stays possible)", r.Key())
	case r.Steps[req.Step].Done():
		return refuse("step %d. %s is done (%s by %s): steps run once", req.Step, step.Name, r.Steps[req.Step].Outcome, r.Steps[req.Step].By)
	case r.State == Watching && step.Kind.Destructive():
		return refuse("the watch after step %d runs until %s: step %d. %s changes production again only after a clean window", r.Watch.Step, r.Watch.Until.Format("15:04 MST"), req.Step, step.Name)
	}
	for n := 1; n < req.Step; n++ {
		if !r.Steps[n].Done() {
			why := "not run yet"
			if run, ok := r.Steps[n]; ok {
				why = run.Outcome + ": " + run.Summary
			}
			if proc.Steps[n-1].Gate {
				return refuse("the gate %d. %s has not passed (%s): step %d waits for it", n, proc.Steps[n-1].Name, why, req.Step)
			}
			return refuse("step %d. %s is not done (%s): steps run in order", n, proc.Steps[n-1].Name, why)
		}
	}
	if step.Kind == runbooks.Manual && !s.ofRelease(ctx, proc, req.By) {
		return refuse("%s may not mark step %d done: an operator or one of the release's signers does (SITREP_OPERATORS, SITREP_RELEASE_SIGNERS)", req.By.Name, req.Step)
	}
	if !step.Kind.Destructive() {
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
	if !s.operator(ctx, req.By) {
		return nil // the runner refuses a non-operator before any call to the cluster
	}
	return s.coloursHold(ctx, r)
}

// mayRollBack: the way back needs no sign-off, but only this release's
// changes are its to undo — none yet, or a newer release of the service
// since, and its rollback would act on what it did not do.
func (s *Service) mayRollBack(ctx context.Context, r *Release, proc *runbooks.Runbook, req StepRequest) error {
	if !Changed(r, proc) {
		return refuse("%s changed nothing in the cluster yet: there is nothing to roll back (abort it instead)", r.Key())
	}
	newer, err := s.cfg.Store.ListReleases(ctx, Filter{Service: r.Service, Since: r.StartedAt})
	if err != nil {
		return err
	}
	for _, o := range newer {
		if op, err := s.Procedure(o); o.ID > r.ID && (err != nil || Changed(o, op)) {
			return refuse("%s is a newer release of %s (%s, %s) that changed the cluster: roll back from there; %s's rollback would undo what it did not do", o.Key(), r.Service, o.Version, o.State, r.Key())
		}
	}
	for n := 1; n < req.Step; n++ {
		if !r.Rollback[n].Done() && proc.Rollback[n-1].Kind != runbooks.Manual {
			return refuse("rollback step %d. %s is not done: the way back runs in order too", n, proc.Rollback[n-1].Name)
		}
	}
	if proc.Rollback[req.Step-1].Kind == runbooks.Manual && !s.ofRelease(ctx, proc, req.By) {
		return refuse("%s may not mark rollback step %d done: an operator or one of the release's signers does", req.By.Name, req.Step)
	}
	return nil
}

// Changed reports whether any step of r changed the cluster (confirmed,
// or attempted after a confirmation).
func Changed(r *Release, proc *runbooks.Runbook) bool {
	for n, run := range r.Steps {
		if n >= 1 && n <= len(proc.Steps) && proc.Steps[n-1].Kind.Destructive() && (run.Outcome == string(runbooks.Confirmed) || run.Acted) {
			return true
		}
	}
	return false
}

// ofRelease reports whether who is an operator or may sign for a role of
// the procedure: the people a start, a checklist tick or a manual step is
// taken from.
func (s *Service) ofRelease(ctx context.Context, proc *runbooks.Runbook, who incidents.Actor) bool {
	if s.operator(ctx, who) {
		return true
	}
	for _, role := range proc.Signoffs {
		if s.signs(ctx, role, who) {
			return true
		}
	}
	return false
}

// operator reports whether who may change the cluster (SITREP_OPERATORS).
func (s *Service) operator(ctx context.Context, who incidents.Actor) bool {
	return s.cfg.Runner != nil && s.cfg.Runner.IsOperator(ctx, who)
}

// signs reports whether who may sign for role (SITREP_RELEASE_SIGNERS),
// by name or through a user group.
func (s *Service) signs(ctx context.Context, role string, who incidents.Actor) bool {
	return runbooks.Guardrails{Operators: s.cfg.Signers[role], Members: s.members}.Allowed(ctx, who)
}

// coloursHold re-reads, before a blue-green step that changes production,
// which colour the router Service selects: if it is not the one the
// release started with (someone switched meanwhile), the release's idle
// colour may be live and it stops.
func (s *Service) coloursHold(ctx context.Context, r *Release) error {
	if r.Strategy != "blue-green" || s.cfg.Cluster == nil {
		return nil
	}
	svc, sel, live, err := s.router(ctx, r)
	if err != nil {
		return refuse("could not read service %s to check which colour is live (%v): nothing is changed without knowing", svc, err)
	}
	if live == r.Params["live"] {
		return nil
	}
	return refuse("service %s now selects %s, not %s as when %s started: the colours changed meanwhile; abort it and start again", svc, labelString(sel), r.Params["live"], r.Key())
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
	if req.Rollback && res.Outcome == runbooks.Skipped && !Changed(r, proc) {
		return // nothing of the release to undo there yet
	}
	if *runs == nil {
		*runs = map[int]StepRun{}
	}
	run := StepRun{Outcome: string(res.Outcome), Summary: res.Summary, By: req.By.Name, At: now,
		Acted: req.Confirm != "" && step.Kind.Destructive() && res.Outcome != runbooks.Refused}
	if !req.Rollback && (r.State == Aborted || r.State == RolledBack) {
		// ended while the step ran: what it did is kept (it counts as a
		// change, so the rollback can undo it), nothing more follows from it
		(*runs)[req.Step] = run
		if run.Acted && r.State == RolledBack {
			r.State, r.Rollback = Started, nil
			r.record(now, EvRollback, "", "⚠️ step %d was confirmed while the rollback ran: the cluster has it; roll back again", req.Step)
		}
		return
	}
	if w := r.Waiting; req.Rollback && w != nil && !w.Rollback && run.Done() {
		r.Waiting = nil
		r.record(now, EvRollout, "", "no longer waiting for step %d's rollout: rolling back", w.Step)
	}
	if req.Rollback && run.Done() && r.State == Watching { // what is watched is going away: no verdict on it
		r.State = Started
		if r.Watch != nil {
			r.Watch.Checkpoints = nil
		}
		r.record(now, EvWatch, "", "the watch ends: rolling back")
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
		if rolledBack(r, proc) && r.State != RolledBack {
			r.State, r.EndedAt, r.Waiting = RolledBack, now, nil
			if r.Watch != nil {
				r.Watch.Checkpoints = nil // nothing of this version is left to look at
			}
			r.record(now, EvRollback, "", "rolled back: every rollback step that acts on the cluster is done%s", manualLeft(r, proc))
		}
		return
	}
	if proc.Steps[n-1].WatchAfter {
		every, span, checkpoints := proc.Watch.Durations()
		w := &Watch{Step: n, Started: now, Until: now.Add(span), Next: now.Add(every), Every: every, Span: span}
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

func sliNames(proc *runbooks.Runbook) string { return strings.Join(sliList(proc), ", ") }

func incidentRef(r *Release) string {
	if r.Incident == 0 {
		return "its incident is being declared"
	}
	return incidents.FormatID(r.Incident)
}

// rolledBack reports whether every rollback step that acts is done: a
// manual one (a database restore "if the migration caused it") is a
// follow-up that does not hold the rollback open.
func rolledBack(r *Release, proc *runbooks.Runbook) bool {
	for i, st := range proc.Rollback {
		if st.Kind != runbooks.Manual && !r.Rollback[i+1].Done() {
			return false
		}
	}
	return true
}

func manualLeft(r *Release, proc *runbooks.Runbook) string {
	var left []string
	for i, st := range proc.Rollback {
		if st.Kind == runbooks.Manual && !r.Rollback[i+1].Done() {
			left = append(left, fmt.Sprintf("%d. %s", i+1, st.Name))
		}
	}
	if len(left) == 0 {
		return ""
	}
	return "; by hand, if it applies: " + strings.Join(left, "; ")
}

// RollbackBegun reports whether a rollback step has run (not only been
// previewed): nothing goes forward from then on.
func (r *Release) RollbackBegun() bool {
	for _, run := range r.Rollback {
		if run.Done() || run.Acted {
			return true
		}
	}
	return false
}
