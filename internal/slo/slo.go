// Package slo reports the service's availability and latency against its
// objectives, and the error budget: how much of it is left, how fast it
// burns, and how much one incident consumed. The defaults are the team's
// production guide: 99.95% of requests succeed over 30 days (a budget of
// about 22 minutes of full outage), P95 under 100 ms and P99 under 300 ms.
package slo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Querier answers an instant PromQL query with one number.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (float64, error)
}

// ErrNoData is returned when a query matches no series.
var ErrNoData = errors.New("no data")

// Config holds the objectives and the queries that measure them. In the
// queries, $window is replaced by a Prometheus duration.
type Config struct {
	Target     float64       // availability objective, e.g. 0.9995
	Window     time.Duration // the SLO window
	BurnWindow time.Duration // the window of the current burn rate
	P95Target  time.Duration
	P99Target  time.Duration
	// The SLI table's warning and critical lines, which runbook steps and
	// alerts judge by: looser than the objectives.
	P95Warning, P95Critical time.Duration
	P99Warning, P99Critical time.Duration
	TotalQuery              string // requests over $window
	FailedQuery             string // failed requests over $window (5xx)
	LatencyP95              string
	LatencyP99              string
	// CoverageQuery counts the minutes of $window that have data: a
	// reading over 30 days of which Prometheus holds six minutes says so.
	CoverageQuery string
}

// Default is the production guide's SLO.
func Default() Config {
	return Config{
		Target: 0.9995, Window: 30 * 24 * time.Hour, BurnWindow: time.Hour,
		P95Target: 100 * time.Millisecond, P99Target: 300 * time.Millisecond,
		P95Warning: 150 * time.Millisecond, P95Critical: 300 * time.Millisecond,
		P99Warning: 500 * time.Millisecond, P99Critical: time.Second,
		CoverageQuery: `count_over_time(sum(http_requests_total)[$window:1m])`,
		TotalQuery:    `sum(increase(http_requests_total[$window]))`,
		FailedQuery:   `sum(increase(http_requests_total{status=~"5.."}[$window]))`,
		LatencyP95:    `histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le))`,
		LatencyP99:    `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[5m])) by (le))`,
	}
}

// promDuration writes d the way PromQL reads it: whole seconds.
func promDuration(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(max(d, time.Second)/time.Second))
}

func (c Config) q(query string, window time.Duration) string {
	return strings.ReplaceAll(query, "$window", promDuration(window))
}

// BudgetMinutes is the window's error budget as minutes of full outage.
func (c Config) BudgetMinutes() float64 { return (1 - c.Target) * c.Window.Minutes() }

// Report is the state of the SLO at a moment.
type Report struct {
	At               time.Time
	Target           float64
	Window           time.Duration
	Availability     float64 // successful / total over the window
	BudgetMinutes    float64
	ConsumedPercent  float64 // of the budget, over the window
	RemainingPercent float64
	RemainingMinutes float64
	BurnRate         float64 // error ratio over BurnWindow / allowed error ratio; 1 = on budget
	BurnWindow       time.Duration
	P95, P99         time.Duration
	P95Target        time.Duration
	P99Target        time.Duration
	LatencyErr       string // why latency is missing, if it is
	// Covered is how much of the window has data (a minute's resolution);
	// 0 when not known, and then CoverageErr says why.
	Covered     time.Duration
	CoverageErr string
}

// Partial reports whether the window's figures stand on less than all of
// it: what they say is about Covered, not Window.
func (r Report) Partial() bool { return r.Covered > 0 && r.Covered < r.Window*99/100 }

// Measure queries Prometheus for the report at `at`.
func Measure(ctx context.Context, q Querier, c Config, at time.Time) (Report, error) {
	r := Report{At: at, Target: c.Target, Window: c.Window, BudgetMinutes: c.BudgetMinutes(), BurnWindow: c.BurnWindow, P95Target: c.P95Target, P99Target: c.P99Target}
	ratio, err := errorRatio(ctx, q, c, c.Window, at)
	if err != nil {
		return r, fmt.Errorf("availability: %w", err)
	}
	allowed := 1 - c.Target
	r.Availability = 1 - ratio
	r.ConsumedPercent = ratio / allowed * 100
	r.RemainingPercent = 100 - r.ConsumedPercent
	r.RemainingMinutes = r.BudgetMinutes * r.RemainingPercent / 100
	burn, err := errorRatio(ctx, q, c, c.BurnWindow, at)
	if err != nil {
		return r, fmt.Errorf("burn rate: %w", err)
	}
	r.BurnRate = burn / allowed
	if c.CoverageQuery != "" {
		switch minutes, err := q.Query(ctx, c.q(c.CoverageQuery, c.Window), at); {
		case err == nil && minutes >= 0 && !math.IsNaN(minutes):
			r.Covered = time.Duration(minutes) * time.Minute
		case err != nil:
			r.CoverageErr = err.Error()
		}
	}
	p95, err95 := q.Query(ctx, c.LatencyP95, at)
	p99, err99 := q.Query(ctx, c.LatencyP99, at)
	if err := errors.Join(err95, err99); err != nil {
		r.LatencyErr = err.Error()
	} else {
		r.P95, r.P99 = seconds(p95), seconds(p99)
	}
	return r, nil
}

func seconds(s float64) time.Duration {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// errorRatio is failed/total over window, ending at `at`.
func errorRatio(ctx context.Context, q Querier, c Config, window time.Duration, at time.Time) (float64, error) {
	total, err := q.Query(ctx, c.q(c.TotalQuery, window), at)
	if err != nil {
		return 0, err
	}
	if total <= 0 {
		return 0, fmt.Errorf("%w: no requests in the last %s", ErrNoData, promDuration(window))
	}
	failed, err := q.Query(ctx, c.q(c.FailedQuery, window), at)
	if errors.Is(err, ErrNoData) {
		failed, err = 0, nil // no 5xx series at all: nothing failed
	}
	if err != nil {
		return 0, err
	}
	return failed / total, nil
}

// Budget is what one incident took from the error budget.
type Budget struct {
	Target          float64       `json:"target"`
	Window          time.Duration `json:"-"`
	WindowSeconds   float64       `json:"window_seconds"`
	BudgetMinutes   float64       `json:"budget_minutes"`
	ConsumedPercent float64       `json:"consumed_percent"`
	FailedRequests  float64       `json:"failed_requests"`
	Error           string        `json:"error,omitempty"`
}

// IncidentBudget is the share of the window's error budget that the failed
// requests between from and to consumed.
func IncidentBudget(ctx context.Context, q Querier, c Config, from, to time.Time) Budget {
	b := Budget{Target: c.Target, Window: c.Window, WindowSeconds: c.Window.Seconds(), BudgetMinutes: c.BudgetMinutes()}
	if !to.After(from) {
		b.Error = "the incident has no duration"
		return b
	}
	failed, err := q.Query(ctx, c.q(c.FailedQuery, to.Sub(from)), to)
	if errors.Is(err, ErrNoData) {
		failed, err = 0, nil
	}
	if err == nil {
		var total float64
		if total, err = q.Query(ctx, c.q(c.TotalQuery, c.Window), to); err == nil {
			b.FailedRequests = failed
			if allowed := (1 - c.Target) * total; allowed > 0 {
				b.ConsumedPercent = failed / allowed * 100
			}
		}
	}
	if err != nil {
		b.Error = err.Error()
	}
	return b
}
