// Package kubetest starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver and kube-controller-manager (the deployment and
// replicaset controllers) built from the Go module proxy by
// scripts/k8s-binaries.sh, and — with Kwok — simulated nodes that make the
// pods bound to them Running and Ready without a kubelet.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// There is no kubelet and no scheduler: pods stay Pending unless their
// template binds them (nodeName) to a node Kwok simulates.

const adminToken = "sitrep-test-admin-token"

// ControlPlane is a running control plane.
type ControlPlane struct {
	URL        string
	Admin      *rest.Config // system:masters
	Client     kubernetes.Interface
	Kubeconfig string // the admin's, as a file
	bin, dir   string
}

// BinDir is where scripts/k8s-binaries.sh put the binaries; it skips the
// test when they are missing (failing it under CI, which builds them).
func BinDir(t testing.TB) string {
	dir := os.Getenv("SITREP_K8S_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "sitrep", "k8s", "v1.34.4-etcd-v3.6.16")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in %s: .ci/run builds it with scripts/k8s-binaries.sh", b, dir)
			}
			t.Skipf("%s missing in %s: run scripts/k8s-binaries.sh once (it takes minutes)", b, dir)
		}
	}
	if testing.Short() {
		t.Skip("-short: skipping the tests with a real API server")
	}
	return dir
}

// FreePort is a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(t testing.TB, logDir, name string, args ...string) {
	t.Helper()
	logf, _ := os.Create(filepath.Join(logDir, filepath.Base(name)+".log"))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			lines := strings.Split(string(b), "\n")
			t.Logf("last lines of %s:\n%s", filepath.Base(name), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	})
}

// Start runs a control plane until the test ends.
func Start(t testing.TB) *ControlPlane {
	bin := BinDir(t)
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "sa.key"), keyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(adminToken+`,admin,1,"system:masters"`+"\n"), 0o600)

	etcdClient, etcdPeer := FreePort(t), FreePort(t)
	start(t, dir, filepath.Join(bin, "etcd"), "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdClient), fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", etcdPeer))
	port := FreePort(t)
	start(t, dir, filepath.Join(bin, "kube-apiserver"), fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1", "--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://sitrep.test", "--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"), "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/24", "--disable-admission-plugins=ServiceAccount")
	cp := &ControlPlane{URL: fmt.Sprintf("https://127.0.0.1:%d", port), bin: bin, dir: dir}
	cp.Admin = &rest.Config{Host: cp.URL, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	waitReady(t, cp.URL)
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, cp.URL, adminToken)), 0o600)
	cp.Kubeconfig = kubeconfig
	start(t, dir, filepath.Join(bin, "kube-controller-manager"), "--kubeconfig="+kubeconfig,
		"--controllers=deployment,replicaset", "--leader-elect=false", "--secure-port=0")
	cs, err := kubernetes.NewForConfig(cp.Admin)
	if err != nil {
		t.Fatal(err)
	}
	cp.Client = cs
	return cp
}

func waitReady(t testing.TB, url string) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			_ = body
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("kube-apiserver never became ready")
}

// Apply creates every object of a YAML file as the admin.
func (cp *ControlPlane) Apply(t testing.TB, manifests []byte) {
	dyn, err := dynamic.NewForConfig(cp.Admin)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		plural := strings.ToLower(gvk.Kind) + "s"
		res := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: plural}
		if _, err := dyn.Resource(res).Namespace(obj.GetNamespace()).Create(context.Background(), &obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
	}
}

// Namespace creates namespace ns and applies each of the manifest files
// (paths, such as the shipped deploy/base/rbac.yaml) as the admin.
func (cp *ControlPlane) Namespace(t testing.TB, ns string, files ...string) {
	t.Helper()
	if _, err := cp.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cp.Apply(t, b)
	}
}

// ServiceAccount returns a config that acts as the ServiceAccount, with a
// token from the TokenRequest API.
func (cp *ControlPlane) ServiceAccount(t testing.TB, ns, name string) *rest.Config {
	tr, err := cp.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return &rest.Config{Host: cp.URL, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func ptr[T any](v T) *T { return &v }

// KwokNode is the node Kwok simulates: a pod template with nodeName set to
// it becomes Running and Ready.
const KwokNode = "kwok-node-0"

// Kwok starts kwok (sigs.k8s.io/kwok) against the control plane and
// registers KwokNode, waiting until it is Ready.
func (cp *ControlPlane) Kwok(t testing.TB) {
	t.Helper()
	kwok := filepath.Join(cp.bin, "kwok")
	if _, err := os.Stat(kwok); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kwok missing in %s: .ci/run builds it with scripts/k8s-binaries.sh", cp.bin)
		}
		t.Skipf("kwok missing in %s: run scripts/k8s-binaries.sh once", cp.bin)
	}
	start(t, cp.dir, kwok, "--config="+filepath.Join(cp.bin, "kwok-stages.yaml"), "--kubeconfig="+cp.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.0.0.1/24", "--node-ip=10.0.0.1",
		fmt.Sprintf("--server-address=127.0.0.1:%d", FreePort(t)))
	cp.Apply(t, []byte(`apiVersion: v1
kind: Node
metadata:
  name: `+KwokNode+`
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: `+KwokNode+`}
spec: {}
`))
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := cp.Client.CoreV1().Nodes().Get(context.Background(), KwokNode, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("kwok never made its node Ready")
}
