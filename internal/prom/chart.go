package prom

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

// series is one line of a graph: its name and its points (Unix seconds,
// the value in the query's unit).
type series struct {
	name   string
	points plotter.XYs
}

// scale is how a unit reads on a graph: values multiplied by factor and
// labelled label — latency in ms as the tables show it, a ratio in %.
type scale struct {
	factor float64
	label  string
}

func scaleOf(unit string) scale {
	switch unit {
	case "seconds":
		return scale{1000, "ms"}
	case "ratio":
		return scale{100, "%"}
	case "percent":
		return scale{1, "%"}
	case "rate":
		return scale{1, "/s"}
	case "bytes":
		return scale{1.0 / (1 << 20), "MiB"}
	}
	return scale{1, unit}
}

// format writes v (already scaled) with the decimals a step of size step
// needs.
func (s scale) format(v, step float64) string {
	decimals := 0
	if step > 0 && step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// reading is a value with its unit, as the summary says it.
func (s scale) reading(v float64) string {
	v *= s.factor
	out := strconv.FormatFloat(v, 'g', 4, 64)
	switch s.label {
	case "":
		return out
	case "%", "/s":
		return out + s.label
	}
	return out + " " + s.label
}

// Colours: a palette that stays apart for colour-blind readers (Okabe–Ito),
// with the warning amber and the critical vermilion kept for the lines.
var (
	palette  = []color.RGBA{{0, 114, 178, 255}, {0, 158, 115, 255}, {204, 121, 167, 255}, {86, 180, 233, 255}, {0, 0, 0, 255}, {240, 228, 66, 255}}
	warnLine = color.RGBA{230, 159, 0, 255}
	critLine = color.RGBA{213, 94, 0, 255}
)

// Size of the PNG: 8×4 inches at 192 dpi, 1536×768 pixels — sharp on a
// retina screen, readable when Slack shows it at half size.
const (
	graphW, graphH = 8 * vg.Inch, 4 * vg.Inch
	graphDPI       = 192
)

// draw renders the series as a PNG: time ticks on round minutes (UTC), a
// y axis from zero that does not zoom into noise, the thresholds as lines
// in their colours, the legend beside the plot, and the window in the
// title.
func drawGraph(spec runbooks.GraphSpec, lines []series) ([]byte, error) {
	sc := scaleOf(spec.Unit)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s — last %s, %s–%s UTC", spec.Title, incidents.Human(spec.End.Sub(spec.Start)),
		spec.Start.UTC().Format("15:04"), spec.End.UTC().Format("15:04"))
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "UTC"
	p.Y.Label.Text = sc.label
	p.BackgroundColor = color.White
	p.Add(plotter.NewGrid())

	lo, hi := math.Inf(1), math.Inf(-1)
	legend := plot.NewLegend()
	legend.Left, legend.Top, legend.Padding = true, true, vg.Points(4)
	legend.TextStyle.Font.Size = vg.Points(11)
	for i, s := range lines {
		pts := make(plotter.XYs, len(s.points))
		for j, pt := range s.points {
			pts[j] = plotter.XY{X: pt.X, Y: pt.Y * sc.factor}
			lo, hi = math.Min(lo, pts[j].Y), math.Max(hi, pts[j].Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(2)
		p.Add(l)
		legend.Add(seriesName(s.name, spec.Title), l)
	}
	if t := spec.Thresholds; t != nil {
		for _, th := range []struct {
			name string
			v    float64
			c    color.RGBA
		}{{"warning", t.Warning, warnLine}, {"critical", t.Critical, critLine}} {
			v := th.v * sc.factor
			l, err := plotter.NewLine(plotter.XYs{{X: float64(spec.Start.Unix()), Y: v}, {X: float64(spec.End.Unix()), Y: v}})
			if err != nil {
				return nil, err
			}
			l.Color, l.Width, l.Dashes = th.c, vg.Points(1.5), []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(l)
			legend.Add(th.name+" "+sc.reading(th.v), l)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	p.Y.Min, p.Y.Max = yRange(lo, hi)
	p.Y.Tick.Marker = valueTicks{sc}
	p.X.Min, p.X.Max = float64(spec.Start.Unix()), float64(spec.End.Unix())
	p.X.Tick.Marker = timeTicks{}

	img := vgimg.NewWith(vgimg.UseWH(graphW, graphH), vgimg.UseDPI(graphDPI))
	dc := draw.New(img)
	// One unlabelled series with no thresholds needs no legend; otherwise
	// it takes a strip on the right, off the lines.
	if len(lines) == 1 && (lines[0].name == "" || lines[0].name == "{}") && spec.Thresholds == nil {
		p.Draw(dc)
	} else {
		r := legend.Rectangle(dc)
		strip := r.Max.X - r.Min.X + vg.Points(28)
		strip = min(strip, graphW*2/5)
		p.Draw(draw.Crop(dc, 0, -strip, 0, 0))
		legendArea := draw.Crop(dc, graphW-strip+vg.Points(8), 0, 0, -vg.Points(36))
		legend.Draw(legendArea)
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// seriesName is a series' labels as people read them — path=/checkout,
// status=500 — or, for the one series of an aggregate, what the graph is of.
func seriesName(labels, title string) string {
	if labels == "" || labels == "{}" {
		return clip(title, 40)
	}
	labels = strings.NewReplacer(`="`, "=", `", `, ", ").Replace(strings.TrimSuffix(strings.TrimPrefix(labels, "{"), "}"))
	return clip(strings.TrimSuffix(labels, `"`), 40)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// yRange is the y axis for values between lo and hi: from zero when
// nothing is negative, with headroom, and never narrower than a fifth of
// the largest magnitude — a flat 225 ms line stays a flat line at 225, not
// a cliff between 224.999 and 225.001.
func yRange(lo, hi float64) (float64, float64) {
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return 0, 1
	}
	if lo >= 0 {
		lo = 0
	}
	span := hi - lo
	floor := math.Max(math.Abs(hi), math.Abs(lo)) / 5
	if span < floor {
		span = floor
	}
	if span == 0 {
		span = 1
	}
	return lo, lo + span*1.1
}

// valueTicks are about five round y ticks, labelled in the unit.
type valueTicks struct{ sc scale }

func (t valueTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep((hi - lo) / 5)
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		out = append(out, plot.Tick{Value: v, Label: t.sc.format(v, step)})
	}
	return out
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*pow {
			return m * pow
		}
	}
	return 10 * pow
}

// tickSteps are the spacings time ticks may take: each a round number of
// minutes, so a label 10:20 is at 10:20:00.
var tickSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour}

// timeTicks are at most eight ticks at round UTC times.
type timeTicks struct{}

func (timeTicks) Ticks(lo, hi float64) []plot.Tick {
	start, end := time.Unix(int64(math.Ceil(lo)), 0).UTC(), time.Unix(int64(hi), 0).UTC()
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if end.Sub(start)/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04"
	if end.Sub(start) > 24*time.Hour {
		layout = "Jan 2 15:04"
	}
	var out []plot.Tick
	for t := start.Truncate(step); !t.After(end); t = t.Add(step) {
		if t.Before(start) {
			continue
		}
		out = append(out, plot.Tick{Value: float64(t.Unix()), Label: t.Format(layout)})
	}
	return out
}

// summary says what a graph shows: how many series over which window, and
// each one's last value in the unit.
func summary(spec runbooks.GraphSpec, lines []series) string {
	sc := scaleOf(spec.Unit)
	var last []string
	for _, s := range lines {
		last = append(last, fmt.Sprintf("%s = %s", seriesName(s.name, "value"), sc.reading(s.points[len(s.points)-1].Y)))
	}
	return fmt.Sprintf("%d series over the last %s; last: %s", len(lines), incidents.Human(spec.End.Sub(spec.Start)), strings.Join(last, ", "))
}
