package incidents

import (
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
