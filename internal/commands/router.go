package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// Router parses requests, finds their command and incident, and runs them.
type Router struct {
	reg *Registry
	svc *incidents.Service
	log *slog.Logger
	env *Env
}

// NewRouter returns a Router over the built-in commands.
func NewRouter(svc *incidents.Service, log *slog.Logger) *Router {
	if log == nil {
		log = slog.Default()
	}
	return &Router{reg: Builtins(), svc: svc, log: log, env: &Env{SLOConfig: slo.Default()}}
}

// UseRunbooks offers the matching runbook when an incident is declared.
func (r *Router) UseRunbooks(set *runbooks.Set) { r.env.Runbooks = set }

// UseRunner lets the step command run runbook steps.
func (r *Router) UseRunner(run *runbooks.Runner) { r.env.Runner = run }

// UseSLO lets the slo command and postmortems ask Prometheus.
func (r *Router) UseSLO(q slo.Querier, cfg slo.Config) { r.env.SLO, r.env.SLOConfig = q, cfg }

// Declare opens an incident from a form (Slack's declare modal) the way the
// declare command does.
func (r *Router) Declare(ctx context.Context, d incidents.Declaration, by incidents.Actor) (*incidents.Incident, error) {
	return Declare(ctx, r.svc, r.env, d, by)
}

// Registry is the router's command registry (adapters list it; later
// capabilities register more commands on it).
func (r *Router) Registry() *Registry { return r.reg }

// MaxRequest bounds the text of one request.
const MaxRequest = 8000

// Handle runs one request and always returns a reply: never a panic, and an
// error reply whenever nothing was changed.
func (r *Router) Handle(ctx context.Context, req Request) (reply Reply) {
	defer func() {
		if p := recover(); p != nil {
			reply = r.internal(fmt.Errorf("panic: %v", p), req)
		}
	}()
	if len(req.Text) > MaxRequest {
		return Reply{Error: true, Text: fmt.Sprintf("that request is %d bytes long; keep it under %d", len(req.Text), MaxRequest), Private: true}
	}
	typed, rest := splitWord(stripPrefix(req.Text))
	name := strings.ToLower(typed)
	if name == "" {
		return r.reg.Help()
	}
	cmd, ok := r.reg.Lookup(name)
	if !ok {
		msg := fmt.Sprintf("unknown command %q", typed) // as typed
		if s := r.reg.Suggest(name); len(s) > 0 {
			msg += fmt.Sprintf(" — did you mean %s?", strings.Join(s, " or "))
		}
		return Reply{Error: true, Text: msg + " — type help for the list", Private: true}
	}
	call := &Call{Request: req, Cmd: cmd, Svc: r.svc, Env: r.env}
	if cmd.Incident {
		id, remaining, err := r.incidentFor(ctx, req, rest)
		var inc *incidents.Incident
		if err == nil {
			inc, err = visible(ctx, r.svc, id, req.Actor)
		}
		if err == nil && inc.MergedInto != 0 && !onDuplicate[cmd.Name] {
			err = incidents.Errorf(incidents.EConflict, "%s was merged into %s as a duplicate: work there", inc.Key(), incidents.FormatID(inc.MergedInto))
		}
		if err != nil {
			return r.fail(err, cmd, req)
		}
		call.ID, rest = id, remaining
	}
	call.Rest = strings.TrimSpace(rest)
	call.Args = strings.Fields(call.Rest)
	out, err := cmd.Run(ctx, call)
	if err != nil {
		return r.fail(err, cmd, req)
	}
	if inc := out.Incident; inc != nil && inc.Private && (req.Channel == "" || req.Channel != inc.Channel) {
		out.Private = true // a private incident's answers are for the asker alone, outside its own room
	}
	out.People = append(out.People, req.Actor.Name)
	return out
}

// onDuplicate are the commands a merged duplicate still answers: its record
// stays readable, and what the status page shows of it can be closed;
// every other change goes to the incident it was merged into.
var onDuplicate = map[string]bool{"show": true, "timeline": true, "postmortem": true, "actions": true, "runbook": true, "publish": true}

// incidentFor finds the incident a command is about: the first argument when
// it is an id, else the war room's incident. In a war room only the INC-n
// form counts as an id, so "note 5 pods restarting" is a note.
func (r *Router) incidentFor(ctx context.Context, req Request, rest string) (int64, string, error) {
	first, after := splitWord(rest)
	isKey := strings.HasPrefix(strings.ToUpper(first), "INC-")
	if first != "" && (isKey || req.Channel == "") {
		id, err := incidents.ParseID(first)
		if err != nil && !isKey {
			err = incidents.Errorf(incidents.EInvalid, "which incident? %q is not an id; give the id first (INC-7 or 7)", first)
		}
		return id, after, err
	}
	if req.Channel != "" {
		id, err := r.svc.ByChannel(ctx, req.Channel)
		if err == nil {
			return id, rest, nil
		}
		if !errors.Is(err, incidents.ErrNotFound) {
			return 0, "", err
		}
	}
	hint := ""
	if open, err := r.svc.List(ctx, incidents.Filter{Limit: 20}); err == nil {
		var keys []string
		for _, inc := range open {
			if inc.CanSee(req.Actor) && len(keys) < 5 {
				keys = append(keys, inc.Key())
			}
		}
		if len(keys) > 0 {
			hint = " (open: " + strings.Join(keys, ", ") + ")"
		}
	}
	return 0, "", incidents.Errorf(incidents.EInvalid, "which incident? give its id (INC-7 or 7) or run this in its war room%s", hint)
}

func (r *Router) fail(err error, cmd *Command, req Request) Reply {
	msg := incidents.ErrorMessage(err)
	if msg == "" {
		return r.internal(err, req)
	}
	return Reply{Error: true, Text: msg, Usage: cmd.Usage(), Private: true, People: []string{req.Actor.Name}}
}

// internal hides an unexpected error behind a reference and logs the chain.
func (r *Router) internal(err error, req Request) Reply {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ref := hex.EncodeToString(b)
	r.log.Error("command failed", "ref", ref, "actor", req.Actor.Name, "source", req.Actor.Source, "err", err)
	return Reply{Error: true, Text: "internal error (ref " + ref + "); the details are in Sitrep's log", Private: true}
}

// stripPrefix removes a leading "/incident" (or "/inc") from typed text.
func stripPrefix(text string) string {
	t := strings.TrimSpace(text)
	for _, p := range []string{"/incident", "/inc"} {
		if len(t) >= len(p) && strings.EqualFold(t[:len(p)], p) && (len(t) == len(p) || unicode.IsSpace(rune(t[len(p)]))) {
			return strings.TrimSpace(t[len(p):])
		}
	}
	return t
}

// splitWord returns the first whitespace-separated word and the text after it.
func splitWord(s string) (string, string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}
