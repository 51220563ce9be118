package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sitrep-oncall/sitrep/internal/kube"
	"github.com/sitrep-oncall/sitrep/internal/kube/kubetest"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// onKwok is a Deployment whose pods are bound to the node kwok simulates,
// so they become Running and Ready with no kubelet.
func onKwok(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "architect-api", "deployment": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{NodeName: kubetest.KwokNode, Containers: []corev1.Container{{Name: "architect-api", Image: image}},
					Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}},
			},
		},
	}
}

// TestReleaseActionsOnSimulatedNodes runs the release actions as the
// shipped ServiceAccount against a real control plane whose pods kwok
// makes Ready: set image with its dry run and precondition, the rollout
// read as kubectl rollout status reads it, and a canary weight by the
// replicas of two Deployments.
func TestReleaseActionsOnSimulatedNodes(t *testing.T) {
	cp := startControlPlane(t)
	cp.Kwok(t)
	ctx := context.Background()
	cp.Namespace(t, ns, "../../deploy/base/rbac.yaml")
	for _, d := range []*appsv1.Deployment{onKwok("architect-api-green", "prod-registry/architect-api:3.1.0", 3),
		onKwok("architect-api", "prod-registry/architect-api:3.1.0", 4), onKwok("architect-api-canary", "prod-registry/architect-api:3.1.0", 0)} {
		if _, err := cp.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := kube.New(cp.serviceAccount(t, ns, "sitrep"))
	if err != nil {
		t.Fatal(err)
	}
	rolledOut := func(name string) func() bool {
		return func() bool {
			st, err := c.Rollout(ctx, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			return st.Done
		}
	}
	waitFor(t, "green's first rollout (kwok makes its pods Ready)", rolledOut("architect-api-green"))
	image := func(name string) string {
		d, err := cp.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	t.Run("set image: a dry run changes nothing; the confirmed change rolls out", func(t *testing.T) {
		preview, err := c.SetImage(ctx, ns, "architect-api-green", "architect-api", "prod-registry/architect-api:3.2.0", dryRun)
		if err != nil || !strings.HasPrefix(preview.Summary, "architect-api image prod-registry/architect-api:3.1.0 → prod-registry/architect-api:3.2.0: 3 pods replaced in a rolling update") {
			t.Fatalf("dry run %+v %v", preview, err)
		}
		if got := image("architect-api-green"); got != "prod-registry/architect-api:3.1.0" {
			t.Fatalf("a dry run set the image to %s", got)
		}
		if _, err := c.SetImage(ctx, ns, "architect-api-green", "architect-api", "prod-registry/architect-api:3.2.0", runbooks.Apply{Version: preview.Version}); err != nil {
			t.Fatal(err)
		}
		if got := image("architect-api-green"); got != "prod-registry/architect-api:3.2.0" {
			t.Fatalf("image %s after the confirmed change", got)
		}
		st, err := c.Rollout(ctx, ns, "architect-api-green")
		if err != nil || st.Done {
			t.Fatalf("just after the change the rollout reads %+v %v: it cannot be done yet", st, err)
		}
		waitFor(t, "the new image's rollout", rolledOut("architect-api-green"))
		st, _ = c.Rollout(ctx, ns, "architect-api-green")
		if !strings.Contains(st.Summary, "3 of 3 replicas updated and available") || st.Images[0] != "prod-registry/architect-api:3.2.0" {
			t.Fatalf("done rollout reads %+v", st)
		}
		// a confirmation of the old preview acts on nothing: the spec moved on
		if _, err := c.SetImage(ctx, ns, "architect-api-green", "architect-api", "prod-registry/architect-api:3.3.0", runbooks.Apply{Version: preview.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Fatalf("stale confirmation: %v, want ErrChanged", err)
		}
		if _, err := c.SetImage(ctx, ns, "architect-api-green", "sidecar", "x:1", dryRun); err == nil || !strings.Contains(err.Error(), `no container "sidecar" (it has architect-api)`) {
			t.Fatalf("unknown container: %v", err)
		}
		if ch, err := c.SetImage(ctx, ns, "architect-api-green", "", "prod-registry/architect-api:3.2.0", dryRun); err != nil || !ch.Skipped {
			t.Fatalf("the same image again: %+v %v, want skipped", ch, err)
		}
	})

	t.Run("weight: the canary's share of the two Deployments' replicas", func(t *testing.T) {
		replicas := func(name string) int32 {
			d, err := cp.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return *d.Spec.Replicas
		}
		// 5% of 4 rounds up to a pod: a quarter of the traffic, said before it is confirmed
		five, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 5, dryRun)
		if err != nil || five.Skipped || five.Warning != "5% of 4 replicas rounds up to 1: 25% of the traffic goes to the canary, not 5%" {
			t.Fatalf("5%% of 4: %+v %v", five, err)
		}
		preview, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 25, dryRun)
		if err != nil || preview.Summary != "architect-api-canary 0 → 1, architect-api 4 → 3 replicas: 1 of 4 on the canary (25%, asked 25%)" || preview.Warning != "" {
			t.Fatalf("dry run %+v %v", preview, err)
		}
		if replicas("architect-api-canary") != 0 || replicas("architect-api") != 4 {
			t.Fatal("a dry run changed the replicas")
		}
		if _, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 25, runbooks.Apply{Version: preview.Version}); err != nil {
			t.Fatal(err)
		}
		if replicas("architect-api-canary") != 1 || replicas("architect-api") != 3 {
			t.Fatalf("after 25%%: canary %d, stable %d", replicas("architect-api-canary"), replicas("architect-api"))
		}
		waitFor(t, "the canary's pod", rolledOut("architect-api-canary"))
		if _, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 100, runbooks.Apply{Version: preview.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Fatalf("a confirmation of an old preview: %v, want ErrChanged", err)
		}
		// 100%: the canary grows to 4 and is available before the stable one goes to 0
		all, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 100, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 100, runbooks.Apply{Version: all.Version}); err != nil {
			t.Fatal(err)
		}
		if d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api-canary", metav1.GetOptions{}); d.Status.AvailableReplicas != 4 || replicas("architect-api") != 0 {
			t.Fatalf("after 100%%: the canary has %d available, stable %d replicas", d.Status.AvailableReplicas, replicas("architect-api"))
		}
		back, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 0, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Weight(ctx, ns, "architect-api-canary", "architect-api", 0, runbooks.Apply{Version: back.Version}); err != nil {
			t.Fatal(err)
		}
		if replicas("architect-api-canary") != 0 || replicas("architect-api") != 4 {
			t.Fatalf("after 0%%: canary %d, stable %d", replicas("architect-api-canary"), replicas("architect-api"))
		}
		if d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{}); d.Status.AvailableReplicas != 4 {
			t.Fatalf("the canary went to 0 while the stable one had %d pods available", d.Status.AvailableReplicas)
		}
	})

	t.Run("weight stopped before the grown side is available: more pods, and the same total next time", func(t *testing.T) {
		pending := onKwok("pending-canary", "prod-registry/architect-api:3.2.0", 0)
		pending.Spec.Template.Spec.NodeName = "" // no node: its pods never become Ready
		for _, d := range []*appsv1.Deployment{pending, onKwok("pending-stable", "prod-registry/architect-api:3.1.0", 4)} {
			if _, err := cp.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the stable side's pods", rolledOut("pending-stable"))
		preview, err := c.Weight(ctx, ns, "pending-canary", "pending-stable", 25, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = c.Weight(short, ns, "pending-canary", "pending-stable", 25, runbooks.Apply{Version: preview.Version})
		if err == nil || !strings.Contains(err.Error(), "pending-canary grew to 1, but only 0 of its pods were available") || !strings.Contains(err.Error(), "pending-stable was not scaled down") {
			t.Fatalf("stopped weight: %v", err)
		}
		d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "pending-stable", metav1.GetOptions{})
		if *d.Spec.Replicas != 4 {
			t.Fatalf("the stable side went to %d while the canary's pod was not available", *d.Spec.Replicas)
		}
		again, err := c.Weight(ctx, ns, "pending-canary", "pending-stable", 25, dryRun)
		if err != nil || again.Skipped || !strings.Contains(again.Summary, "pending-stable 4 → 3 replicas: 1 of 4 on the canary") {
			t.Fatalf("the next run: %+v %v (the total stays 4)", again, err)
		}
	})

	t.Run("selector", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "architect-api", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"deployment": "architect-api-blue"}, Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := cp.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sel, err := c.Selector(ctx, ns, "architect-api")
		if err != nil || sel["deployment"] != "architect-api-blue" {
			t.Fatalf("selector %v %v", sel, err)
		}
	})
}
