package incidents

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
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
}

var levels = map[Severity]level{
	P1: {"Critical", "Service down", "API completely unavailable", 5 * time.Minute},
	P2: {"High", "Degraded service", "50% error rate, high latency", 15 * time.Minute},
	P3: {"Medium", "Limited impact", "Specific endpoint slow", time.Hour},
	P4: {"Low", "Minor issue", "Non-critical feature affected", 4 * time.Hour},
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
