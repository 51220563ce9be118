package main

import (
	"flag"
	"fmt"
	"github.com/sitrep-oncall/sitrep/internal/slo"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// config is everything Sitrep reads at start. Flags override the environment.
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
	PMFormat    string // postmortem export
	PMOut       string
	Runbooks    string
	Namespaces  []string
	Operators   []string
	Kubeconfig  string
	GraphDir    string
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

func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (config, *flag.FlagSet, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		AdminToken: getenv("SITREP_ADMIN_TOKEN"),
		SlackBot:   getenv("SLACK_BOT_TOKEN"),
		SlackApp:   getenv("SLACK_APP_TOKEN"),
		SlackAPI:   getenv("SLACK_API_URL"),
		Announce:   strings.TrimSpace(getenv("SITREP_ANNOUNCE_CHANNEL")),
		SlackScale: 1,
		PDToken:    getenv("PAGERDUTY_TOKEN"),
		PDFrom:     strings.TrimSpace(getenv("PAGERDUTY_FROM")),
		PDAPI:      strings.TrimSpace(getenv("PAGERDUTY_API_URL")),
		AMToken:    getenv("SITREP_ALERTMANAGER_TOKEN"),
		AMOpen:     strings.TrimSpace(getenv("SITREP_ALERTMANAGER_UNAUTHENTICATED")) == "1",
		PromURL:    strings.TrimSpace(getenv("PROMETHEUS_URL")),
		SLO:        slo.Default(),
		Runbooks:   env("SITREP_RUNBOOKS", "runbooks"),
	}
	for _, op := range strings.Split(getenv("SITREP_OPERATORS"), ",") {
		if op = strings.TrimSpace(op); op != "" {
			cfg.Operators = append(cfg.Operators, op)
		}
	}
	cfg.Kubeconfig = strings.TrimSpace(getenv("KUBECONFIG"))
	cfg.GraphDir = env("SITREP_GRAPHS", "sitrep-graphs")
	for _, ns := range strings.Split(getenv("SITREP_NAMESPACES"), ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			cfg.Namespaces = append(cfg.Namespaces, ns)
		}
	}
	if v := getenv("SITREP_SLO_TARGET"); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if strings.HasSuffix(v, "%") {
			f /= 100
		}
		if err != nil || f <= 0 || f >= 1 {
			return cfg, nil, fmt.Errorf("SITREP_SLO_TARGET is %q: use e.g. 0.9995 or 99.95%%", v)
		}
		cfg.SLO.Target = f
	}
	for env, field := range map[string]*string{
		"SITREP_SLO_TOTAL_QUERY": &cfg.SLO.TotalQuery, "SITREP_SLO_FAILED_QUERY": &cfg.SLO.FailedQuery,
		"SITREP_SLO_P95_QUERY": &cfg.SLO.LatencyP95, "SITREP_SLO_P99_QUERY": &cfg.SLO.LatencyP99,
	} {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			*field = v
		}
	}
	for env, field := range map[string]*time.Duration{"SITREP_SLO_P95_TARGET": &cfg.SLO.P95Target, "SITREP_SLO_P99_TARGET": &cfg.SLO.P99Target} {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, nil, fmt.Errorf("%s is %q: use e.g. 100ms", env, v)
			}
			*field = d
		}
	}
	if v := getenv("SITREP_SLO_WINDOW"); v != "" {
		d, err := time.ParseDuration(strings.Replace(v, "d", "h", 1))
		if strings.HasSuffix(v, "d") && err == nil {
			d *= 24
		}
		if err != nil || d < time.Hour {
			return cfg, nil, fmt.Errorf("SITREP_SLO_WINDOW is %q: use e.g. 30d or 720h", v)
		}
		cfg.SLO.Window = d
	}
	for _, s := range strings.Split(getenv("PAGERDUTY_WEBHOOK_SECRETS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.PDSecrets = append(cfg.PDSecrets, s)
		}
	}
	for _, u := range strings.Split(getenv("SITREP_RESPONDERS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.Responders = append(cfg.Responders, u)
		}
	}
	if v := getenv("SITREP_SLACK_RATE_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return cfg, nil, fmt.Errorf("SITREP_SLACK_RATE_SCALE is %q: use a positive number", v)
		}
		cfg.SlackScale = f
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DB, "db", env("SITREP_DB", "sitrep.db"), "bbolt database file (SITREP_DB)")
	fs.StringVar(&cfg.Listen, "listen", env("SITREP_LISTEN", "127.0.0.1:8080"), "HTTP address for /healthz, /readyz, /metrics (SITREP_LISTEN)")
	fs.StringVar(&cfg.Console, "console", env("SITREP_CONSOLE", "auto"), "terminal adapter: auto (on without Slack tokens), on, off (SITREP_CONSOLE)")
	fs.StringVar(&cfg.User, "user", env("SITREP_USER", env("USER", "operator")), "who you are in the terminal (SITREP_USER, else USER)")
	if strings.HasPrefix(name, "postmortem") {
		fs.StringVar(&cfg.PMFormat, "format", "md", "md or json")
		fs.StringVar(&cfg.PMOut, "o", "", "write to this file (default: standard output)")
	}
	lock := fs.Duration("lock-timeout", 2*time.Second, "how long to wait for a database held by another process")
	level := fs.String("log-level", env("SITREP_LOG_LEVEL", ""), "debug, info, warn or error (SITREP_LOG_LEVEL; default info, warn in the terminal)")
	if err := fs.Parse(args); err != nil {
		return cfg, fs, errUsage
	}
	cfg.LockTimeout = *lock
	switch cfg.Console {
	case "auto", "on", "off":
	case "true", "1", "yes":
		cfg.Console = "on"
	case "false", "0", "no":
		cfg.Console = "off"
	default:
		return cfg, fs, fmt.Errorf("SITREP_CONSOLE/-console is %q: use auto, on or off", cfg.Console)
	}
	cfg.LogLevel = slog.LevelInfo
	if cfg.console() {
		cfg.LogLevel = slog.LevelWarn
	}
	if *level != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
			return cfg, fs, fmt.Errorf("log level %q: use debug, info, warn or error", *level)
		}
	}
	if !strings.HasPrefix(cfg.User, "@") {
		cfg.User = "@" + cfg.User
	}
	if cfg.DB == "" {
		return cfg, fs, fmt.Errorf("SITREP_DB/-db must name a file")
	}
	return cfg, fs, nil
}
