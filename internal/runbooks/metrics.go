package runbooks

import (
	"context"
	"time"
)

// Metrics is what promql steps read: Prometheus, through the prom package.
type Metrics interface {
	Instant(ctx context.Context, query string, at time.Time) ([]Sample, error)
	// Graph renders a range query as a PNG and says what it shows.
	Graph(ctx context.Context, g GraphSpec) (png []byte, summary string, err error)
}

// GraphSpec is what a promql_range step draws: the query over a window,
// its values in a unit, and the lines it is judged by.
type GraphSpec struct {
	Title, Query, Unit string
	Start, End         time.Time
	Thresholds         *Thresholds // nil: no lines
}

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64
}
