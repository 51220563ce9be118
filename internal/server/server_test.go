package server_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitrep-oncall/sitrep/internal/server"
)

type fakeBackup struct {
	calls   int
	toAFile bool // every copy went to a file, not to the client
}

func (f *fakeBackup) Backup(w io.Writer) (int64, error) {
	f.calls++
	_, isFile := w.(*os.File)
	f.toAFile = (f.calls == 1 || f.toAFile) && isFile
	n, err := io.WriteString(w, "DB")
	return int64(n), err
}

func TestRoutes(t *testing.T) {
	ready := errors.New("database closed")
	var readyErr error
	backup := &fakeBackup{}
	s := server.New(server.Config{
		Gatherer:   prometheus.NewRegistry(),
		Checks:     []server.Check{{Name: "database", Fn: func(context.Context) error { return readyErr }}},
		Backup:     backup,
		AdminToken: "s3cret",
	})
	tests := []struct {
		name, method, path, remote, auth string
		before                           func()
		code                             int
		body                             string
	}{
		{"healthz", "GET", "/healthz", "127.0.0.1:5000", "", nil, 200, "ok"},
		{"ready", "GET", "/readyz", "127.0.0.1:5000", "", nil, 200, "ready"},
		{"not ready names the check", "GET", "/readyz", "127.0.0.1:5000", "", func() { readyErr = ready }, 503, "database: database closed"},
		{"metrics", "GET", "/metrics", "127.0.0.1:5000", "", nil, 200, ""},
		{"post to healthz", "POST", "/healthz", "127.0.0.1:5000", "", nil, 405, ""},
		{"backup from loopback without the token", "GET", "/admin/backup", "127.0.0.1:5000", "", nil, 403, "forbidden"},
		{"backup from loopback with a wrong token", "GET", "/admin/backup", "127.0.0.1:5000", "Bearer nope", nil, 403, "forbidden"},
		{"backup from loopback with the token", "GET", "/admin/backup", "127.0.0.1:5000", "Bearer s3cret", nil, 200, "DB"},
		{"backup from ::1 with the token", "GET", "/admin/backup", "[::1]:5000", "Bearer s3cret", nil, 200, "DB"},
		{"backup from afar without token", "GET", "/admin/backup", "10.1.2.3:5000", "", nil, 403, "forbidden"},
		{"backup from afar with a wrong token", "GET", "/admin/backup", "10.1.2.3:5000", "Bearer nope", nil, 403, "forbidden"},
		{"backup from afar with the token", "GET", "/admin/backup", "10.1.2.3:5000", "Bearer s3cret", nil, 200, "DB"},
		{"the scheme in any case", "GET", "/admin/backup", "10.1.2.3:5000", "bearer s3cret", nil, 200, "DB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.RemoteAddr = tt.remote
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
	if backup.calls != 4 {
		t.Errorf("backup ran %d times, want 4 (refusals must not run it)", backup.calls)
	}
	if !backup.toAFile {
		t.Error("the backup was copied straight to the client: a slow reader would hold the read transaction open")
	}
	// Without a configured token, nobody from afar gets in, even with an empty bearer.
	open := server.New(server.Config{Gatherer: prometheus.NewRegistry(), Backup: backup})
	req := httptest.NewRequest("GET", "/admin/backup", nil)
	req.RemoteAddr, req.Header["Authorization"] = "10.1.2.3:5000", []string{"Bearer "}
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("empty token accepted: %d", rec.Code)
	}
	// Without a token, loopback gets in — unless a proxy forwarded the request
	// (a sidecar, an ingress, kubectl port-forward: every caller is loopback).
	for _, h := range []string{"", "Forwarded", "X-Forwarded-For", "X-Real-Ip", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP",
		"X-Original-Forwarded-For", "X-Envoy-External-Address", "empty X-Forwarded-For"} {
		req := httptest.NewRequest("GET", "/admin/backup", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		want := 200
		switch {
		case h == "empty X-Forwarded-For": // present, even empty, it was forwarded
			req.Header["X-Forwarded-For"] = []string{""}
			want = 403
		case h != "":
			req.Header.Set(h, "for=203.0.113.9")
			want = 403
		}
		rec := httptest.NewRecorder()
		open.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("loopback with %q: %d, want %d", h, rec.Code, want)
		}
	}
}
