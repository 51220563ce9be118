package commands

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/releases"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// Command is one thing Sitrep can be asked to do.
type Command struct {
	Name    string
	Args    string // argument synopsis after the name: "<P1-P4> [reason]"
	Summary string
	// Incident says the command acts on one incident: implied in its war room,
	// else given as the first argument (INC-7 or 7).
	Incident bool
	Run      func(ctx context.Context, c *Call) (Reply, error)
}

// Usage is the command's full synopsis.
func (c *Command) Usage() string {
	parts := []string{c.Name}
	if c.Incident {
		parts = append(parts, "[INC-n]")
	}
	if c.Args != "" {
		parts = append(parts, c.Args)
	}
	return strings.Join(parts, " ")
}

// Call is a command being run: the request, its parsed arguments and the
// incident it is about.
type Call struct {
	Request
	Cmd  *Command
	Args []string // whitespace-separated arguments (after the incident id)
	Rest string   // the arguments as typed, trimmed (for free text)
	ID   int64    // the incident, for commands that act on one
	Svc  *incidents.Service
	Env  *Env
}

// Env is what some commands need beyond the incidents: Prometheus for the SLO.
type Env struct {
	SLO       slo.Querier // nil when no PROMETHEUS_URL is set
	SLOConfig slo.Config
	Runbooks  *runbooks.Set // offered on declare; nil without runbooks
	Runner    *runbooks.Runner
	Releases  *releases.Service // nil without release procedures
}

// Registry holds the commands by name, in the order they were registered.
type Registry struct {
	byName map[string]*Command
	order  []*Command
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]*Command{}} }

// Register adds a command; names must be unique, lower-case single words.
func (r *Registry) Register(c Command) error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t") || strings.ToLower(c.Name) != c.Name {
		return fmt.Errorf("register command %q: the name must be one lower-case word", c.Name)
	}
	if c.Run == nil {
		return fmt.Errorf("register command %q: no Run function", c.Name)
	}
	if _, dup := r.byName[c.Name]; dup {
		return fmt.Errorf("register command %q: already registered", c.Name)
	}
	cmd := c
	r.byName[c.Name] = &cmd
	r.order = append(r.order, &cmd)
	return nil
}

// Lookup returns the command called name.
func (r *Registry) Lookup(name string) (*Command, bool) {
	c, ok := r.byName[name]
	return c, ok
}

// Commands returns every command in registration order.
func (r *Registry) Commands() []*Command { return append([]*Command(nil), r.order...) }

// Suggest returns the commands whose names start with prefix, sorted.
func (r *Registry) Suggest(prefix string) []string {
	var out []string
	for name := range r.byName {
		if prefix != "" && strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// helpWidth is the usage column's width; longer usages put their summary on
// the next line.
const helpWidth = 36

// Help lists every command with its usage and summary.
func (r *Registry) Help() Reply {
	lines := make([]string, 0, len(r.order))
	for _, c := range r.order {
		if u := c.Usage(); len(u) <= helpWidth {
			lines = append(lines, fmt.Sprintf("%-*s  %s", helpWidth, u, c.Summary))
		} else {
			lines = append(lines, u, fmt.Sprintf("%-*s  %s", helpWidth, "", c.Summary))
		}
	}
	return Reply{
		Text:    "Sitrep commands (in a war room the incident is implied; elsewhere give its id, INC-7 or 7):",
		Lines:   lines,
		Private: true,
	}
}
