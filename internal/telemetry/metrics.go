// Package telemetry counts incidents for Prometheus: declared, open, time to
// acknowledge and time to resolve, by severity. It hears every change as an
// incidents.Notifier and registers on an injected registry.
package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitrep-oncall/sitrep/internal/effects"
	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// Metrics are the incident metrics.
type Metrics struct {
	declared *prometheus.CounterVec
	open     *prometheus.GaugeVec
	tta      *prometheus.HistogramVec
	ttr      *prometheus.HistogramVec
	steps    *prometheus.CounterVec
}

var _ incidents.Notifier = (*Metrics)(nil)

// New registers the metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		declared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitrep_incidents_declared_total", Help: "Incidents declared, by initial severity.",
		}, []string{"severity"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sitrep_incidents_open", Help: "Incidents not resolved, by current severity.",
		}, []string{"severity"}),
		tta: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sitrep_time_to_acknowledge_seconds", Help: "Time from declaration to the first acknowledgement, by the severity at that moment.",
			Buckets: []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400},
		}, []string{"severity"}),
		ttr: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sitrep_time_to_resolve_seconds", Help: "Time from declaration to resolution.",
			Buckets: []float64{300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800},
		}, []string{"severity"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitrep_runbook_steps_total", Help: "Runbook steps run, by runbook and outcome (ok, dry-run, confirmed, skipped, refused, failed).",
		}, []string{"runbook", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.declared, m.open, m.tta, m.ttr, m.steps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, s := range incidents.Severities { // every series exists from the start
		m.declared.WithLabelValues(s.String())
		m.open.WithLabelValues(s.String())
		m.tta.WithLabelValues(s.String())
		m.ttr.WithLabelValues(s.String())
	}
	return m, nil
}

// Seed sets the open gauge from the incidents open at start.
func (m *Metrics) Seed(open []*incidents.Incident) {
	for _, s := range incidents.Severities {
		m.open.WithLabelValues(s.String()).Set(0)
	}
	for _, inc := range open {
		if inc.Open() && !inc.Drill {
			m.open.WithLabelValues(inc.Severity.String()).Inc()
		}
	}
}

// Notify updates the metrics from a change's events.
func (m *Metrics) Notify(_ context.Context, inc *incidents.Incident, events []incidents.Event) {
	if inc.Drill {
		return // a game day is not an incident rate, MTTA or MTTR
	}
	for _, ev := range events {
		switch ev.Kind {
		case incidents.EventDeclared:
			m.declared.WithLabelValues(ev.To).Inc()
			m.open.WithLabelValues(ev.To).Inc()
		case incidents.EventSeverityChanged:
			if inc.Open() {
				m.open.WithLabelValues(ev.From).Dec()
				m.open.WithLabelValues(ev.To).Inc()
			}
		case incidents.EventAcknowledged:
			if _, first, _ := inc.FirstAck(); first.Equal(ev.At) { // the first: a reopened incident's next ack is not another
				m.tta.WithLabelValues(inc.Severity.String()).Observe(first.Sub(inc.DeclaredAt).Seconds())
			}
		case incidents.EventResolved:
			m.open.WithLabelValues(inc.Severity.String()).Dec()
			if inc.MergedInto == 0 || !inc.MergedAt.Equal(ev.At) { // a duplicate's merge is not a time to resolve (as stats)
				m.ttr.WithLabelValues(inc.Severity.String()).Observe(inc.ResolvedAt.Sub(inc.DeclaredAt).Seconds())
			}
		case incidents.EventReopened:
			m.open.WithLabelValues(inc.Severity.String()).Inc()
		case incidents.EventRunbookStep:
			m.steps.WithLabelValues(ev.Fields["runbook"], ev.Fields["outcome"]).Inc()
		}
	}
}

// Backlog is what the metrics read of an outbox runner.
type Backlog interface {
	Consumer() string
	Stats() effects.Stats
}

// Effects counts outbox work: attempts by consumer, effect and outcome (done,
// retry, refused) through Observe, and each runner's pending effects and the
// age of its oldest.
type Effects struct {
	attempts *prometheus.CounterVec
	runners  []Backlog
	pending  *prometheus.Desc
	oldest   *prometheus.Desc
}

// NewEffects registers the outbox metrics on reg.
func NewEffects(reg prometheus.Registerer) (*Effects, error) {
	e := &Effects{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitrep_effect_attempts_total", Help: "Attempts at outside work a change implies (war rooms, headers, posts, PagerDuty calls), by consumer, effect and outcome (done, retry, refused).",
		}, []string{"consumer", "effect", "outcome"}),
		pending: prometheus.NewDesc("sitrep_effects_pending", "Effects stored and not yet done, by consumer.", []string{"consumer"}, nil),
		oldest:  prometheus.NewDesc("sitrep_effect_oldest_pending_seconds", "Age of the oldest pending effect, by consumer (0 when none).", []string{"consumer"}, nil),
	}
	if err := reg.Register(e.attempts); err != nil {
		return nil, err
	}
	return e, reg.Register(backlogCollector{e})
}

// Observe counts one attempt's outcome (effects.Config.Observe).
func (e *Effects) Observe(consumer, effect, outcome string) {
	e.attempts.WithLabelValues(consumer, effect, outcome).Inc()
}

// Watch adds runners whose backlog is reported; call it before serving.
func (e *Effects) Watch(runners ...Backlog) { e.runners = append(e.runners, runners...) }

type backlogCollector struct{ e *Effects }

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.e.pending
	ch <- c.e.oldest
}

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.e.runners {
		st := r.Stats()
		age := 0.0
		if !st.Oldest.IsZero() {
			age = time.Since(st.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.e.pending, prometheus.GaugeValue, float64(st.Pending), r.Consumer())
		ch <- prometheus.MustNewConstMetric(c.e.oldest, prometheus.GaugeValue, age, r.Consumer())
	}
}
