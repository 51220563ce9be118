package kube_test

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// A real control plane for the tests: etcd, kube-apiserver and
// kube-controller-manager (deployment, replicaset and serviceaccount
// controllers) built from the Go module proxy by scripts/k8s-binaries.sh.
// There is no kubelet: pods are scheduled nowhere and stay Pending.

const adminToken = "sitrep-test-admin-token"

type controlPlane struct {
	url    string
	admin  *rest.Config
	client kubernetes.Interface
}

func binDir(t testing.TB) string {
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

func freePort(t testing.TB) int {
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

func startControlPlane(t testing.TB) *controlPlane {
	bin := binDir(t)
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "sa.key"), keyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(adminToken+`,admin,1,"system:masters"`+"\n"), 0o600)

	etcdClient, etcdPeer := freePort(t), freePort(t)
	start(t, dir, filepath.Join(bin, "etcd"), "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdClient), fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", etcdPeer))
	port := freePort(t)
	start(t, dir, filepath.Join(bin, "kube-apiserver"), fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1", "--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://sitrep.test", "--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"), "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/24", "--disable-admission-plugins=ServiceAccount")
	cp := &controlPlane{url: fmt.Sprintf("https://127.0.0.1:%d", port)}
	cp.admin = &rest.Config{Host: cp.url, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	waitReady(t, cp.url)
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, cp.url, adminToken)), 0o600)
	start(t, dir, filepath.Join(bin, "kube-controller-manager"), "--kubeconfig="+kubeconfig,
		"--controllers=deployment,replicaset", "--leader-elect=false", "--secure-port=0")
	cs, err := kubernetes.NewForConfig(cp.admin)
	if err != nil {
		t.Fatal(err)
	}
	cp.client = cs
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

// apply creates every object of a YAML file as the admin.
func (cp *controlPlane) apply(t testing.TB, manifests []byte) {
	dyn, err := dynamic.NewForConfig(cp.admin)
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

// serviceAccount returns a config that acts as the ServiceAccount, with a
// token from the TokenRequest API.
func (cp *controlPlane) serviceAccount(t testing.TB, ns, name string) *rest.Config {
	tr, err := cp.client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return &rest.Config{Host: cp.url, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func ptr[T any](v T) *T { return &v }
