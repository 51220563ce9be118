// Command bot is Sitrep: an incident-response bot for Slack (socket mode)
// that also runs in a terminal with no Slack at all.
//
//	bot [serve]          run (terminal when no Slack tokens are set)
//	bot backup <file>    write a consistent copy of the database
//	bot postmortem export INC-7 [-format md|json] [-o file]
//	bot version          print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("usage")

const usage = `usage: bot [serve] [flags]     run Sitrep (in the terminal when no Slack tokens are set)
       bot backup <file>          write a consistent copy of the database (works while Sitrep runs)
       bot postmortem export INC-7 [-format md|json] [-o file]
                                  write an incident's postmortem (works while Sitrep runs)
       bot runbooks lint [path]   check a runbook directory or file strictly (exit status 1 on any problem)
       bot check [file]           verify a database file: every page, every record (exit status 1 on damage)
       bot migrate status         the schema migrations of a PostgreSQL SITREP_DB
       bot migrate copy -from A -to B
                                  copy every incident and timeline, bbolt ↔ PostgreSQL, and verify them
       bot version, bot --version print the version
Run "bot serve -h" for every setting: each is a flag and an environment variable, and may also
come from a file of KEY=value lines (-config or SITREP_CONFIG). "bot --version" prints the version.
`

// run is main without the process: tests call it directly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && (args[0] == "" || args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	if cmd == "serve" && len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd = "version"
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdin, stdout, stderr, getenv)
	case "backup":
		err = backup(ctx, args, stdout, stderr, getenv)
	case "postmortem":
		err = postmortemCLI(ctx, args, stdout, stderr, getenv)
	case "runbooks":
		err = runbooksCLI(args, stdout, stderr, getenv)
	case "check":
		err = checkCLI(ctx, args, stdout, stderr, getenv)
	case "migrate":
		err = migrateCLI(ctx, args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintln(stdout, "sitrep", version)
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "bot: unknown command %q\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "bot:", err)
	return 1
}
