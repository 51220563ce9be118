package incidents

import (
	"fmt"
	"regexp"
	"strings"
)

// Signals are what the classifier may know about an incident, strongest first.
type Signals struct {
	Explicit Severity          // a person said P1..P4
	Labels   map[string]string // alert labels (severity, priority, alertname)
	// PagerDutyPriority is a PagerDuty priority name ("P1".."P5");
	// PagerDutyUrgency is "high" or "low".
	PagerDutyPriority string
	PagerDutyUrgency  string
	Text              string // title and description
}

// Classification is a severity and the reason for it.
type Classification struct {
	Severity Severity
	Reason   string
}

// DefaultSeverity is used when nothing else says how bad it is.
const DefaultSeverity = P3

// Classify applies the response policy: an explicit severity wins; then alert
// labels and PagerDuty priority or urgency; then the impact words of the
// text; else P3.
func Classify(s Signals) Classification {
	if s.Explicit.Valid() {
		return Classification{s.Explicit, "set explicitly at declaration"}
	}
	if c, ok := fromLabels(s.Labels, s.Text); ok {
		return c
	}
	if c, ok := fromPagerDuty(s.PagerDutyPriority, s.PagerDutyUrgency); ok {
		return c
	}
	if c, ok := fromWords(s.Text); ok {
		return c
	}
	return Classification{DefaultSeverity, fmt.Sprintf("no severity given and no impact words matched; default %s (%s)", DefaultSeverity, DefaultSeverity.Impact())}
}

// outageAlert matches alert names and texts that mean the service is down.
var outageAlert = regexp.MustCompile(`(?i)(unresponsive|down|unavailable|outage|unreachable)`)

func fromLabels(labels map[string]string, text string) (Classification, bool) {
	if p := labels["priority"]; p != "" {
		if sev, err := ParseSeverity(p); err == nil {
			return Classification{sev, fmt.Sprintf("alert label priority=%s", p)}, true
		}
	}
	level := strings.ToLower(labels["severity"])
	alert := labels["alertname"]
	on := ""
	if alert != "" {
		on = " on " + alert
	}
	switch level {
	case "critical", "page", "emergency":
		if outageAlert.MatchString(alert) || (alert == "" && outageAlert.MatchString(text)) {
			return Classification{P1, fmt.Sprintf("alert label severity=%s%s: service down → P1 Critical", level, on)}, true
		}
		return Classification{P2, fmt.Sprintf("alert label severity=%s%s: degraded service → P2 High", level, on)}, true
	case "major", "error", "high":
		return Classification{P2, fmt.Sprintf("alert label severity=%s%s → P2 High", level, on)}, true
	case "warning", "minor":
		return Classification{P3, fmt.Sprintf("alert label severity=%s%s → P3 Medium", level, on)}, true
	case "info", "low", "none":
		return Classification{P4, fmt.Sprintf("alert label severity=%s%s → P4 Low", level, on)}, true
	}
	return Classification{}, false
}

// PagerDutyPriority reads a PagerDuty priority name: P1–P5 (P5 is P4 Low
// here), or the SEV1–SEV4 names many accounts use. Accounts name their
// priorities as they like: any other name is not a severity (false).
func PagerDutyPriority(name string) (Severity, bool) {
	p := strings.ToUpper(strings.Join(strings.Fields(name), ""))
	if p == "P5" {
		return P4, true
	}
	if sev, ok, err := SeverityToken(p); ok && err == nil {
		return sev, true
	}
	return 0, false
}

func fromPagerDuty(priority, urgency string) (Classification, bool) {
	if sev, ok := PagerDutyPriority(priority); ok {
		return Classification{sev, fmt.Sprintf("PagerDuty priority %s → %s", strings.TrimSpace(priority), sev.Label())}, true
	}
	switch strings.ToLower(urgency) {
	case "high":
		return Classification{P2, "PagerDuty urgency high → P2 High"}, true
	case "low":
		return Classification{P4, "PagerDuty urgency low → P4 Low"}, true
	}
	return Classification{}, false
}

// impactRule maps phrases in a description to a severity. Rules are tried in
// order: words that narrow the impact ("non-critical", "specific endpoint")
// come before the words that widen it, so "non-critical feature down" is P4.
type impactRule struct {
	sev     Severity
	pattern *regexp.Regexp
}

func words(sev Severity, alternatives string) impactRule {
	return impactRule{sev, regexp.MustCompile(`(?i)\b(` + alternatives + `)\b`)}
}

var impactRules = []impactRule{
	words(P4, `non[- ]?critical|minor|cosmetic|typo|low impact|not urgent`),
	words(P3, `specific endpoints?|single endpoints?|one endpoints?|some users|a few users|intermittent(ly)?|limited impact`),
	words(P1, `(completely |totally |fully )?(down|unavailable|unreachable|unresponsive)|outage|not responding|service down|data loss`),
	words(P2, `\d+(\.\d+)?\s*% error rate|error rates?|errors?|5xx|degraded|high latency|latency|timeouts?|elevated`),
	words(P3, `slow(ness)?|limited`),
}

func fromWords(text string) (Classification, bool) {
	for _, r := range impactRules {
		if m := r.pattern.FindString(text); m != "" {
			return Classification{r.sev, fmt.Sprintf("impact words %q → %s (%s)", strings.ToLower(m), r.sev.Label(), r.sev.Impact())}, true
		}
	}
	return Classification{}, false
}
