package runbooks

import (
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// A release procedure is a runbook for a change rather than an incident:
// the production guide's blue-green, canary and rolling deployments, each a
// file in releases/. It has the runbook's steps (with three more kinds:
// kube.set_image, kube.wait_rollout and kube.weight, and gates), and
// sign-offs, a staging checklist, what to watch afterwards and the way back.

// Strategies are the production guide's three ways to deploy.
var Strategies = []string{"blue-green", "canary", "rolling"}

// WatchSpec is the guide's post-deployment monitoring: every Every for
// For after a watched step, each SLI is checked against its thresholds
// and against its value before the release; the Checkpoints after that
// (4h, 24h) post a summary.
type WatchSpec struct {
	Every       string   `yaml:"every"`       // 2m
	For         string   `yaml:"for"`         // 1h
	Checkpoints []string `yaml:"checkpoints"` // 4h, 24h, 168h: from the watch's start
	SLIs        []SLI    `yaml:"slis"`
}

// SLI is one indicator the watch checks.
type SLI struct {
	Name       string      `yaml:"name"`
	Query      string      `yaml:"query"`
	Unit       string      `yaml:"unit"`
	Thresholds *Thresholds `yaml:"thresholds"`
	// Worse is how many times its value before the release a warning-level
	// value must be to count as a breach too (0: only critical breaches).
	Worse float64 `yaml:"worse"`
}

// Durations of a watch, parsed (after Load validated them).
func (w *WatchSpec) Durations() (every, span time.Duration, checkpoints []time.Duration) {
	every, span = 2*time.Minute, time.Hour
	if w == nil {
		return every, span, nil
	}
	if d, err := model.ParseDuration(w.Every); err == nil && d > 0 {
		every = time.Duration(d)
	}
	if d, err := model.ParseDuration(w.For); err == nil && d > 0 {
		span = time.Duration(d)
	}
	for _, c := range w.Checkpoints {
		if d, err := model.ParseDuration(c); err == nil {
			checkpoints = append(checkpoints, time.Duration(d))
		}
	}
	return every, span, checkpoints
}

// RolloutTimeout is a wait_rollout step's timeout: the guide's 10 minutes
// unless it says otherwise.
func (s *Step) RolloutTimeout() time.Duration {
	if d, err := model.ParseDuration(s.Timeout); err == nil && d > 0 {
		return time.Duration(d)
	}
	return 10 * time.Minute
}

// releaseParams are filled when a release starts: what is released, and
// for blue-green which colour is live and which idle.
// previous_image is what the Deployment named by params.previous_from
// runs then: the way back after a promotion.
var releaseParams = map[string]bool{"version": true, "live": true, "idle": true, "previous_image": true}

// LoadProcedures reads the release procedures in dir, linted as runbooks
// are (Options.Release is set for them).
func LoadProcedures(fsys fs.FS, dir string, opt Options) (*Set, error) {
	opt.Release = true
	return Load(fsys, dir, opt)
}

// validateRelease checks what only a release procedure has, or says a
// runbook has it.
func validateRelease(rb *Runbook, opt Options, top func(path ...string) int, add func(line int, format string, args ...any)) {
	if !opt.Release {
		for _, f := range []struct {
			name string
			set  bool
		}{{"strategy", rb.Strategy != ""}, {"signoffs", len(rb.Signoffs) > 0}, {"checklist", len(rb.Checklist) > 0},
			{"watch", rb.Watch != nil}, {"rollback", len(rb.Rollback) > 0}} {
			if f.set {
				add(top(f.name), "%s is for release procedures (releases/*.yaml), not runbooks", f.name)
			}
		}
		for _, s := range rb.Steps {
			if s.Kind == SetImage || s.Kind == WaitRollout || s.Kind == Weight || s.Gate || s.WatchAfter {
				add(s.Line, "step %q: %s is for release procedures (releases/*.yaml)", s.Name, releaseOnly(s))
			}
		}
		return
	}
	if !slices.Contains(Strategies, rb.Strategy) {
		add(top("strategy"), "strategy %q: use one of %s", rb.Strategy, strings.Join(Strategies, ", "))
	}
	for _, role := range rb.Signoffs {
		if !validName.MatchString(role) {
			add(top("signoffs"), "sign-off role %q: use lower-case letters, digits and dashes (they map to people in SITREP_RELEASE_SIGNERS)", role)
		}
	}
	for _, item := range rb.Checklist {
		if strings.TrimSpace(item) == "" {
			add(top("checklist"), "a checklist item is empty")
		}
	}
	for _, st := range append(slices.Clone(rb.Steps), rb.Rollback...) {
		if slices.Contains(st.Placeholders(), "previous_image") && rb.Params["previous_from"] == "" {
			add(st.Line, "step %q uses {{previous_image}}: name the Deployment it is read from at the start in params.previous_from", st.Name)
		}
	}
	if len(rb.Rollback) == 0 {
		add(top("rollback"), "a release procedure needs rollback steps: the way back is the first button of the incident a breach declares")
	}
	watched := false
	for _, s := range rb.Steps {
		watched = watched || s.WatchAfter
	}
	if watched && (rb.Watch == nil || len(rb.Watch.SLIs) == 0) {
		add(top("watch"), "a step says watch: true, but watch has no slis to check")
	}
	if w := rb.Watch; w != nil {
		for _, d := range append([]string{w.Every, w.For}, w.Checkpoints...) {
			if d == "" {
				continue
			}
			if v, err := model.ParseDuration(d); err != nil || v <= 0 {
				add(top("watch"), "watch: duration %q: give one like 2m, 1h or 24h", d)
			}
		}
		for _, sli := range w.SLIs {
			if strings.TrimSpace(sli.Name) == "" || strings.TrimSpace(sli.Query) == "" {
				add(top("watch", "slis"), "every SLI needs a name and a query")
			}
			if sli.Thresholds == nil {
				add(top("watch", "slis"), "SLI %q needs thresholds (the guide's SLI table: warning, critical)", sli.Name)
			}
			for _, e := range promqlErrors(sli.Query) {
				add(top("watch", "slis"), "SLI %q: bad PromQL: %s", sli.Name, e.msg)
			}
			if sli.Worse < 0 {
				add(top("watch", "slis"), "SLI %q: worse %v: a factor of 1 or more, or 0", sli.Name, sli.Worse)
			}
		}
	}
	for _, s := range rb.Rollback {
		if !s.Kind.Destructive() && s.Kind != Manual && s.Kind != WaitRollout && s.Kind != PromQL {
			add(s.Line, "rollback step %q: kind %s: the way back acts (kube.switch, kube.weight, kube.undo, kube.scale), waits or checks", s.Name, s.Kind)
		}
	}
}

func releaseOnly(s Step) string {
	switch {
	case s.Gate:
		return "gate"
	case s.WatchAfter:
		return "watch"
	}
	return "kind " + string(s.Kind)
}

// validateReleaseStep checks the release kinds' fields.
func validateReleaseStep(s *Step, add func(string, ...any)) {
	switch s.Kind {
	case SetImage:
		if s.Deployment == "" || s.Image == "" {
			add("needs a deployment and the image to set")
		}
	case WaitRollout:
		if s.Deployment == "" {
			add("needs a deployment")
		}
		if s.Timeout != "" {
			if d, err := model.ParseDuration(s.Timeout); err != nil || d <= 0 {
				add("timeout %q: give one like 10m", s.Timeout)
			}
		}
	case Weight:
		if s.Deployment == "" || s.Stable == "" {
			add("needs the canary deployment and the stable one beside it")
		}
		if s.Percent == nil || *s.Percent < 0 || *s.Percent > 100 {
			add("needs percent: the canary's share, 0 to 100")
		}
	}
	if s.Gate && (s.Kind != PromQL || s.Thresholds == nil) {
		add("a gate is a promql step with thresholds (it passes when the value is ✅)")
	}
}
