package releases_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// These are the release rules on a real bbolt file and the real incident
// service, with the cluster and Prometheus faked: what the fakes are asked
// is what is checked (a refused step asks the cluster nothing).

var ctx = context.Background()

const procedure = `name: bg
title: Blue-green
strategy: blue-green
params: {namespace: prod}
signoffs: [devops, security]
checklist: [smoke tests pass]
steps:
  - name: Back up
    kind: manual
    text: back up the database
  - name: Deploy idle
    kind: kube.set_image
    deployment: '{{idle}}'
    image: 'reg/{{service}}:{{version}}'
  - name: Rolled out
    kind: kube.wait_rollout
    deployment: '{{idle}}'
    timeout: 10m
  - name: Green is up
    kind: promql
    gate: true
    query: 'up{job="{{idle}}"}'
    thresholds: {warning: 1, critical: 1, below: true}
  - name: Switch
    kind: kube.switch
    service: '{{service}}'
    selector: {deployment: '{{idle}}'}
    watch: true
rollback:
  - name: Switch back
    kind: kube.switch
    service: '{{service}}'
    selector: {deployment: '{{live}}'}
watch:
  every: 2m
  for: 10m
  checkpoints: [4h]
  slis:
    - name: error rate
      query: 'errors{service="{{service}}"}'
      unit: ratio
      thresholds: {warning: 0.0005, critical: 0.001}
      worse: 2
`

type cluster struct {
	runbooks.Cluster
	mu      sync.Mutex
	calls   []string
	live    string
	rolling bool   // rollouts never finish
	onSet   func() // runs during a real set image
}

func (c *cluster) call(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *cluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *cluster) SetImage(_ context.Context, ns, d, _, image string, a runbooks.Apply) (runbooks.Change, error) {
	c.call("set_image " + ns + "/" + d + " " + image + dry(a))
	if !a.DryRun && c.onSet != nil {
		c.onSet()
	}
	return runbooks.Change{Summary: "image → " + image, Version: "1"}, nil
}

func (c *cluster) Switch(_ context.Context, ns, svc string, sel map[string]string, a runbooks.Apply) (runbooks.Change, error) {
	c.call("switch " + ns + "/" + svc + " " + sel["deployment"] + dry(a))
	return runbooks.Change{Summary: "selector → " + sel["deployment"], Version: "7"}, nil
}

func (c *cluster) Weight(context.Context, string, string, string, int, runbooks.Apply) (runbooks.Change, error) {
	return runbooks.Change{}, errors.New("not in these tests")
}

func (c *cluster) Rollout(context.Context, string, string) (runbooks.RolloutState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rolling {
		return runbooks.RolloutState{Summary: "1 of 2 replicas updated"}, nil
	}
	return runbooks.RolloutState{Done: true, Summary: "rolled out"}, nil
}

func (c *cluster) Selector(_ context.Context, ns, svc string) (map[string]string, error) {
	c.call("selector " + ns + "/" + svc)
	return map[string]string{"deployment": c.live}, nil
}

func dry(a runbooks.Apply) string {
	if a.DryRun {
		return " (dry run)"
	}
	return ""
}

type metrics struct {
	mu     sync.Mutex
	values map[string]float64 // query → value; a missing one has no data
	err    error
}

func (m *metrics) set(q string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[q] = v
}

func (m *metrics) Instant(_ context.Context, q string, _ time.Time) ([]runbooks.Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	v, ok := m.values[q]
	if !ok {
		return nil, nil
	}
	return []runbooks.Sample{{Value: v}}, nil
}

func (m *metrics) Graph(context.Context, runbooks.GraphSpec) ([]byte, string, error) {
	return nil, "", errors.New("no graphs here")
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	rel     *releases.Service
	store   *boltstore.Store
	inc     *incidents.Service
	cluster *cluster
	metrics *metrics
	clock   *clock
	cfg     releases.Config
}

var (
	dana    = incidents.Actor{Name: "@dana", Source: incidents.SourceConsole}
	eve     = incidents.Actor{Name: "@eve", Source: incidents.SourceConsole}
	errRate = `errors{service="api"}`
)

func setup(t *testing.T) *fixture {
	t.Helper()
	procs, err := runbooks.LoadProcedures(fstest.MapFS{"releases/bg.yaml": {Data: []byte(procedure)}}, "releases", runbooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, cluster: &cluster{live: "api-blue"}, metrics: &metrics{values: map[string]float64{errRate: 0.0001, `up{job="api-green"}`: 1}},
		clock: &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}}
	f.inc = incidents.NewService(incidents.Config{Store: store})
	runner := runbooks.NewRunner(f.cluster, f.metrics, runbooks.Guardrails{Operators: []string{"@dana"}, Namespaces: []string{"prod"}})
	f.cfg = releases.Config{Store: store, Procedures: procs, Runner: runner, Cluster: f.cluster, Metrics: f.metrics,
		Signers: map[string][]string{"devops": {"@dana"}, "security": {"@dana", "@eve"}}, Incidents: f.inc, Now: f.clock.Now}
	f.rel = releases.New(f.cfg)
	return f
}

// ready starts a release and signs, ticks and backs up.
func (f *fixture) ready(t *testing.T) *releases.Release {
	t.Helper()
	r, err := f.rel.Start(ctx, "api", "3.2.0", "blue-green", dana)
	if err != nil {
		t.Fatal(err)
	}
	f.must(t)(f.rel.Sign(ctx, r.ID, "devops", dana))
	f.must(t)(f.rel.Sign(ctx, r.ID, "security", eve))
	f.must(t)(f.rel.Tick(ctx, r.ID, 1, eve))
	f.step(t, r.ID, 1, "", "done")
	return r
}

func (f *fixture) must(t *testing.T) func(*releases.Release, error) {
	return func(_ *releases.Release, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// step runs step n (confirming token when given) and wants outcome.
func (f *fixture) step(t *testing.T, id int64, n int, token string, outcome runbooks.Outcome) runbooks.Result {
	t.Helper()
	_, res, err := f.rel.Step(ctx, id, releases.StepRequest{Step: n, Confirm: token, By: dana})
	if err != nil || res.Outcome != outcome {
		t.Fatalf("step %d: %+v %v, want %s", n, res, err, outcome)
	}
	return res
}

// rollBack previews rollback step 1 as dana and confirms it.
func (f *fixture) rollBack(t *testing.T, id int64) *releases.Release {
	t.Helper()
	_, res, err := f.rel.Step(ctx, id, releases.StepRequest{Step: 1, Rollback: true, By: dana})
	if err != nil || res.Outcome != runbooks.DryRun {
		t.Fatalf("rollback preview: %+v %v", res, err)
	}
	got, _, err := f.rel.Step(ctx, id, releases.StepRequest{Step: 1, Rollback: true, Confirm: res.Token, By: dana})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	return got
}

// checks lets n watch checks fall due, one every 2 minutes.
func (f *fixture) checks(n int) {
	for range n {
		f.clock.advance(2 * time.Minute)
		f.rel.DriveOnce(ctx)
	}
}

// breach starts a release, runs it through its switch and lets the first
// watch check find the error rate far over its target: breached, its
// incident declared.
func (f *fixture) breach(t *testing.T) *releases.Release {
	t.Helper()
	r := f.ready(t)
	f.through(t, r.ID)
	f.metrics.set(errRate, 0.01)
	f.checks(1)
	return r
}

// through runs steps 2–5 for real, ending with the switch and its watch.
func (f *fixture) through(t *testing.T, id int64) {
	t.Helper()
	res := f.step(t, id, 2, "", runbooks.DryRun)
	f.step(t, id, 2, res.Token, runbooks.Confirmed)
	f.step(t, id, 3, "", runbooks.OK) // rolled out already
	f.step(t, id, 4, "", runbooks.OK)
	res = f.step(t, id, 5, "", runbooks.DryRun)
	f.step(t, id, 5, res.Token, runbooks.Confirmed)
}

func TestStartChecksWhatGoesIntoNamesAndImages(t *testing.T) {
	f := setup(t)
	for _, c := range []struct{ service, version, want string }{
		{"api; rm -rf /", "1", "service"},
		{"API", "1", "service"},
		{"api", `3.2.0"}`, "version"},
		{"api", "../../etc", "version"},
		{"api", "3.2.0 --privileged", "version"},
		{"api", "", "version"},
		{"api", "1", "no procedure"}, // with an unknown procedure below
	} {
		proc := "blue-green"
		if c.want == "no procedure" {
			proc = "yolo"
		}
		_, err := f.rel.Start(ctx, c.service, c.version, proc, dana)
		if !releases.IsRefusal(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("start %q %q: %v, want a refusal naming %s", c.service, c.version, err, c.want)
		}
	}
	if calls := f.cluster.Calls(); len(calls) != 0 {
		t.Fatalf("refused starts asked the cluster %v", calls)
	}
	r, err := f.rel.Start(ctx, "api", "3.2.0", "", dana)
	if err != nil || r.Params["idle"] != "api-green" || r.Params["live"] != "api-blue" || r.Params["version"] != "3.2.0" || r.Before["error rate"] != 0.0001 {
		t.Fatalf("start: %+v %v", r, err)
	}
	if _, err := f.rel.Start(ctx, "api", "3.3.0", "", dana); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "REL-1 is already releasing api 3.2.0") {
		t.Fatalf("a second release of the same service: %v", err)
	}
	f.cluster.live = "web-green" // web's last release went to green: this one goes to blue
	r, err = f.rel.Start(ctx, "web", "1.0", "", dana)
	if err != nil || r.Params["live"] != "web-green" || r.Params["idle"] != "web-blue" {
		t.Fatalf("colours: %+v %v", r.Params, err)
	}
}

func TestStepsWaitForSignoffsAndOrder(t *testing.T) {
	f := setup(t)
	r, err := f.rel.Start(ctx, "api", "3.2.0", "", dana)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(n int, by incidents.Actor, want string) {
		t.Helper()
		before := len(f.cluster.Calls())
		_, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: n, By: by})
		if !releases.IsRefusal(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("step %d by %s: %v, want a refusal with %q", n, by.Name, err, want)
		}
		if calls := f.cluster.Calls(); len(calls) != before {
			t.Fatalf("a refused step asked the cluster: %v", calls[before:])
		}
	}
	refused(2, dana, "step 1. Back up is not done")
	f.step(t, r.ID, 1, "", "done")
	refused(2, dana, "still to sign: devops, security")
	if _, err := f.rel.Sign(ctx, r.ID, "devops", eve); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "@eve may not sign for devops") {
		t.Fatalf("sign by someone else: %v", err)
	}
	if _, err := f.rel.Sign(ctx, r.ID, "cto", dana); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "needs no sign-off \"cto\"") {
		t.Fatalf("unknown role: %v", err)
	}
	f.must(t)(f.rel.Sign(ctx, r.ID, "devops", dana))
	if _, err := f.rel.Sign(ctx, r.ID, "devops", dana); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "already signed") {
		t.Fatalf("signed twice: %v", err)
	}
	refused(2, dana, "still to sign: security") // the last signature is missing
	f.must(t)(f.rel.Sign(ctx, r.ID, "security", eve))
	refused(2, dana, "the staging checklist is not done (1. smoke tests pass)")
	f.must(t)(f.rel.Tick(ctx, r.ID, 1, eve))
	// a non-operator: the runner refuses before any call to the cluster
	before := len(f.cluster.Calls())
	_, res, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 2, By: eve})
	if err != nil || res.Outcome != runbooks.Refused || !strings.Contains(res.Summary, "only operators") || len(f.cluster.Calls()) != before {
		t.Fatalf("non-operator: %+v %v, calls %v", res, err, f.cluster.Calls()[before:])
	}
	res = f.step(t, r.ID, 2, "", runbooks.DryRun)
	if calls := f.cluster.Calls(); calls[len(calls)-1] != "set_image prod/api-green reg/api:3.2.0 (dry run)" {
		t.Fatalf("the preview: %v", calls)
	}
	refused(3, dana, "step 2. Deploy idle is not done (not run yet)") // a preview is not the step done
	if _, res, _ := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 2, Confirm: res.Token, By: eve}); res.Outcome != runbooks.Refused {
		t.Fatalf("another person confirming dana's preview: %+v", res)
	}
	f.step(t, r.ID, 2, res.Token, runbooks.Confirmed)
	f.step(t, r.ID, 3, "", runbooks.OK)
	f.metrics.set(`up{job="api-green"}`, 0)
	f.step(t, r.ID, 4, "", runbooks.Failed)
	refused(5, dana, "the gate 4. Green is up has not passed")
	f.metrics.set(`up{job="api-green"}`, 1)
	f.step(t, r.ID, 4, "", runbooks.OK)
	res = f.step(t, r.ID, 5, "", runbooks.DryRun)
	r2, _ := f.rel.Get(ctx, r.ID)
	if r2.State != releases.Started || r2.Watch != nil {
		t.Fatalf("a previewed switch started the watch: %+v", r2)
	}
	f.step(t, r.ID, 5, res.Token, runbooks.Confirmed)
	r2, _ = f.rel.Get(ctx, r.ID)
	if r2.State != releases.Watching || r2.Watch == nil || !r2.Watch.Next.Equal(f.clock.Now().Add(2*time.Minute)) {
		t.Fatalf("after the switch: %+v", r2.Watch)
	}
}

func TestWatchBreachDeclaresOneIncident(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	f.rel.DriveOnce(ctx) // nothing due yet
	if got, _ := f.rel.Get(ctx, r.ID); len(got.Watch.Checks) != 0 {
		t.Fatalf("checked before it was due: %+v", got.Watch.Checks)
	}
	f.clock.advance(2 * time.Minute)
	f.rel.DriveOnce(ctx)
	got, _ := f.rel.Get(ctx, r.ID)
	if len(got.Watch.Checks) != 1 || got.Watch.Checks[0].Breach != "" || got.State != releases.Watching {
		t.Fatalf("a clean check: %+v", got.Watch.Checks)
	}
	// warning-level and more than twice what it was before: a breach
	f.metrics.set(errRate, 0.0007)
	f.clock.advance(2 * time.Minute)
	f.rel.DriveOnce(ctx)
	got, _ = f.rel.Get(ctx, r.ID)
	if got.State != releases.Breached || got.Incident != 1 || !strings.Contains(got.Watch.Checks[1].Breach, "past warning (0.05%) and 7.0× what it was (0.01%)") {
		t.Fatalf("after the breach: %+v %+v", got, got.Watch.Checks)
	}
	inc, err := f.inc.Get(ctx, 1)
	if err != nil || inc.Severity != incidents.P2 || inc.Links[releases.LinkRelease] != "REL-1" || inc.Service != "api" || inc.Lead() != "@dana" {
		t.Fatalf("the incident: %+v %v", inc, err)
	}
	for i := 0; i < 3; i++ { // more looks, and another process on the same store, declare nothing more
		f.clock.advance(2 * time.Minute)
		f.rel.DriveOnce(ctx)
		releases.New(f.cfg).DriveOnce(ctx)
	}
	if all, _ := f.inc.List(ctx, incidents.Filter{All: true}); len(all) != 1 {
		t.Fatalf("%d incidents, want 1", len(all))
	}
}

// TestBreachStoredBeforeACrash: the breach is stored, then the process
// dies before the incident is declared; the next one declares it once.
func TestBreachStoredBeforeACrash(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	crashing := f.cfg
	crashing.Incidents = nil // declares nothing: as if killed right after storing the breach
	f.metrics.set(errRate, 0.01)
	f.clock.advance(2 * time.Minute)
	releases.New(crashing).DriveOnce(ctx)
	if got, _ := f.rel.Get(ctx, r.ID); got.State != releases.Breached || got.Incident != 0 {
		t.Fatalf("stored breach: %+v", got)
	}
	if _, err := f.rel.Abort(ctx, r.ID, "", dana); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "still being declared") {
		t.Fatalf("abort before the incident is declared: %v", err)
	}
	f.rel.DriveOnce(ctx)
	f.rel.DriveOnce(ctx)
	got, _ := f.rel.Get(ctx, r.ID)
	all, _ := f.inc.List(ctx, incidents.Filter{All: true})
	if got.Incident != 1 || len(all) != 1 {
		t.Fatalf("after the restart: incident %d, %d incidents", got.Incident, len(all))
	}
}

func TestCleanWatchVerifiesAndCheckpointsFollow(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	f.metrics.err = errors.New("prometheus: connection refused")
	f.clock.advance(2 * time.Minute)
	f.rel.DriveOnce(ctx)
	got, _ := f.rel.Get(ctx, r.ID)
	if got.State != releases.Watching || !strings.Contains(got.Watch.Checks[0].Summary, "connection refused") {
		t.Fatalf("Prometheus down is said, and is no breach: %+v", got.Watch.Checks)
	}
	f.metrics.err = nil
	f.checks(4)
	got, _ = f.rel.Get(ctx, r.ID)
	if got.State != releases.Verified || !got.Watch.Clean || len(got.Watch.Checks) != 5 || len(got.Watch.Checkpoints) != 1 || !got.Active() {
		t.Fatalf("after the window: %s %+v", got.State, got.Watch)
	}
	f.clock.advance(4 * time.Hour)
	f.rel.DriveOnce(ctx)
	f.rel.DriveOnce(ctx)
	got, _ = f.rel.Get(ctx, r.ID)
	if n := countKind(got, releases.EvCheckpoint); n != 1 || got.Active() {
		t.Fatalf("%d checkpoints posted, active %v", n, got.Active())
	}
	if active, _ := f.rel.List(ctx, releases.Filter{Active: true}); len(active) != 0 {
		t.Fatalf("still active: %v", active)
	}
}

func countKind(r *releases.Release, kind string) int {
	n := 0
	for _, ev := range r.Events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func TestRollbackOnlyOfWhatTheReleaseChanged(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	if _, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana}); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "changed nothing in the cluster yet") {
		t.Fatalf("a rollback before any change: %v", err)
	}
	res := f.step(t, r.ID, 2, "", runbooks.DryRun)
	f.step(t, r.ID, 2, res.Token, runbooks.Confirmed)
	_, res, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: eve})
	if err != nil || res.Outcome != runbooks.Refused {
		t.Fatalf("a non-operator's rollback: %+v %v", res, err)
	}
	// the switch's preview token confirms no rollback (a switch too, of the same Service)
	f.step(t, r.ID, 3, "", runbooks.OK)
	f.step(t, r.ID, 4, "", runbooks.OK)
	preview := f.step(t, r.ID, 5, "", runbooks.DryRun)
	if _, res, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, Confirm: preview.Token, By: dana}); err != nil || res.Outcome != runbooks.Refused {
		t.Fatalf("a forward preview's token on the rollback: %+v %v", res, err)
	}
	_, res, err = f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana})
	if err != nil || res.Outcome != runbooks.DryRun {
		t.Fatalf("rollback preview: %+v %v", res, err)
	}
	got, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, Confirm: res.Token, By: dana})
	if err != nil || got.State != releases.RolledBack {
		t.Fatalf("rolled back: %+v %v", got, err)
	}
	if calls := f.cluster.Calls(); calls[len(calls)-1] != "switch prod/api api-blue" {
		t.Fatalf("the rollback switched: %v", calls)
	}
	if _, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 4, By: dana}); !releases.IsRefusal(err) {
		t.Fatalf("a step after the rollback: %v", err)
	}
	if _, err := f.rel.Abort(ctx, r.ID, "", dana); !releases.IsRefusal(err) {
		t.Fatalf("abort after the rollback: %v", err)
	}
}

func TestRollbackOfAnOlderReleaseRefused(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	f.checks(5) // a clean window: verified
	if got, _ := f.rel.Get(ctx, r.ID); got.State != releases.Verified {
		t.Fatalf("state %s", got.State)
	}
	f.cluster.live = "api-green"
	r2, err := f.rel.Start(ctx, "api", "4.0.0", "", dana)
	if err != nil {
		t.Fatal(err)
	}
	// only collecting sign-offs, REL-2 blocks nothing: REL-1's rollback previews
	if _, res, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana}); err != nil || res.Outcome != runbooks.DryRun {
		t.Fatalf("the older release's rollback before the newer one changed anything: %+v %v", res, err)
	}
	f.must(t)(f.rel.Sign(ctx, r2.ID, "devops", dana))
	f.must(t)(f.rel.Sign(ctx, r2.ID, "security", eve))
	f.must(t)(f.rel.Tick(ctx, r2.ID, 1, eve))
	f.step(t, r2.ID, 1, "", "done")
	res := f.step(t, r2.ID, 2, "", runbooks.DryRun)
	f.step(t, r2.ID, 2, res.Token, runbooks.Confirmed) // 4.0.0 on blue: a change
	if _, err := f.rel.Abort(ctx, r2.ID, "not today", dana); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana})
	if !releases.IsRefusal(err) || !strings.Contains(err.Error(), r2.Key()+" is a newer release of api (4.0.0, aborted) that changed the cluster") {
		t.Fatalf("the older release's rollback: %v", err)
	}
	if got, _ := f.rel.Get(ctx, r.ID); got.Watch == nil || len(got.Watch.Checkpoints) != 0 {
		t.Fatalf("the older release's checkpoints would measure the newer one: %+v", got.Watch)
	}
}

func TestAbortIsTheStartersOrAnOperators(t *testing.T) {
	f := setup(t)
	r, err := f.rel.Start(ctx, "api", "3.2.0", "", eve) // eve starts; she is no operator
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rel.Abort(ctx, r.ID, "mine", incidents.Actor{Name: "@mallory", Source: incidents.SourceConsole}); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "may not abort") {
		t.Fatalf("a stranger's abort: %v", err)
	}
	if _, err := f.rel.Tick(ctx, r.ID, 1, incidents.Actor{Name: "@mallory", Source: incidents.SourceConsole}); !releases.IsRefusal(err) {
		t.Fatalf("a stranger's tick: %v", err)
	}
	if got, err := f.rel.Abort(ctx, r.ID, "wrong build", eve); err != nil || got.State != releases.Aborted {
		t.Fatalf("the starter's abort: %+v %v", got, err)
	}
}

func TestShippedProceduresLint(t *testing.T) {
	set, err := runbooks.LoadProcedures(os.DirFS("../.."), "releases", runbooks.Options{Namespaces: []string{"architect-production"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"blue-green", "canary", "rolling"} {
		p := set.Get(name)
		if p == nil || p.Strategy != name || len(p.Rollback) == 0 || p.Watch == nil || len(p.Watch.SLIs) != 3 {
			t.Errorf("%s: %+v", name, p)
		}
	}
}

// TestBreachedGoesNoFurtherButBack: after a breach nothing changes the
// cluster forward; the rollback runs, and ends the checkpoints.
func TestBreachedGoesNoFurtherButBack(t *testing.T) {
	f := setup(t)
	r := f.breach(t)
	// the procedure's last step is done; re-running a forward action is refused
	if _, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 5, By: dana}); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "breached its watch (INC-1)") {
		t.Fatalf("a forward step after the breach: %v", err)
	}
	got := f.rollBack(t, r.ID)
	if got.State != releases.RolledBack || len(got.Watch.Checkpoints) != 0 || got.Active() {
		t.Fatalf("after the rollback: %s, checkpoints %v, active %v", got.State, got.Watch.Checkpoints, got.Active())
	}
}

// TestRolloutWaitPolledAndTimedOut: a rollout still going is polled by
// the driver until its timeout; meanwhile the next step waits, and a
// rollback does not.
func TestRolloutWaitPolledAndTimedOut(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	res := f.step(t, r.ID, 2, "", runbooks.DryRun)
	f.step(t, r.ID, 2, res.Token, runbooks.Confirmed)
	f.cluster.mu.Lock()
	f.cluster.rolling = true
	f.cluster.mu.Unlock()
	f.step(t, r.ID, 3, "", runbooks.Waiting)
	if _, _, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 4, By: dana}); !releases.IsRefusal(err) || !strings.Contains(err.Error(), "waiting for a rollout") {
		t.Fatalf("a step while waiting: %v", err)
	}
	f.clock.advance(5 * time.Second)
	f.rel.DriveOnce(ctx)
	if got, _ := f.rel.Get(ctx, r.ID); got.Waiting == nil || got.Waiting.Last != "prod/api-green: 1 of 2 replicas updated" {
		t.Fatalf("still waiting: %+v", got.Waiting)
	}
	f.clock.advance(10 * time.Minute)
	f.rel.DriveOnce(ctx)
	got, _ := f.rel.Get(ctx, r.ID)
	if got.Waiting != nil || got.Steps[3].Outcome != "failed" || !strings.Contains(got.Steps[3].Summary, "not rolled out within 10m") {
		t.Fatalf("after the timeout: %+v %+v", got.Waiting, got.Steps[3])
	}
	// waiting again, then rolled back: the rollback does not wait for it
	f.step(t, r.ID, 3, "", runbooks.Waiting)
	got = f.rollBack(t, r.ID)
	if got.Waiting != nil || got.State != releases.RolledBack {
		t.Fatalf("after the rollback: %+v %s", got.Waiting, got.State)
	}
}

// TestNoReadingIsNoVerdict: Prometheus down for the whole window, or a
// query with no data, verifies nothing: the window goes on.
func TestNoReadingIsNoVerdict(t *testing.T) {
	for _, c := range []struct {
		name   string
		break_ func(m *metrics)
	}{
		{"prometheus down", func(m *metrics) { m.err = errors.New("connection refused") }},
		{"no data", func(m *metrics) { delete(m.values, errRate) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			r := f.ready(t)
			f.through(t, r.ID)
			f.metrics.mu.Lock()
			c.break_(f.metrics)
			f.metrics.mu.Unlock()
			f.checks(6)
			got, _ := f.rel.Get(ctx, r.ID)
			if got.State != releases.Watching || got.Watch.Clean || !strings.Contains(got.Events[len(got.Events)-1].Text+got.Events[len(got.Events)-2].Text, "not verified: only 0 of the 2 checks") {
				t.Fatalf("%s for the window: %s, %+v", c.name, got.State, got.Events[len(got.Events)-3:])
			}
			f.clock.advance(4 * time.Hour) // the checkpoint says it cannot tell
			f.rel.DriveOnce(ctx)
			f.rel.DriveOnce(ctx)
			got, _ = f.rel.Get(ctx, r.ID)
			posted := 0
			for _, ev := range got.Events {
				if ev.Kind == releases.EvCheckpoint {
					posted++
					if !strings.Contains(ev.Text, "no verdict") {
						t.Fatalf("a checkpoint with nothing read: %s", ev.Text)
					}
				}
			}
			if posted != 1 {
				t.Fatalf("%d checkpoints posted, want the 4h one", posted)
			}
		})
	}
}

// TestADowntimeIsNoWindow: Sitrep down for most of the window; the one
// check after it does not verify the release.
func TestADowntimeIsNoWindow(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	f.clock.advance(3 * time.Hour)
	f.rel.DriveOnce(ctx)
	if got, _ := f.rel.Get(ctx, r.ID); got.State != releases.Watching {
		t.Fatalf("one check after 3 hours down: %s", got.State)
	}
}

// TestDeclareFoundAgainAfterALostWrite: the incident is declared but the
// write recording it on the release is lost (a crash between the two);
// the next look declares with the same request key and finds it.
func TestDeclareFoundAgainAfterALostWrite(t *testing.T) {
	f := setup(t)
	r := f.breach(t)
	if _, err := f.store.UpdateRelease(ctx, r.ID, func(r *releases.Release) error { r.Incident = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	releases.New(f.cfg).DriveOnce(ctx)
	got, _ := f.rel.Get(ctx, r.ID)
	all, _ := f.inc.List(ctx, incidents.Filter{All: true})
	if got.Incident != 1 || len(all) != 1 {
		t.Fatalf("after the lost write: incident %d, %d incidents; want the first one found again", got.Incident, len(all))
	}
	inc, _ := f.inc.Get(ctx, 1)
	if !slices.Contains(inc.Members, "@eve") { // she signed and ticked: the release's people are invited
		t.Fatalf("invited %v", inc.Members)
	}
}

// TestGateWithNoDataDoesNotPass: up{job="api-green"} matching nothing is
// not up.
func TestGateWithNoDataDoesNotPass(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	res := f.step(t, r.ID, 2, "", runbooks.DryRun)
	f.step(t, r.ID, 2, res.Token, runbooks.Confirmed)
	f.step(t, r.ID, 3, "", runbooks.OK)
	f.metrics.mu.Lock()
	delete(f.metrics.values, `up{job="api-green"}`)
	f.metrics.mu.Unlock()
	res = f.step(t, r.ID, 4, "", runbooks.Failed)
	if !strings.Contains(res.Summary, "the gate has not passed: no data") {
		t.Fatalf("gate on no data: %s", res.Summary)
	}
}

// TestRollbackBegunStopsTheWayForward: once a rollback step has run,
// nothing goes forward and no clean window verifies what is going away.
func TestRollbackBegunStopsTheWayForward(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	f.through(t, r.ID)
	if got := f.rollBack(t, r.ID); got.State != releases.RolledBack {
		t.Fatalf("%+v", got)
	}
	f.checks(6)
	if got, _ := f.rel.Get(ctx, r.ID); got.State != releases.RolledBack {
		t.Fatalf("after the window: %s", got.State)
	}
}

// TestAbortDuringAConfirmKeepsTheChange: an abort lands while a confirmed
// change runs; the change is kept, so the rollback can undo it.
func TestAbortDuringAConfirmKeepsTheChange(t *testing.T) {
	f := setup(t)
	r := f.ready(t)
	res := f.step(t, r.ID, 2, "", runbooks.DryRun)
	f.cluster.onSet = func() { // while the image is being set
		if _, err := f.rel.Abort(ctx, r.ID, "meanwhile", dana); err != nil {
			t.Error(err)
		}
	}
	f.step(t, r.ID, 2, res.Token, runbooks.Confirmed)
	got, _ := f.rel.Get(ctx, r.ID)
	if got.State != releases.Aborted || !got.Steps[2].Acted {
		t.Fatalf("after the abort: %s %+v", got.State, got.Steps[2])
	}
	if _, res, err := f.rel.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana}); err != nil || res.Outcome != runbooks.DryRun {
		t.Fatalf("the rollback of the kept change: %+v %v", res, err)
	}
}

// TestAfterCountsPastTheTimelinesCap: a reader that saw n events is given
// what came after, even once the timeline keeps only its last ones.
func TestAfterCountsPastTheTimelinesCap(t *testing.T) {
	r := &releases.Release{Events: make([]releases.Event, 500), Recorded: 600} // 100 dropped from the front
	for i := range r.Events {
		r.Events[i].Text = strconv.Itoa(100 + i)
	}
	for _, c := range []struct {
		seen  uint64
		n     int
		first string
	}{{550, 50, "550"}, {0, 500, "100"}, {600, 0, ""}, {700, 0, ""}} {
		got := r.After(c.seen)
		if len(got) != c.n || (c.n > 0 && got[0].Text != c.first) {
			t.Errorf("After(%d): %d events from %v, want %d from %s", c.seen, len(got), got[:min(1, len(got))], c.n, c.first)
		}
	}
}

// releaseLines are the timeline lines incident id was told by its release.
func (f *fixture) releaseLines(t *testing.T, id int64) []string {
	t.Helper()
	var lines []string
	err := f.inc.Timeline(ctx, id, func(ev incidents.Event) error {
		if ev.Kind == incidents.EventRelease {
			if ev.Fields["release"] != "REL-1" || ev.Fields["at"] == "" {
				t.Errorf("a release line's fields: %v", ev.Fields)
			}
			lines = append(lines, ev.Actor+" "+ev.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestTheIncidentIsToldOfTheRollback: the rollback of a breached release
// is on its incident's timeline (the postmortem is written from it), each
// step under the release's key, and nothing from before the breach; the
// incident holds the release's state, which takes the Roll back off its
// card.
func TestTheIncidentIsToldOfTheRollback(t *testing.T) {
	f := setup(t)
	r := f.breach(t)
	if inc, _ := f.inc.Get(ctx, 1); inc.ReleaseState != "" || len(f.releaseLines(t, 1)) != 0 {
		t.Fatalf("told before anything was done about the breach: %q %v", inc.ReleaseState, f.releaseLines(t, 1))
	}
	f.rollBack(t, r.ID)
	lines := f.releaseLines(t, 1)
	want := []string{"@dana REL-1: rollback step 1/1 Switch back: dry-run", "@dana REL-1: rollback step 1/1 Switch back: confirmed", "sitrep REL-1: rolled back: every rollback step"}
	if len(lines) != len(want) {
		t.Fatalf("told %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to begin %q", i, lines[i], w)
		}
	}
	if inc, _ := f.inc.Get(ctx, 1); inc.ReleaseState != string(releases.RolledBack) {
		t.Fatalf("the incident's release state: %q", inc.ReleaseState)
	}
}

// TestATellLostToACrashIsMadeUpOnce: the rollback is stored and the
// process dies before the incident hears of it; the next start tells it,
// and later starts (another replica among them) tell nothing twice.
func TestATellLostToACrashIsMadeUpOnce(t *testing.T) {
	f := setup(t)
	r := f.breach(t)
	crashing := f.cfg
	crashing.Incidents = nil // tells nothing: as if killed right after each release write
	dead := releases.New(crashing)
	_, res, err := dead.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, By: dana})
	if err != nil || res.Outcome != runbooks.DryRun {
		t.Fatalf("rollback preview: %+v %v", res, err)
	}
	if got, _, err := dead.Step(ctx, r.ID, releases.StepRequest{Step: 1, Rollback: true, Confirm: res.Token, By: dana}); err != nil || got.State != releases.RolledBack {
		t.Fatalf("rollback: %+v %v", got, err)
	}
	if inc, _ := f.inc.Get(ctx, 1); inc.ReleaseState != "" {
		t.Fatalf("told by a process with no incidents: %q", inc.ReleaseState)
	}
	for range 3 {
		drive(t, releases.New(f.cfg), func() bool {
			inc, _ := f.inc.Get(ctx, 1)
			return inc.ReleaseState == string(releases.RolledBack)
		})
	}
	if lines := f.releaseLines(t, 1); len(lines) != 3 {
		t.Fatalf("told %d lines after three starts, want 3 (once each):\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// drive runs s's driver, as a start does, until done holds.
func drive(t *testing.T, s *releases.Service, done func() bool) {
	t.Helper()
	c, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() { s.Drive(c); close(ended) }()
	defer func() { cancel(); <-ended }()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("the driver did not get there in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
