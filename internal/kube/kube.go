// Package kube is runbooks.Cluster on client-go: rollout history, events,
// pod status and logs; restart, scale, rollout undo with kubectl's
// semantics and a Service selector switch, each with a server-side dry run.
// It is the only package that imports client-go. It uses client-go's dynamic
// client and converts to the few API types it reads: the typed clientset
// would register every API group at start-up (megabytes of resident memory).
package kube

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// The resources the adapter reads and changes.
var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	replicaSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	podsGVR        = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	eventsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	servicesGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

// Client talks to one cluster.
type Client struct {
	dyn     dynamic.Interface
	http    *http.Client // for pods/log, which is plain text
	host    string
	timeout time.Duration
}

var _ runbooks.Cluster = (*Client)(nil)

// New returns a client for a REST config. A step makes a few calls at once;
// client-go's default of 5 a second would make every click wait.
func New(cfg *rest.Config) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{dyn: dyn, http: hc, host: strings.TrimSuffix(cfg.Host, "/"), timeout: 15 * time.Second}, nil
}

// FromKubeconfig uses the file (KUBECONFIG), or the in-cluster
// ServiceAccount when path is empty.
func FromKubeconfig(path string) (*Client, error) {
	var cfg *rest.Config
	var err error
	if path == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	return New(cfg)
}

// into converts an unstructured object to its API type.
func into[T any](u *unstructured.Unstructured) (*T, error) {
	var t T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &t); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return &t, nil
}

func listInto[T any](l *unstructured.UnstructuredList) ([]T, error) {
	out := make([]T, 0, len(l.Items))
	for i := range l.Items {
		t, err := into[T](&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, nil
}

func (c *Client) deployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	u, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
	}
	return into[appsv1.Deployment](u)
}

func (c *Client) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

func dry(dryRun bool) []string {
	if dryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// Events returns the namespace's newest events first.
func (c *Client) Events(ctx context.Context, ns string, limit int) ([]runbooks.ClusterEvent, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	ul, err := c.dyn.Resource(eventsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events in %s: %w", ns, err)
	}
	events, err := listInto[corev1.Event](ul)
	if err != nil {
		return nil, err
	}
	out := make([]runbooks.ClusterEvent, 0, len(events))
	for _, e := range events {
		at := e.LastTimestamp.Time
		if at.IsZero() {
			at = e.EventTime.Time
		}
		if at.IsZero() {
			at = e.CreationTimestamp.Time
		}
		out = append(out, runbooks.ClusterEvent{At: at, Type: e.Type, Reason: e.Reason, Count: e.Count,
			Object: strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name, Message: e.Message})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// podsOf lists a deployment's pods, or the one named pod.
func (c *Client) podsOf(ctx context.Context, ns, deployment, pod string) ([]corev1.Pod, error) {
	if pod != "" {
		u, err := c.dyn.Resource(podsGVR).Namespace(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get pod %s/%s: %w", ns, pod, err)
		}
		p, err := into[corev1.Pod](u)
		if err != nil {
			return nil, err
		}
		return []corev1.Pod{*p}, nil
	}
	d, err := c.deployment(ctx, ns, deployment)
	if err != nil {
		return nil, err
	}
	return c.podsOfDeployment(ctx, d)
}

// podsOfDeployment lists the pods a deployment selects, by name.
func (c *Client) podsOfDeployment(ctx context.Context, d *appsv1.Deployment) ([]corev1.Pod, error) {
	ns, deployment := d.Namespace, d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", ns, deployment, err)
	}
	ul, err := c.dyn.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", ns, deployment, err)
	}
	pods, err := listInto[corev1.Pod](ul)
	if err != nil {
		return nil, err
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// Pods reports restarts, last state (OOMKilled?), readiness and limits.
func (c *Client) Pods(ctx context.Context, ns, deployment, pod string) ([]runbooks.PodInfo, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	pods, err := c.podsOf(ctx, ns, deployment, pod)
	if err != nil {
		return nil, err
	}
	out := make([]runbooks.PodInfo, 0, len(pods))
	for _, p := range pods {
		info := runbooks.PodInfo{Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, Ready: true}
		if len(p.Status.ContainerStatuses) == 0 {
			info.Ready = false
		}
		for _, cs := range p.Status.ContainerStatuses {
			info.Restarts += cs.RestartCount
			info.Ready = info.Ready && cs.Ready
			if t := cs.LastTerminationState.Terminated; t != nil {
				info.LastState = fmt.Sprintf("%s (exit %d) at %s", t.Reason, t.ExitCode, t.FinishedAt.UTC().Format("15:04:05"))
			}
		}
		var limits []string
		for _, ct := range p.Spec.Containers {
			var parts []string
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := ct.Resources.Limits[name]; ok {
					parts = append(parts, string(name)+" "+q.String())
				}
			}
			if len(parts) == 0 {
				parts = []string{"no limits"}
			}
			limits = append(limits, ct.Name+": "+strings.Join(parts, ", "))
		}
		info.Limits = strings.Join(limits, "; ")
		out = append(out, info)
	}
	return out, nil
}

// maxLogBytes bounds the log text one step returns.
const maxLogBytes = 256 << 10

// Logs returns the tail of the logs of a deployment's pods — the newest
// ReplicaSet's first, the newest pod first within it, as many as
// runbooks.LogPods — or of the one named pod; the previous container's
// when asked. A pod with nothing to read says why.
func (c *Client) Logs(ctx context.Context, q runbooks.LogQuery) ([]runbooks.PodLog, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var (
		pods     []corev1.Pod
		revision map[string]int64 // ReplicaSet name → revision; none for a named pod
		err      error
	)
	if q.Pod != "" {
		pods, err = c.podsOf(ctx, q.Namespace, "", q.Pod)
	} else {
		pods, revision, err = c.podsByRevision(ctx, q.Namespace, q.Deployment)
	}
	if err != nil {
		return nil, err
	}
	rev := func(p corev1.Pod) int64 {
		if o := metav1.GetControllerOf(&p); o != nil {
			return revision[o.Name]
		}
		return 0
	}
	sort.SliceStable(pods, func(i, j int) bool {
		if ri, rj := rev(pods[i]), rev(pods[j]); ri != rj {
			return ri > rj
		}
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
	tail := int64(cmp.Or(q.Tail, 100))
	var out []runbooks.PodLog
	for _, p := range pods[:min(len(pods), runbooks.LogPods)] {
		pl := runbooks.PodLog{Pod: p.Name, Revision: rev(p), Phase: string(p.Status.Phase)}
		if p.Spec.NodeName == "" {
			pl.NoLogs = fmt.Sprintf("%s, not scheduled to a node yet", p.Status.Phase)
			out = append(out, pl)
			continue
		}
		stream, err := c.podLog(ctx, q, p.Name, tail)
		if err != nil {
			if q.Pod != "" {
				return nil, fmt.Errorf("logs of %s/%s: %w", q.Namespace, p.Name, err)
			}
			// "container "api" in pod "x" is waiting to start: ContainerCreating",
			// without the pod's name, so pods with the same reason say it once
			pl.NoLogs = strings.ReplaceAll(err.Error(), fmt.Sprintf(" in pod %q", p.Name), "")
			out = append(out, pl)
			continue
		}
		pl.Lines, err = lastLines(stream, maxLogBytes/runbooks.LogPods, q.Contains)
		stream.Close()
		if err != nil {
			pl.NoLogs = "reading the log: " + err.Error()
		}
		out = append(out, pl)
	}
	return out, nil
}

// podsByRevision lists a deployment's pods and its ReplicaSets' revisions
// by name, from one read of the deployment.
func (c *Client) podsByRevision(ctx context.Context, ns, deployment string) ([]corev1.Pod, map[string]int64, error) {
	d, err := c.deployment(ctx, ns, deployment)
	if err != nil {
		return nil, nil, err
	}
	pods, err := c.podsOfDeployment(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	byRev, err := c.replicaSets(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	revision := make(map[string]int64, len(byRev))
	for n, rs := range byRev {
		revision[rs.Name] = n
	}
	return pods, revision, nil
}

// maxLogLine is where one log line is cut (a stack trace on one line, a
// binary blob).
const maxLogLine = 2048

// lastLines reads a log stream and keeps its newest lines within budget
// bytes — those containing contains, when set, so a filter looks as far
// back as the tail asked for — each cut at maxLogLine: the end of a log is
// what matters, and a huge log costs no more memory than the budget.
func lastLines(r io.Reader, budget int, contains string) ([]string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var lines []string
	size := 0
	for {
		line, err := br.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull)
		text := strings.TrimRight(string(line[:min(len(line), maxLogLine)]), "\r\n")
		for long { // the rest of an overlong line
			_, err = br.ReadSlice('\n')
			long = errors.Is(err, bufio.ErrBufferFull)
		}
		if len(line) > 0 && (contains == "" || strings.Contains(string(line), contains)) {
			if len(line) > maxLogLine {
				text += " …"
			}
			lines = append(lines, text)
			size += len(text)
			for size > budget && len(lines) > 1 {
				size -= len(lines[0])
				lines = lines[1:]
			}
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// podLog streams pods/log, which is plain text rather than an API object.
func (c *Client) podLog(ctx context.Context, q runbooks.LogQuery, pod string, tail int64) (io.ReadCloser, error) {
	v := url.Values{"tailLines": {strconv.FormatInt(tail, 10)}}
	if q.Container != "" {
		v.Set("container", q.Container)
	}
	if q.Previous {
		v.Set("previous", "true")
	}
	u := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/log?%s", c.host, url.PathEscape(q.Namespace), url.PathEscape(pod), v.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var status metav1.Status
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(body, &status) == nil && status.Message != "" {
			return nil, fmt.Errorf("%s", status.Message)
		}
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return resp.Body, nil
}

// Restart is kubectl rollout restart: a new pod-template annotation.
func (c *Client) Restart(ctx context.Context, ns, deployment string, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	return c.onDeployment(ctx, ns, deployment, a, func(d *appsv1.Deployment) (runbooks.Change, error) {
		if d.Spec.Paused {
			return runbooks.Change{}, fmt.Errorf("deployment %s/%s is paused: resume it before restarting", ns, deployment)
		}
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": d.ResourceVersion},
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
				"annotations": map[string]string{restartedAt: time.Now().UTC().Format(time.RFC3339)}}}}})
		if _, err := c.dyn.Resource(deploymentsGVR).Namespace(ns).Patch(ctx, deployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: dry(a.DryRun)}); err != nil {
			return runbooks.Change{}, fmt.Errorf("restart deployment %s/%s: %w", ns, deployment, err)
		}
		return runbooks.Change{Summary: fmt.Sprintf("restart of %s/%s: %s", ns, deployment, rollout(d))}, nil
	})
}

func replicas(d *appsv1.Deployment) int {
	if d.Spec.Replicas == nil {
		return 1
	}
	return int(*d.Spec.Replicas)
}

// rollout says what the deployment controller does when the template
// changes, from the Deployment's strategy: how many pods it starts at once
// and how many may be unavailable, as the controller resolves maxSurge
// (rounded up) and maxUnavailable (rounded down; both 0 means 1).
func rollout(d *appsv1.Deployment) string {
	n := replicas(d)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return fmt.Sprintf("all %d pods stopped, then %d new ones started (strategy Recreate): nothing serves in between", n, n)
	}
	def := intstr.FromString("25%")
	surgeOf, unavailOf := &def, &def
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		surgeOf, unavailOf = cmp.Or(ru.MaxSurge, surgeOf), cmp.Or(ru.MaxUnavailable, unavailOf)
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(surgeOf, n, true)
	unavail, _ := intstr.GetScaledValueFromIntOrPercent(unavailOf, n, false)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	unavail = min(unavail, n) // the controller never counts more pods unavailable than it has
	out := fmt.Sprintf("%s replaced in a rolling update, up to %d new at once above %d (maxSurge %s) and up to %d unavailable (maxUnavailable %s)",
		say.Count(n, "pod", "pods"), surge, n, surgeOf.String(), unavail, unavailOf.String())
	if unavail == n && n > 0 {
		out += ": every pod may be down at once, nothing serving meanwhile"
	}
	return out
}

// onDeployment reads a Deployment, refuses it when a confirmed change was
// previewed on another generation, and runs write, which makes the change
// with the read's resourceVersion as its precondition. The controllers'
// status writes move the resourceVersion without moving the generation: on
// a conflict it reads again and retries; a spec change since the preview
// ends in runbooks.ErrChanged. (client-go's retry.RetryOnConflict would
// turn a timeout into success: it treats context errors as an interruption
// and returns nil.)
func (c *Client) onDeployment(ctx context.Context, ns, name string, a runbooks.Apply, write func(d *appsv1.Deployment) (runbooks.Change, error)) (runbooks.Change, error) {
	for attempt := 0; ; attempt++ {
		d, err := c.deployment(ctx, ns, name)
		if err != nil {
			return runbooks.Change{}, err
		}
		generation := strconv.FormatInt(d.Generation, 10)
		if a.Version != "" && a.Version != generation {
			return runbooks.Change{}, fmt.Errorf("deployment %s/%s is at generation %s, the preview was of generation %s: %w", ns, name, generation, a.Version, runbooks.ErrChanged)
		}
		ch, err := write(d)
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return runbooks.Change{}, err
		}
		ch.Version = generation
		return ch, nil
	}
}

// Scale sets the replica count through the scale subresource.
func (c *Client) Scale(ctx context.Context, ns, deployment string, replicas int, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	change, err := c.onDeployment(ctx, ns, deployment, a, func(d *appsv1.Deployment) (runbooks.Change, error) {
		return c.scaleOnce(ctx, d, replicas, a.DryRun)
	})
	if err != nil {
		return runbooks.Change{}, fmt.Errorf("scale %s/%s: %w", ns, deployment, err)
	}
	return change, nil
}

func (c *Client) scaleOnce(ctx context.Context, d *appsv1.Deployment, replicas int, dryRun bool) (runbooks.Change, error) {
	res := c.dyn.Resource(deploymentsGVR).Namespace(d.Namespace)
	s, err := res.Get(ctx, d.Name, metav1.GetOptions{}, "scale")
	if err != nil {
		return runbooks.Change{}, fmt.Errorf("get scale: %w", err)
	}
	from, _, _ := unstructured.NestedInt64(s.Object, "spec", "replicas")
	if int(from) == replicas {
		return runbooks.Change{Summary: fmt.Sprintf("replicas already %d", from), Skipped: true}, nil
	}
	if err := unstructured.SetNestedField(s.Object, int64(replicas), "spec", "replicas"); err != nil {
		return runbooks.Change{}, err
	}
	s.SetResourceVersion(d.ResourceVersion) // the version whose generation was checked
	if _, err := res.Update(ctx, s, metav1.UpdateOptions{DryRun: dry(dryRun)}, "scale"); err != nil {
		return runbooks.Change{}, err
	}
	return runbooks.Change{Summary: fmt.Sprintf("replicas %d → %d: %s", from, replicas, scaling(d, int(from), replicas))}, nil
}

// scaling says what a new replica count does: pods started or stopped at
// once (scaling is not a rolling update), spread over the ReplicaSets of a
// rollout still in progress.
func scaling(d *appsv1.Deployment, from, to int) string {
	var what string
	switch {
	case to == 0:
		what = fmt.Sprintf("all %d pods stop: nothing serves", from)
	case to > from:
		what = fmt.Sprintf("%d more pods started at once", to-from)
	default:
		what = fmt.Sprintf("%d pods stopped at once", from-to)
	}
	if d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas < d.Status.Replicas {
		what += fmt.Sprintf(", spread over old and new pods (a rollout is in progress: %d of %d updated)", d.Status.UpdatedReplicas, d.Status.Replicas)
	}
	return what
}

// Switch patches a Service's selector (the blue-green switch).
// A Service has no generation: a confirmed switch needs the previewed
// resourceVersion, checked by the API server in the same patch.
func (c *Client) Switch(ctx context.Context, ns, service string, selector map[string]string, a runbooks.Apply) (runbooks.Change, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	u, err := c.dyn.Resource(servicesGVR).Namespace(ns).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return runbooks.Change{}, fmt.Errorf("get service %s/%s: %w", ns, service, err)
	}
	svc, err := into[corev1.Service](u)
	if err != nil {
		return runbooks.Change{}, err
	}
	changed := fmt.Errorf("service %s/%s was changed since the preview: %w", ns, service, runbooks.ErrChanged)
	if a.Version != "" && a.Version != svc.ResourceVersion {
		return runbooks.Change{}, changed
	}
	before := labels.Set(svc.Spec.Selector)
	after := labels.Set{}
	for k, v := range svc.Spec.Selector {
		after[k] = v
	}
	for k, v := range selector {
		after[k] = v
	}
	if labels.Equals(before, after) {
		return runbooks.Change{Summary: "selector already " + before.String(), Skipped: true, Version: svc.ResourceVersion}, nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": svc.ResourceVersion}, "spec": map[string]any{"selector": selector}})
	if _, err := c.dyn.Resource(servicesGVR).Namespace(ns).Patch(ctx, service, types.MergePatchType, patch, metav1.PatchOptions{DryRun: dry(a.DryRun)}); err != nil {
		if apierrors.IsConflict(err) {
			return runbooks.Change{}, changed
		}
		return runbooks.Change{}, fmt.Errorf("switch service %s/%s: %w", ns, service, err)
	}
	ch := runbooks.Change{Summary: fmt.Sprintf("selector %s → %s", before, after), Version: svc.ResourceVersion}
	ready, total, err := c.readyPods(ctx, ns, after)
	switch {
	case err != nil:
		ch.Warning = fmt.Sprintf("could not count the pods %s selects: %v", after, err)
	case ready == 0:
		ch.Warning = fmt.Sprintf("%s selects no ready pods (%d pods, 0 ready): after the switch, service %s/%s answers nothing", after, total, ns, service)
	default:
		ch.Summary += fmt.Sprintf(" (%d of %d pods ready)", ready, total)
	}
	return ch, nil
}

// readyPods counts the pods a selector picks in ns, and the ready ones.
func (c *Client) readyPods(ctx context.Context, ns string, sel labels.Set) (ready, total int, err error) {
	ul, err := c.dyn.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return 0, 0, err
	}
	pods, err := listInto[corev1.Pod](ul)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, total, nil
}
