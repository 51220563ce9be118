package incidents

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		in     Signals
		want   Severity
		reason string // a part of the reason that must be there
	}{
		// The seed's severity table, example by example.
		{"seed P1 example", Signals{Text: "API completely unavailable"}, P1, `"completely unavailable"`},
		{"seed P2 example", Signals{Text: "50% error rate"}, P2, `"50% error rate"`},
		{"seed P2 latency", Signals{Text: "high latency on checkout"}, P2, `"high latency"`},
		{"seed P3 example", Signals{Text: "Specific endpoint slow"}, P3, `"specific endpoint"`},
		{"seed P4 example", Signals{Text: "Non-critical feature affected"}, P4, `"non-critical"`},
		{"issue example", Signals{Text: "Checkout error rate above 5%"}, P2, `"error rate"`},
		{"outage", Signals{Text: "Payments outage in eu-west"}, P1, `"outage"`},
		{"narrowing words win", Signals{Text: "non-critical feature down"}, P4, `"non-critical"`},
		{"one endpoint erroring is limited", Signals{Text: "errors on a single endpoint"}, P3, `"single endpoint"`},
		{"slow alone", Signals{Text: "search is slow"}, P3, `"slow"`},
		{"no words", Signals{Text: "something odd with invoices"}, P3, "default P3"},
		{"down is a word, not a substring", Signals{Text: "slowdown in downstream jobs"}, P3, "default P3"},
		// Explicit wins over everything.
		{"explicit beats words", Signals{Explicit: P4, Text: "API completely unavailable"}, P4, "explicitly"},
		{"explicit beats labels", Signals{Explicit: P3, Labels: map[string]string{"severity": "critical"}}, P3, "explicitly"},
		// Alert labels, per the seed's alert rules.
		{"critical outage alert", Signals{Labels: map[string]string{"severity": "critical", "alertname": "APIUnresponsive"}}, P1, "APIUnresponsive"},
		{"critical database down", Signals{Labels: map[string]string{"severity": "critical", "alertname": "DatabaseDown"}}, P1, "service down"},
		{"critical error rate", Signals{Labels: map[string]string{"severity": "critical", "alertname": "HighErrorRate"}}, P2, "severity=critical on HighErrorRate"},
		{"critical disk", Signals{Labels: map[string]string{"severity": "critical", "alertname": "DiskSpaceRunningOut"}}, P2, "degraded"},
		{"warning latency", Signals{Labels: map[string]string{"severity": "warning", "alertname": "HighLatency"}}, P3, "severity=warning"},
		{"info", Signals{Labels: map[string]string{"severity": "info"}}, P4, "severity=info"},
		{"major", Signals{Labels: map[string]string{"severity": "major", "alertname": "ICMP ping failed"}}, P2, "severity=major on ICMP ping failed"},
		{"minor", Signals{Labels: map[string]string{"severity": "minor"}}, P3, "severity=minor"},
		{"priority label", Signals{Labels: map[string]string{"priority": "P1", "severity": "warning"}}, P1, "priority=P1"},
		{"labels beat words", Signals{Labels: map[string]string{"severity": "warning"}, Text: "API down"}, P3, "severity=warning"},
		{"unknown label falls through", Signals{Labels: map[string]string{"severity": "spicy"}, Text: "API down"}, P1, `"down"`},
		// PagerDuty priority and urgency.
		{"pd P1", Signals{PagerDutyPriority: "P1"}, P1, "PagerDuty priority P1"},
		{"pd P5 is P4", Signals{PagerDutyPriority: "P5"}, P4, "PagerDuty priority P5"},
		{"pd urgency high", Signals{PagerDutyUrgency: "high"}, P2, "urgency high"},
		{"pd urgency low", Signals{PagerDutyUrgency: "low"}, P4, "urgency low"},
		{"pd priority beats urgency", Signals{PagerDutyPriority: "P3", PagerDutyUrgency: "high"}, P3, "priority P3"},
		{"pd beats words", Signals{PagerDutyUrgency: "low", Text: "API completely unavailable"}, P4, "urgency low"},
		{"bad pd priority falls through", Signals{PagerDutyPriority: "P9", Text: "minor typo"}, P4, `"minor"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.in)
			if got.Severity != tt.want {
				t.Fatalf("Classify(%+v) = %s (%s), want %s", tt.in, got.Severity, got.Reason, tt.want)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", got.Reason, tt.reason)
			}
		})
	}
}

func TestSeverityTable(t *testing.T) {
	tests := []struct {
		sev      Severity
		minutes  int
		impact   string
		example  string
		classify Severity // the example classifies to its own level
	}{
		{P1, 5, "Service down", "API completely unavailable", P1},
		{P2, 15, "Degraded service", "50% error rate, high latency", P2},
		{P3, 60, "Limited impact", "Specific endpoint slow", P3},
		{P4, 240, "Minor issue", "Non-critical feature affected", P4},
	}
	for _, tt := range tests {
		t.Run(tt.sev.String(), func(t *testing.T) {
			if got := int(tt.sev.ResponseTime().Minutes()); got != tt.minutes {
				t.Errorf("response time %d min, want %d", got, tt.minutes)
			}
			if tt.sev.Impact() != tt.impact || tt.sev.Example() != tt.example {
				t.Errorf("impact/example = %q/%q", tt.sev.Impact(), tt.sev.Example())
			}
			if got := Classify(Signals{Text: tt.sev.Example()}).Severity; got != tt.classify {
				t.Errorf("its own example classifies as %s", got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, in := range []string{"P1", "p1", "1", "sev1", " SEV1 "} {
		if s, err := ParseSeverity(in); err != nil || s != P1 {
			t.Errorf("ParseSeverity(%q) = %v, %v", in, s, err)
		}
	}
	for _, in := range []string{"", "P0", "P5", "high", "P12"} {
		if _, err := ParseSeverity(in); ErrorCode(err) != EInvalid {
			t.Errorf("ParseSeverity(%q) err = %v, want invalid", in, err)
		}
	}
	ids := map[string]int64{"INC-7": 7, "inc-7": 7, "7": 7, "#12": 12}
	for in, want := range ids {
		if got, err := ParseID(in); err != nil || got != want {
			t.Errorf("ParseID(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "INC-", "INC-0", "-3", "seven", "INC-9999999999999999999999"} {
		if _, err := ParseID(in); ErrorCode(err) != EInvalid {
			t.Errorf("ParseID(%q) err = %v, want invalid", in, err)
		}
	}
	if _, err := ParseStatus("Resolved"); err != nil {
		t.Error(err)
	}
	if _, err := ParseRole("ic"); err != nil {
		t.Error(err)
	}
	if _, err := ParsePhase("nope"); ErrorCode(err) != EInvalid {
		t.Error("ParsePhase accepted nope")
	}
}
