// Package runbooks is Sitrep's runbook engine: the Runbook and Step model,
// a strict YAML loader over an fs.FS with file:line errors, the matcher that
// picks the runbook for an incident or alert, and (next) the runner with its
// guardrails. Runbooks can read Prometheus and Kubernetes and act on
// Kubernetes through small interfaces; no step can run a shell.
package runbooks

import (
	"regexp"
	"sort"
	"strings"
)

// Runbook is an ordered procedure for one kind of incident.
type Runbook struct {
	Name        string            `yaml:"name"`
	Title       string            `yaml:"title"`
	Description string            `yaml:"description"`
	URL         string            `yaml:"url"` // the runbook's own page (a wiki, the repository): the war room bookmarks it
	Trigger     string            `yaml:"trigger"`
	Match       Match             `yaml:"match"`
	Params      map[string]string `yaml:"params"` // defaults; the incident's service fills "service" when unset
	// FromAlert names the parameters an alert's labels may set even though
	// the runbook gives them (never namespace). Labels otherwise only fill
	// parameters the runbook leaves open, and never a destructive step's target.
	FromAlert []string `yaml:"from_alert"`
	Steps     []Step   `yaml:"steps"`

	// A release procedure (releases/*.yaml, loaded with Options.Release)
	// also has these; a runbook may not.
	Strategy  string     `yaml:"strategy"`  // blue-green, canary or rolling
	Signoffs  []string   `yaml:"signoffs"`  // roles that must all sign before any step changes the cluster
	Checklist []string   `yaml:"checklist"` // staging validation, ticked by people
	Watch     *WatchSpec `yaml:"watch"`     // what to watch after a step marked watch
	Rollback  []Step     `yaml:"rollback"`  // the way back, offered first on the incident a breach declares

	File string `yaml:"-"` // where it was loaded from
}

// Match says which incidents a runbook is for.
type Match struct {
	Alerts   []string          `yaml:"alerts"`   // alert names (Alertmanager alertname)
	Labels   map[string]string `yaml:"labels"`   // labels that must all be equal
	Keywords []string          `yaml:"keywords"` // words in the incident title
}

// Step is one thing to look at or do.
type Step struct {
	Name string `yaml:"name"`
	Kind Kind   `yaml:"kind"`
	Text string `yaml:"text"` // what to do, for people (every kind may have it)

	// promql, promql_range
	Query      string      `yaml:"query"`
	Thresholds *Thresholds `yaml:"thresholds"`
	Range      string      `yaml:"range"` // promql_range: how far back, e.g. 1h
	Unit       string      `yaml:"unit"`  // how values read: ratio, percent, seconds, bytes, count

	// kube.*: targets, with {{param}} placeholders
	Namespace  string            `yaml:"namespace"`
	Deployment string            `yaml:"deployment"`
	Service    string            `yaml:"service"`
	Pod        string            `yaml:"pod"`
	Container  string            `yaml:"container"`
	Replicas   int               `yaml:"replicas"` // kube.scale: the suggested count (chosen at click time)
	Revision   int               `yaml:"revision"` // kube.undo: 0 = the previous revision
	Selector   map[string]string `yaml:"selector"` // kube.switch: the Service selector to switch to
	Tail       int               `yaml:"tail"`     // kube.logs: lines; kube.events: events
	Previous   bool              `yaml:"previous"` // kube.logs: the previous container
	Contains   string            `yaml:"contains"` // kube.logs: keep lines containing this
	Image      string            `yaml:"image"`    // kube.set_image: the image to set
	Stable     string            `yaml:"stable"`   // kube.weight: the stable Deployment beside the canary
	Percent    *int              `yaml:"percent"`  // kube.weight: the canary's share of the replicas
	Timeout    string            `yaml:"timeout"`  // kube.wait_rollout: how long the rollout may take (10m)
	Gate       bool              `yaml:"gate"`     // promql: must pass (✅) before the next step runs
	WatchAfter bool              `yaml:"watch"`    // releases: start watching the SLIs once this step is done

	Line int `yaml:"-"` // the step's line in its file
}

// Thresholds judge a query's value, as the seed's SLI table does: below
// warning is fine, from warning a warning, from critical critical. Below:
// true inverts it (a cache hit ratio is bad when low).
type Thresholds struct {
	Warning  float64 `yaml:"warning"`
	Critical float64 `yaml:"critical"`
	Below    bool    `yaml:"below"`
}

// Judge returns ✅, ⚠️ or 🔴 for v.
func (t *Thresholds) Judge(v float64) string {
	if t == nil {
		return ""
	}
	bad := func(limit float64) bool {
		if t.Below {
			return v < limit
		}
		return v > limit
	}
	switch {
	case bad(t.Critical):
		return "🔴"
	case bad(t.Warning):
		return "⚠️"
	}
	return "✅"
}

// Kind is what a step does.
type Kind string

// The step kinds.
const (
	PromQL         Kind = "promql"
	PromQLRange    Kind = "promql_range"
	RolloutHistory Kind = "kube.rollout_history"
	Events         Kind = "kube.events"
	PodStatus      Kind = "kube.pod_status"
	Logs           Kind = "kube.logs"
	Restart        Kind = "kube.restart"
	Scale          Kind = "kube.scale"
	Undo           Kind = "kube.undo"
	Switch         Kind = "kube.switch"
	Manual         Kind = "manual"
	SetImage       Kind = "kube.set_image"
	WaitRollout    Kind = "kube.wait_rollout"
	Weight         Kind = "kube.weight"
)

var kinds = map[Kind]bool{PromQL: true, PromQLRange: true, RolloutHistory: true, Events: true, PodStatus: true,
	Logs: true, Restart: true, Scale: true, Undo: true, Switch: true, Manual: true,
	SetImage: true, WaitRollout: true, Weight: true}

// Destructive reports whether a step changes the cluster (and so needs a
// permitted user, an allowed namespace, a dry run and a confirmation).
func (k Kind) Destructive() bool {
	return k == Restart || k == Scale || k == Undo || k == Switch || k == SetImage || k == Weight
}

// Kube reports whether a step talks to Kubernetes.
func (k Kind) Kube() bool { return strings.HasPrefix(string(k), "kube.") }

var placeholder = regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)

// Expand replaces {{param}} placeholders; missing names are returned.
func Expand(s string, params map[string]string) (string, []string) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := params[name]
		if !ok || v == "" {
			missing = append(missing, name)
			return m
		}
		return v
	})
	return out, missing
}

// Placeholders lists the parameters a step uses.
func (s *Step) Placeholders() []string {
	seen := map[string]bool{}
	for _, f := range []string{s.Query, s.Namespace, s.Deployment, s.Service, s.Pod, s.Container, s.Contains, s.Text, s.Image, s.Stable} {
		for _, m := range placeholder.FindAllStringSubmatch(f, -1) {
			seen[m[1]] = true
		}
	}
	for _, v := range s.Selector {
		for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
			seen[m[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MatchName is Match's runbook name, or "" (for adapters that only record it).
func (s *Set) MatchName(alertname string, labels map[string]string, title string) string {
	if rb := s.Match(alertname, labels, title); rb != nil {
		return rb.Name
	}
	return ""
}
