// Package metrics turns what the database holds into the Prometheus
// figures an operator watches: the delivery queue by state, the age of
// its oldest message, the fan-out's lag, disabled subscriptions, armed
// iCal Hooks, overdue imports, open availability conflicts and the
// connection pools. They are read when /metrics is scraped, through
// store.StatsStore, so no loop polls the database for them and a scrape
// costs a few indexed counts. ConflictMetrics adds counters of the
// conflicts detected and resolved, which the detector counts as it
// stores them.
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/store"
)

// StoreCollector is a prometheus.Collector that reads store.Stats at each
// scrape.
type StoreCollector struct {
	store store.StatsStore
	log   *slog.Logger
	now   func() time.Time
	// overdue is how long past its due time a poll counts as overdue.
	overdue time.Duration
	// timeout bounds the queries of one scrape.
	timeout time.Duration

	up, queue, oldest, lag, disabled, armed, importsOverdue, conflicts *prometheus.Desc
	poolConns, poolWaits, poolWaitSeconds                              *prometheus.Desc
}

// StoreCollectorConfig configures a StoreCollector.
type StoreCollectorConfig struct {
	Store  store.StatsStore
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// OverdueAfter is how long past its due time an import poll counts
	// as overdue; zero is a minute.
	OverdueAfter time.Duration
	// Timeout bounds the queries of one scrape; zero is 5 seconds.
	Timeout time.Duration
}

// NewStoreCollector returns a collector of cfg.Store's figures.
func NewStoreCollector(cfg StoreCollectorConfig) *StoreCollector {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OverdueAfter <= 0 {
		cfg.OverdueAfter = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &StoreCollector{
		store: cfg.Store, log: cfg.Logger, now: cfg.Now, overdue: cfg.OverdueAfter, timeout: cfg.Timeout,
		up: prometheus.NewDesc("calhook_store_stats_up",
			"1 if the scrape read the database's figures, 0 if the queries failed.", nil, nil),
		queue: prometheus.NewDesc("calhook_delivery_queue_messages",
			"Messages (webhooks and iCal Hooks pings) in the delivery queue, by state: due, in_flight, retrying (waiting to retry), rate_limited (given a later slot), parked (subscription disabled), undeliverable (kept until pruned).",
			[]string{"state"}, nil),
		oldest: prometheus.NewDesc("calhook_delivery_oldest_undelivered_age_seconds",
			"Age of the oldest message still to be delivered (not parked); 0 when there is none.", nil, nil),
		lag: prometheus.NewDesc("calhook_fanout_lag_seconds",
			"Age of the oldest change the fan-out has not turned into messages yet; 0 when it is up to date.", nil, nil),
		disabled: prometheus.NewDesc("calhook_subscriptions_disabled",
			"Webhook subscriptions that are disabled (410 Gone, days of failures, or by their owner).", nil, nil),
		armed: prometheus.NewDesc("calhook_icalhooks_armed",
			"iCal Hooks waiting for their feed's next change.", nil, nil),
		importsOverdue: prometheus.NewDesc("calhook_imports_overdue",
			"Imported calendars due for a poll for more than a minute that no poller holds.", nil, nil),
		conflicts: prometheus.NewDesc("calhook_conflicts_open",
			"Open availability conflicts (double bookings) whose overlap has not ended yet.", nil, nil),
		poolConns: prometheus.NewDesc("calhook_db_pool_connections",
			"Database connections by pool and state: open, in_use, max.", []string{"pool", "state"}, nil),
		poolWaits: prometheus.NewDesc("calhook_db_pool_waits_total",
			"Times a caller waited for a free database connection.", []string{"pool"}, nil),
		poolWaitSeconds: prometheus.NewDesc("calhook_db_pool_wait_seconds_total",
			"Time callers waited for a free database connection.", []string{"pool"}, nil),
	}
}

// Describe sends the descriptors of the figures.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.queue, c.oldest, c.lag, c.disabled, c.armed, c.importsOverdue,
		c.conflicts, c.poolConns, c.poolWaits, c.poolWaitSeconds} {
		ch <- d
	}
}

// Collect reads the figures. When the database does not answer, it
// sends calhook_store_stats_up 0 and the pool figures only.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.store.PoolStats() {
		ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(p.Open), p.Name, "open")
		ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(p.InUse), p.Name, "in_use")
		ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(p.Max), p.Name, "max")
		ch <- prometheus.MustNewConstMetric(c.poolWaits, prometheus.CounterValue, float64(p.Waits), p.Name)
		ch <- prometheus.MustNewConstMetric(c.poolWaitSeconds, prometheus.CounterValue, p.WaitTime.Seconds(), p.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := c.now()
	st, err := c.store.Stats(ctx, store.StatsParams{Now: now, OverdueAfter: c.overdue})
	if err != nil {
		c.log.Warn("read the database's figures for /metrics", "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	q := st.Queue
	for _, s := range []struct {
		state string
		n     int64
	}{
		{"due", q.Due}, {"in_flight", q.InFlight}, {"retrying", q.Retrying}, {"rate_limited", q.RateLimited},
		{"parked", q.Parked}, {"undeliverable", q.Undeliverable},
	} {
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(s.n), s.state)
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age(now, st.OldestUndelivered))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, age(now, st.OldestUnfanned))
	ch <- prometheus.MustNewConstMetric(c.disabled, prometheus.GaugeValue, float64(st.SubscriptionsDisabled))
	ch <- prometheus.MustNewConstMetric(c.armed, prometheus.GaugeValue, float64(st.HooksArmed))
	ch <- prometheus.MustNewConstMetric(c.importsOverdue, prometheus.GaugeValue, float64(st.ImportsOverdue))
	ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.GaugeValue, float64(st.ConflictsOpen))
}

// ConflictMetrics counts the availability conflicts that the conflict
// detector of this process stored: detected and resolved. Each is counted
// once, by the node whose step stored it (a replayed step stores, and so
// counts, nothing again).
type ConflictMetrics struct {
	detected, resolved prometheus.Counter
}

// NewConflictMetrics returns the conflict counters, registered with reg
// if it is not nil.
func NewConflictMetrics(reg prometheus.Registerer) *ConflictMetrics {
	m := &ConflictMetrics{
		detected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calhook_conflicts_detected_total",
			Help: "Availability conflicts (two blocking events of one unit that overlap) detected and stored by this node.",
		}),
		resolved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calhook_conflicts_resolved_total",
			Help: "Availability conflicts resolved (the overlap went away) and stored by this node.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.detected, m.resolved)
	}
	return m
}

// Observe counts what a detection step stored; it is the detector's
// availability.DetectorConfig.Observe.
func (m *ConflictMetrics) Observe(res store.DetectResult) {
	m.detected.Add(float64(res.Detected))
	m.resolved.Add(float64(res.Resolved))
}

// age returns the seconds from t to now: 0 for the zero time, or a t
// after now (clocks of several nodes differ a little).
func age(now, t time.Time) float64 {
	if t.IsZero() || t.After(now) {
		return 0
	}
	return now.Sub(t).Seconds()
}
