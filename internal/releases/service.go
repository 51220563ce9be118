package releases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// Config is what a Service works with.
type Config struct {
	Store      Store
	Procedures *runbooks.Set // releases/*.yaml
	Runner     *runbooks.Runner
	Cluster    runbooks.Releaser // nil: no cluster (blue-green then starts with blue live)
	Metrics    runbooks.Metrics  // nil: no Prometheus (no watch values)
	// Signers maps each sign-off role to the people or Slack user groups
	// who may sign for it (SITREP_RELEASE_SIGNERS).
	Signers map[string][]string
	// Incidents declares the incident a breach raises.
	Incidents *incidents.Service
	// BreachSeverity is the incident's severity (P2 unless set).
	BreachSeverity incidents.Severity
	// Notify hears of every stored change (a chat header to edit).
	Notify func(ctx context.Context, r *Release)
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs releases.
type Service struct {
	cfg     Config
	members func(ctx context.Context, group string) ([]string, error)
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.BreachSeverity.Valid() {
		cfg.BreachSeverity = incidents.P2
	}
	return &Service{cfg: cfg}
}

// ResolveGroupsWith sets how a signer that is a user group is resolved.
func (s *Service) ResolveGroupsWith(members func(ctx context.Context, group string) ([]string, error)) {
	s.members = members
}

// Procedures are the loaded procedures.
func (s *Service) Procedures() *runbooks.Set { return s.cfg.Procedures }

// Procedure returns the procedure r runs: the one it started with.
func (s *Service) Procedure(r *Release) (*runbooks.Runbook, error) {
	if r.Proc != nil {
		return r.Proc, nil
	}
	p := s.cfg.Procedures.Get(r.Procedure)
	if p == nil {
		return nil, fmt.Errorf("%s runs procedure %q, which is no longer loaded (SITREP_RELEASES)", r.Key(), r.Procedure)
	}
	return p, nil
}

// Names of a service and a version go into Deployment names and image
// references: only what those may hold, never text from elsewhere.
var (
	serviceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$`)
	versionName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// Start opens a release of service at version with the procedure named
// (or the one for the strategy).
func (s *Service) Start(ctx context.Context, service, version, procedure string, by incidents.Actor) (*Release, error) {
	if !serviceName.MatchString(service) {
		return nil, refuse("service %q: lower-case letters, digits and dashes, as in its Deployment's name", service)
	}
	if !versionName.MatchString(version) {
		return nil, refuse("version %q: letters, digits, dots, dashes and underscores (an image tag)", version)
	}
	proc, err := s.pick(procedure)
	if err != nil {
		return nil, err
	}
	if !s.ofRelease(ctx, proc, by) {
		return nil, refuse("%s may not start a release: an operator or a signer of the procedure does (SITREP_OPERATORS, SITREP_RELEASE_SIGNERS)", by.Name)
	}
	for _, role := range proc.Signoffs {
		if len(s.cfg.Signers[role]) == 0 {
			return nil, refuse("nobody may sign for %s, which %s needs: give the role's people in SITREP_RELEASE_SIGNERS (%s=U0123,S0GROUP)", role, proc.Name, role)
		}
	}
	now := s.cfg.Now().UTC()
	params := map[string]string{"service": service, "version": version}
	for k, v := range proc.Params { // defaults may use {{service}}, {{version}} and each other
		if _, set := params[k]; !set {
			params[k] = v
		}
	}
	for range 3 { // a default naming another (previous_from: '{{stable}}', stable: '{{service}}')
		for k, v := range params {
			params[k], _ = runbooks.Expand(v, params)
		}
	}
	r := &Release{Service: service, Version: version, Procedure: proc.Name, Strategy: proc.Strategy, Params: params,
		State: Started, StartedBy: by.Name, StartedAt: now, Proc: proc}
	if proc.Strategy == "blue-green" {
		note, err := s.colours(ctx, r)
		if err != nil {
			return nil, err
		}
		r.record(now, EvStarted, by.Name, "%s %s started by %s (%s): %s", service, version, by.Name, proc.Title, note)
	} else {
		r.record(now, EvStarted, by.Name, "%s %s started by %s (%s)", service, version, by.Name, proc.Title)
	}
	if err := s.previousImage(ctx, r); err != nil {
		return nil, err
	}
	r.Before = s.measure(ctx, proc, r, now)
	if len(r.Before) > 0 {
		r.record(now, EvWatch, by.Name, "before the release: %s", s.describe(proc, r.Before))
	}
	if err := s.cfg.Store.CreateRelease(ctx, r); err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			return nil, refuse("%s", busy.Error())
		}
		return nil, fmt.Errorf("start release: %w", err)
	}
	s.cfg.Logger.Info("release started", "release", r.Key(), "service", service, "version", version, "by", by.Name)
	s.notify(ctx, r)
	return r, nil
}

// endCheckpoints ends the later checkpoints of the service's earlier
// releases: from now on they would measure this one.
func (s *Service) endCheckpoints(ctx context.Context, newer *Release) {
	active, err := s.cfg.Store.ListReleases(ctx, Filter{Active: true, Service: newer.Service})
	if err != nil {
		return
	}
	for _, o := range active {
		if o.ID >= newer.ID || o.Watch == nil || len(o.Watch.Checkpoints) == 0 {
			continue
		}
		_, _ = s.update(ctx, o.ID, func(r *Release, now time.Time) error {
			if r.Watch == nil || len(r.Watch.Checkpoints) == 0 {
				return ErrUnchanged
			}
			r.Watch.Checkpoints = nil
			r.record(now, EvCheckpoint, "", "no more checkpoints: %s of %s changed the cluster, and they would measure it", newer.Key(), newer.Service)
			return nil
		})
	}
}

func (s *Service) pick(name string) (*runbooks.Runbook, error) {
	all := s.cfg.Procedures.Runbooks()
	if len(all) == 0 {
		return nil, refuse("no release procedures are loaded (SITREP_RELEASES)")
	}
	var names []string
	for _, p := range all {
		if p.Name == name || (name != "" && p.Strategy == name) {
			return p, nil
		}
		names = append(names, p.Name)
	}
	if name == "" {
		return all[0], nil
	}
	return nil, refuse("no procedure %q: use one of %s", name, strings.Join(names, ", "))
}

// colours decides which blue-green colour is live: the one the Service
// selects now; the idle one is what the release deploys to. A Service
// that cannot be read, or selects neither colour, stops the start: the
// release would otherwise deploy to a colour that may be live.
func (s *Service) colours(ctx context.Context, r *Release) (string, error) {
	blue, green := cmp.Or(r.Params["blue"], r.Service+"-blue"), cmp.Or(r.Params["green"], r.Service+"-green")
	r.Params["blue"], r.Params["green"] = blue, green
	r.Params["live"], r.Params["idle"] = blue, green
	if s.cfg.Cluster == nil {
		return fmt.Sprintf("no cluster is configured: %s taken as live (no step can change anything)", blue), nil
	}
	svc, sel, live, err := s.router(ctx, r)
	if err != nil {
		return "", refuse("could not read service %s to know which colour is live (%v): a blue-green release starts only knowing it", svc, err)
	}
	if live == "" {
		return "", refuse("service %s selects %s, neither %s nor %s: a blue-green release needs the Service on one colour", svc, labelString(sel), blue, green)
	}
	if live == green {
		r.Params["live"], r.Params["idle"] = green, blue
	}
	return fmt.Sprintf("service %s selects %s: %s is live, the release goes to %s", svc, labelString(sel), r.Params["live"], r.Params["idle"]), nil
}

// previousImage records what the Deployment params.previous_from runs
// now (its container params.container): the image the rollback puts back
// after a promotion.
func (s *Service) previousImage(ctx context.Context, r *Release) error {
	from := r.Params["previous_from"]
	if from == "" || s.cfg.Cluster == nil {
		return nil
	}
	st, err := s.cfg.Cluster.Rollout(ctx, r.Params["namespace"], from)
	if err != nil {
		return refuse("could not read what %s runs now (%v): the rollback needs it to put it back", from, err)
	}
	image := st.Containers[r.Params["container"]]
	if image == "" && len(st.Containers) == 1 {
		for _, img := range st.Containers {
			image = img
		}
	}
	if image == "" {
		return refuse("deployment %s has no container %q: the rollback needs its image", from, r.Params["container"])
	}
	r.Params["previous_image"] = image
	return nil
}

// router reads r's router Service (params.router, else the service's
// name): its selector, and the colour it selects ("" when neither).
func (s *Service) router(ctx context.Context, r *Release) (svc string, sel map[string]string, live string, err error) {
	svc = cmp.Or(r.Params["router"], r.Service)
	if sel, err = s.cfg.Cluster.Selector(ctx, r.Params["namespace"], svc); err == nil {
		live = liveColour(sel, r.Params["blue"], r.Params["green"])
	}
	return svc, sel, live, err
}

// liveColour is the colour a Service selector selects, "" when neither.
func liveColour(sel map[string]string, blue, green string) string {
	for _, v := range sel {
		if v == blue || v == green {
			return v
		}
	}
	return ""
}

func labelString(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// load returns release id and its procedure.
func (s *Service) load(ctx context.Context, id int64) (*Release, *runbooks.Runbook, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	proc, err := s.Procedure(r)
	return r, proc, err
}

// Get returns release id.
func (s *Service) Get(ctx context.Context, id int64) (*Release, error) {
	return s.cfg.Store.GetRelease(ctx, id)
}

// List returns releases newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*Release, error) {
	return s.cfg.Store.ListReleases(ctx, f)
}

// update changes release id and tells the notifier.
func (s *Service) update(ctx context.Context, id int64, change func(*Release, time.Time) error) (*Release, error) {
	now := s.cfg.Now().UTC()
	r, err := s.cfg.Store.UpdateRelease(ctx, id, func(r *Release) error { return change(r, now) })
	if errors.Is(err, ErrUnchanged) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	s.notify(ctx, r)
	s.tellIncident(ctx, r)
	return r, nil
}

func (s *Service) notify(ctx context.Context, r *Release) {
	if s.cfg.Notify != nil {
		s.cfg.Notify(ctx, r)
	}
}

// mayAct: a release that is over takes nothing more.
func mayAct(r *Release) error {
	if r.State.Over() {
		return refuse("%s is %s: nothing more runs in it", r.Key(), r.State)
	}
	return nil
}

// Sign records by's sign-off for role.
func (s *Service) Sign(ctx context.Context, id int64, role string, by incidents.Actor) (*Release, error) {
	r, proc, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(proc.Signoffs, role) {
		return nil, refuse("%s needs no sign-off %q: it needs %s", r.Key(), role, strings.Join(proc.Signoffs, ", "))
	}
	people := s.cfg.Signers[role]
	if len(people) == 0 {
		return nil, refuse("nobody may sign for %s: give the role's people in SITREP_RELEASE_SIGNERS (%s=U0123,S0GROUP)", role, role)
	}
	if !s.signs(ctx, role, by) {
		return nil, refuse("%s may not sign for %s: SITREP_RELEASE_SIGNERS gives %s", by.Name, role, strings.Join(people, ", "))
	}
	return s.update(ctx, id, func(r *Release, now time.Time) error {
		if err := mayAct(r); err != nil {
			return err
		}
		if m, ok := r.Signoffs[role]; ok {
			return refuse("%s was already signed for %s by %s at %s", r.Key(), role, m.By, m.At.Format("15:04 MST"))
		}
		if r.Signoffs == nil {
			r.Signoffs = map[string]Mark{}
		}
		r.Signoffs[role] = Mark{By: by.Name, At: now}
		left := r.Unsigned(proc.Signoffs)
		msg := "every sign-off is in"
		if len(left) > 0 {
			msg = "still to sign: " + strings.Join(left, ", ")
		}
		r.record(now, EvSigned, by.Name, "%s signed for %s; %s", by.Name, role, msg)
		return nil
	})
}

// Tick records a staging checklist item (1-based) as done.
func (s *Service) Tick(ctx context.Context, id int64, item int, by incidents.Actor) (*Release, error) {
	r, proc, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if item < 1 || item > len(proc.Checklist) {
		return nil, refuse("%s's checklist has items 1 to %d", r.Key(), len(proc.Checklist))
	}
	if !s.ofRelease(ctx, proc, by) {
		return nil, refuse("%s may not tick %s's checklist: an operator or one of the release's signers does (SITREP_OPERATORS, SITREP_RELEASE_SIGNERS)", by.Name, r.Key())
	}
	return s.update(ctx, id, func(r *Release, now time.Time) error {
		if err := mayAct(r); err != nil {
			return err
		}
		if m, ok := r.Checklist[item-1]; ok {
			return refuse("%q was already ticked by %s", proc.Checklist[item-1], m.By)
		}
		if r.Checklist == nil {
			r.Checklist = map[int]Mark{}
		}
		r.Checklist[item-1] = Mark{By: by.Name, At: now}
		r.record(now, EvTicked, by.Name, "%s ticked %q (%d of %d)", by.Name, proc.Checklist[item-1], len(r.Checklist), len(proc.Checklist))
		return nil
	})
}

// Abort ends a release where it is: nothing more goes forward; its
// rollback stays possible while it is the service's newest release.
func (s *Service) Abort(ctx context.Context, id int64, reason string, by incidents.Actor) (*Release, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !incidents.SamePerson(by.Name, r.StartedBy) && !s.operator(ctx, by) {
		return nil, refuse("%s may not abort %s: whoever started it or an operator does (SITREP_OPERATORS)", by.Name, r.Key())
	}
	return s.update(ctx, id, func(r *Release, now time.Time) error {
		if err := mayAct(r); err != nil {
			return err
		}
		if r.State == Verified {
			return refuse("%s is verified: there is nothing to abort (roll it back if it must go)", r.Key())
		}
		if r.State == Breached && r.Incident == 0 { // an aborted release is no longer looked at: its incident first
			return refuse("%s breached and its incident is still being declared: abort it once it is", r.Key())
		}
		r.State, r.EndedAt, r.Waiting = Aborted, now, nil
		if r.Watch != nil {
			r.Watch.Checkpoints = nil
		}
		r.record(now, EvAborted, by.Name, "aborted by %s: %s", by.Name, cmp.Or(strings.TrimSpace(reason), "no reason given"))
		return nil
	})
}

// SetChat stores where a chat adapter keeps the release's header and what
// it last showed (Chat): not a change of the release, so no Rev and no
// notification.
func (s *Service) SetChat(ctx context.Context, id int64, set map[string]string) error {
	_, err := s.cfg.Store.UpdateRelease(ctx, id, func(r *Release) error {
		if r.Chat == nil {
			r.Chat = map[string]string{}
		}
		for k, v := range set {
			r.Chat[k] = v
		}
		return nil
	})
	return err
}
