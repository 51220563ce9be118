// Package prom reads Prometheus through its HTTP API with client_golang's
// API client: instant queries that answer one number (for the SLO report).
package prom

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sitrep-oncall/sitrep/internal/slo"
)

// Client queries one Prometheus server.
type Client struct {
	api     v1.API
	timeout time.Duration
}

var _ slo.Querier = (*Client)(nil)

// New returns a client for the Prometheus at url.
func New(url string) (*Client, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", url, err)
	}
	return &Client{api: v1.NewAPI(c), timeout: 10 * time.Second}, nil
}

// Query runs an instant query that must answer a scalar or one series.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, _, _, err := c.api.Query(ctx, query, at)
	if err != nil {
		return 0, fmt.Errorf("prometheus query `%s`: %w", query, err)
	}
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("prometheus query `%s`: %w", query, slo.ErrNoData)
		case 1:
			return float64(v[0].Value), nil
		}
		return 0, fmt.Errorf("prometheus query `%s`: %d series, want one (aggregate it with sum)", query, len(v))
	}
	return 0, fmt.Errorf("prometheus query `%s`: a %s, want a number", query, v.Type())
}
