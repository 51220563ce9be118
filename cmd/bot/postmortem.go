package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/commands"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/prom"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// postmortemCLI is `bot postmortem export INC-7 [-format md|json] [-o file]`.
// It reads the database directly, or asks the running Sitrep when that one
// holds it.
func postmortemCLI(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	const use = "usage: bot postmortem export INC-7 [-format md|json] [-o file]"
	if len(args) < 2 || args[0] != "export" {
		fmt.Fprintln(stderr, use)
		return errUsage
	}
	// The id may come before the flags or after them (-o file INC-7).
	rest := args[1:]
	at := 0
	for i, a := range rest {
		if !strings.HasPrefix(a, "-") && (i == 0 || !strings.HasPrefix(rest[i-1], "-") || strings.Contains(rest[i-1], "=")) {
			at = i
			break
		}
	}
	id, err := incidents.ParseID(rest[at])
	if err != nil {
		fmt.Fprintln(stderr, incidents.ErrorMessage(err)+"\n"+use)
		return errUsage
	}
	cfg, _, err := loadConfig("postmortem export", append(slices.Clone(rest[:at]), rest[at+1:]...), stderr, getenv)
	if err != nil {
		return err
	}
	format, out := cfg.PMFormat, cfg.PMOut
	if format != "md" && format != "json" {
		return fmt.Errorf("unknown format %q: use md or json", format)
	}
	w, done, err := output(out, stdout)
	if err != nil {
		return err
	}
	counted := &countingWriter{w: w}
	w = counted
	if format != "json" { // JSON escapes controls itself
		vw := &visibleWriter{w: w}
		inner := done
		w, done = vw, func(err error) error {
			if ferr := vw.Flush(); err == nil {
				err = ferr
			}
			return inner(err)
		}
	}
	var store incidents.Store
	if postgres(cfg.DB) { // shared by design: read it directly, whatever runs
		var pg *pgstore.Store
		if pg, err = pgstore.Open(ctx, cfg.DB, pgstore.Options{}); err == nil {
			store = pg
			defer pg.Close()
		}
	} else {
		var bs *boltstore.Store
		if bs, err = boltstore.Open(cfg.DB, boltstore.Options{LockTimeout: 300 * time.Millisecond, ReadOnly: true}); err == nil {
			store = bs
			defer bs.Close()
		}
	}
	switch {
	case err == nil:
		svc := incidents.NewService(incidents.Config{Store: store})
		env := &commands.Env{SLOConfig: cfg.SLO}
		if cfg.PromURL != "" {
			pc, err := prom.New(cfg.PromURL)
			if err != nil {
				return err
			}
			env.SLO = pc
		}
		var inc *incidents.Incident
		if inc, err = svc.Get(ctx, id); err == nil {
			err = commands.WritePostmortem(ctx, w, svc, env, inc, format)
		}
	case errors.Is(err, boltstore.ErrLocked):
		err = fetchPostmortem(ctx, "http://"+cfg.Listen, cfg.AdminToken, cfg.DB, id, format, w)
	}
	if err = done(err); err == nil && out != "" && out != "-" {
		kind := map[string]string{"md": "Markdown", "json": "JSON"}[format]
		fmt.Fprintf(stdout, "Wrote the postmortem of %s to %s (%s, %s).\n", incidents.FormatID(id), out, kind, say.Count(int(counted.n), "byte", "bytes"))
	}
	return err
}

// elsewhere is the hint for a running Sitrep nobody answers for: it holds
// the file but listens on another address.
func elsewhere(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return " (if it listens elsewhere, give its address with SITREP_LISTEN or -listen)"
	}
	return ""
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// output is the file to write (atomically: temporary file, then rename) or stdout.
func output(path string, stdout io.Writer) (io.Writer, func(error) error, error) {
	if path == "" {
		return stdout, func(err error) error { return err }, nil
	}
	if w, closeFn, ok, err := directOutput(path, stdout); err != nil || ok {
		if err != nil {
			return nil, nil, err
		}
		return w, func(err error) error {
			if cerr := closeFn(); err == nil {
				err = cerr
			}
			return err
		}, nil
	}
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target // a link is followed, not replaced by a file of its own
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, err
	}
	return tmp, func(err error) error {
		if err == nil {
			err = tmp.Sync() // on disk before the rename makes it the file
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
		return err
	}, nil
}

func fetchPostmortem(ctx context.Context, base, token, db string, id int64, format string, w io.Writer) error {
	u := fmt.Sprintf("%s/admin/postmortem/%d?format=%s", base, id, url.QueryEscape(format))
	body, err := adminGet(ctx, u, token, db)
	if errors.Is(err, errWrongSitrep) {
		return err
	}
	var answer *answerError
	if errors.As(err, &answer) && answer.status == http.StatusNotFound {
		return incidents.Errorf(incidents.ENotFound, "%s", answer.msg) // the same sentence the file gives
	}
	if err != nil {
		return fmt.Errorf("the database is held by a running Sitrep, and asking it at %s failed: %w%s", base, err, elsewhere(err))
	}
	defer body.Close()
	_, err = io.Copy(w, body)
	return err
}
