package runbooks

import (
	"context"
	"errors"
	"time"
)

// Cluster is what runbook steps read from and do to Kubernetes. The kube
// package implements it with client-go; every change takes a dry-run flag
// that asks the API server to validate and compute the change without
// storing it.
type Cluster interface {
	// RolloutHistory is newest first.
	RolloutHistory(ctx context.Context, namespace, deployment string) ([]Revision, error)
	Events(ctx context.Context, namespace string, limit int) ([]ClusterEvent, error)
	Pods(ctx context.Context, namespace, deployment, pod string) ([]PodInfo, error)
	// Logs is the tail of up to LogPods pods' logs, the newest
	// ReplicaSet's pods first (a named pod: that one).
	Logs(ctx context.Context, q LogQuery) ([]PodLog, error)
	Restart(ctx context.Context, namespace, deployment string, a Apply) (Change, error)
	Scale(ctx context.Context, namespace, deployment string, replicas int, a Apply) (Change, error)
	Undo(ctx context.Context, namespace, deployment string, revision int64, a Apply) (Change, error)
	Switch(ctx context.Context, namespace, service string, selector map[string]string, a Apply) (Change, error)
}

// Apply says how a change is made: as a server-side dry run, or for real.
// A real change made after a dry run carries the Version the dry run saw,
// and the cluster refuses it (ErrChanged) when the object's spec changed
// since — a confirmation acts on what was previewed or not at all.
type Apply struct {
	DryRun  bool
	Version string
}

// ErrChanged: the object is not the version a confirmed change was
// previewed on.
var ErrChanged = errors.New("changed since the preview")

// Revision is one entry of a deployment's rollout history.
type Revision struct {
	Number      int64
	Images      []string
	ChangeCause string
	Created     time.Time
	Current     bool
}

// ClusterEvent is a Kubernetes event.
type ClusterEvent struct {
	At                            time.Time
	Type, Reason, Object, Message string
	Count                         int32
}

// PodInfo is what matters about a pod during an incident.
type PodInfo struct {
	Name, Phase, Node string
	Ready             bool
	Restarts          int32
	LastState         string // "OOMKilled (exit 137) at 03:12:04"
	Limits            string // "api: cpu 500m, memory 256Mi"
}

// LogQuery selects log lines: the last Tail lines of each pod (the
// runner asks for more when it filters with Contains).
type LogQuery struct {
	Namespace, Deployment, Pod, Container string
	Previous                              bool
	Tail                                  int
	Contains                              string
}

// LogPods is how many pods a logs step reads.
const LogPods = 3

// PodLog is one pod's log tail.
type PodLog struct {
	Pod      string
	Revision int64  // its ReplicaSet's revision; 0 when not known
	Phase    string // Pending, Running, …
	Lines    []string
	// NoLogs says why there are no lines to read: "Pending, not scheduled
	// to a node yet", or what the API server answered.
	NoLogs string
}

// Change is what a Kubernetes action did, or would do in a dry run.
type Change struct {
	Summary string // "replicas 10 → 15", "image api:3.2.0 → api:3.1.0 (revision 2 → 1)"
	Skipped bool   // nothing to change: the object already is as asked
	// Warning is what the person confirming must know first: a switch to
	// a selector with no ready pods. The confirmation then asks again.
	Warning string
	// Version is the object's version the change was computed on: a
	// Deployment's generation (it moves with the spec, not with the
	// controllers' status writes), a Service's resourceVersion.
	Version string
	// Revision is the revision an undo goes to: "previous" resolved to a
	// number, so the confirmed undo goes exactly where the preview said.
	Revision int64
}

// Releaser is the Cluster's side of releases (kube.set_image,
// kube.wait_rollout, kube.weight, and which blue-green colour is live).
type Releaser interface {
	// SetImage sets one container's image (the only one when container is
	// empty), as kubectl set image does.
	SetImage(ctx context.Context, namespace, deployment, container, image string, a Apply) (Change, error)
	// Weight gives the canary percent of the replicas the two Deployments
	// have together, and the stable one the rest: a Service selecting both
	// sends them traffic in that share.
	Weight(ctx context.Context, namespace, canary, stable string, percent int, a Apply) (Change, error)
	// Rollout is where the Deployment's rollout is, as kubectl rollout
	// status reads it from its status and conditions.
	Rollout(ctx context.Context, namespace, deployment string) (RolloutState, error)
	// Selector is a Service's selector.
	Selector(ctx context.Context, namespace, service string) (map[string]string, error)
}

// RolloutState is a Deployment's rollout progress.
type RolloutState struct {
	Done    bool   // every replica updated and available
	Failed  string // the controller gave up (ProgressDeadlineExceeded), and why
	Summary string // "3 of 4 updated replicas available"
	Images  []string
	// Containers are the template's images by container name.
	Containers map[string]string
}
