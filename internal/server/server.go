// Package server is Sitrep's HTTP side: health and readiness probes,
// Prometheus metrics, the online backup, and (later) the webhook receivers.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/webhook"
)

// Check is one readiness condition.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
	// Warn: a failure is reported in /readyz's body but does not make it
	// fail (a Slack backlog must not take the webhook receivers out of service).
	Warn bool
}

// BackupSendTimeout bounds sending a spooled backup to a client.
const BackupSendTimeout = 10 * time.Minute

// DatabaseHeader names the database file an admin answer comes from.
const DatabaseHeader = "X-Sitrep-Database"

// Backuper writes a consistent copy of the database.
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// Config wires a Server.
type Config struct {
	Gatherer prometheus.Gatherer
	Checks   []Check
	Backup   Backuper
	// Database is the file this Sitrep holds, sent with every admin answer
	// (X-Sitrep-Database) so a command line asking about another file can
	// tell it reached the wrong Sitrep.
	Database   string
	AdminToken string // bearer token for /admin/*; set, every caller needs it; unset, only plain loopback callers get in
	Logger     *slog.Logger
	// Postmortem writes incident id's postmortem (for `bot postmortem export`
	// while Sitrep holds the database).
	Postmortem func(ctx context.Context, w io.Writer, id int64, format string) error
}

// Server is the HTTP server.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New builds the routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}))
	if cfg.Backup != nil {
		s.mux.HandleFunc("GET /admin/backup", s.backup)
	}
	if cfg.Postmortem != nil {
		s.mux.HandleFunc("GET /admin/postmortem/{id}", s.postmortem)
	}
	return s
}

// AddCheck adds a readiness condition; call it before serving.
func (s *Server) AddCheck(c Check) { s.cfg.Checks = append(s.cfg.Checks, c) }

// Handle adds a route (webhook receivers register here).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP makes the Server an http.Handler (for tests).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.recoverer(s.mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// recoverer turns a handler's panic into a 500 and a log line, so bad
// input never takes a connection (or a webhook sender's retry) down silently.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var failed, warned []string
	for _, c := range s.cfg.Checks {
		if err := c.Fn(ctx); err != nil {
			if c.Warn {
				warned = append(warned, c.Name+": "+err.Error())
			} else {
				failed = append(failed, c.Name+": "+err.Error())
			}
		}
	}
	detail := strings.Join(append(failed, warned...), "\n")
	if detail != "" {
		detail += "\n"
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n"+detail)
		return
	}
	io.WriteString(w, "ready\n"+detail)
}

// backup sends a consistent copy of the database (see adminAllowed for who
// may). The copy is spooled to a temporary file first, so the read
// transaction lasts as long as the disk takes, not as long as the client
// reads: a slow or stalled reader cannot hold up writers (bbolt must wait
// for every read transaction to grow the file). Sending has a deadline.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if !s.adminAllowed(r) {
		http.Error(w, s.forbidden("/admin/backup"), http.StatusForbidden)
		return
	}
	w.Header().Set(DatabaseHeader, s.cfg.Database)
	spool, err := os.CreateTemp("", "sitrep-backup-*")
	if err != nil {
		http.Error(w, "backup: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	size, err := s.cfg.Backup.Backup(spool)
	if err == nil {
		_, err = spool.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.cfg.Logger.Error("backup failed", "err", err)
		http.Error(w, "backup: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(BackupSendTimeout))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	n, err := io.Copy(w, spool)
	if err != nil {
		s.cfg.Logger.Error("backup not sent whole", "written", n, "of", size, "err", err)
		return
	}
	s.cfg.Logger.Info("backup served", "bytes", n, "remote", r.RemoteAddr)
}

func (s *Server) postmortem(w http.ResponseWriter, r *http.Request) {
	if !s.adminAllowed(r) {
		http.Error(w, s.forbidden("/admin/postmortem"), http.StatusForbidden)
		return
	}
	w.Header().Set(DatabaseHeader, s.cfg.Database)
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(r.PathValue("id")), "INC-"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "not an incident id", http.StatusBadRequest)
		return
	}
	var buf bytes.Buffer // an error must not follow a half-written 200
	if err := s.cfg.Postmortem(r.Context(), &buf, id, r.URL.Query().Get("format")); err != nil {
		code := http.StatusInternalServerError
		switch incidents.ErrorCode(err) {
		case incidents.ENotFound:
			code = http.StatusNotFound
		case incidents.EInvalid:
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Write(buf.Bytes())
}

// forbidden says why an admin call was refused, and what lets it in.
func (s *Server) forbidden(path string) string {
	if s.cfg.AdminToken != "" {
		return "forbidden: " + path + " needs the admin token (Authorization: Bearer <SITREP_ADMIN_TOKEN>)"
	}
	return "forbidden: " + path + " without SITREP_ADMIN_TOKEN is only for loopback callers whose request was not forwarded; set the token to call it from elsewhere"
}

// With SITREP_ADMIN_TOKEN set, every call needs it, loopback too (behind a
// sidecar, an ingress, a mesh or kubectl port-forward every caller is
// loopback). Without one, only a loopback caller with no forwarding headers
// is let in: a request a proxy forwarded is never taken for a local one.
func (s *Server) adminAllowed(r *http.Request) bool {
	if s.cfg.AdminToken != "" {
		return webhook.Bearer(r.Header.Get("Authorization"), s.cfg.AdminToken)
	}
	if webhook.Forwarded(r) {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
