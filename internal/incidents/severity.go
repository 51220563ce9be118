package incidents

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Severity is an incident's priority, P1 (most severe) to P4.
type Severity int

// The four levels of the response policy, from the seed's severity table.
const (
	P1 Severity = iota + 1
	P2
	P3
	P4
)

// Severities lists every level, most severe first.
var Severities = []Severity{P1, P2, P3, P4}

type level struct {
	name, impact, example string
	response              time.Duration
	update                time.Duration // how often people expect a status update; 0: never nudged
}

var levels = map[Severity]level{
	P1: {"Critical", "Service down", "API completely unavailable", 5 * time.Minute, 30 * time.Minute},
	P2: {"High", "Degraded service", "50% error rate, high latency", 15 * time.Minute, time.Hour},
	P3: {"Medium", "Limited impact", "Specific endpoint slow", time.Hour, 4 * time.Hour},
	P4: {"Low", "Minor issue", "Non-critical feature affected", 4 * time.Hour, 0},
}

// cadences, when set, replace the levels' update cadences (SetUpdateCadence).
var cadences atomic.Pointer[map[Severity]time.Duration]

// UpdateCadence is how long an open, acknowledged incident of this level
// may go without a status update before Sitrep nudges its lead: P1 30 min,
// P2 1 h, P3 4 h, P4 never, unless configured otherwise; 0 is never.
func (s Severity) UpdateCadence() time.Duration {
	if m := cadences.Load(); m != nil {
		if d, ok := (*m)[s]; ok {
			return d
		}
	}
	return levels[s].update
}

// SetUpdateCadence sets the update cadences of the levels given (0 turns
// a level's nudges off), once at start-up, before any incident is read.
func SetUpdateCadence(m map[Severity]time.Duration) { cadences.Store(&m) }

// ReminderPolicy names the response times and update cadences in force:
// a store that files incidents by when their next reminder is due files
// them again when it changes (a cadence configured otherwise at a restart).
func ReminderPolicy() string {
	var b strings.Builder
	for _, sev := range Severities {
		fmt.Fprintf(&b, "%s:%s/%s;", sev, sev.ResponseTime(), sev.UpdateCadence())
	}
	if g := ArchiveGrace(); g != MergeGrace { // the default leaves files of before it as they were
		fmt.Fprintf(&b, "merge:%s;", g)
	}
	return b.String()
}

// ParseUpdateCadence reads "P1=30m,P2=1h,P3=4h,P4=off".
func ParseUpdateCadence(text string) (map[Severity]time.Duration, error) {
	out := map[Severity]time.Duration{}
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		sev, err := ParseSeverity(k)
		if !ok || err != nil {
			return nil, Errorf(EInvalid, "%q: give each level as P1=30m, P2=1h, … (off for none)", part)
		}
		if v = strings.TrimSpace(v); v == "off" || v == "0" {
			out[sev] = 0
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return nil, Errorf(EInvalid, "%q: a cadence is a duration of a minute or more (30m, 1h) or off", part)
		}
		out[sev] = d
	}
	return out, nil
}

// Valid reports whether s is one of P1..P4.
func (s Severity) Valid() bool { _, ok := levels[s]; return ok }

// String returns "P1".."P4", or "P?" for an invalid value.
func (s Severity) String() string {
	if !s.Valid() {
		return "P?"
	}
	return fmt.Sprintf("P%d", int(s))
}

// Name is the level's word: Critical, High, Medium or Low.
func (s Severity) Name() string { return levels[s].name }

// Impact is the policy's description of the level ("Service down").
func (s Severity) Impact() string { return levels[s].impact }

// Example is the policy's example incident for the level.
func (s Severity) Example() string { return levels[s].example }

// ResponseTime is how long an incident of this level may stay unacknowledged.
func (s Severity) ResponseTime() time.Duration { return levels[s].response }

// Label is the long form shown to people: "P1 Critical".
func (s Severity) Label() string { return s.String() + " " + s.Name() }

// ParseSeverity accepts P1..P4 in any case, with or without the P, and
// "sev1".."sev4".
func ParseSeverity(text string) (Severity, error) {
	t := strings.TrimSpace(text)
	if t != "" && strings.Trim(t, "0123456789") == "" {
		t = "P" + t // where only a severity can stand, a bare 2 is P2
	}
	sev, ok, err := SeverityToken(t)
	if !ok {
		return 0, Errorf(EInvalid, "unknown severity %q: use P1, P2, P3 or P4", text)
	}
	return sev, err
}

var severityWord = regexp.MustCompile(`^(?i)(?:p|sev-?)(\d{1,3}):?$`)

// SeverityToken reads a word that names a severity: P2, p2, P2:, sev2,
// SEV-2. ok is false for a word that does not look like one (a title's
// first word); one that looks like a severity but is none (P0, P5, SEV0)
// is an error that lists the choices, never a title.
func SeverityToken(word string) (sev Severity, ok bool, err error) {
	m := severityWord.FindStringSubmatch(word)
	if m == nil {
		return 0, false, nil
	}
	if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= 4 {
		return Severity(n), true, nil
	}
	return 0, true, Errorf(EInvalid, "%s is not a severity: use P1 (critical), P2 (high), P3 (medium) or P4 (low)", strings.TrimSuffix(word, ":"))
}

// MarshalText stores a severity as "P1".."P4".
func (s Severity) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads "P1".."P4".
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
