package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

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

// Weight scales the canary to percent of the two Deployments' replicas
// (rounded up, so 5% of 10 is one pod, not none) and the stable one to
// the rest. Its version is both generations: a confirmed weight acts only
// on the two as they were previewed.
func (c *Client) Weight(ctx context.Context, ns, canary, stable string, percent int, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if percent < 0 || percent > 100 {
		return runbooks.Change{}, fmt.Errorf("weight %d%%: 0 to 100", percent)
	}
	cd, err := c.deployment(ctx, ns, canary)
	if err != nil {
		return runbooks.Change{}, err
	}
	sd, err := c.deployment(ctx, ns, stable)
	if err != nil {
		return runbooks.Change{}, err
	}
	total := replicas(cd) + replicas(sd)
	if total == 0 {
		return runbooks.Change{}, fmt.Errorf("%s and %s have no replicas between them: scale the stable one up first", canary, stable)
	}
	want := int(math.Ceil(float64(total) * float64(percent) / 100))
	version := strconv.FormatInt(cd.Generation, 10) + "/" + strconv.FormatInt(sd.Generation, 10)
	if a.Version != "" && a.Version != version {
		return runbooks.Change{}, fmt.Errorf("deployments %s and %s are at generations %s, the preview was of %s: %w", canary, stable, version, a.Version, runbooks.ErrChanged)
	}
	ch := runbooks.Change{Version: version, Summary: fmt.Sprintf("%s %d → %d, %s %d → %d replicas: %d%% of %d on the canary",
		canary, replicas(cd), want, stable, replicas(sd), total-want, percent, total)}
	if replicas(cd) == want {
		ch.Skipped, ch.Summary = true, fmt.Sprintf("the canary already has %d of %d replicas (%d%%)", want, total, percent)
		return ch, nil
	}
	// The canary grows before the stable one shrinks, and shrinks after it
	// grows: the total serving never dips below what it was.
	first, second := struct {
		d *appsv1.Deployment
		n int
	}{cd, want}, struct {
		d *appsv1.Deployment
		n int
	}{sd, total - want}
	if want < replicas(cd) {
		first, second = second, first
	}
	for _, step := range []struct {
		d *appsv1.Deployment
		n int
	}{first, second} {
		gen := strconv.FormatInt(step.d.Generation, 10)
		if _, err := c.onDeployment(ctx, ns, step.d.Name, runbooks.Apply{DryRun: a.DryRun, Version: versionIf(a, gen)}, func(d *appsv1.Deployment) (runbooks.Change, error) {
			return c.scaleOnce(ctx, d, step.n, a.DryRun)
		}); err != nil {
			return runbooks.Change{}, fmt.Errorf("weight %s/%s: %w", ns, step.d.Name, err)
		}
	}
	return ch, nil
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
	st := runbooks.RolloutState{Images: images(d.Spec.Template)}
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
