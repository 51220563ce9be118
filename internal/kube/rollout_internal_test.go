package kube

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestRolloutSaysWhatTheControllerDoes: maxSurge rounds up, maxUnavailable
// down and never past the replica count, both 0 is 1; Recreate stops all.
func TestRolloutSaysWhatTheControllerDoes(t *testing.T) {
	d := func(n int32, surge, unavail *intstr.IntOrString, typ appsv1.DeploymentStrategyType) *appsv1.Deployment {
		dep := &appsv1.Deployment{}
		dep.Spec.Replicas = &n
		dep.Spec.Strategy.Type = typ
		if surge != nil || unavail != nil {
			dep.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavail}
		}
		return dep
	}
	pct, num := intstr.FromString("25%"), func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	for _, c := range []struct {
		d    *appsv1.Deployment
		want string
	}{
		{d(10, nil, nil, ""), "10 pods replaced in a rolling update, up to 3 new at once above 10 (maxSurge 25%) and up to 2 unavailable (maxUnavailable 25%)"},
		{d(3, num(0), num(5), ""), "3 pods replaced in a rolling update, up to 0 new at once above 3 (maxSurge 0) and up to 3 unavailable (maxUnavailable 5): every pod may be down at once, nothing serving meanwhile"},
		{d(1, &pct, num(0), ""), "1 pod replaced in a rolling update, up to 1 new at once above 1 (maxSurge 25%) and up to 0 unavailable (maxUnavailable 0)"},
		{d(4, num(0), num(0), ""), "4 pods replaced in a rolling update, up to 0 new at once above 4 (maxSurge 0) and up to 1 unavailable (maxUnavailable 0)"},
		{d(5, nil, nil, appsv1.RecreateDeploymentStrategyType), "all 5 pods stopped, then 5 new ones started (strategy Recreate): nothing serves in between"},
	} {
		if got := rollout(c.d); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	if !strings.Contains(scaling(d(10, nil, nil, ""), 10, 0), "all 10 pods stop") {
		t.Error("scaling to zero does not say nothing serves")
	}
}
