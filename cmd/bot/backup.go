package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sitrep-oncall/sitrep/internal/say"
	"github.com/sitrep-oncall/sitrep/internal/server"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
)

// backup writes a consistent copy of the database to a file. When no Sitrep
// holds the database, it reads the file directly; when one does, it asks that
// Sitrep over HTTP (/admin/backup), which copies inside a read transaction.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, fs, err := loadConfig("backup", args, stderr, getenv)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: bot backup [-db file] [-listen addr] <backup-file>")
		return errUsage
	}
	dest := fs.Arg(0)
	if postgres(cfg.DB) {
		return errors.New("backup: SITREP_DB is PostgreSQL: back it up with pg_dump (or your provider's snapshots); bot backup copies a bbolt file")
	}
	if abs, _ := filepath.Abs(dest); abs != "" {
		if db, _ := filepath.Abs(cfg.DB); abs == db {
			return fmt.Errorf("backup: %s is the database itself; choose another file", dest)
		}
	}
	direct, closeDirect, isDirect, err := directOutput(dest, stdout)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if isDirect {
		defer closeDirect()
		stdout = stderr // the copy may be going to standard output: say what happened elsewhere
	}
	store, err := boltstore.Open(cfg.DB, boltstore.Options{LockTimeout: 300 * time.Millisecond, ReadOnly: true})
	if err == nil {
		defer store.Close()
		var n int64
		if isDirect {
			n, err = store.Backup(direct)
		} else {
			n, err = store.BackupFile(dest)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", cfg.DB, dest, n)
		return nil
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return err
	}
	n, err := backupOnline(ctx, "http://"+cfg.Listen+"/admin/backup", cfg.AdminToken, cfg.DB, dest, direct)
	if err != nil {
		return fmt.Errorf("%s is held by a running Sitrep, and asking it at %s for a backup failed: %w%s", cfg.DB, cfg.Listen, err, elsewhere(err))
	}
	fmt.Fprintf(stdout, "backed up %s from the running Sitrep at %s to %s (%d bytes)\n", cfg.DB, cfg.Listen, dest, n)
	return nil
}

// backupOnline copies the running Sitrep's database to dest (atomically), or
// into direct when it is a device, a FIFO or standard output.
func backupOnline(ctx context.Context, url, token, db, dest string, direct io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	body, err := adminGet(ctx, url, token, db)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if direct != nil {
		return io.Copy(direct, body)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A backup cut short is not a database: check it opens.
		err = verifyBackup(tmp.Name())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	return n, err
}

func verifyBackup(path string) error {
	s, err := boltstore.Open(path, boltstore.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		return fmt.Errorf("the copy is not a valid database: %w", err)
	}
	return s.Close()
}

// adminGet asks the running Sitrep for one of its /admin documents (the
// admin token for other hosts; loopback needs none) and returns the body of
// a 200, or the answer as an error.
func adminGet(ctx context.Context, url, token, db string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	held := resp.Header.Get(server.DatabaseHeader)
	if (held != "" || resp.StatusCode == http.StatusOK) && !sameFile(held, db) {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: the Sitrep answering at %s holds %s, not %s; point SITREP_LISTEN at the one that holds it", errWrongSitrep, req.URL.Host, orUnknown(held), absPath(db))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &answerError{status: resp.StatusCode, text: resp.Status, msg: strings.TrimSpace(string(msg))}
	}
	return resp.Body, nil
}

// answerError is a running Sitrep's refusal: its status and its words.
type answerError struct {
	status    int
	text, msg string
}

func (e *answerError) Error() string { return e.text + ": " + e.msg }

func orUnknown(s string) string {
	if s == "" {
		return "a database it does not name"
	}
	return s
}

// errWrongSitrep: the running Sitrep asked holds another database.
var errWrongSitrep = errors.New("wrong Sitrep")

func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// checkPagesOnly is set in the environment of the child that walks the pages.
const checkPagesOnly = "SITREP_CHECK_PAGES_ONLY"

// checkPagesApart runs bbolt's page check in a child process: on a badly
// damaged page, bbolt's checker can fault on a goroutine of its own, which
// ends the process — the child's, and bot check reports it.
func checkPagesApart(ctx context.Context, path string) []string {
	exe, err := os.Executable()
	if err != nil {
		return []string{"pages: not checked: " + err.Error()}
	}
	cmd := exec.CommandContext(ctx, exe, "check", path)
	cmd.Env = append(os.Environ(), checkPagesOnly+"=1")
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err = cmd.Run()
	var problems []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "pages: ") {
			problems = append(problems, l)
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != 1 || err != nil && !errors.As(err, &exit) {
		problems = append(problems, "pages: bbolt's check crashed on a damaged page (the file cannot be walked safely)")
	}
	return problems
}

// checkCLI is `bot check [file]`: bbolt's consistency check and every record
// decoded, for the file given or SITREP_DB.
func checkCLI(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, fs, err := loadConfig("check", args, stderr, getenv)
	if err != nil {
		return err
	}
	path := cfg.DB
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	} else if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: bot check [database-file]")
		return errUsage
	}
	if postgres(path) {
		return errors.New("check: that is PostgreSQL, which checks itself (pg_amcheck); bot check reads a bbolt file")
	}
	store, err := boltstore.Open(path, boltstore.Options{LockTimeout: 300 * time.Millisecond, ReadOnly: true})
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%s is held by a running Sitrep; check a copy instead: bot backup copy.db && bot check copy.db", path)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	if getenv(checkPagesOnly) == "1" { // the child: pages only, one problem a line
		problems, err := store.CheckPages(ctx)
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}
		if err != nil || len(problems) > 0 {
			return errors.Join(err, errors.New("pages damaged"))
		}
		return nil
	}
	problems := checkPagesApart(ctx, path)
	records, err := store.CheckRecords(ctx)
	if err != nil {
		return err
	}
	problems = append(problems, records...)
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "%s: every page and record is readable\n", path)
		return nil
	}
	for _, p := range problems {
		fmt.Fprintf(stdout, "%s: %s\n", path, p)
	}
	return fmt.Errorf("%s: %s; restore it from a backup (bot backup writes one)", path, say.Count(len(problems), "problem", "problems"))
}
