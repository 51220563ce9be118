package pagerduty_test

import (
	"os"
	"strings"
	"testing"

	"github.com/sitrep-oncall/sitrep/internal/pagerduty"
)

const samples = "../../../shared/samples/pagerduty/"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(samples + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyWithPagerDutysOwnSamples(t *testing.T) {
	body := read(t, "signature_body.json")
	secret := read(t, "signature_secret.txt")
	wrong := []byte("not-the-secret")
	tests := []struct {
		name    string
		header  string
		secrets [][]byte
		want    bool
	}{
		{"valid", string(read(t, "signature_header.txt")), [][]byte{secret}, true},
		{"mismatch", string(read(t, "signature_header_mismatch.txt")), [][]byte{secret}, false},
		{"rotation header: one of two signatures", string(read(t, "DERIVED_signature_header_multi_rotation.txt")), [][]byte{secret}, true},
		{"rotation secrets: the second secret", string(read(t, "signature_header.txt")), [][]byte{wrong, secret}, true},
		{"wrong secret only", string(read(t, "signature_header.txt")), [][]byte{wrong}, false},
		{"no header", "", [][]byte{secret}, false},
		{"no secrets", string(read(t, "signature_header.txt")), nil, false},
		{"other scheme", strings.Replace(string(read(t, "signature_header.txt")), "v1=", "v0=", 1), [][]byte{secret}, false},
		{"not hex", "v1=" + strings.Repeat("zz", 32), [][]byte{secret}, false},
		{"truncated", string(read(t, "signature_header.txt"))[:20], [][]byte{secret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pagerduty.Verify(body, strings.TrimSpace(tt.header), tt.secrets); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	// A body changed by one byte fails.
	tampered := append([]byte(nil), body...)
	tampered[10] ^= 1
	if pagerduty.Verify(tampered, string(read(t, "signature_header.txt")), [][]byte{secret}) {
		t.Error("a tampered body verified")
	}
	if got := pagerduty.Sign(body, secret); got != strings.TrimSpace(string(read(t, "signature_header.txt"))) {
		t.Errorf("Sign = %s", got)
	}
}

func TestParseEverySample(t *testing.T) {
	tests := []struct {
		file, typ, incident, priority, note string
	}{
		{"zulip_triggered_v3.json", "incident.triggered", "PFQZPSY", "", ""},
		{"zulip_acknowledged_v3.json", "incident.acknowledged", "PQ1K5C8", "", ""},
		{"zulip_resolved_v3.json", "incident.resolved", "PCPZE64", "", ""},
		{"zulip_escalated_v3.json", "incident.escalated", "Q3B15VLMF3ASBD", "P1", ""},
		{"zulip_priority_updated_v3.json", "incident.priority_updated", "Q3B15VLMF3ASBD", "P2", ""},
		{"pdocs_overview_priority_updated_v3.json", "incident.priority_updated", "PGR0VU2", "P1", ""},
		{"zulip_annotated_v3.json", "incident.annotated", "Q3B15VLMF3ASBD", "", "Running KILL on long-running queries from the reporting-service."},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := pagerduty.Parse(read(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.typ || ev.Incident.ID != tt.incident || ev.Incident.Priority != tt.priority || ev.Note != tt.note || ev.ID == "" || ev.Agent == "" {
				t.Errorf("parsed %+v", ev)
			}
		})
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"event":{}}`, `{"event":{"id":"x","event_type":"incident.acknowledged","data":{}}}`, `{"event":{"id":"x","event_type":"incident.triggered","data":[1]}}`, `not json`} {
		if _, err := pagerduty.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	// A PagerDuty user named like chat markup is recorded without brackets,
	// so the timeline's actor cannot become a mention in Slack.
	if ev, err := pagerduty.Parse([]byte(`{"event":{"id":"e1","event_type":"incident.acknowledged","agent":{"summary":"<@UCEO> <!channel>"},"data":{"id":"P1","type":"incident"}}}`)); err != nil || ev.Agent != "@UCEO !channel" {
		t.Errorf("agent %q, %v", ev.Agent, err)
	}
	// Events on other resources parse, with no incident.
	if ev, err := pagerduty.Parse([]byte(`{"event":{"id":"e1","event_type":"service.updated","data":{"id":"S1"}}}`)); err != nil || ev.Incident.ID != "" {
		t.Errorf("service event: %+v %v", ev, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"zulip_triggered_v3.json", "zulip_annotated_v3.json", "signature_body.json", "zulip_escalated_v3.json"} {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := pagerduty.Parse(body)
		if err == nil && (ev.ID == "" || ev.Type == "") {
			t.Fatalf("accepted an event without id or type: %q", body)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(read(f, "signature_body.json"), string(read(f, "signature_header.txt")))
	f.Add([]byte("x"), "v1=,v1=00,,")
	secret := read(f, "signature_secret.txt")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		got := pagerduty.Verify(body, header, [][]byte{secret})
		if got && !strings.Contains(strings.ToLower(header), pagerduty.Sign(body, secret)[3:]) {
			t.Fatalf("verified a header that does not carry the body's signature: %q", header)
		}
	})
}
