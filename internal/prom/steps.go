package prom

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"gonum.org/v1/plot/plotter"

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

// Graph runs a range query and draws it (chart.go).
func (c *Client) Graph(ctx context.Context, g runbooks.GraphSpec) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	step := max(g.End.Sub(g.Start)/240, time.Second)
	v, _, _, err := c.api.QueryRange(ctx, g.Query, v1.Range{Start: g.Start, End: g.End, Step: step})
	if err != nil {
		return nil, "", fmt.Errorf("prometheus range query %q: %w", g.Query, err)
	}
	matrix, ok := v.(model.Matrix)
	if !ok {
		return nil, "", fmt.Errorf("prometheus range query %q: a %s, want a matrix", g.Query, v.Type())
	}
	sort.Slice(matrix, func(i, j int) bool { return matrix[i].Metric.String() < matrix[j].Metric.String() })
	if len(matrix) > maxSeries {
		matrix = matrix[:maxSeries]
	}
	var lines []series
	for _, s := range matrix {
		pts := make(plotter.XYs, 0, len(s.Values))
		for _, sp := range s.Values {
			if f := float64(sp.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				pts = append(pts, plotter.XY{X: float64(sp.Timestamp.Unix()), Y: f})
			}
		}
		if len(pts) > 0 {
			lines = append(lines, series{name: s.Metric.String(), points: pts})
		}
	}
	if len(lines) == 0 {
		return nil, "", fmt.Errorf("prometheus range query %q: no data between %s and %s", g.Query, g.Start.UTC().Format("15:04"), g.End.UTC().Format("15:04"))
	}
	png, err := drawGraph(g, lines)
	if err != nil {
		return nil, "", err
	}
	return png, summary(g, lines), nil
}
