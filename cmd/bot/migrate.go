package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/boltstore"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/pgstore"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/say"
)

// migrateCLI is `bot migrate status` (a PostgreSQL database's schema) and
// `bot migrate copy -from A -to B` (every incident and timeline from one
// database to another, bbolt ↔ PostgreSQL, verified).
func migrateCLI(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: bot migrate status | bot migrate copy -from <file or postgres://…> -to <file or postgres://…>")
		return errUsage
	}
	switch args[0] {
	case "status":
		cfg, _, err := loadConfig("migrate status", args[1:], stderr, getenv)
		if err != nil {
			return err
		}
		if !postgres(cfg.DB) {
			fmt.Fprintf(stdout, "%s is a bbolt file: its schema is the file's own (bot check reads it); migrations are PostgreSQL's\n", cfg.DB)
			return nil
		}
		s, err := pgstore.Open(ctx, cfg.DB, pgstore.Options{Inspect: true}) // looks, applies nothing
		if err != nil {
			return err
		}
		defer s.Close()
		ms, err := s.Migrations(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", redact(cfg.DB))
		for _, m := range ms {
			at := "not applied"
			if !m.AppliedAt.IsZero() {
				at = "applied " + say.Stamp(m.AppliedAt)
			}
			fmt.Fprintf(stdout, "  %04d %-20s %s\n", m.Version, m.Name, at)
		}
		return nil
	case "copy":
		fs := flag.NewFlagSet("migrate copy", flag.ContinueOnError)
		fs.SetOutput(stderr)
		from := fs.String("from", "", "the database to copy: a bbolt file or a postgres:// URL")
		to := fs.String("to", "", "the empty database to copy into: a bbolt file or a postgres:// URL")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if *from == "" || *to == "" || *from == *to {
			fmt.Fprintln(stderr, "usage: bot migrate copy -from <file or postgres://…> -to <file or postgres://…> (two different databases; stop Sitrep first)")
			return errUsage
		}
		n, events, rels, err := copyDatabase(ctx, *from, *to)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "copied %s, %s and %s from %s to %s; counts and every timeline verified\n",
			say.Count(n, "incident", "incidents"), say.Count(events, "event", "events"), say.Count(rels, "release", "releases"), redact(*from), redact(*to))
		return nil
	}
	fmt.Fprintf(stderr, "bot migrate: unknown command %q (status or copy)\n", args[0])
	return errUsage
}

type copyable interface {
	incidents.Store
	incidents.Importer
	releases.Store
	ImportRelease(ctx context.Context, r *releases.Release) error
	Close() error
}

func openForCopy(ctx context.Context, db string) (copyable, error) {
	if postgres(db) {
		return pgstore.Open(ctx, db, pgstore.Options{})
	}
	s, err := boltstore.Open(db, boltstore.Options{LockTimeout: time.Second})
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, fmt.Errorf("%s is held by a running Sitrep: stop it first, so nothing changes while it is copied", db)
	}
	return s, err
}

// copyDatabase copies every incident with its timeline (one timeline in
// memory at a time), then reads both sides back: the same incidents, and
// each timeline the same event for event (a digest of each, streamed).
// Effects still pending, dedup keys and alert memos are not copied: stop
// Sitrep with its outbox drained (/readyz), and copy.
func copyDatabase(ctx context.Context, from, to string) (int, int, int, error) {
	src, err := openForCopy(ctx, from)
	if err != nil {
		return 0, 0, 0, err
	}
	defer src.Close()
	dst, err := openForCopy(ctx, to)
	if err != nil {
		return 0, 0, 0, err
	}
	defer dst.Close()
	n, events, err := copyIncidents(ctx, src, dst, to)
	if err != nil {
		return 0, 0, 0, err
	}
	rels, err := copyReleases(ctx, src, dst)
	return n, events, rels, err
}

// copyReleases copies every release (one record each, its timeline inside)
// with its id, and reads them back.
func copyReleases(ctx context.Context, src, dst copyable) (int, error) {
	all, err := src.ListReleases(ctx, releases.Filter{})
	if err != nil {
		return 0, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if err := dst.ImportRelease(ctx, all[i]); err != nil {
			return 0, fmt.Errorf("copy %s: %w", all[i].Key(), err)
		}
	}
	for _, r := range all {
		got, err := dst.GetRelease(ctx, r.ID)
		if err != nil {
			return 0, fmt.Errorf("verify %s: %w", r.Key(), err)
		}
		x, _ := json.Marshal(r)
		y, _ := json.Marshal(got)
		if string(x) != string(y) {
			return 0, fmt.Errorf("verify: %s differs after the copy", r.Key())
		}
	}
	return len(all), nil
}

func copyIncidents(ctx context.Context, src, dst copyable, to string) (int, int, error) {
	if have, err := dst.List(ctx, incidents.Filter{All: true, Limit: 1}); err != nil || len(have) > 0 {
		if err == nil {
			err = fmt.Errorf("%s already has incidents: copy into an empty database", redact(to))
		}
		return 0, 0, err
	}
	all, err := src.List(ctx, incidents.Filter{All: true})
	if err != nil {
		return 0, 0, err
	}
	events := 0
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		inc := all[i]
		var tl []incidents.Event
		if err := src.Timeline(ctx, inc.ID, func(ev incidents.Event) error { tl = append(tl, ev); return nil }); err != nil {
			return 0, 0, fmt.Errorf("read %s: %w", inc.Key(), err)
		}
		if err := dst.Import(ctx, inc, tl); err != nil {
			return 0, 0, fmt.Errorf("copy %s: %w", inc.Key(), err)
		}
		events += len(tl)
	}
	copied, err := dst.List(ctx, incidents.Filter{All: true})
	if err != nil {
		return 0, 0, err
	}
	if len(copied) != len(all) {
		return 0, 0, fmt.Errorf("verify: %d incidents copied of %d", len(copied), len(all))
	}
	for _, inc := range all {
		a, na, err := digest(ctx, src, inc.ID)
		if err != nil {
			return 0, 0, err
		}
		b, nb, err := digest(ctx, dst, inc.ID)
		if err != nil {
			return 0, 0, err
		}
		got, err := dst.Get(ctx, inc.ID)
		if err != nil {
			return 0, 0, err
		}
		x, _ := json.Marshal(inc)
		y, _ := json.Marshal(got)
		if a != b || na != nb || string(x) != string(y) {
			return 0, 0, fmt.Errorf("verify: %s differs after the copy (%d events there, %d here)", inc.Key(), na, nb)
		}
		// the indexes too: every link and war room finds the same incident on both sides
		for system, ref := range inc.Links {
			if err := sameOwner(ctx, src, dst, system, ref); err != nil {
				return 0, 0, err
			}
		}
		for _, l := range inc.Aliases {
			if err := sameOwner(ctx, src, dst, l.System, l.Ref); err != nil {
				return 0, 0, err
			}
		}
		if inc.Channel != "" {
			x, _ := src.ByChannel(ctx, inc.Channel)
			y, _ := dst.ByChannel(ctx, inc.Channel)
			if x != y {
				return 0, 0, fmt.Errorf("verify: war room %s is %s's there and %s's here", inc.Channel, incidents.FormatID(x), incidents.FormatID(y))
			}
		}
	}
	return len(all), events, nil
}

// digest is a hash of an incident's timeline, event by event, and its length.
func digest(ctx context.Context, s incidents.Store, id int64) (string, int, error) {
	var h hash.Hash = sha256.New()
	n := 0
	err := s.Timeline(ctx, id, func(ev incidents.Event) error {
		b, _ := json.Marshal(ev)
		h.Write(b)
		n++
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil)), n, err
}

func sameOwner(ctx context.Context, src, dst incidents.Store, system, ref string) error {
	x, _ := src.ByLink(ctx, system, ref)
	y, _ := dst.ByLink(ctx, system, ref)
	if x != y {
		return fmt.Errorf("verify: %s %s leads to %s there and %s here", system, ref, incidents.FormatID(x), incidents.FormatID(y))
	}
	return nil
}
