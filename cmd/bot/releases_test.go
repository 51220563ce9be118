package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/sitrep-oncall/sitrep/internal/kube/kubetest"
)

// The release tests drive the built binary in the terminal against a real
// control plane whose pods kwok makes Ready, acting as the ServiceAccount
// of deploy/base/rbac.yaml, and Debian's Prometheus scraping an exporter
// whose error rate the test sets. The procedures are the shipped ones,
// with the watch checking every few seconds instead of every 2 minutes.

const relNS = "architect-production"

// exporter serves the guide's metrics for architect-api: 100 requests a
// second at 50 ms, a share of them 5xx.
type exporter struct {
	mu            sync.Mutex
	total, errors float64
	errorShare    float64
	srv           *httptest.Server
	stop          chan struct{}
	stopped       sync.WaitGroup
}

func newExporter(t *testing.T) *exporter {
	e := &exporter{stop: make(chan struct{})}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		ok := e.total - e.errors
		fmt.Fprintf(w, "http_requests_total{service=\"architect-api\",status=\"200\"} %g\n", ok)
		if e.errors > 0 { // a service that never failed has no 5xx series at all, as in real exporters
			fmt.Fprintf(w, "http_requests_total{service=\"architect-api\",status=\"500\"} %g\n", e.errors)
		}
		for _, le := range []string{"0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"} {
			n := e.total
			if le == "0.025" {
				n = 0
			}
			fmt.Fprintf(w, "http_request_duration_seconds_bucket{service=\"architect-api\",le=%q} %g\n", le, n)
		}
		fmt.Fprintf(w, "http_request_duration_seconds_count{service=\"architect-api\"} %g\n", e.total)
	}))
	e.stopped.Add(1)
	go func() {
		defer e.stopped.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-tick.C:
				e.mu.Lock()
				e.total += 10
				e.errors += 10 * e.errorShare
				e.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(e.stop); e.stopped.Wait(); e.srv.Close() })
	return e
}

func (e *exporter) setErrorShare(f float64) {
	e.mu.Lock()
	e.errorShare = f
	e.mu.Unlock()
}

// startPrometheus runs Debian's Prometheus scraping target every second as job.
func startPrometheus(t *testing.T, job, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed; .ci/run installs it")
		}
		t.Skip("prometheus is not installed (apt-get install prometheus)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(config, []byte(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: %s\n  static_configs: [{targets: ['%s']}]\n",
		job, strings.TrimPrefix(target, "http://"))), 0o644)
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	url := "http://" + addr
	// ready once it has scraped the exporter twice: a rate exists
	waitUntil(t, "Prometheus has a request rate", func() bool {
		resp, err := http.Get(url + "/api/v1/query?query=" + `sum(rate(http_requests_total[1m]))%3E0`)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"value"`)
	})
	return url
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubeconfigFor writes a kubeconfig acting as cfg's bearer token.
func kubeconfigFor(t *testing.T, cfg *rest.Config) string {
	path := filepath.Join(t.TempDir(), "sitrep.kubeconfig")
	os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: sitrep, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: sitrep}}]
current-context: test
`, cfg.Host, cfg.BearerToken)), 0o600)
	return path
}

// releaseCluster starts the control plane, kwok, the shipped RBAC and the
// Deployments named, each with its pods of 3.1.0 on the simulated node.
func releaseCluster(t *testing.T, deployments map[string]int32) (*kubetest.ControlPlane, string) {
	cp := kubetest.Start(t)
	cp.Kwok(t)
	ctx := context.Background()
	cp.Namespace(t, relNS, "../../deploy/base/rbac.yaml")
	for name, replicas := range deployments {
		labels := map[string]string{"app": "architect-api", "deployment": name}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: relNS}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{NodeName: kubetest.KwokNode,
				Containers: []corev1.Container{{Name: "architect-api", Image: "prod-registry/architect-api:3.1.0"}}}}}}
		if _, err := cp.Client.AppsV1().Deployments(relNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return cp, kubeconfigFor(t, cp.ServiceAccount(t, relNS, "sitrep"))
}

// procedures copies the shipped procedures with the watch every `every`
// for `span`.
func procedures(t *testing.T, every, span string) string {
	dir := filepath.Join(t.TempDir(), "releases")
	os.Mkdir(dir, 0o755)
	for _, f := range []string{"blue-green.yaml", "canary.yaml", "rolling.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../releases", f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(strings.Replace(string(b), "every: 2m", "every: "+every, 1), "for: 1h", "for: "+span, 1)
		os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644)
	}
	return dir
}

// terminal is the built binary in the terminal, typed into through a pipe.
type terminal struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *screen
	exited chan struct{}
	at     int
}

func startTerminal(t *testing.T, env []string) *terminal {
	t.Helper()
	cmd := exec.Command(botBinary)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, cmd: cmd, in: in, out: &screen{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = term.out, term.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(term.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-term.exited
		if testing.Verbose() && os.Getenv("SITREP_SHOW_TERMINAL") != "" { // the transcript, for the README
			t.Logf("the terminal showed:\n%s", term.out.String())
		}
	})
	term.expect("Sitrep — incident response in your terminal")
	return term
}

func (term *terminal) typeLine(s string) {
	term.t.Helper()
	if _, err := io.WriteString(term.in, s+"\n"); err != nil {
		term.t.Fatalf("typing %q: %v", s, err)
	}
}

// expect waits for want after what was already expected.
func (term *terminal) expect(want string) {
	term.t.Helper()
	term.at = term.out.waitFor(term.t, term.at, want, term.exited)
}

// run types a command and waits for want in its answer.
func (term *terminal) run(cmd, want string) {
	term.t.Helper()
	term.typeLine(cmd)
	term.expect(want)
}

// confirm presses the preview's first button (its confirmation) and says yes.
func (term *terminal) confirm(want string) {
	term.t.Helper()
	term.typeLine("1")
	term.expect("[y/N]")
	term.run("y", want)
}

// guideRoles are the production guide's sign-off roles, as the shipped
// blue-green and canary procedures name them.
var guideRoles = []string{"cto", "engineering", "devops", "security", "product", "support"}

// signAll signs REL-1 for every role, as dana (who may sign for each).
func (term *terminal) signAll() {
	term.t.Helper()
	for _, role := range guideRoles {
		term.run("release sign REL-1 "+role, "signed for "+role)
	}
}

// tickAll ticks REL-1's checklist items 1 to n.
func (term *terminal) tickAll(n int) {
	term.t.Helper()
	for i := 1; i <= n; i++ {
		term.run(fmt.Sprintf("release tick REL-1 %d", i), "ticked")
	}
}

func (term *terminal) kill() {
	term.cmd.Process.Signal(syscall.SIGKILL)
	<-term.exited
}

func releaseEnv(t *testing.T, kubeconfig, promURL, procs string) []string {
	db := filepath.Join(t.TempDir(), "sitrep.db")
	signers := []string{}
	for _, role := range guideRoles {
		signers = append(signers, role+"=@dana")
	}
	return append(botEnv(db, "127.0.0.1:0"), "SITREP_CONSOLE=on", "SITREP_USER=dana", "KUBECONFIG="+kubeconfig, "PROMETHEUS_URL="+promURL,
		"SITREP_NAMESPACES="+relNS, "SITREP_OPERATORS=@dana", "SITREP_RELEASES="+procs, "SITREP_RELEASE_SIGNERS="+strings.Join(signers, ","),
		"SITREP_RUNBOOKS="+filepath.Join(t.TempDir(), "none"))
}

func selector(t *testing.T, cp *kubetest.ControlPlane) string {
	svc, err := cp.Client.CoreV1().Services(relNS).Get(context.Background(), "architect-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector["deployment"]
}

var checkNumber = regexp.MustCompile(`check (\d+): [^\n]*— breach: error rate`)

// TestBlueGreenReleaseBreachedAndRolledBack is the production guide's
// blue-green release from the terminal: refused before the sign-offs,
// signed, the new version set on green and rolled out, the gate on
// up{job="architect-api-green"}, the switch — then Sitrep is killed with
// SIGKILL during the watch and started again: the watch resumes, the error
// rate that rose after the switch is a breach within two checks, one P2
// incident is declared with the rollback as its first button, and the
// rollback (a dry run, then confirmed) puts the blue selector back in the
// API server.
func TestBlueGreenReleaseBreachedAndRolledBack(t *testing.T) {
	cp, kubeconfig := releaseCluster(t, map[string]int32{"architect-api-blue": 2, "architect-api-green": 2})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "architect-api", Namespace: relNS},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"deployment": "architect-api-blue"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cp.Client.CoreV1().Services(relNS).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := newExporter(t)
	promURL := startPrometheus(t, "architect-api-green", exp.srv.URL)
	env := releaseEnv(t, kubeconfig, promURL, procedures(t, "2s", "1m"))
	term := startTerminal(t, env)

	term.run("release start architect-api 3.2.0 blue-green", "🚀 REL-1 · architect-api 3.2.0 (blue-green) — in progress")
	term.expect("live architect-api-blue, deploying to architect-api-green")
	term.run("release step REL-1 1", "done by @dana")
	term.run("release step REL-1 2", "changes production: it waits for every sign-off (still to sign: cto, engineering, devops, security, product, support)")
	term.signAll()
	term.run("release step REL-1 2", "the staging checklist is not done")
	term.tickAll(7)
	term.run("release step REL-1 2", "dry-run — architect-api image prod-registry/architect-api:3.1.0 → prod-registry/architect-api:3.2.0")
	if img := deploymentImage(t, cp, "architect-api-green"); img != "prod-registry/architect-api:3.1.0" {
		t.Fatalf("the preview changed the image to %s", img)
	}
	term.confirm("confirmed")
	if img := deploymentImage(t, cp, "architect-api-green"); img != "prod-registry/architect-api:3.2.0" {
		t.Fatalf("green runs %s after the confirmed step", img)
	}
	term.run("release step REL-1 3", "waiting")
	term.expect("rolled out: 2 of 2 replicas updated and available") // the driver's poll, on screen
	term.run("release step REL-1 4", "ok — ✅")
	term.run("release step REL-1 5", "done by @dana")
	term.run("release step REL-1 6", "ok — ✅") // green's error rate under the smoke tests
	term.run("release step REL-1 7", "done by @dana")
	term.run("release step REL-1 8", "selector deployment=architect-api-blue → deployment=architect-api-green (2 of 2 pods ready)")
	if got := selector(t, cp); got != "architect-api-blue" {
		t.Fatalf("the preview switched the selector to %s", got)
	}
	term.confirm("confirmed")
	if got := selector(t, cp); got != "architect-api-green" {
		t.Fatalf("selector %s after the confirmed switch", got)
	}
	exp.setErrorShare(0.05) // green is bad
	term.kill()             // during the watch

	term = startTerminal(t, env)
	term.expect("breach: error rate")
	if m := checkNumber.FindStringSubmatch(term.out.String()); m == nil || (m[1] != "1" && m[1] != "2") {
		t.Fatalf("the breach was found at check %v; want within two checks:\n%s", m, term.out.String())
	}
	term.expect("INC-1 declared (P2)")
	term.run("show INC-1", "INC-1 · REL-1 architect-api 3.2.0: error rate")
	term.expect("Recent change")
	term.expect("REL-1 architect-api 3.2.0 (blue-green): switched by @dana")
	term.expect("[1] Roll back REL-1")
	term.run("postmortem INC-1", "## Recent changes")
	term.expect("REL-1 architect-api 3.2.0 (blue-green): switched by @dana")
	term.kill() // after the incident: started again, it declares no second one
	term = startTerminal(t, env)
	term.run("list --all", "1 incident")

	term.run("release rollback REL-1", "selector deployment=architect-api-green → deployment=architect-api-blue")
	if got := selector(t, cp); got != "architect-api-green" {
		t.Fatalf("the rollback's preview switched the selector to %s", got)
	}
	term.confirm("rolled back: every rollback step that acts on the cluster is done; by hand, if it applies: 2. Restore the database")
	if got := selector(t, cp); got != "architect-api-blue" {
		t.Fatalf("selector %s after the confirmed rollback: want blue back", got)
	}
	term.run("release rollback REL-1 2", "done by @dana") // the follow-up by hand
	// the incident's timeline, the postmortem's source, has the way back
	term.run("timeline INC-1", "REL-1: rolled back: every rollback step that acts on the cluster is done")
	term.expect("REL-1: rollback step 2/2 Restore the database, if the migration caused it: done")
	term.run("release report REL-1", "# Release REL-1: architect-api 3.2.0")
	term.expect("is past critical (0.10%) |") // the breaching check in the watch's table
	term.run("release report REL-1 json", `"state": "rolled-back"`)
	term.run("list --all", "1 incident")
}

func deploymentImage(t *testing.T, cp *kubetest.ControlPlane, name string) string {
	d, err := cp.Client.AppsV1().Deployments(relNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestRollingReleaseVerified: a rolling release whose exporter stays
// healthy is verified after its watch, and a SIGKILL in the middle of the
// watch only pauses it.
func TestRollingReleaseVerified(t *testing.T) {
	cp, kubeconfig := releaseCluster(t, map[string]int32{"architect-api": 2})
	exp := newExporter(t)
	promURL := startPrometheus(t, "architect-api", exp.srv.URL)
	env := releaseEnv(t, kubeconfig, promURL, procedures(t, "1s", "8s"))
	term := startTerminal(t, env)
	term.run("release start architect-api 3.2.0 rolling", "🚀 REL-1 · architect-api 3.2.0 (rolling)")
	term.run("release sign REL-1 engineering", "signed")
	term.run("release sign REL-1 devops", "every sign-off is in")
	term.run("release tick REL-1 1", "ticked")
	term.run("release tick REL-1 2", "ticked")
	term.run("release step REL-1 1", "dry-run")
	term.confirm("confirmed")
	term.run("release step REL-1 2", "waiting")
	term.expect("watching error rate, p95 latency, p99 latency every 1s")
	term.expect("check 1: error rate 0.00% ✅")
	term.kill()
	term = startTerminal(t, env)
	term.expect("verified")
	term.run("release show REL-1", "✅ verified")
	if img := deploymentImage(t, cp, "architect-api"); img != "prod-registry/architect-api:3.2.0" {
		t.Fatalf("image %s", img)
	}
	term.run("list --all", "No incidents.")
}

func replicasOf(t *testing.T, cp *kubetest.ControlPlane, name string) int32 {
	d, err := cp.Client.AppsV1().Deployments(relNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// TestCanaryReleaseByReplicas: the guide's canary, 5% → 25% → 100% of the
// replicas of two Deployments, each step's pods Ready on kwok before its
// watch, then promotion and the canary back to zero — every weight checked
// in the API server.
func TestCanaryReleaseByReplicas(t *testing.T) {
	cp, kubeconfig := releaseCluster(t, map[string]int32{"architect-api": 4, "architect-api-canary": 0})
	exp := newExporter(t)
	promURL := startPrometheus(t, "architect-api", exp.srv.URL)
	env := releaseEnv(t, kubeconfig, promURL, procedures(t, "1s", "3s"))
	term := startTerminal(t, env)
	weights := func(canary, stable int32) {
		t.Helper()
		if c, s := replicasOf(t, cp, "architect-api-canary"), replicasOf(t, cp, "architect-api"); c != canary || s != stable {
			t.Fatalf("canary %d, stable %d; want %d and %d", c, s, canary, stable)
		}
	}
	term.run("release start architect-api 3.2.0 canary", "🚀 REL-1 · architect-api 3.2.0 (canary)")
	term.signAll()
	term.tickAll(5)
	term.run("release step REL-1 1", "dry-run")
	term.confirm("confirmed")
	if img := deploymentImage(t, cp, "architect-api-canary"); img != "prod-registry/architect-api:3.2.0" {
		t.Fatalf("canary runs %s", img)
	}
	term.run("release step REL-1 2", "architect-api-canary 0 → 1, architect-api 4 → 3 replicas: 1 of 4 on the canary (25%, asked 5%)")
	term.expect("5% of 4 replicas rounds up to 1: 25% of the traffic goes to the canary") // said before it is confirmed
	weights(0, 4)                                                                         // the preview changed nothing
	term.confirm("confirmed")
	weights(1, 3)
	term.run("release step REL-1 3", "step 3/10: Wait for the canary's pods") // done at once or soon: the weight waited for its pod
	term.expect("no breach: the next step may run")
	term.run("release step REL-1 4", "the canary already has 1 of 4 replicas (25%)")                      // 25% of 4 is the one pod it has
	term.run("release step REL-1 5", "ok — architect-production/architect-api-canary rolled out: 1 of 1") // nothing changed: done at once
	term.expect("no breach: the next step may run")
	term.run("release step REL-1 6", "architect-api-canary 1 → 4, architect-api 3 → 0 replicas: 4 of 4 on the canary (100%, asked 100%)")
	term.confirm("confirmed")
	weights(4, 0)
	term.run("release step REL-1 7", "step 7/10: Wait for the canary's pods")
	term.expect("no breach: the next step may run")
	term.run("release step REL-1 8", "dry-run")
	term.confirm("confirmed")
	if img := deploymentImage(t, cp, "architect-api"); img != "prod-registry/architect-api:3.2.0" {
		t.Fatalf("stable runs %s after the promotion", img)
	}
	term.run("release step REL-1 9", "architect-api-canary 4 → 0, architect-api 0 → 4 replicas: 0 of 4 on the canary (0%, asked 0%)")
	term.confirm("confirmed")
	weights(0, 4)
	term.run("release step REL-1 10", "step 10/10: Wait for the stable Deployment's rollout")
	term.expect("verified: ") // the promotion watched too, after clean windows
	term.run("release show REL-1", "✅ verified")
	// the way back after the promotion: the stable Deployment's image from the start
	term.run("release rollback REL-1", "architect-api image prod-registry/architect-api:3.2.0 → prod-registry/architect-api:3.1.0")
	term.confirm("confirmed")
	term.run("release rollback REL-1 2", "skipped") // the canary is at 0 already
	term.run("release rollback REL-1 3", "waiting")
	term.expect("rolled back: every rollback step that acts on the cluster is done")
	if img := deploymentImage(t, cp, "architect-api"); img != "prod-registry/architect-api:3.1.0" {
		t.Fatalf("stable runs %s after the rollback", img)
	}
}
