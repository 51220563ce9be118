package kube_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestDeployManifests builds each overlay of deploy/ with kustomize and
// applies it to the real API server as a server-side dry run: what ships
// is valid against the API, with the probes, the non-root security context
// and the Secrets it names; the PostgreSQL overlay runs two replicas with a
// PodDisruptionBudget, the bbolt one a single replica with Recreate.
func TestDeployManifests(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	cp.Namespace(t, ns)
	dyn, err := dynamic.NewForConfig(cp.admin)
	if err != nil {
		t.Fatal(err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	for _, overlay := range []string{"bbolt", "postgres"} {
		t.Run(overlay, func(t *testing.T) {
			res, err := k.Run(filesys.MakeFsOnDisk(), "../../deploy/overlays/"+overlay)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]*unstructured.Unstructured{}
			for _, r := range res.Resources() {
				b, err := r.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				obj := &unstructured.Unstructured{}
				if err := obj.UnmarshalJSON(b); err != nil { // JSON's own types, as the API takes them
					t.Fatal(err)
				}
				gvk := obj.GroupVersionKind()
				kinds[gvk.Kind] = obj
				plural := strings.ToLower(gvk.Kind) + "s"
				if gvk.Kind == "PodDisruptionBudget" {
					plural = "poddisruptionbudgets"
				}
				body, _ := obj.MarshalJSON()
				_, err = dyn.Resource(schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: plural}).Namespace(obj.GetNamespace()).
					Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "sitrep-test", DryRun: []string{metav1.DryRunAll}})
				if err != nil {
					t.Errorf("%s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
				}
			}
			d := kinds["Deployment"]
			if d == nil || d.GetNamespace() != ns {
				t.Fatalf("no Deployment in %s: %v", ns, kinds)
			}
			replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			strategy, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type")
			nonRoot, _, _ := unstructured.NestedBool(d.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot")
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			if c["readinessProbe"] == nil || c["livenessProbe"] == nil || !nonRoot || c["resources"] == nil {
				t.Errorf("the container lacks probes, non-root or requests: %v", c)
			}
			switch overlay {
			case "bbolt":
				if replicas != 1 || strategy != "Recreate" || kinds["PersistentVolumeClaim"] == nil {
					t.Errorf("bbolt: %d replicas, %q, pvc %v", replicas, strategy, kinds["PersistentVolumeClaim"] != nil)
				}
			case "postgres":
				if replicas != 2 || kinds["PodDisruptionBudget"] == nil || !strings.Contains(mustJSON(d), "sitrep-postgres") || !strings.Contains(mustJSON(d), "podAntiAffinity") {
					t.Errorf("postgres: %d replicas, pdb %v", replicas, kinds["PodDisruptionBudget"] != nil)
				}
			}
		})
	}
}

func mustJSON(u *unstructured.Unstructured) string {
	b, _ := u.MarshalJSON()
	return string(b)
}
