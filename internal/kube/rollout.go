package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// Annotations the deployment controller and kubectl use.
const (
	revisionAnnotation    = "deployment.kubernetes.io/revision"
	changeCauseAnnotation = "kubernetes.io/change-cause"
	podTemplateHashLabel  = "pod-template-hash"
)

// history returns the deployment and its ReplicaSets by revision.
func (c *Client) history(ctx context.Context, ns, deployment string) (*appsv1.Deployment, map[int64]*appsv1.ReplicaSet, error) {
	d, err := c.deployment(ctx, ns, deployment)
	if err != nil {
		return nil, nil, err
	}
	byRev, err := c.replicaSets(ctx, d)
	return d, byRev, err
}

// replicaSets returns the ReplicaSets a deployment controls, by revision.
func (c *Client) replicaSets(ctx context.Context, d *appsv1.Deployment) (map[int64]*appsv1.ReplicaSet, error) {
	ns, deployment := d.Namespace, d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", ns, deployment, err)
	}
	ul, err := c.dyn.Resource(replicaSetsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list replicasets of %s/%s: %w", ns, deployment, err)
	}
	sets, err := listInto[appsv1.ReplicaSet](ul)
	if err != nil {
		return nil, err
	}
	byRev := map[int64]*appsv1.ReplicaSet{}
	for i := range sets {
		rs := &sets[i]
		if !metav1.IsControlledBy(rs, d) {
			continue
		}
		if n, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64); err == nil {
			byRev[n] = rs
		}
	}
	return byRev, nil
}

func images(spec corev1.PodTemplateSpec) []string {
	out := make([]string, len(spec.Spec.Containers))
	for i, c := range spec.Spec.Containers {
		out[i] = c.Image
	}
	return out
}

// RolloutHistory lists the deployment's revisions, newest first.
func (c *Client) RolloutHistory(ctx context.Context, ns, deployment string) ([]runbooks.Revision, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	d, byRev, err := c.history(ctx, ns, deployment)
	if err != nil {
		return nil, err
	}
	current, _ := strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
	out := make([]runbooks.Revision, 0, len(byRev))
	for n, rs := range byRev {
		out = append(out, runbooks.Revision{Number: n, Images: images(rs.Spec.Template), ChangeCause: rs.Annotations[changeCauseAnnotation],
			Created: rs.CreationTimestamp.Time, Current: n == current})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// equalIgnoreHash compares pod templates as kubectl does: without the
// pod-template-hash label the controller adds.
func equalIgnoreHash(a, b corev1.PodTemplateSpec) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	delete(a.Labels, podTemplateHashLabel)
	delete(b.Labels, podTemplateHashLabel)
	return apiequality.Semantic.DeepEqual(a, b)
}

// Undo rolls the deployment back to a revision as kubectl rollout undo
// does (k8s.io/kubectl/pkg/polymorphichelpers, DeploymentRollbacker): the
// revision's pod template and its ReplicaSet's annotations (change-cause and
// the rest) go back on the Deployment, the Deployment keeping its own
// revision bookkeeping; an unknown revision is an error; a paused
// deployment is refused; a revision whose template is already current is
// skipped. Revision 0 is "previous" as people mean it: the newest earlier
// revision that runs other images (a restart makes a revision with the same
// ones), or kubectl's previous revision when every earlier one runs the
// same.
func (c *Client) Undo(ctx context.Context, ns, deployment string, revision int64, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.onDeployment(ctx, ns, deployment, a, func(d *appsv1.Deployment) (runbooks.Change, error) {
		return c.undoOnce(ctx, d, revision, a.DryRun)
	})
}

// previous is the revision an undo with no revision goes to, and whether
// it is another release; 0 when there is none. A release is a template
// apart from restarts: the newest earlier revision whose template differs
// from the current one by more than the restartedAt annotation (a config
// change with the same image is a release too). When every earlier
// revision is a restart of this one, kubectl's previous revision.
func previous(current int64, byRev map[int64]*appsv1.ReplicaSet) (int64, bool) {
	cur, ok := byRev[current]
	var newest, other int64
	for n, rs := range byRev {
		if n >= current {
			continue
		}
		newest = max(newest, n)
		if !ok || !sameRelease(rs.Spec.Template, cur.Spec.Template) {
			other = max(other, n)
		}
	}
	if other > 0 {
		return other, true
	}
	return newest, false
}

// restartedAt is the pod-template annotation kubectl rollout restart sets.
const restartedAt = "kubectl.kubernetes.io/restartedAt"

// sameRelease compares pod templates as kubectl does, and without the
// restartedAt annotation: a restart is not a release.
func sameRelease(a, b corev1.PodTemplateSpec) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	delete(a.Annotations, restartedAt)
	delete(b.Annotations, restartedAt)
	return equalIgnoreHash(a, b)
}

// annotationsToSkip are the Deployment's own, kept through an undo rather
// than taken from the ReplicaSet: kubectl's list.
var annotationsToSkip = map[string]bool{
	corev1.LastAppliedConfigAnnotation:          true,
	revisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	appsv1.DeprecatedRollbackTo:                 true,
}

// undoAnnotations is what the Deployment's annotations become: its own
// bookkeeping, and the rest from the revision's ReplicaSet.
func undoAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) map[string]string {
	out := map[string]string{}
	for k := range annotationsToSkip {
		if v, ok := d.Annotations[k]; ok {
			out[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !annotationsToSkip[k] {
			out[k] = v
		}
	}
	return out
}

func (c *Client) undoOnce(ctx context.Context, d *appsv1.Deployment, revision int64, dryRun bool) (runbooks.Change, error) {
	ns, deployment := d.Namespace, d.Name
	byRev, err := c.replicaSets(ctx, d)
	if err != nil {
		return runbooks.Change{}, err
	}
	if d.Spec.Paused {
		return runbooks.Change{}, fmt.Errorf("deployment %s/%s is paused: resume it before rolling back", ns, deployment)
	}
	current, _ := strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
	target, note := revision, ""
	if target == 0 {
		var other bool
		if target, other = previous(current, byRev); target == 0 {
			return runbooks.Change{}, fmt.Errorf("deployment %s/%s has no previous revision to roll back to", ns, deployment)
		}
		if !other {
			note = "; every earlier revision is a restart of this one"
		}
	}
	rs, ok := byRev[target]
	if !ok {
		return runbooks.Change{}, fmt.Errorf("deployment %s/%s has no revision %d in its history", ns, deployment, target)
	}
	if equalIgnoreHash(rs.Spec.Template, d.Spec.Template) {
		return runbooks.Change{Summary: fmt.Sprintf("skipped: the current template already matches revision %d", target), Skipped: true, Revision: target}, nil
	}
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, podTemplateHashLabel)
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/metadata/resourceVersion", "value": d.ResourceVersion}, // the read the history was taken from
		{"op": "replace", "path": "/spec/template", "value": tmpl},
		{"op": "replace", "path": "/metadata/annotations", "value": undoAnnotations(d, rs)},
	})
	if err != nil {
		return runbooks.Change{}, err
	}
	if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Patch(ctx, deployment, types.JSONPatchType, patch, metav1.PatchOptions{DryRun: dry(dryRun)}); err != nil {
		return runbooks.Change{}, fmt.Errorf("roll back %s/%s to revision %d: %w", ns, deployment, target, err) // still a conflict to onDeployment
	}
	cause := ""
	if c := rs.Annotations[changeCauseAnnotation]; c != "" {
		cause = fmt.Sprintf(", %q", c)
	}
	if slices.Equal(images(d.Spec.Template), images(rs.Spec.Template)) && !sameRelease(d.Spec.Template, rs.Spec.Template) {
		note += "; the same images, another pod template (environment, resources or the like)"
	}
	return runbooks.Change{Summary: fmt.Sprintf("image %s → %s (revision %d → %d%s%s)",
		strings.Join(images(d.Spec.Template), ", "), strings.Join(images(rs.Spec.Template), ", "), current, target, cause, note), Revision: target}, nil
}
