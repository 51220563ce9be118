package releases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// pollEvery is how often a rollout being waited for is read.
const pollEvery = 5 * time.Second

// driveEvery is how often the driver looks at the active releases.
const driveEvery = time.Second

// maxChecks bounds the checks a watch keeps (the timeline keeps them too).
const maxChecks = 200

// Drive polls rollouts being waited for, checks the SLIs of watched
// releases when due, declares the incident of a breach and posts the later
// checkpoints, until ctx ends. Everything it does is in the store, so a
// restart resumes where it was: a check due while Sitrep was down runs at
// once, a breach declared before a crash is found, not declared again, and
// an incident is told what its release did before the crash.
func (s *Service) Drive(ctx context.Context) error {
	s.tellRecent(ctx)
	t := time.NewTicker(driveEvery)
	defer t.Stop()
	for {
		s.DriveOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// DriveOnce does what is due now.
func (s *Service) DriveOnce(ctx context.Context) {
	rs, err := s.List(ctx, Filter{Active: true})
	if err != nil {
		s.cfg.Logger.Warn("releases: list active", "err", err)
		return
	}
	for _, r := range rs {
		proc, err := s.Procedure(r)
		if err != nil {
			continue
		}
		now := s.cfg.Now().UTC()
		if w := r.Waiting; w != nil && !now.Before(w.Next) {
			s.pollRollout(ctx, r, proc, *w)
		}
		if r.State == Watching && r.Watch != nil && !now.Before(r.Watch.Next) {
			s.check(ctx, r, proc)
		}
		if r.State == Breached && r.Incident == 0 { // stored before a crash, not yet declared
			s.declare(ctx, r, lastBreach(r))
		}
		if r.Watch != nil && len(r.Watch.Checkpoints) > 0 && !now.Before(r.Watch.Checkpoints[0]) {
			s.checkpoint(ctx, r, proc, r.Watch.Checkpoints[0])
		}
	}
}

func (s *Service) pollRollout(ctx context.Context, r *Release, proc *runbooks.Runbook, w Wait) {
	res := s.cfg.Runner.Run(ctx, runbooks.Request{Runbook: proc, Step: w.Step, Rollback: w.Rollback, Actor: incidents.System,
		Params: r.Params, Subject: r.Key()})
	_, err := s.update(ctx, r.ID, func(r *Release, now time.Time) error {
		if r.Waiting == nil || !r.Waiting.Since.Equal(w.Since) {
			return ErrUnchanged // done meanwhile (another replica, a rollback)
		}
		steps, runs := proc.Steps, &r.Steps
		if w.Rollback {
			steps, runs = proc.Rollback, &r.Rollback
		}
		step := steps[w.Step-1]
		finish := func(outcome runbooks.Outcome, summary string) {
			(*runs)[w.Step] = StepRun{Outcome: string(outcome), Summary: summary, By: w.By, At: now}
			r.Waiting = nil
			r.record(now, EvRollout, "", "%d. %s: %s — %s (after %s)", w.Step, step.Name, outcome, summary, now.Sub(w.Since).Round(time.Second))
		}
		switch {
		case res.Outcome == runbooks.OK:
			finish(runbooks.OK, res.Summary)
			s.stepDone(r, proc, w.Step, w.Rollback, now)
		case res.Outcome == runbooks.Waiting && now.Before(w.Deadline):
			r.Waiting.Next = now.Add(pollEvery)
			if r.Waiting.Last == res.Summary {
				return nil // no event: only when to look again
			}
			r.Waiting.Last = res.Summary
			r.Rev++ // the header shows the progress
		case res.Outcome == runbooks.Waiting:
			finish(runbooks.Failed, fmt.Sprintf("not rolled out within %s: %s", step.RolloutTimeout(), res.Summary))
		case res.Outcome == runbooks.Failed && now.Before(w.Deadline) && !strings.Contains(res.Summary, "progress deadline"):
			r.Waiting.Next = now.Add(pollEvery) // the API server did not answer: look again
			r.Waiting.Last = res.Summary
		default:
			finish(res.Outcome, res.Summary)
		}
		return nil
	})
	if err != nil {
		s.cfg.Logger.Warn("releases: record rollout", "release", r.Key(), "err", err)
	}
}

// reading is one SLI's value now.
type reading struct {
	sli    runbooks.SLI
	value  float64
	ok     bool   // a value was read
	err    string // why not
	mark   string
	breach string
}

// measure reads every SLI of proc with r's parameters.
func (s *Service) measure(ctx context.Context, proc *runbooks.Runbook, r *Release, at time.Time) map[string]float64 {
	out := map[string]float64{}
	for _, rd := range s.read(ctx, proc, r, at) {
		if rd.ok {
			out[rd.sli.Name] = rd.value
		}
	}
	return out
}

func (s *Service) read(ctx context.Context, proc *runbooks.Runbook, r *Release, at time.Time) []reading {
	if proc.Watch == nil || s.cfg.Metrics == nil {
		return nil
	}
	var out []reading
	for _, sli := range proc.Watch.SLIs {
		rd := reading{sli: sli}
		q, missing := runbooks.Expand(sli.Query, r.Params)
		if len(missing) > 0 {
			rd.err = "needs " + strings.Join(missing, ", ")
			out = append(out, rd)
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		samples, err := s.cfg.Metrics.Instant(qctx, q, at)
		cancel()
		switch {
		case err != nil:
			rd.err = err.Error()
		default:
			for _, smp := range samples {
				if !math.IsNaN(smp.Value) && (!rd.ok || smp.Value > rd.value) {
					rd.value, rd.ok = smp.Value, true
				}
			}
			if !rd.ok {
				rd.err = "no data"
			}
		}
		if rd.ok {
			rd.mark = sli.Thresholds.Judge(rd.value)
			before, had := r.Before[sli.Name]
			switch {
			case rd.mark == "🔴":
				rd.breach = fmt.Sprintf("%s %s is past critical (%s)", sli.Name, runbooks.FormatValue(rd.value, sli.Unit), runbooks.FormatValue(sli.Thresholds.Critical, sli.Unit))
			case rd.mark == "⚠️" && sli.Worse > 0 && had && (before <= 0 || rd.value >= before*sli.Worse):
				rd.breach = fmt.Sprintf("%s %s is past warning (%s) and %s before the release", sli.Name, runbooks.FormatValue(rd.value, sli.Unit),
					runbooks.FormatValue(sli.Thresholds.Warning, sli.Unit), worse(rd.value, before, sli))
			}
		}
		out = append(out, rd)
	}
	return out
}

func worse(v, before float64, sli runbooks.SLI) string {
	if before <= 0 {
		return "it was " + runbooks.FormatValue(before, sli.Unit)
	}
	return fmt.Sprintf("%.1f× what it was (%s)", v/before, runbooks.FormatValue(before, sli.Unit))
}

// summary is a check in one line: "error rate 0.01% ✅ · p95 80 ms ✅",
// what breached, and what could not be read.
func summary(rds []reading) (line, breach string, unread []string) {
	var parts, breaches []string
	for _, rd := range rds {
		if !rd.ok {
			parts = append(parts, fmt.Sprintf("%s: ❔ %s", rd.sli.Name, rd.err))
			unread = append(unread, rd.sli.Name)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", rd.sli.Name, runbooks.FormatValue(rd.value, rd.sli.Unit), rd.mark))
		if rd.breach != "" {
			breaches = append(breaches, rd.breach)
		}
	}
	return strings.Join(parts, " · "), strings.Join(breaches, "; "), unread
}

func (s *Service) describe(proc *runbooks.Runbook, values map[string]float64) string {
	var parts []string
	for _, sli := range proc.Watch.SLIs {
		if v, ok := values[sli.Name]; ok {
			parts = append(parts, sli.Name+" "+runbooks.FormatValue(v, sli.Unit))
		}
	}
	return strings.Join(parts, " · ")
}

// check is one look at the SLIs of a watched release.
func (s *Service) check(ctx context.Context, r *Release, proc *runbooks.Runbook) {
	due := r.Watch.Next
	line, breach, unread := summary(s.read(ctx, proc, r, s.cfg.Now()))
	if line == "" {
		line, unread = "❔ no Prometheus is configured (PROMETHEUS_URL): nothing could be read", sliList(proc)
	}
	r, err := s.update(ctx, r.ID, func(r *Release, now time.Time) error {
		w := r.Watch
		if r.State != Watching || w == nil || !w.Next.Equal(due) {
			return ErrUnchanged // checked meanwhile (another replica), or no longer watched
		}
		if len(w.Checks) >= maxChecks {
			w.Checks = w.Checks[1:]
		}
		w.Checks = append(w.Checks, Check{At: now, Breach: breach, Summary: line, Unread: unread})
		w.Next = now.Add(w.Every)
		n := len(w.Checks)
		if breach != "" {
			r.State = Breached
			r.record(now, EvBreach, "", "check %d: %s — breach: %s", n, line, breach)
			return nil
		}
		r.record(now, EvCheck, "", "check %d: %s", n, line)
		if now.Before(w.Until) {
			return nil
		}
		if read, want := readChecks(w), expected(w); read < want {
			// no reading is no evidence: the window goes on until enough of it was seen
			w.Until = now.Add(cmp.Or(w.Span, time.Hour))
			r.record(now, EvWatch, "", "not verified: only %d of the %d checks expected in the window could read every SLI (Prometheus down? no data?); watching until %s",
				read, want, w.Until.Format("15:04 MST"))
			return nil
		}
		w.Clean = true
		if r.Steps[len(proc.Steps)].Done() {
			r.State = Verified
			r.record(now, EvVerified, "", "verified: %s of checks after step %d, %d checks, no breach", say.Human(w.Until.Sub(w.Started)), w.Step, n)
		} else {
			r.State = Started
			r.record(now, EvWatch, "", "%s of checks after step %d, %d checks, no breach: the next step may run", say.Human(w.Until.Sub(w.Started)), w.Step, n)
		}
		return nil
	})
	if err != nil {
		s.cfg.Logger.Warn("releases: record check", "release", r.Key(), "err", err)
		return
	}
	if r != nil && r.State == Breached && r.Incident == 0 && breach != "" {
		s.declare(ctx, r, breach)
	}
}

func lastBreach(r *Release) string {
	if r.Watch != nil {
		for i := len(r.Watch.Checks) - 1; i >= 0; i-- {
			if b := r.Watch.Checks[i].Breach; b != "" {
				return b
			}
		}
	}
	return "the SLIs breached"
}

// declare raises the incident of a breach, once: the request key is the
// release's, so a declare repeated after a crash finds the first one.
func (s *Service) declare(ctx context.Context, r *Release, breach string) {
	if s.cfg.Incidents == nil {
		return
	}
	lead := r.StartedBy // who started the release leads until someone takes over
	inc, err := s.cfg.Incidents.Declare(ctx, incidents.Declaration{
		Title:       fmt.Sprintf("%s %s %s: %s", r.Key(), r.Service, r.Version, breach),
		Description: fmt.Sprintf("Declared by the watch of release %s (%s %s, %s). Its rollback is the first button.", r.Key(), r.Service, r.Version, r.Strategy),
		Service:     r.Service,
		Lead:        lead,
		Signals:     incidents.Signals{Explicit: s.cfg.BreachSeverity},
		Links:       map[string]string{LinkRelease: r.Key()},
		Request:     "release/" + r.Key(),
	}, incidents.System)
	if err != nil {
		s.cfg.Logger.Warn("releases: declare the breach's incident (retried at the next look)", "release", r.Key(), "err", err)
		return
	}
	if people := r.People(); len(people) > 0 {
		if _, err := s.cfg.Incidents.Invite(ctx, inc.ID, people, incidents.System); err != nil && !errors.Is(err, incidents.ErrConflict) {
			s.cfg.Logger.Warn("releases: invite the release's people", "incident", inc.Key(), "err", err)
		}
	}
	_, err = s.update(ctx, r.ID, func(r *Release, now time.Time) error {
		if r.Incident != 0 {
			return ErrUnchanged
		}
		r.Incident = inc.ID
		r.record(now, EvBreach, "", "%s declared (%s): its first button is the rollback", inc.Key(), inc.Severity)
		r.IncidentFrom = r.Recorded
		return nil
	})
	if err != nil {
		s.cfg.Logger.Warn("releases: record the incident", "release", r.Key(), "err", err)
	}
}

// checkpoint posts a later look (4 hours, 24 hours after the watch began).
func (s *Service) checkpoint(ctx context.Context, r *Release, proc *runbooks.Runbook, due time.Time) {
	line, breach, unread := summary(s.read(ctx, proc, r, s.cfg.Now()))
	line = cmp.Or(line, "❔ no Prometheus is configured: nothing could be read")
	_, err := s.update(ctx, r.ID, func(r *Release, now time.Time) error {
		w := r.Watch
		if w == nil || len(w.Checkpoints) == 0 || !w.Checkpoints[0].Equal(due) {
			return ErrUnchanged
		}
		w.Checkpoints = w.Checkpoints[1:]
		mark := "✅"
		switch {
		case breach != "":
			mark = "⚠️ " + breach
		case len(unread) > 0 || line == "❔ no Prometheus is configured: nothing could be read":
			mark = "❔ not every SLI could be read: no verdict"
		}
		r.record(now, EvCheckpoint, "", "%s after the watch began: %s %s", say.Human(due.Sub(w.Started)), line, mark)
		return nil
	})
	if err != nil {
		s.cfg.Logger.Warn("releases: record checkpoint", "release", r.Key(), "err", err)
	}
}

// LinkRelease links an incident to the release whose watch declared it.
const LinkRelease = "release"

// readChecks counts the checks of the window that read every SLI.
func readChecks(w *Watch) int {
	n := 0
	for _, c := range w.Checks {
		if !c.At.Before(w.Started) && len(c.Unread) == 0 {
			n++
		}
	}
	return n
}

// expected is how many checks that read everything a window needs to be
// evidence: half the checks its span holds, and at least one.
func expected(w *Watch) int {
	if w.Every <= 0 {
		return 1
	}
	return max(1, int(cmp.Or(w.Span, w.Until.Sub(w.Started))/w.Every)/2)
}

func sliList(proc *runbooks.Runbook) []string {
	if proc.Watch == nil {
		return []string{"(none)"}
	}
	var out []string
	for _, sli := range proc.Watch.SLIs {
		out = append(out, sli.Name)
	}
	return out
}
