package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// loadRunbooks reads SITREP_RUNBOOKS. A missing directory means no runbooks
// (a warning); a wrong file stops Sitrep with every problem listed.
func loadRunbooks(cfg config, log *slog.Logger) (*runbooks.Set, error) {
	dir := filepath.Clean(cfg.Runbooks)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		log.Warn("no runbooks: the directory does not exist (SITREP_RUNBOOKS)", "dir", dir)
		return nil, nil
	}
	set, err := runbooks.Load(os.DirFS(filepath.Dir(dir)), filepath.Base(dir), runbooks.Options{Namespaces: cfg.Namespaces})
	if err != nil {
		return nil, fmt.Errorf("runbooks in %s:\n%w\n(check them with: bot runbooks lint %s)", dir, err, dir)
	}
	for _, rb := range set.Runbooks() {
		for _, w := range rb.Warnings() {
			log.Warn("runbook "+w.String(), "hint", "bot runbooks lint "+dir)
		}
	}
	log.Info("runbooks loaded", "dir", dir, "count", len(set.Runbooks()))
	return set, nil
}

// loadProcedures reads SITREP_RELEASES as loadRunbooks reads the runbooks:
// a missing directory turns releases off (a warning), a wrong file stops
// Sitrep with every problem listed.
func loadProcedures(cfg config, log *slog.Logger) (*runbooks.Set, error) {
	dir := filepath.Clean(cfg.Releases)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		log.Warn("no release procedures: the directory does not exist (SITREP_RELEASES); release is off", "dir", dir)
		return nil, nil
	}
	set, err := runbooks.LoadProcedures(os.DirFS(filepath.Dir(dir)), filepath.Base(dir), runbooks.Options{Namespaces: cfg.Namespaces})
	if err != nil {
		return nil, fmt.Errorf("release procedures in %s:\n%w\n(check them with: bot runbooks lint --releases %s)", dir, err, dir)
	}
	if len(set.Runbooks()) == 0 {
		log.Warn("no release procedures in the directory (SITREP_RELEASES); release is off", "dir", dir)
		return nil, nil
	}
	log.Info("release procedures loaded", "dir", dir, "count", len(set.Runbooks()))
	return set, nil
}

// runbooksCLI is `bot runbooks lint [dir]`.
func runbooksCLI(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	release := len(args) > 1 && args[1] == "--releases"
	if release {
		args = append(args[:1], args[2:]...)
	}
	if len(args) == 0 || args[0] != "lint" || len(args) > 2 {
		fmt.Fprintln(stderr, "usage: bot runbooks lint [--releases] [dir or file]   (defaults to SITREP_RUNBOOKS, else ./runbooks; with --releases SITREP_RELEASES, else ./releases)")
		return errUsage
	}
	cfg, _, err := loadConfig("runbooks lint", nil, stderr, getenv)
	if err != nil {
		return err
	}
	dir, what, whats := cfg.Runbooks, "runbook", "runbooks"
	if release {
		dir, what, whats = cfg.Releases, "release procedure", "release procedures"
	}
	if len(args) == 2 {
		dir = args[1]
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("runbooks lint: %w", err) // the path as given
	}
	clean := filepath.Clean(dir)
	opt := runbooks.Options{Namespaces: cfg.Namespaces, Release: release}
	var count int
	var loaded []*runbooks.Runbook
	if st.Mode().IsRegular() { // one file
		var rb *runbooks.Runbook
		rb, err = runbooks.LoadFile(os.DirFS(filepath.Dir(clean)), filepath.Base(clean), opt)
		count = 1
		if rb != nil {
			loaded = append(loaded, rb)
		}
	} else {
		var set *runbooks.Set
		set, err = runbooks.Load(os.DirFS(filepath.Dir(clean)), filepath.Base(clean), opt)
		if set != nil {
			count, loaded = len(set.Runbooks()), set.Runbooks()
		}
	}
	show := func(p runbooks.Problem) { // with the path as given
		if st.Mode().IsRegular() {
			p.File = dir
		} else {
			p.File = filepath.Join(dir, strings.TrimPrefix(p.File, filepath.Base(clean)+"/"))
		}
		fmt.Fprintln(stdout, p)
	}
	warnings := 0
	for _, rb := range loaded {
		for _, w := range rb.Warnings() {
			show(w)
			warnings++
		}
	}
	var problems runbooks.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			show(p)
		}
		return fmt.Errorf("%s in %s", say.Count(len(problems), "problem", "problems"), dir)
	}
	if err != nil {
		return err
	}
	if count == 0 {
		fmt.Fprintf(stdout, "no %s files (*.yaml, *.yml) in %s: nothing to check\n", what, dir)
		return nil
	}
	if warnings > 0 {
		fmt.Fprintf(stdout, "%s in %s: they load, with %s\n", say.Count(count, what, whats), dir, say.Count(warnings, "warning", "warnings"))
		return nil
	}
	fmt.Fprintf(stdout, "%s in %s: all good\n", say.Count(count, what, whats), dir)
	return nil
}
