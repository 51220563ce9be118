package kube_test

import (
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sitrep-oncall/sitrep/internal/kube/kubetest"
)

// controlPlane is kubetest's, under the names these tests use.
type controlPlane struct {
	*kubetest.ControlPlane
	url    string
	admin  *rest.Config
	client kubernetes.Interface
}

func startControlPlane(t testing.TB) *controlPlane {
	cp := kubetest.Start(t)
	return &controlPlane{ControlPlane: cp, url: cp.URL, admin: cp.Admin, client: cp.Client}
}

func (cp *controlPlane) apply(t testing.TB, manifests []byte) { cp.Apply(t, manifests) }

func (cp *controlPlane) serviceAccount(t testing.TB, ns, name string) *rest.Config {
	return cp.ServiceAccount(t, ns, name)
}

func freePort(t testing.TB) int { return kubetest.FreePort(t) }

func binDir(t testing.TB) string { return kubetest.BinDir(t) }

func ptr[T any](v T) *T { return &v }
