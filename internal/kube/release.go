package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

var _ runbooks.Releaser = (*Client)(nil)

// SetImage is kubectl set image for one container: a strategic merge patch
// of the template's container by name, on the generation checked.
func (c *Client) SetImage(ctx context.Context, ns, deployment, container, image string, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	ch, err := c.onDeployment(ctx, ns, deployment, a, func(d *appsv1.Deployment) (runbooks.Change, error) {
		cs := d.Spec.Template.Spec.Containers
		var target *corev1.Container
		var names []string
		for i := range cs {
			names = append(names, cs[i].Name)
			if cs[i].Name == container || (container == "" && len(cs) == 1) {
				target = &cs[i]
			}
		}
		if target == nil {
			if container == "" {
				return runbooks.Change{}, fmt.Errorf("deployment %s/%s has %d containers (%s): the step must name one", ns, deployment, len(cs), strings.Join(names, ", "))
			}
			return runbooks.Change{}, fmt.Errorf("deployment %s/%s has no container %q (it has %s)", ns, deployment, container, strings.Join(names, ", "))
		}
		if target.Image == image {
			return runbooks.Change{Summary: fmt.Sprintf("%s already runs %s", target.Name, image), Skipped: true}, nil
		}
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": d.ResourceVersion},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers": []map[string]string{{"name": target.Name, "image": image}}}}}})
		if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Patch(ctx, deployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: dry(a.DryRun)}); err != nil {
			return runbooks.Change{}, err
		}
		return runbooks.Change{Summary: fmt.Sprintf("%s image %s → %s: %s", target.Name, target.Image, image, rollout(d))}, nil
	})
	if err != nil {
		return runbooks.Change{}, fmt.Errorf("set image of %s/%s: %w", ns, deployment, err)
	}
	return ch, nil
}

// canaryTotal is the annotation on a canary Deployment that keeps the
// replicas the two Deployments share, from the first weight on: a weight
// that grew one side and was stopped before it shrank the other does not
// count the extra pods as the total the next time.
const canaryTotal = "sitrep.io/canary-total"

// side is one Deployment of a weight and the replicas it goes to.
type side struct {
	d *appsv1.Deployment
	n int
}

// Weight gives the canary percent of the replicas the two Deployments
// share (rounded up, so 5% of 10 is one pod, not none) and the stable one
// the rest. The side that grows goes first, and the other shrinks only once
// the grown side's pods are available: the pods serving never dip below
// what they were. Its version is both generations: a confirmed weight acts
// only on the two as they were previewed.
func (c *Client) Weight(ctx context.Context, ns, canary, stable string, percent int, a runbooks.Apply) (runbooks.Change, error) {
	if percent < 0 || percent > 100 {
		return runbooks.Change{}, fmt.Errorf("weight %d%%: 0 to 100", percent)
	}
	rctx, cancel := c.ctx(ctx)
	defer cancel()
	cd, err := c.deployment(rctx, ns, canary)
	if err != nil {
		return runbooks.Change{}, err
	}
	sd, err := c.deployment(rctx, ns, stable)
	if err != nil {
		return runbooks.Change{}, err
	}
	total := replicas(cd) + replicas(sd)
	if n, err := strconv.Atoi(cd.Annotations[canaryTotal]); err == nil && n > 0 {
		total = n
	}
	if total == 0 {
		return runbooks.Change{}, fmt.Errorf("%s and %s have no replicas between them: scale the stable one up first", canary, stable)
	}
	want := int(math.Ceil(float64(total) * float64(percent) / 100))
	version := strconv.FormatInt(cd.Generation, 10) + "/" + strconv.FormatInt(sd.Generation, 10)
	if a.Version != "" && a.Version != version {
		return runbooks.Change{}, fmt.Errorf("deployments %s and %s are at generations %s, the preview was of %s: %w", canary, stable, version, a.Version, runbooks.ErrChanged)
	}
	share := 100 * want / total
	ch := runbooks.Change{Version: version, Summary: fmt.Sprintf("%s %d → %d, %s %d → %d replicas: %d of %d on the canary (%d%%, asked %d%%)",
		canary, replicas(cd), want, stable, replicas(sd), total-want, want, total, share, percent)}
	if want > 0 && percent < 100 && share >= 2*percent {
		ch.Warning = fmt.Sprintf("%d%% of %d replicas rounds up to %d: %d%% of the traffic goes to the canary, not %d%%", percent, total, want, share, percent)
	}
	if replicas(cd) == want && replicas(sd) == total-want {
		ch.Skipped, ch.Summary = true, fmt.Sprintf("the canary already has %d of %d replicas (%d%%)", want, total, share)
		return ch, nil
	}
	grow, shrink := side{cd, want}, side{sd, total - want}
	if want < replicas(cd) || (want == replicas(cd) && total-want > replicas(sd)) {
		grow, shrink = shrink, grow
	}
	// The total is noted on the canary before anything is scaled (a
	// Deployment's annotations move its generation, which the scales are
	// then checked against); a canary back at 0 is done with, and the next
	// release counts the replicas afresh.
	note := func(value any) error {
		if a.DryRun || (value != nil && cd.Annotations[canaryTotal] != "") || (value == nil && cd.Annotations[canaryTotal] == "") {
			return nil
		}
		rctx, cancel := c.ctx(context.WithoutCancel(ctx)) // also after a wait that used up the step's time
		defer cancel()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{canaryTotal: value}}})
		if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Patch(rctx, canary, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("weight: the total on %s/%s: %w", ns, canary, err)
		}
		return nil
	}
	if want > 0 { // the total first, so a weight stopped half way is finished by the next on the same total
		if err := note(strconv.Itoa(total)); err != nil {
			return runbooks.Change{}, err
		}
		if !a.DryRun && cd.Annotations[canaryTotal] == "" { // the note moved the canary's generation: its scale is checked against the new one
			rctx, cancel := c.ctx(ctx)
			fresh, err := c.deployment(rctx, ns, canary)
			cancel()
			if err != nil {
				return runbooks.Change{}, err
			}
			if grow.d == cd {
				grow.d = fresh
			} else {
				shrink.d = fresh
			}
		}
	}
	if err := c.scaleSide(ctx, ns, grow, a); err != nil {
		return runbooks.Change{}, err
	}
	if !a.DryRun && grow.n > replicas(grow.d) {
		if err := c.available(ctx, ns, grow.d.Name, grow.n); err != nil {
			return runbooks.Change{}, fmt.Errorf("%s grew to %d, but %v; %s was not scaled down (more pods serve, none fewer): run the step again once they are available", grow.d.Name, grow.n, err, shrink.d.Name)
		}
	}
	if err := c.scaleSide(ctx, ns, shrink, a); err != nil {
		return runbooks.Change{}, err
	}
	if want == 0 {
		return ch, note(nil)
	}
	return ch, nil
}

func (c *Client) scaleSide(ctx context.Context, ns string, s side, a runbooks.Apply) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	gen := strconv.FormatInt(s.d.Generation, 10)
	if _, err := c.onDeployment(ctx, ns, s.d.Name, runbooks.Apply{DryRun: a.DryRun, Version: versionIf(a, gen)}, func(d *appsv1.Deployment) (runbooks.Change, error) {
		return c.scaleOnce(ctx, d, s.n, a.DryRun)
	}); err != nil {
		return fmt.Errorf("weight %s/%s: %w", ns, s.d.Name, err)
	}
	return nil
}

// available waits, until ctx ends, for n of a Deployment's replicas to be
// available.
func (c *Client) available(ctx context.Context, ns, name string, n int) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		rctx, cancel := c.ctx(ctx)
		d, err := c.deployment(rctx, ns, name)
		cancel()
		if err == nil && d.Status.ObservedGeneration >= d.Generation && int(d.Status.AvailableReplicas) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			have := 0
			if d != nil {
				have = int(d.Status.AvailableReplicas)
			}
			return fmt.Errorf("only %d of its pods were available when the step's time ran out", have)
		case <-tick.C:
		}
	}
}

func versionIf(a runbooks.Apply, gen string) string {
	if a.Version == "" {
		return ""
	}
	return gen
}

// Rollout reads a rollout's progress as kubectl rollout status does.
func (c *Client) Rollout(ctx context.Context, ns, deployment string) (runbooks.RolloutState, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	d, err := c.deployment(ctx, ns, deployment)
	if err != nil {
		return runbooks.RolloutState{}, err
	}
	st := runbooks.RolloutState{Images: images(d.Spec.Template), Containers: map[string]string{}}
	for _, ct := range d.Spec.Template.Spec.Containers {
		st.Containers[ct.Name] = ct.Image
	}
	want := int32(replicas(d))
	s := d.Status
	if d.Generation > s.ObservedGeneration {
		st.Summary = "waiting for the deployment controller to see the change"
		return st, nil
	}
	for _, cond := range s.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			st.Failed = fmt.Sprintf("deployment %s/%s exceeded its progress deadline: %s", ns, deployment, cond.Message)
			return st, nil
		}
	}
	switch {
	case s.UpdatedReplicas < want:
		st.Summary = fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		st.Summary = fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		st.Summary = fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	default:
		st.Done, st.Summary = true, fmt.Sprintf("rolled out: %d of %d replicas updated and available", s.AvailableReplicas, want)
	}
	return st, nil
}

// Selector is a Service's selector.
func (c *Client) Selector(ctx context.Context, ns, service string) (map[string]string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	u, err := c.dyn.Resource(servicesGVR).Namespace(ns).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", ns, service, err)
	}
	svc, err := into[corev1.Service](u)
	if err != nil {
		return nil, err
	}
	return svc.Spec.Selector, nil
}
