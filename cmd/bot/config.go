package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/say"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// config is everything Sitrep reads at start.
type config struct {
	DB          string
	Listen      string
	LockTimeout time.Duration
	Console     string // auto, on, off
	User        string
	LogLevel    slog.Level
	AdminToken  string
	SlackBot    string
	SlackApp    string
	SlackAPI    string
	Responders  []string
	Announce    string
	SlackScale  float64
	PDSecrets   []string
	PDToken     string
	PDFrom      string
	PDAPI       string
	AMToken     string
	AMOpen      bool // SITREP_ALERTMANAGER_UNAUTHENTICATED: something in front authenticates
	PromURL     string
	SLO         slo.Config
	// UpdateCadence overrides the severities' update cadences.
	UpdateCadence map[incidents.Severity]time.Duration
	MergeGrace    time.Duration // a merged duplicate's war room is archived this long after the merge
	Spool         string        // with PostgreSQL: the local file that keeps Slack envelopes while the database is down
	Dashboards    []dashboard   // SITREP_DASHBOARDS: bookmarked in the war rooms of their service
	// The public status page and its subscribers.
	StatusListen, StatusTitle string
	StatusComponents          []string
	StatusWebhooks            []string
	StatusSecret              string
	PMFormat                  string // postmortem export
	PMOut                     string
	Runbooks                  string
	Releases                  string              // the release procedures' directory
	Signers                   map[string][]string // sign-off role → who may sign for it
	ReleaseChannel            string              // where release threads go (Slack)
	Namespaces                []string
	Operators                 []string
	Kubeconfig                string
	KubeInPod                 bool // KUBERNETES_SERVICE_HOST is set: the in-cluster config applies
	GraphDir                  string
}

// slack reports whether both Slack tokens are set.
func (c config) slack() bool { return c.SlackBot != "" && c.SlackApp != "" }

// console reports whether the terminal adapter runs.
func (c config) console() bool {
	switch c.Console {
	case "on":
		return true
	case "off":
		return false
	}
	return !c.slack()
}

// setting is one configuration value: its flag, its environment variable,
// its default, what it means, and how it is read into the config. This one
// table makes the flags, `bot serve -h`, the config file and the README's
// configuration table (TestREADMEConfigurationTable), so they cannot drift.
type setting struct {
	flag, env string
	def       string // the default value ("" for none)
	defDoc    string // the default as the README says it, when not `def`
	doc       string
	secret    bool // never shown; prefer the environment to a flag, which ps shows
	set       func(c *config, v string) error
}

// settings are every setting, in the README's order. The conventional
// variables of other tools (SLACK_*, PAGERDUTY_*, PROMETHEUS_URL,
// KUBECONFIG) keep their names; Sitrep's own are SITREP_*.
var settings = []setting{
	{flag: "db", env: "SITREP_DB", def: "sitrep.db", doc: "the bbolt database file — its history (`sitrep.history`) and, in the terminal, its log (`sitrep.log`) go beside it — or a PostgreSQL URL (`postgres://user:password@host/db?sslmode=verify-full`) for two or more replicas sharing one database",
		set: func(c *config, v string) error { c.DB = v; return nonEmpty(v) }},
	{flag: "spool", env: "SITREP_SPOOL", defDoc: "`sitrep-spool-<hash of SITREP_DB and SITREP_LISTEN>.db` in the temporary directory", doc: "with a PostgreSQL `SITREP_DB` and Slack: a local bbolt file that keeps the Slack envelopes PostgreSQL cannot take (down, failing over), so they are acknowledged all the same and done once it is back",
		set: func(c *config, v string) error { c.Spool = v; return nil }},
	{flag: "listen", env: "SITREP_LISTEN", def: "127.0.0.1:8080", doc: "HTTP address for `/healthz`, `/readyz`, `/metrics`, `/admin/*` and the webhooks. In the terminal, a busy port is a warning, not a failure",
		set: func(c *config, v string) error { c.Listen = v; return nil }},
	{flag: "console", env: "SITREP_CONSOLE", def: "auto", doc: "the terminal adapter: `auto` (on unless both Slack tokens are set), `on`, `off` (headless)",
		set: func(c *config, v string) error {
			switch strings.ToLower(v) {
			case "auto", "on", "off":
				c.Console = strings.ToLower(v)
			case "true", "1", "yes":
				c.Console = "on"
			case "false", "0", "no":
				c.Console = "off"
			default:
				return errors.New("use auto, on or off")
			}
			return nil
		}},
	{flag: "user", env: "SITREP_USER", defDoc: "`$USER`", doc: "who you are in the terminal (`@name`)",
		set: func(c *config, v string) error {
			c.User = "@" + strings.TrimPrefix(v, "@")
			return nil
		}},
	{flag: "log-level", env: "SITREP_LOG_LEVEL", defDoc: "`info` (`warn` in the terminal)", doc: "`debug`, `info`, `warn`, `error`; logs go to stderr, or in an interactive terminal to the log file beside the database",
		set: func(c *config, v string) error {
			if v == "" {
				return nil
			}
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("use debug, info, warn or error")
			}
			return nil
		}},
	{flag: "lock-timeout", env: "SITREP_LOCK_TIMEOUT", def: "2s", doc: "how long to wait for a database held by another process",
		set: func(c *config, v string) (err error) { c.LockTimeout, err = positiveDuration(v); return err }},
	{flag: "admin-token", env: "SITREP_ADMIN_TOKEN", secret: true, doc: "bearer token for `/admin/*` (backup, postmortem export). When set, every call needs it, loopback too — behind a sidecar, an ingress or `kubectl port-forward` every caller is loopback. Unset, only loopback callers whose request carries no forwarding header at all (`Forwarded`, `X-Forwarded-*`, `X-Real-Ip`, `Via`, `True-Client-Ip`, `CF-Connecting-Ip`, `X-Envoy-External-Address`…, even empty) get in; a proxy that adds none (a plain TCP tunnel) is indistinguishable from a local caller, so set the token whenever anything forwards to Sitrep. `bot backup` and `bot postmortem export` send it",
		set: func(c *config, v string) error { c.AdminToken = v; return nil }},
	{flag: "slack-bot-token", env: "SLACK_BOT_TOKEN", secret: true, doc: "with `SLACK_APP_TOKEN`: Sitrep connects to Slack in socket mode (and the terminal is off unless `SITREP_CONSOLE=on`)",
		set: func(c *config, v string) error { c.SlackBot = v; return nil }},
	{flag: "slack-app-token", env: "SLACK_APP_TOKEN", secret: true, doc: "the app-level token (`xapp-…`) socket mode connects with",
		set: func(c *config, v string) error { c.SlackApp = v; return nil }},
	{flag: "slack-api-url", env: "SLACK_API_URL", defDoc: "`https://slack.com/api/`", doc: "the Web API base — and so `apps.connections.open` — for a Slack-compatible server",
		set: func(c *config, v string) error { c.SlackAPI = v; return nil }},
	{flag: "announce-channel", env: "SITREP_ANNOUNCE_CHANNEL", doc: "channel id where new P1/P2 incidents and their status updates are announced",
		set: func(c *config, v string) error { c.Announce = v; return nil }},
	{flag: "responders", env: "SITREP_RESPONDERS", doc: "comma-separated user ids invited to every war room",
		set: func(c *config, v string) error { c.Responders = list(v); return nil }},
	{flag: "slack-rate-scale", env: "SITREP_SLACK_RATE_SCALE", def: "1", doc: "multiplies Slack's rate tiers; only for load tests against a test server",
		set: func(c *config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				return errors.New("use a positive number")
			}
			c.SlackScale = f
			return nil
		}},
	{flag: "pagerduty-webhook-secrets", env: "PAGERDUTY_WEBHOOK_SECRETS", secret: true, doc: "comma-separated webhook signing secrets (several during a rotation); without them `/webhooks/pagerduty` refuses everything",
		set: func(c *config, v string) error { c.PDSecrets = list(v); return nil }},
	{flag: "pagerduty-token", env: "PAGERDUTY_TOKEN", secret: true, doc: "with `PAGERDUTY_FROM`: acknowledging, resolving and notes in Sitrep are done in PagerDuty too",
		set: func(c *config, v string) error { c.PDToken = v; return nil }},
	{flag: "pagerduty-from", env: "PAGERDUTY_FROM", doc: "the email of the PagerDuty user Sitrep acts as",
		set: func(c *config, v string) error { c.PDFrom = v; return nil }},
	{flag: "pagerduty-api-url", env: "PAGERDUTY_API_URL", defDoc: "`https://api.pagerduty.com`", doc: "the REST API base (for a test server)",
		set: func(c *config, v string) error { c.PDAPI = v; return nil }},
	{flag: "alertmanager-token", env: "SITREP_ALERTMANAGER_TOKEN", secret: true, doc: "when set, `/webhooks/alertmanager` needs `Authorization: Bearer <token>`. Required when `SITREP_LISTEN` is not a loopback address: Sitrep refuses to start and says how to set it",
		set: func(c *config, v string) error { c.AMToken = v; return nil }},
	{flag: "alertmanager-unauthenticated", env: "SITREP_ALERTMANAGER_UNAUTHENTICATED", defDoc: "unset", doc: "`1`: take Alertmanager webhooks without a token on any address (something in front of Sitrep authenticates)",
		set: func(c *config, v string) error { c.AMOpen = v == "1" || strings.EqualFold(v, "true"); return nil }},
	{flag: "prometheus-url", env: "PROMETHEUS_URL", doc: "Prometheus for runbook queries, `slo` and the error budget in postmortems",
		set: func(c *config, v string) error { c.PromURL = v; return nil }},
	{flag: "update-cadence", env: "SITREP_UPDATE_CADENCE", def: "P1=30m,P2=1h,P3=4h,P4=off", doc: "how long an acknowledged incident may go without a status update before its lead is nudged (with a Post update button); a level left out keeps its default",
		set: func(c *config, v string) (err error) {
			c.UpdateCadence, err = incidents.ParseUpdateCadence(v)
			return err
		}},
	{flag: "dashboards", env: "SITREP_DASHBOARDS", doc: "comma-separated `service=https://…` dashboards, bookmarked in the war room of each incident of that service (a service may have several); a runbook's own page is its `url:`",
		set: func(c *config, v string) (err error) {
			c.Dashboards, err = parseDashboards(v)
			return err
		}},
	{flag: "status-listen", env: "SITREP_STATUS_LISTEN", doc: "address for the public status page (`/status`, `/status.json`, `/status/feed.atom`, `/status/incidents/INC-n`), apart from `SITREP_LISTEN` so webhooks, metrics and admin are never exposed with it; unset, no status page",
		set: func(c *config, v string) error { c.StatusListen = v; return nil }},
	{flag: "status-title", env: "SITREP_STATUS_TITLE", def: "Status", doc: "the status page's heading (your product's name: \"Acme status\")",
		set: func(c *config, v string) error { c.StatusTitle = v; return nil }},
	{flag: "status-components", env: "SITREP_STATUS_COMPONENTS", defDoc: "the runbooks' services", doc: "comma-separated services the status page shows, each operational or degraded / partial / major outage from the published incidents of that service, with 90 days of history",
		set: func(c *config, v string) error { c.StatusComponents = list(v); return nil }},
	{flag: "status-webhooks", env: "SITREP_STATUS_WEBHOOKS", doc: "comma-separated URLs that receive each public update as a signed JSON POST (through the outbox: retried until they answer 2xx, across restarts)",
		set: func(c *config, v string) (err error) {
			c.StatusWebhooks = list(v)
			for _, u := range c.StatusWebhooks {
				if !runbooks.WebLink(u) {
					return fmt.Errorf("%q is not an http(s) address", u)
				}
			}
			return nil
		}},
	{flag: "status-webhook-secret", env: "SITREP_STATUS_WEBHOOK_SECRET", secret: true, doc: "the key of the subscriber webhooks' `X-Sitrep-Signature` (HMAC-SHA256 of `<X-Sitrep-Timestamp>.<body>`); required with `SITREP_STATUS_WEBHOOKS`",
		set: func(c *config, v string) error { c.StatusSecret = v; return nil }},
	{flag: "merge-grace", env: "SITREP_MERGE_GRACE", def: "1h", doc: "how long a merged duplicate's war room stays open, pointing to the incident it was merged into, before Sitrep archives it",
		set: func(c *config, v string) (err error) {
			c.MergeGrace, err = time.ParseDuration(v)
			if err == nil && c.MergeGrace <= 0 {
				err = errors.New("give a positive duration, like 1h or 30m")
			}
			return err
		}},
	{flag: "slo-target", env: "SITREP_SLO_TARGET", def: "0.9995", doc: "availability objective (also `99.95%`)",
		set: func(c *config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if strings.HasSuffix(v, "%") {
				f /= 100
			}
			if err != nil || f <= 0 || f >= 1 {
				return errors.New("use e.g. 0.9995 or 99.95%")
			}
			c.SLO.Target = f
			return nil
		}},
	{flag: "slo-window", env: "SITREP_SLO_WINDOW", def: "30d", doc: "the SLO window: days and hours (`30d`, `1d12h`, `720h`; budget: 22 minutes a month at 99.95%)",
		set: func(c *config, v string) error {
			d, err := say.ParseDuration(v)
			if err != nil || d < time.Hour {
				return errors.New("use e.g. 30d, 1d12h or 720h (an hour at least)")
			}
			c.SLO.Window = d
			return nil
		}},
	{flag: "slo-total-query", env: "SITREP_SLO_TOTAL_QUERY", defDoc: "the seed's `http_requests_total`", doc: "requests over `$window`",
		set: func(c *config, v string) error { return query(&c.SLO.TotalQuery, v) }},
	{flag: "slo-failed-query", env: "SITREP_SLO_FAILED_QUERY", defDoc: "the same with `status=~\"5..\"`", doc: "failed requests over `$window`",
		set: func(c *config, v string) error { return query(&c.SLO.FailedQuery, v) }},
	{flag: "slo-p95-query", env: "SITREP_SLO_P95_QUERY", defDoc: "`histogram_quantile(0.95, …)`", doc: "P95 latency over `http_request_duration_seconds_bucket`",
		set: func(c *config, v string) error { return query(&c.SLO.LatencyP95, v) }},
	{flag: "slo-p99-query", env: "SITREP_SLO_P99_QUERY", defDoc: "`histogram_quantile(0.99, …)`", doc: "P99 latency",
		set: func(c *config, v string) error { return query(&c.SLO.LatencyP99, v) }},
	{flag: "slo-coverage-query", env: "SITREP_SLO_COVERAGE_QUERY", defDoc: "`count_over_time(sum(http_requests_total)[$window:1m])`", doc: "the minutes of `$window` that have data: a window only partly covered is said (\"over the 3h of data in the last 30d\")",
		set: func(c *config, v string) error { return query(&c.SLO.CoverageQuery, v) }},
	{flag: "slo-p95-target", env: "SITREP_SLO_P95_TARGET", def: "100ms", doc: "P95 latency objective (the seed's SLI table)",
		set: func(c *config, v string) (err error) { c.SLO.P95Target, err = positiveDuration(v); return err }},
	{flag: "slo-p99-target", env: "SITREP_SLO_P99_TARGET", def: "300ms", doc: "P99 latency objective",
		set: func(c *config, v string) (err error) { c.SLO.P99Target, err = positiveDuration(v); return err }},
	{flag: "runbooks", env: "SITREP_RUNBOOKS", def: "runbooks", doc: "the runbook directory; a missing one means no runbooks (a warning), a wrong file stops Sitrep with every problem listed",
		set: func(c *config, v string) error { c.Runbooks = v; return nil }},
	{flag: "releases", env: "SITREP_RELEASES", def: "releases", doc: "the release procedures' directory (`blue-green.yaml`, `canary.yaml`, `rolling.yaml`); a missing one turns `release` off (a warning), a wrong file stops Sitrep with every problem listed",
		set: func(c *config, v string) error { c.Releases = v; return nil }},
	{flag: "release-signers", env: "SITREP_RELEASE_SIGNERS", doc: "who may sign each sign-off role of a release: `cto=U0CTO,devops=S0DEVOPS,engineering=U0A U0B` (Slack user ids, user groups or terminal names, space-separated within a role)",
		set: func(c *config, v string) error { var err error; c.Signers, err = signers(v); return err }},
	{flag: "release-channel", env: "SITREP_RELEASE_CHANNEL", doc: "the Slack channel (id) where each release gets a thread: its header kept current, and the watch's findings (rollout done, breach, verified, checkpoints) posted in it; unset, releases have no Slack thread (the replies still answer the asker)",
		set: func(c *config, v string) error { c.ReleaseChannel = v; return nil }},
	{flag: "namespaces", env: "SITREP_NAMESPACES", doc: "comma-separated namespaces runbooks may target; actions anywhere else are refused (and lint checks them)",
		set: func(c *config, v string) error { c.Namespaces = list(v); return nil }},
	{flag: "operators", env: "SITREP_OPERATORS", doc: "comma-separated users who may run actions: Slack user ids (`U024BE7LH`), Slack user groups (`S0614TZR7`: their members, looked up every few minutes) or terminal names (`@alice`)",
		set: func(c *config, v string) error { c.Operators = list(v); return nil }},
	{flag: "kubeconfig", env: "KUBECONFIG", defDoc: "in-cluster when `KUBERNETES_SERVICE_HOST` is set", doc: "the cluster runbook steps read and act on",
		set: func(c *config, v string) error { c.Kubeconfig = v; return nil }},
	{flag: "graphs", env: "SITREP_GRAPHS", def: "sitrep-graphs", doc: "where the terminal saves runbook graphs (Slack uploads them)",
		set: func(c *config, v string) error { c.GraphDir = v; return nil }},
}

// configTable is the README's configuration table, made from settings.
func configTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := s.defDoc
		switch {
		case def != "":
		case s.def != "":
			def = "`" + s.def + "`"
		default:
			def = "none"
		}
		fmt.Fprintf(&b, "| `%s` | `-%s` | %s | %s |\n", s.env, s.flag, def, strings.ReplaceAll(s.doc, "|", "\\|"))
	}
	fmt.Fprintf(&b, "| `SITREP_CONFIG` | `-%s` | none | a file of `KEY=value` lines (the variables above; `#` comments), read under the environment and the flags |\n", configFileFlag)
	return b.String()
}

// configFileFlag names a file of KEY=value lines (the variables above;
// # comments), read under the environment and the flags.
const configFileFlag = "config"

func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (config, *flag.FlagSet, error) {
	cfg := config{SLO: slo.Default(), SlackScale: 1}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the errors and -h are printed below, each its own way
	values := make([]*string, len(settings))
	for i, s := range settings {
		usage := s.doc + " (" + s.env + ")"
		values[i] = fs.String(s.flag, "", usage)
		if f := fs.Lookup(s.flag); !s.secret {
			f.DefValue = cmp.Or(s.def, strings.ReplaceAll(s.defDoc, "`", ""))
		}
	}
	file := fs.String(configFileFlag, getenv("SITREP_CONFIG"), "a file of KEY=value lines for the variables (SITREP_CONFIG); the environment and the flags win over it")
	if strings.HasPrefix(name, "postmortem") {
		fs.StringVar(&cfg.PMFormat, "format", "md", "md or json")
		fs.StringVar(&cfg.PMOut, "o", "", "write to this file (default: standard output)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if name == "serve" {
				fmt.Fprint(stderr, usage+"\n")
			}
			printSettings(stderr, name, fs)
			return cfg, fs, errHelp
		}
		fmt.Fprintf(stderr, "bot %s: %v (bot %s -h lists the settings)\n", name, err, name)
		return cfg, fs, errUsage
	}
	fromFile, fileLine, fileErrs := readConfigFile(*file)
	problems := fileErrs // every problem at once, each where it is
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for i, s := range settings {
		v, from := s.def, ""
		switch {
		case given[s.flag]:
			v, from = *values[i], "-"+s.flag
		case strings.TrimSpace(getenv(s.env)) != "":
			v, from = strings.TrimSpace(getenv(s.env)), s.env
		case fromFile[s.env] != "":
			v, from = fromFile[s.env], fmt.Sprintf("%s:%d: %s", *file, fileLine[s.env], s.env)
		case s.flag == "user":
			v = cmp.Or(strings.TrimSpace(getenv("USER")), "operator")
		}
		if v == "" && from == "" {
			continue // no default: the zero value
		}
		if err := s.set(&cfg, v); err != nil {
			problems = append(problems, fmt.Errorf("%s is %q: %w", cmp.Or(from, s.env), v, err))
		}
	}
	if len(problems) > 0 {
		return cfg, fs, errors.Join(problems...)
	}
	incidents.SetUpdateCadence(cfg.UpdateCadence) // policy, before any store is opened (its due index follows it)
	incidents.SetMergeGrace(cfg.MergeGrace)
	if len(cfg.StatusWebhooks) > 0 && len(cfg.StatusSecret) < 16 {
		return cfg, fs, errors.New("SITREP_STATUS_WEBHOOKS needs SITREP_STATUS_WEBHOOK_SECRET, at least 16 characters: subscribers check each update's signature with it")
	}
	cfg.KubeInPod = getenv("KUBERNETES_SERVICE_HOST") != ""
	if level := given["log-level"] || getenv("SITREP_LOG_LEVEL") != "" || fromFile["SITREP_LOG_LEVEL"] != ""; !level {
		cfg.LogLevel = slog.LevelInfo
		if cfg.console() {
			cfg.LogLevel = slog.LevelWarn
		}
	}
	return cfg, fs, nil
}

// printSettings is `bot <command> -h`: every setting in the README's
// order, with its environment variable and default, then the command's own
// flags.
func printSettings(w io.Writer, name string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage of bot %s: every setting is a flag and an environment variable (the flag wins), or a KEY=value line of -config\n\n", name)
	own := map[string]bool{configFileFlag: true}
	for _, s := range settings {
		own[s.flag] = true
		def := cmp.Or(s.def, strings.ReplaceAll(s.defDoc, "`", ""))
		switch {
		case s.secret:
			def = "none; give it in the environment rather than as a flag, which ps shows"
		case def == "":
			def = "none"
		}
		fmt.Fprintf(w, "  -%s, %s (default: %s)\n      %s\n", s.flag, s.env, def, strings.ReplaceAll(s.doc, "`", ""))
	}
	fmt.Fprintf(w, "  -%s, SITREP_CONFIG\n      %s\n", configFileFlag, fs.Lookup(configFileFlag).Usage)
	fs.VisitAll(func(f *flag.Flag) {
		if !own[f.Name] {
			fmt.Fprintf(w, "  -%s (default: %q)\n      %s\n", f.Name, f.DefValue, f.Usage)
		}
	})
}

// errHelp: -h was asked for; the usage is printed, and the exit status is 0.
var errHelp = errors.New("help")

// readConfigFile reads KEY=value lines: the values, the line of each, and
// every line that is wrong.
func readConfigFile(path string) (map[string]string, map[string]int, []error) {
	out, lines := map[string]string{}, map[string]int{}
	if path == "" {
		return out, lines, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return out, lines, []error{fmt.Errorf("config file: %w", err)}
	}
	defer f.Close()
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	var problems []error
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		k = strings.TrimSpace(k)
		if !ok || !known[k] {
			problems = append(problems, fmt.Errorf("%s:%d: %q is not KEY=value for one of the variables in bot serve -h", path, n, line))
			continue
		}
		out[k], lines[k] = strings.Trim(strings.TrimSpace(v), `"'`), n
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, fmt.Errorf("%s: %w", path, err))
	}
	return out, lines, problems
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("name a file")
	}
	return nil
}

func query(field *string, v string) error {
	if strings.TrimSpace(v) != "" {
		*field = v
	}
	return nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := say.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("use a duration such as 100ms, 2s or 5m")
	}
	return d, nil
}

// dashboard is one of SITREP_DASHBOARDS.
type dashboard struct{ Service, URL string }

// parseDashboards reads "checkout=https://grafana/d/1,api=https://grafana/d/2".
func parseDashboards(text string) ([]dashboard, error) {
	var out []dashboard
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		service, link, ok := strings.Cut(part, "=")
		service, link = strings.TrimSpace(service), strings.TrimSpace(link)
		switch {
		case !ok || service == "":
			return nil, fmt.Errorf("%q: give service=https://…", part)
		case !runbooks.WebLink(link):
			return nil, fmt.Errorf("%q: the dashboard of %s is not an http(s) address", part, service)
		}
		out = append(out, dashboard{Service: service, URL: link})
	}
	return out, nil
}

// signers reads SITREP_RELEASE_SIGNERS: role=who who,role=who.
func signers(v string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range list(v) {
		role, who, ok := strings.Cut(part, "=")
		role = strings.ToLower(strings.TrimSpace(role))
		people := strings.Fields(who)
		if !ok || role == "" || len(people) == 0 {
			return nil, fmt.Errorf("%q: give role=people, like devops=U0123 S0GROUP", part)
		}
		out[role] = append(out[role], people...)
	}
	return out, nil
}
