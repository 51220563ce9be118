package kube_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/kube"
	"github.com/sitrep-oncall/sitrep/internal/prom"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// TestUnreachableOrSlowBackends: when the API server or Prometheus is down
// or hangs, a step fails with a clear message within its timeout.
func TestUnreachableOrSlowBackends(t *testing.T) {
	down := "http://127.0.0.1:" + itoa(freePort(t))
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer func() { close(hang); slow.Close() }()

	set := loadShipped(t)
	guard := runbooks.Guardrails{Operators: []string{"@ops"}, Namespaces: []string{ns}}
	ops := incidents.Actor{Name: "@ops"}
	for _, tt := range []struct {
		name, url, want string
	}{{"unreachable", down, "connection refused"}, {"slow", slow.URL, "deadline exceeded"}} {
		t.Run(tt.name, func(t *testing.T) {
			kc, err := kube.New(&rest.Config{Host: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			pc, err := prom.New(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			r := runbooks.NewRunner(kc, pc, guard)
			r.SetTimeout(500 * time.Millisecond)
			for _, step := range []int{2, 5, 12} { // a query, a read, an action's dry run
				start := time.Now()
				res := r.Run(context.Background(), runbooks.Request{Incident: &incidents.Incident{ID: 1}, Runbook: set.Get("high-error-rate"), Step: step, Actor: ops})
				if res.Outcome != runbooks.Failed || !strings.Contains(res.Summary, tt.want) {
					t.Errorf("step %d: %s — %s", step, res.Outcome, res.Summary)
				}
				if took := time.Since(start); took > 20*time.Second {
					t.Errorf("step %d hung for %s", step, took)
				}
			}
		})
	}
}
