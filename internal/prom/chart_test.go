package prom

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

var update = flag.Bool("update", false, "rewrite the golden graphs in testdata")

// at is an hour ending at an odd second, as a click at 03:17:43 is.
var at = time.Date(2026, 12, 1, 3, 17, 43, 0, time.UTC)

func points(n int, f func(i int) float64) plotter.XYs {
	start := at.Add(-time.Hour)
	out := make(plotter.XYs, n)
	for i := range out {
		out[i] = plotter.XY{X: float64(start.Add(time.Duration(i) * time.Hour / time.Duration(n-1)).Unix()), Y: f(i)}
	}
	return out
}

// The graphs a person reads at 3 a.m., checked against golden PNGs: a flat
// P95 (a millionth of noise) stays a flat line at 225 ms between its
// threshold lines; error ratios of two endpoints climb past critical, in %,
// with the legend beside the plot.
var goldens = []struct {
	file  string
	spec  runbooks.GraphSpec
	lines []series
}{
	{"latency-flat.png", runbooks.GraphSpec{Title: "Latency P95", Unit: "seconds", Start: at.Add(-time.Hour), End: at,
		Thresholds: &runbooks.Thresholds{Warning: 0.15, Critical: 0.3}},
		[]series{{"{}", points(241, func(i int) float64 { return 0.225 + 1e-6*math.Sin(float64(i)) })}}},
	{"error-ratio.png", runbooks.GraphSpec{Title: "Error rate by endpoint", Unit: "ratio", Start: at.Add(-time.Hour), End: at,
		Thresholds: &runbooks.Thresholds{Warning: 0.0005, Critical: 0.001}},
		[]series{
			{`{path="/checkout"}`, points(241, func(i int) float64 { return 0.0002 + 0.002*math.Max(0, float64(i-150))/90 })},
			{`{path="/search"}`, points(241, func(i int) float64 { return 0.0001 })},
		}},
	{"rate-unlabelled.png", runbooks.GraphSpec{Title: "5xx per second", Unit: "rate", Start: at.Add(-6 * time.Hour), End: at},
		[]series{{"{}", points(241, func(i int) float64 { return 3 + 2*math.Sin(float64(i)/20) })}}},
}

func TestGraphsMatchTheirGoldens(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			got, err := drawGraph(g.spec, g.lines)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", g.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (write it with -update)", err)
			}
			a, b := decode(t, got), decode(t, want)
			if a.Bounds() != b.Bounds() || a.Bounds().Dx() != 1536 || a.Bounds().Dy() != 768 {
				t.Fatalf("size %v, golden %v, want 1536×768 (2× for retina screens)", a.Bounds(), b.Bounds())
			}
			// Font rasterising may differ by a shade on another machine: a
			// pixel counts as different past a small step, and a few are allowed.
			differ := 0
			for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
				for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
					if far(a.At(x, y), b.At(x, y)) {
						differ++
					}
				}
			}
			if share := float64(differ) / float64(a.Bounds().Dx()*a.Bounds().Dy()); share > 0.002 {
				os.WriteFile(filepath.Join(t.TempDir(), g.file), got, 0o644)
				t.Errorf("%.2f%% of the pixels differ from %s (look at the new one, then -update if it is right)", share*100, path)
			}
		})
	}
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func far(a, b interface{ RGBA() (r, g, b, a uint32) }) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := func(x, y uint32) bool { return max(x, y)-min(x, y) > 0x2000 }
	return d(ar, br) || d(ag, bg) || d(ab, bb)
}

// TestTimeTicksAreOnRoundMinutes: an hour ending at 03:17:43 is ticked
// every 10 minutes at :20, :30 …, each label at its own time; six hours
// every hour.
func TestTimeTicksAreOnRoundMinutes(t *testing.T) {
	labels := func(d time.Duration) []string {
		var out []string
		for _, tk := range (timeTicks{}).Ticks(float64(at.Add(-d).Unix()), float64(at.Unix())) {
			if got := time.Unix(int64(tk.Value), 0).UTC().Format("15:04:05"); got[6:] != "00" || got[:5] != tk.Label {
				t.Errorf("tick %q at %s", tk.Label, got)
			}
			out = append(out, tk.Label)
		}
		return out
	}
	if got := labels(time.Hour); !slices.Equal(got, []string{"02:20", "02:30", "02:40", "02:50", "03:00", "03:10"}) {
		t.Errorf("an hour: %v", got)
	}
	if got := labels(6 * time.Hour); !slices.Equal(got, []string{"22:00", "23:00", "00:00", "01:00", "02:00", "03:00"}) {
		t.Errorf("six hours: %v", got)
	}
}

// TestTheYAxisDoesNotZoomIntoNoise: a flat line keeps a span of at least a
// fifth of its value, from zero.
func TestTheYAxisDoesNotZoomIntoNoise(t *testing.T) {
	lo, hi := yRange(224.999, 225.001)
	if lo != 0 || hi < 225 || hi > 300 {
		t.Errorf("flat 225: axis %v–%v", lo, hi)
	}
	if lo, hi := yRange(-5, -4); lo != -5 || hi-lo < 1 {
		t.Errorf("negative: %v–%v", lo, hi)
	}
	if lo, hi := yRange(0, 0); lo != 0 || hi <= 0 {
		t.Errorf("all zero: %v–%v", lo, hi)
	}
	ticks := (valueTicks{scaleOf("seconds")}).Ticks(0, 330)
	if ticks[1].Label != "100" || ticks[len(ticks)-1].Label != "300" {
		t.Errorf("ms ticks %v", ticks)
	}
	if got := scaleOf("ratio").reading(0.001); got != "0.1%" {
		t.Errorf("a ratio reads %q", got)
	}
	if got := scaleOf("seconds").reading(0.225); got != "225 ms" {
		t.Errorf("seconds read %q", got)
	}
}
