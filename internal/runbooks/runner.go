package runbooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Guardrails decide who may change the cluster, and where.
type Guardrails struct {
	// Operators may run destructive steps: chat user ids ("U024BE7LH"),
	// mentions ("<@U024BE7LH>") or names ("@alice").
	Operators []string
	// Namespaces are the only ones any step may touch; empty allows none for
	// destructive steps.
	Namespaces []string
	// Members, when set, resolves a user group among the Operators (a Slack
	// user group id, "S…") to its members' ids.
	Members func(ctx context.Context, group string) ([]string, error)
}

// Runner runs runbook steps with the guardrails: a destructive step needs
// an operator and an allowed namespace, is first run as a server-side dry
// run, and only acts once its confirmation comes back — once.
type Runner struct {
	cluster Cluster
	metrics Metrics
	guard   Guardrails
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	pending map[string]pendingAction // confirmation token → what it confirms
}

type pendingAction struct {
	key     string // incident/runbook/step/parameters/who
	preview Change // what the dry run said it would do, on which version
	expires time.Time
}

// NewRunner returns a runner; cluster or metrics may be nil (those steps then
// say what is not configured).
func NewRunner(cluster Cluster, metrics Metrics, guard Guardrails) *Runner {
	return &Runner{cluster: cluster, metrics: metrics, guard: guard, timeout: 30 * time.Second, now: time.Now, pending: map[string]pendingAction{}}
}

// SetTimeout bounds each call a step makes (default 30 s).
func (r *Runner) SetTimeout(d time.Duration) { r.timeout = d }

// WeightTimeout bounds a confirmed kube.weight, which waits for the pods
// of the side it grew (the chat request around it may end it sooner).
const WeightTimeout = 3 * time.Minute

// ConfirmTTL is how long a dry run's confirmation stays valid.
const ConfirmTTL = 5 * time.Minute

// Request is one click on a step.
type Request struct {
	Incident *incidents.Incident
	Runbook  *Runbook
	Step     int // 1-based
	Actor    incidents.Actor
	Replicas int    // kube.scale: the count chosen at click time (0: the runbook's)
	Revision int64  // kube.undo: the revision chosen at click time (0: the runbook's)
	Confirm  string // the token of the dry run being confirmed
	// Params, when set, are the parameters the step runs with, over the
	// runbook's own, instead of any from an incident: a release's service,
	// version and colours.
	Params map[string]string
	// Subject is what the step runs for when it is not an incident
	// ("REL-3"): its confirmation is bound to it.
	Subject string
	// Rollback: Step counts the runbook's rollback steps, not its steps.
	Rollback bool
}

// steps are the list a request's Step counts in.
func (req Request) steps() []Step {
	if req.Runbook == nil {
		return nil
	}
	if req.Rollback {
		return req.Runbook.Rollback
	}
	return req.Runbook.Steps
}

// Outcome says how a run ended.
type Outcome string

// Outcomes.
const (
	OK        Outcome = "ok"
	DryRun    Outcome = "dry-run"   // a destructive step waits for its confirmation
	Skipped   Outcome = "skipped"   // nothing to change
	Refused   Outcome = "refused"   // a guardrail said no
	Failed    Outcome = "failed"    // the cluster or Prometheus said no
	Confirmed Outcome = "confirmed" // acted after its dry run
	Waiting   Outcome = "waiting"   // a rollout still in progress: read again later
)

// Result is what a step produced.
type Result struct {
	Outcome Outcome
	Summary string   // one line, for the timeline
	Lines   []string // a table, logs, history
	Image   []byte   // a PNG graph
	Token   string   // with DryRun: what to send back to confirm
	Target  string   // a destructive step's object: "deployment architect-production/architect-api"
	Warning string   // with DryRun: what to know before confirming (the confirmation asks again)
	// Revisions, with an undo's dry run, are the others it could go to
	// instead: newest first, without the current one or the previewed one.
	Revisions []Revision
	Params    map[string]string
	Duration  time.Duration
	Mark      string // a judged query's worst value: ✅, ⚠️ or 🔴
}

// Params are a step's parameters for an incident: the runbook's defaults,
// the incident's service where the runbook gives none, and the alert's labels
// for the parameters the runbook leaves open (or names in from_alert). A
// label never sets the namespace: an alert cannot point Sitrep elsewhere.
func Params(rb *Runbook, inc *incidents.Incident) map[string]string {
	return params(rb, inc, false)
}

// params with targets set: what a destructive step acts on comes from the
// runbook (and from_alert) only, never from a label the runbook left open.
func params(rb *Runbook, inc *incidents.Incident, targets bool) map[string]string {
	p := maps.Clone(rb.Params)
	if p == nil {
		p = map[string]string{}
	}
	if inc == nil {
		return p
	}
	if inc.Service != "" && p["service"] == "" && (!targets || slices.Contains(rb.FromAlert, "service")) {
		p["service"] = inc.Service // it may come from an alert's labels: not a target unless named
	}
	for k, v := range inc.Labels {
		if v == "" || k == "namespace" {
			continue
		}
		_, given := rb.Params[k]
		named := slices.Contains(rb.FromAlert, k)
		if named || (!given && !targets) {
			p[k] = v
		}
	}
	return p
}

// Run runs one step. It never panics on input and always says what happened.
func (r *Runner) Run(ctx context.Context, req Request) Result {
	start := r.now()
	res := r.run(ctx, req)
	res.Duration = r.now().Sub(start)
	return res
}

func (r *Runner) run(ctx context.Context, req Request) Result {
	rb := req.Runbook
	steps := req.steps()
	if rb == nil || req.Step < 1 || req.Step > len(steps) {
		return Result{Outcome: Refused, Summary: "no such step"}
	}
	step := steps[req.Step-1]
	params := params(rb, req.Incident, step.Kind.Destructive())
	if req.Params != nil {
		params = maps.Clone(rb.Params)
		if params == nil {
			params = map[string]string{}
		}
		maps.Copy(params, req.Params)
	}
	expand := func(s string) (string, error) {
		out, missing := Expand(s, params)
		if len(missing) > 0 {
			return "", fmt.Errorf("step %q needs %s: give it in the runbook's params or the alert's labels", step.Name, strings.Join(missing, ", "))
		}
		return out, nil
	}
	t, err := expandStep(step, expand)
	if err != nil {
		return Result{Outcome: Refused, Summary: err.Error(), Params: params}
	}
	if step.Kind == Scale && req.Replicas > 0 {
		t.Replicas = req.Replicas
	}
	if step.Kind == Undo && req.Revision > 0 {
		t.Revision = int(req.Revision)
	}
	if step.Kind.Destructive() {
		return r.act(ctx, req, t, params)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res := r.read(ctx, t)
	res.Params = params
	return res
}

func expandStep(s Step, expand func(string) (string, error)) (Step, error) {
	var err error
	for _, f := range []*string{&s.Query, &s.Namespace, &s.Deployment, &s.Service, &s.Pod, &s.Container, &s.Contains, &s.Text, &s.Image, &s.Stable} {
		if *f == "" || err != nil {
			continue
		}
		*f, err = expand(*f)
	}
	if len(s.Selector) > 0 && err == nil {
		sel := map[string]string{}
		for k, v := range s.Selector {
			if sel[k], err = expand(v); err != nil {
				break
			}
		}
		s.Selector = sel
	}
	return s, err
}

// Allowed reports whether actor may run destructive steps: named among the
// operators, or a member of an operator user group.
func (g Guardrails) Allowed(ctx context.Context, actor incidents.Actor) bool {
	id := strings.TrimSuffix(strings.TrimPrefix(actor.Name, "<@"), ">")
	id, _, _ = strings.Cut(id, "|")
	for _, op := range g.Operators {
		op = strings.TrimSpace(op)
		if op != "" && (op == actor.Name || op == id || strings.TrimSuffix(strings.TrimPrefix(op, "<@"), ">") == id) {
			return true
		}
	}
	if g.Members == nil {
		return false
	}
	for _, op := range g.Operators {
		if group := strings.TrimSpace(op); strings.HasPrefix(group, "S") {
			members, err := g.Members(ctx, group)
			if err == nil && slices.Contains(members, id) {
				return true
			}
		}
	}
	return false
}

// IsOperator reports whether actor may run actions (SITREP_OPERATORS).
func (r *Runner) IsOperator(ctx context.Context, actor incidents.Actor) bool {
	return r.guard.Allowed(ctx, actor)
}

// ResolveGroupsWith sets how operator user groups are resolved (the Slack
// adapter does it once it runs).
func (r *Runner) ResolveGroupsWith(members func(ctx context.Context, group string) ([]string, error)) {
	r.guard.Members = members
}

// act runs a destructive step: guardrails, then a dry run asking for
// confirmation, then — with the confirmation — the change, once.
func (r *Runner) act(ctx context.Context, req Request, s Step, params map[string]string) Result {
	object := "deployment " + s.Namespace + "/" + s.Deployment
	switch s.Kind {
	case Switch:
		object = "service " + s.Namespace + "/" + s.Service
	case Weight:
		object = "deployments " + s.Namespace + "/" + s.Deployment + " and " + s.Stable
	}
	fail := func(o Outcome, format string, args ...any) Result {
		return Result{Outcome: o, Summary: fmt.Sprintf(format, args...), Params: params, Target: object}
	}
	if !r.guard.Allowed(ctx, req.Actor) {
		return fail(Refused, "%s may not run %q: only operators may change the cluster (SITREP_OPERATORS)", req.Actor.Name, s.Name)
	}
	if inc := req.Incident; inc != nil && !inc.Open() {
		return fail(Refused, "%s is resolved: its runbook runs reads only (reopen it to change the cluster)", inc.Key())
	}
	target := s.Namespace
	if target == "" || !slices.Contains(r.guard.Namespaces, target) {
		return fail(Refused, "namespace %q is not one Sitrep may change (SITREP_NAMESPACES: %s)", target, strings.Join(r.guard.Namespaces, ", "))
	}
	if r.cluster == nil {
		return fail(Failed, "no Kubernetes cluster is configured (KUBECONFIG, or run in a cluster)")
	}
	key := actionKey(req, s)
	if req.Confirm != "" {
		preview, ok := r.take(req.Confirm, key)
		if !ok {
			return fail(Refused, "that confirmation was already used or has expired: run the step again to see its effect")
		}
		timeout := r.timeout
		if s.Kind == Weight { // it waits for the grown side's pods before shrinking the other
			timeout = max(timeout, WeightTimeout)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// What runs is what was previewed, on the object as it was previewed:
		// the version the dry run saw is the change's precondition, and an
		// undo goes to the revision the preview named, not "previous" again.
		ch, err := r.do(ctx, s, Apply{Version: preview.Version}, preview.Revision)
		if errors.Is(err, ErrChanged) {
			return fail(Refused, "%s changed since the preview (%v; the preview said: %s): run the step again and confirm what it shows", object, err, preview.Summary)
		}
		if err != nil {
			return fail(Failed, "%s failed: %v", s.Name, err)
		}
		return Result{Outcome: Confirmed, Summary: ch.Summary, Params: params, Target: object}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ch, err := r.do(ctx, s, Apply{DryRun: true}, int64(s.Revision))
	if err != nil {
		return fail(Failed, "the dry run of %s failed: %v", s.Name, err)
	}
	res := Result{Outcome: DryRun, Summary: ch.Summary, Params: params, Target: object, Warning: ch.Warning}
	if ch.Skipped {
		res.Outcome = Skipped
	} else {
		res.Token = r.offer(key, ch)
	}
	if s.Kind == Undo { // the other places it could go, to pick from
		if h, err := r.cluster.RolloutHistory(ctx, s.Namespace, s.Deployment); err == nil {
			for _, rev := range h {
				if !rev.Current && rev.Number != ch.Revision {
					res.Revisions = append(res.Revisions, rev)
				}
			}
		}
	}
	return res
}

func actionKey(req Request, s Step) string {
	id := int64(0)
	if req.Incident != nil {
		id = req.Incident.ID
	}
	// bound to who asked: another operator confirms by running the step himself
	return fmt.Sprintf("%d/%s/%s/%t/%d/%s/%s/%s/%d/%d/%s/%s/%s", id, req.Subject, req.Runbook.Name, req.Rollback, req.Step, s.Namespace, s.Deployment, s.Service,
		s.Replicas, s.Revision, s.Image, s.Stable, req.Actor.Name)
}

func (r *Runner) offer(key string, preview Change) string {
	b := make([]byte, 8)
	rand.Read(b)
	token := hex.EncodeToString(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for t, p := range r.pending {
		if now.After(p.expires) {
			delete(r.pending, t)
		}
	}
	r.pending[token] = pendingAction{key: key, preview: preview, expires: now.Add(ConfirmTTL)}
	return token
}

// take consumes a confirmation token — a second click finds it gone — and
// returns what its dry run previewed.
func (r *Runner) take(token, key string) (Change, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[token]
	if !ok || p.key != key || r.now().After(p.expires) {
		return Change{}, false
	}
	delete(r.pending, token)
	return p.preview, true
}

// do makes a step's change; revision is where an undo goes (0: the
// previous one).
func (r *Runner) do(ctx context.Context, s Step, a Apply, revision int64) (Change, error) {
	switch s.Kind {
	case Restart:
		return r.cluster.Restart(ctx, s.Namespace, s.Deployment, a)
	case Scale:
		return r.cluster.Scale(ctx, s.Namespace, s.Deployment, s.Replicas, a)
	case Undo:
		return r.cluster.Undo(ctx, s.Namespace, s.Deployment, revision, a)
	case Switch:
		return r.cluster.Switch(ctx, s.Namespace, s.Service, s.Selector, a)
	case SetImage, Weight:
		rel, ok := r.cluster.(Releaser)
		if !ok {
			return Change{}, fmt.Errorf("this cluster client cannot run %s", s.Kind)
		}
		if s.Kind == SetImage {
			return rel.SetImage(ctx, s.Namespace, s.Deployment, s.Container, s.Image, a)
		}
		return rel.Weight(ctx, s.Namespace, s.Deployment, s.Stable, percent(s), a)
	}
	return Change{}, fmt.Errorf("%s is not an action", s.Kind)
}

func percent(s Step) int {
	if s.Percent == nil {
		return 0
	}
	return *s.Percent
}
