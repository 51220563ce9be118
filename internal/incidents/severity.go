package incidents

import (
	"fmt"
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
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.TrimPrefix(strings.TrimPrefix(t, "sev"), "p")
	if len(t) == 1 && t[0] >= '1' && t[0] <= '4' {
		return Severity(t[0] - '0'), nil
	}
	return 0, Errorf(EInvalid, "unknown severity %q: use P1, P2, P3 or P4", text)
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
