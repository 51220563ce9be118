package kube_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sitrep-oncall/sitrep/internal/kube"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

const ns = "architect-production"

func deployment(image string) *appsv1.Deployment {
	labels := map[string]string{"app": "architect-api", "deployment": "architect-api-green"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "architect-api", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(10)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: image}}},
			},
		},
	}
}

// waitFor polls the API server until cond holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func revisions(t testing.TB, cp *controlPlane) int {
	list, err := cp.client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rs := range list.Items {
		if rs.Annotations["deployment.kubernetes.io/revision"] != "" {
			n++
		}
	}
	return n
}

// current is the deployment's revision as the controller last recorded it.
func current(t testing.TB, cp *controlPlane) string {
	d, err := cp.client.AppsV1().Deployments(ns).Get(context.Background(), "architect-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Annotations["deployment.kubernetes.io/revision"]
}

func image(t testing.TB, cp *controlPlane) string {
	d, err := cp.client.AppsV1().Deployments(ns).Get(context.Background(), "architect-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// setup starts a control plane with the shipped RBAC, a deployment at
// revision 2 (3.1.0, then 3.2.0) and a Service, and returns a client acting
// as the ServiceAccount.
func setup(t testing.TB) (*controlPlane, *kube.Client) {
	cp := startControlPlane(t)
	ctx := context.Background()
	cp.Namespace(t, ns, "../../deploy/base/rbac.yaml")
	// Revision 1 runs 3.1.0; revision 2, the current one, 3.2.0.
	if _, err := cp.client.AppsV1().Deployments(ns).Create(ctx, deployment("architect-api:3.1.0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revision 1", func() bool { return revisions(t, cp) == 1 })
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"architect-api:3.2.0"}]}}}}`)
	if _, err := cp.client.AppsV1().Deployments(ns).Patch(ctx, "architect-api", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revision 2", func() bool { return revisions(t, cp) == 2 && current(t, cp) == "2" })
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "architect-api", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"deployment": "architect-api-green"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cp.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	c, err := kube.New(cp.serviceAccount(t, ns, "sitrep"))
	if err != nil {
		t.Fatal(err)
	}
	return cp, c
}

// How a test makes a change: a server-side dry run, or for real.
var dryRun, now = runbooks.Apply{DryRun: true}, runbooks.Apply{}

// TestActionsAsTheShippedServiceAccount runs every action against a real
// API server and controller-manager, as the ServiceAccount bound by
// deploy/base/rbac.yaml: the shipped Role is enough.
func TestActionsAsTheShippedServiceAccount(t *testing.T) {
	cp, c := setup(t)
	ctx := context.Background()
	t.Run("history", func(t *testing.T) {
		h, err := c.RolloutHistory(ctx, ns, "architect-api")
		if err != nil || len(h) != 2 || h[1].Images[0] != "architect-api:3.1.0" || !h[0].Current { // newest first
			t.Fatalf("history %+v %v", h, err)
		}
	})
	t.Run("scale: dry run changes nothing, then 10 → 15", func(t *testing.T) {
		ch, err := c.Scale(ctx, ns, "architect-api", 15, dryRun)
		if err != nil || !strings.HasPrefix(ch.Summary, "replicas 10 → 15: 5 more pods started at once") {
			t.Fatalf("dry run %+v %v", ch, err)
		}
		if d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{}); *d.Spec.Replicas != 10 {
			t.Fatalf("a dry run scaled to %d", *d.Spec.Replicas)
		}
		if _, err := c.Scale(ctx, ns, "architect-api", 15, now); err != nil {
			t.Fatal(err)
		}
		if d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{}); *d.Spec.Replicas != 15 {
			t.Errorf("replicas %d", *d.Spec.Replicas)
		}
		if ch, _ := c.Scale(ctx, ns, "architect-api", 15, now); !ch.Skipped {
			t.Errorf("scaling to the same count: %+v", ch)
		}
	})
	t.Run("restart", func(t *testing.T) {
		// 15 replicas, the default strategy: 25% surge rounds up to 4, 25%
		// unavailable rounds down to 3, as the controller resolves them.
		ch, err := c.Restart(ctx, ns, "architect-api", now)
		if err != nil || ch.Summary != "restart of architect-production/architect-api: 15 pods replaced in a rolling update, up to 4 new at once above 15 (maxSurge 25%) and up to 3 unavailable (maxUnavailable 25%)" {
			t.Fatalf("%+v %v", ch, err)
		}
		d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{})
		if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Error("no restartedAt annotation")
		}
		waitFor(t, "the restart's revision 3", func() bool { return current(t, cp) == "3" })
	})
	t.Run("undo to the previous revision", func(t *testing.T) {
		// After the restart, revision 2 runs the same 3.2.0: "previous" is
		// the release before, 3.1.0 in revision 1.
		ch, err := c.Undo(ctx, ns, "architect-api", 0, dryRun)
		if err != nil || !strings.Contains(ch.Summary, "architect-api:3.2.0 → architect-api:3.1.0 (revision 3 → 1") || ch.Revision != 1 || image(t, cp) != "architect-api:3.2.0" {
			t.Fatalf("dry run %+v %v, image %s", ch, err, image(t, cp))
		}
		if _, err := c.Undo(ctx, ns, "architect-api", 0, now); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "revision 4", func() bool { return current(t, cp) == "4" && image(t, cp) == "architect-api:3.1.0" })
	})
	t.Run("undo to a given revision", func(t *testing.T) {
		ch, err := c.Undo(ctx, ns, "architect-api", 2, now)
		if err != nil || !strings.Contains(ch.Summary, "architect-api:3.1.0 → architect-api:3.2.0") {
			t.Fatalf("undo to 2: %+v %v", ch, err)
		}
		waitFor(t, "the rollback to 3.2.0", func() bool { return image(t, cp) == "architect-api:3.2.0" })
	})
	t.Run("same template is skipped", func(t *testing.T) {
		waitFor(t, "the rollback's revision", func() bool {
			d, _ := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{})
			h, _ := c.RolloutHistory(ctx, ns, "architect-api")
			return d.Status.ObservedGeneration == d.Generation && len(h) > 0 && h[0].Current
		})
		h, _ := c.RolloutHistory(ctx, ns, "architect-api")
		cur := h[0].Number
		ch, err := c.Undo(ctx, ns, "architect-api", cur, now)
		if err != nil || !ch.Skipped || !strings.Contains(ch.Summary, "skipped") {
			t.Errorf("undo to the current revision %d: %+v %v", cur, ch, err)
		}
	})
	t.Run("unknown revision", func(t *testing.T) {
		if _, err := c.Undo(ctx, ns, "architect-api", 99, now); err == nil || !strings.Contains(err.Error(), "no revision 99") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("paused deployment is refused", func(t *testing.T) {
		cp.client.AppsV1().Deployments(ns).Patch(ctx, "architect-api", types.MergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{})
		defer cp.client.AppsV1().Deployments(ns).Patch(ctx, "architect-api", types.MergePatchType, []byte(`{"spec":{"paused":false}}`), metav1.PatchOptions{})
		if _, err := c.Undo(ctx, ns, "architect-api", 0, now); err == nil || !strings.Contains(err.Error(), "paused") {
			t.Errorf("undo of a paused deployment: %v", err)
		}
	})
	t.Run("blue-green switch", func(t *testing.T) {
		blue := map[string]string{"deployment": "architect-api-blue"}
		ch, err := c.Switch(ctx, ns, "architect-api", blue, dryRun)
		if err != nil || ch.Summary != "selector deployment=architect-api-green → deployment=architect-api-blue" ||
			ch.Warning != "deployment=architect-api-blue selects no ready pods (0 pods, 0 ready): after the switch, service architect-production/architect-api answers nothing" {
			t.Fatalf("dry run to an empty colour %+v %v", ch, err)
		}
		// A blue pod that is ready (its status written as a kubelet would).
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "blue-1", Namespace: ns, Labels: blue},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "architect-api:3.1.0"}}}}
		if pod, err = cp.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase, pod.Status.Conditions = corev1.PodRunning, []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := cp.client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ch, err = c.Switch(ctx, ns, "architect-api", blue, dryRun)
		if err != nil || ch.Warning != "" || ch.Summary != "selector deployment=architect-api-green → deployment=architect-api-blue (1 of 1 pods ready)" {
			t.Fatalf("dry run to a ready colour %+v %v", ch, err)
		}
		if s, _ := cp.client.CoreV1().Services(ns).Get(ctx, "architect-api", metav1.GetOptions{}); s.Spec.Selector["deployment"] != "architect-api-green" {
			t.Fatal("a dry run switched the selector")
		}
		if _, err := c.Switch(ctx, ns, "architect-api", blue, now); err != nil {
			t.Fatal(err)
		}
		if s, _ := cp.client.CoreV1().Services(ns).Get(ctx, "architect-api", metav1.GetOptions{}); s.Spec.Selector["deployment"] != "architect-api-blue" {
			t.Errorf("selector %v", s.Spec.Selector)
		}
	})
	t.Run("a confirmation acts only on the previewed version", func(t *testing.T) {
		deployments := cp.client.AppsV1().Deployments(ns)
		preview, err := c.Scale(ctx, ns, "architect-api", 20, dryRun)
		if err != nil || preview.Version == "" {
			t.Fatalf("dry run %+v %v", preview, err)
		}
		// A label on the object moves its resourceVersion, not its generation
		// (as the controllers' status writes do): the confirmation still acts.
		if _, err := deployments.Patch(ctx, "architect-api", types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// (the summary's rollout progress may move on meanwhile: the change it names may not)
		if ch, err := c.Scale(ctx, ns, "architect-api", 20, runbooks.Apply{Version: preview.Version}); err != nil || firstClause(ch.Summary) != firstClause(preview.Summary) {
			t.Fatalf("confirmed scale after a metadata change: %+v %v (previewed %q)", ch, err, preview.Summary)
		}
		// Someone else scales it between the preview and the confirmation.
		preview, _ = c.Scale(ctx, ns, "architect-api", 25, dryRun)
		if _, err := deployments.Patch(ctx, "architect-api", types.MergePatchType, []byte(`{"spec":{"replicas":12}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Scale(ctx, ns, "architect-api", 25, runbooks.Apply{Version: preview.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Errorf("a scale previewed on generation %s acted on a newer one: %v", preview.Version, err)
		}
		if d, _ := deployments.Get(ctx, "architect-api", metav1.GetOptions{}); *d.Spec.Replicas != 12 {
			t.Errorf("replicas %d, want the other person's 12", *d.Spec.Replicas)
		}
		// The same for a restart and an undo previewed before a new image.
		restart, _ := c.Restart(ctx, ns, "architect-api", dryRun)
		undo, err := c.Undo(ctx, ns, "architect-api", 0, dryRun)
		if err != nil || undo.Revision == 0 {
			t.Fatalf("undo dry run %+v %v", undo, err)
		}
		if _, err := deployments.Patch(ctx, "architect-api", types.StrategicMergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"architect-api:3.3.0"}]}}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Restart(ctx, ns, "architect-api", runbooks.Apply{Version: restart.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Errorf("restart after a new image: %v", err)
		}
		if _, err := c.Undo(ctx, ns, "architect-api", undo.Revision, runbooks.Apply{Version: undo.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Errorf("undo after a new image: %v", err)
		}
		if image(t, cp) != "architect-api:3.3.0" {
			t.Errorf("image %s, want the new 3.3.0 untouched", image(t, cp))
		}
		// A Service has no generation: its resourceVersion binds the switch.
		green := map[string]string{"deployment": "architect-api-green"}
		sw, err := c.Switch(ctx, ns, "architect-api", green, dryRun)
		if err != nil || sw.Version == "" {
			t.Fatalf("switch dry run %+v %v", sw, err)
		}
		if _, err := cp.client.CoreV1().Services(ns).Patch(ctx, "architect-api", types.MergePatchType, []byte(`{"spec":{"selector":{"deployment":"architect-api-canary"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Switch(ctx, ns, "architect-api", green, runbooks.Apply{Version: sw.Version}); !errors.Is(err, runbooks.ErrChanged) {
			t.Errorf("switch after someone else's: %v", err)
		}
		if s, _ := cp.client.CoreV1().Services(ns).Get(ctx, "architect-api", metav1.GetOptions{}); s.Spec.Selector["deployment"] != "architect-api-canary" {
			t.Errorf("selector %v", s.Spec.Selector)
		}
	})
	t.Run("reads", func(t *testing.T) {
		pods, err := c.Pods(ctx, ns, "architect-api", "")
		if err != nil || len(pods) == 0 || pods[0].Phase != "Pending" || !strings.Contains(pods[0].Limits, "api: no limits") {
			t.Fatalf("pods %+v %v", pods, err)
		}
		events, err := c.Events(ctx, ns, 20)
		if err != nil || len(events) == 0 {
			t.Fatalf("events %d %v", len(events), err)
		}
		// A pod bound to a node with no kubelet: the API server's answer comes back as the error.
		ghost := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: "ghost-node", Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
		if _, err := cp.client.CoreV1().Pods(ns).Create(ctx, ghost, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Logs(ctx, runbooks.LogQuery{Namespace: ns, Pod: "ghost", Tail: 5}); err == nil || !strings.Contains(err.Error(), "ghost-node") {
			t.Errorf("logs from a node without a kubelet: %v", err)
		}
		// No kubelet here: the pods never run, and the logs step says so,
		// the newest ReplicaSet's pods first: at least as new as the newest
		// pods before the call (the stuck rollout may add newer ones meanwhile).
		newest := func() int64 {
			sets, _ := cp.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
			rev := map[string]int64{}
			for _, rs := range sets.Items {
				rev[rs.Name], _ = strconv.ParseInt(rs.Annotations["deployment.kubernetes.io/revision"], 10, 64)
			}
			pods, _ := cp.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=architect-api"})
			n := int64(0)
			for _, p := range pods.Items {
				if o := metav1.GetControllerOf(&p); o != nil {
					n = max(n, rev[o.Name])
				}
			}
			return n
		}
		before := newest()
		logs, err := c.Logs(ctx, runbooksLogQuery())
		if err != nil || len(logs) != runbooks.LogPods || before == 0 {
			t.Fatalf("logs %+v %v (newest pods of revision %d)", logs, err, before)
		}
		for i, l := range logs {
			if l.NoLogs != "Pending, not scheduled to a node yet" || len(l.Lines) != 0 || (i == 0 && l.Revision < before) || (i > 0 && l.Revision > logs[i-1].Revision) {
				t.Errorf("pod log %d %+v, want pods of revision %d or newer first, newest first, Pending", i, l, before)
			}
		}
	})
	t.Run("the Role allows nothing outside its namespace", func(t *testing.T) {
		if _, err := c.Scale(ctx, "kube-system", "coredns", 3, dryRun); err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("scale in kube-system: %v", err)
		}
	})
}

func runbooksLogQuery() runbooks.LogQuery {
	return runbooks.LogQuery{Namespace: ns, Deployment: "architect-api", Tail: 10}
}

// firstClause is a summary up to its first colon: the change it names
// ("replicas 15 → 20"), without what the controllers are doing meanwhile.
func firstClause(s string) string {
	before, _, _ := strings.Cut(s, ":")
	return before
}
