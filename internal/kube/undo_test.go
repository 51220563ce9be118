package kube_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/sitrep-oncall/sitrep/internal/kube"
)

// TestUndoIsKubectlRolloutUndo gives two namespaces the same Deployment
// with the same history — change-causes and a team annotation that came
// with one release — and rolls one back with kubectl's own rollbacker
// (k8s.io/kubectl at the version of client-go in go.mod), the other with
// Sitrep's undo. Both Deployments end the same: template, annotations,
// revision; and the history Sitrep shows names the change-cause.
func TestUndoIsKubectlRolloutUndo(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	c, err := kube.New(cp.admin)
	if err != nil {
		t.Fatal(err)
	}
	release := func(ns, image, cause, team string) {
		t.Helper()
		patch := `{"metadata":{"annotations":{"kubernetes.io/change-cause":"` + cause + `"` + team + `}},"spec":{"template":{"spec":{"containers":[{"name":"api","image":"` + image + `"}]}}}}`
		if _, err := cp.client.AppsV1().Deployments(ns).Patch(ctx, "architect-api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(ns, revision string) func() bool {
		return func() bool {
			d, err := cp.client.AppsV1().Deployments(ns).Get(ctx, "architect-api", metav1.GetOptions{})
			return err == nil && d.Status.ObservedGeneration == d.Generation && d.Annotations["deployment.kubernetes.io/revision"] == revision
		}
	}
	for _, ns := range []string{"with-kubectl", "with-sitrep"} {
		cp.Namespace(t, ns)
		d := deployment("architect-api:3.1.0")
		d.Namespace = ns
		d.Annotations = map[string]string{"kubernetes.io/change-cause": "release 3.1.0"}
		if _, err := cp.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ns+" revision 1", settled(ns, "1"))
		release(ns, "architect-api:3.2.0", "release 3.2.0", `,"team":"payments"`)
		waitFor(t, ns+" revision 2", settled(ns, "2"))
		release(ns, "architect-api:3.2.1", "hotfix 3.2.1", `,"team":null`)
		waitFor(t, ns+" revision 3", settled(ns, "3"))
	}

	// Back to 3.2.0, revision 2, with kubectl's code and with Sitrep's.
	rb, err := polymorphichelpers.RollbackerFor(schema.GroupKind{Group: "apps", Kind: "Deployment"}, cp.client)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cp.client.AppsV1().Deployments("with-kubectl").Get(ctx, "architect-api", metav1.GetOptions{})
	if _, err := rb.Rollback(d, nil, 2, cmdutil.DryRunNone); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Undo(ctx, "with-sitrep", "architect-api", 2, now)
	if err != nil || ch.Summary != `image architect-api:3.2.1 → architect-api:3.2.0 (revision 3 → 2, "release 3.2.0")` {
		t.Fatalf("undo: %+v %v", ch, err)
	}
	for _, ns := range []string{"with-kubectl", "with-sitrep"} {
		waitFor(t, ns+" revision 4", settled(ns, "4"))
	}
	a, _ := cp.client.AppsV1().Deployments("with-kubectl").Get(ctx, "architect-api", metav1.GetOptions{})
	b, _ := cp.client.AppsV1().Deployments("with-sitrep").Get(ctx, "architect-api", metav1.GetOptions{})
	if !maps.Equal(a.Annotations, b.Annotations) {
		t.Errorf("annotations:\nkubectl %v\nsitrep  %v", a.Annotations, b.Annotations)
	}
	if b.Annotations["kubernetes.io/change-cause"] != "release 3.2.0" || b.Annotations["team"] != "payments" {
		t.Errorf("the revision's annotations did not come back: %v", b.Annotations)
	}
	if !apiequality.Semantic.DeepEqual(a.Spec.Template, b.Spec.Template) {
		t.Errorf("templates differ:\nkubectl %+v\nsitrep  %+v", a.Spec.Template, b.Spec.Template)
	}

	// The history names each revision's change-cause, newest first, and
	// marks the current one; the hotfix's change-cause stays on its own.
	h, err := c.RolloutHistory(ctx, "with-sitrep", "architect-api")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h {
		got = append(got, strings.Join(r.Images, ",")+" "+r.ChangeCause+map[bool]string{true: " *"}[r.Current])
	}
	if want := "architect-api:3.2.0 release 3.2.0 *|architect-api:3.2.1 hotfix 3.2.1|architect-api:3.1.0 release 3.1.0"; strings.Join(got, "|") != want {
		t.Errorf("history %q\nwant    %q", strings.Join(got, "|"), want)
	}

	// "Previous" is the previous release, not the previous revision: after
	// a restart (a revision of the same images) it goes back past it.
	if _, err := c.Restart(ctx, "with-sitrep", "architect-api", now); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart's revision 5", settled("with-sitrep", "5"))
	ch, err = c.Undo(ctx, "with-sitrep", "architect-api", 0, dryRun)
	if err != nil || ch.Revision != 3 || !strings.Contains(ch.Summary, "architect-api:3.2.0 → architect-api:3.2.1 (revision 5 → 3") {
		t.Errorf("undo after a restart: %+v %v", ch, err)
	}
	// A release that changes only the environment is a release: "previous"
	// goes back to the one before it, and says the images are the same.
	env := `{"spec":{"template":{"spec":{"containers":[{"name":"api","env":[{"name":"FEATURE_X","value":"on"}]}]}}}}`
	if _, err := cp.client.AppsV1().Deployments("with-sitrep").Patch(ctx, "architect-api", types.StrategicMergePatchType, []byte(env), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the config release's revision 6", settled("with-sitrep", "6"))
	ch, err = c.Undo(ctx, "with-sitrep", "architect-api", 0, dryRun)
	if err != nil || ch.Revision != 5 || !strings.Contains(ch.Summary, "the same images, another pod template") {
		t.Errorf("undo of a config-only release: %+v %v", ch, err)
	}
}
