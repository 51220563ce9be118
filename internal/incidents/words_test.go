package incidents

import (
	"strings"
	"testing"
	"time"
)

func TestHumanIsOneWording(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 1500 * time.Millisecond: "2s", -90 * time.Second: "1m30s",
		96 * time.Second: "1m36s", 5 * time.Minute: "5m", 9*time.Minute + 59*time.Second: "9m59s",
		10*time.Minute + 29*time.Second: "10m", 46*time.Minute + 30*time.Second: "47m",
		time.Hour: "1h", 65 * time.Minute: "1h05m", 26 * time.Hour: "1d2h", 48 * time.Hour: "2d",
	} {
		if got := Human(d); got != want {
			t.Errorf("Human(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSeverityTokens(t *testing.T) {
	for word, want := range map[string]Severity{"P1": P1, "p2": P2, "P3:": P3, "sev1": P1, "SEV4": P4, "SEV-2": P2, "sev-3:": P3} {
		if sev, ok, err := SeverityToken(word); !ok || err != nil || sev != want {
			t.Errorf("%q → %v %v %v, want %v", word, sev, ok, err, want)
		}
	}
	for _, word := range []string{"P0", "P5", "SEV0", "sev-9", "p12:"} {
		if _, ok, err := SeverityToken(word); !ok || err == nil || !strings.Contains(err.Error(), "is not a severity: use P1 (critical)") {
			t.Errorf("%q → ok %v, err %v: want an error listing the choices", word, ok, err)
		}
	}
	for _, word := range []string{"Payments", "PagerDuty", "2", "sevenfold", "P1x", ""} {
		if _, ok, _ := SeverityToken(word); ok {
			t.Errorf("%q read as a severity: it begins a title", word)
		}
	}
}
