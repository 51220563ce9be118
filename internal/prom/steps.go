package prom

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"math"
	"sort"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/sitrep-oncall/sitrep/internal/runbooks"
)

var _ runbooks.Metrics = (*Client)(nil)

// Instant runs an instant query and returns every series' value.
func (c *Client) Instant(ctx context.Context, query string, at time.Time) ([]runbooks.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, _, _, err := c.api.Query(ctx, query, at)
	if err != nil {
		return nil, fmt.Errorf("prometheus query `%s`: %w", query, err)
	}
	switch v := v.(type) {
	case *model.Scalar:
		return []runbooks.Sample{{Value: float64(v.Value)}}, nil
	case model.Vector:
		out := make([]runbooks.Sample, len(v))
		for i, s := range v {
			out[i] = runbooks.Sample{Labels: labelsOf(s.Metric), Value: float64(s.Value)}
		}
		return out, nil
	}
	return nil, fmt.Errorf("prometheus query `%s`: a %s, want a vector", query, v.Type())
}

func labelsOf(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

// maxSeries bounds the lines on one graph.
const maxSeries = 10

// Graph runs a range query and draws it with gonum/plot.
func (c *Client) Graph(ctx context.Context, title, query, unit string, start, end time.Time) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	step := max(end.Sub(start)/240, time.Second)
	v, _, _, err := c.api.QueryRange(ctx, query, v1.Range{Start: start, End: end, Step: step})
	if err != nil {
		return nil, "", fmt.Errorf("prometheus range query %q: %w", query, err)
	}
	matrix, ok := v.(model.Matrix)
	if !ok {
		return nil, "", fmt.Errorf("prometheus range query %q: a %s, want a matrix", query, v.Type())
	}
	sort.Slice(matrix, func(i, j int) bool { return matrix[i].Metric.String() < matrix[j].Metric.String() })
	if len(matrix) > maxSeries {
		matrix = matrix[:maxSeries]
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "UTC"
	p.Y.Label.Text = unit
	p.X.Tick.Marker = plot.TimeTicks{Format: "15:04"}
	p.Add(plotter.NewGrid())
	var last []string
	for i, s := range matrix {
		pts := make(plotter.XYs, 0, len(s.Values))
		for _, sp := range s.Values {
			if f := float64(sp.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				pts = append(pts, plotter.XY{X: float64(sp.Timestamp.Unix()), Y: f})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, "", err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		name := s.Metric.String()
		if name == "{}" {
			name = "value"
		}
		p.Legend.Add(name, line)
		last = append(last, fmt.Sprintf("%s = %.4g", name, pts[len(pts)-1].Y))
	}
	if len(last) == 0 {
		return nil, "", fmt.Errorf("prometheus range query %q: no data between %s and %s", query, start.UTC().Format("15:04"), end.UTC().Format("15:04"))
	}
	p.Legend.Top = true
	p.BackgroundColor = color.White
	w, err := p.WriterTo(8*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), fmt.Sprintf("%d series over %s; last: %s", len(last), end.Sub(start), strings.Join(last, ", ")), nil
}
