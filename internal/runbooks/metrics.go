package runbooks

import (
	"context"
	"time"
)

// Metrics is what promql steps read: Prometheus, through the prom package.
type Metrics interface {
	Instant(ctx context.Context, query string, at time.Time) ([]Sample, error)
	// Graph renders a range query as a PNG and says what it shows.
	Graph(ctx context.Context, title, query, unit string, start, end time.Time) (png []byte, summary string, err error)
}

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64
}
