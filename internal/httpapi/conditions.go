package httpapi

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/fault"
)

// conditionWindow is how long a storage condition a request met counts
// as current: /readyz reports it, and its log line repeats no more often.
const conditionWindow = time.Minute

// conditionReasons are the conditions of the database that requests
// meet: the bounded label set of their metrics.
var conditionReasons = []fault.Reason{fault.StorageFull, fault.DatabaseDown}

// conditions remembers when requests last failed for a condition of the
// database (no room for writes, no answer), for /readyz and the metrics,
// and logs each condition at most once per conditionWindow.
type conditions struct {
	log   *slog.Logger
	now   func() time.Time
	total *prometheus.CounterVec

	mu     sync.Mutex
	seen   map[fault.Reason]time.Time
	logged map[fault.Reason]time.Time
}

func newConditions(log *slog.Logger, reg prometheus.Registerer, now func() time.Time) *conditions {
	c := &conditions{
		log: log, now: now, seen: map[fault.Reason]time.Time{}, logged: map[fault.Reason]time.Time{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calhook_database_condition_errors_total",
			Help: "Requests that failed for a condition of the database: storage_full (no room for writes) or database_unavailable (no answer).",
		}, []string{"condition"}),
	}
	reg.MustRegister(c.total)
	for _, r := range conditionReasons {
		c.total.WithLabelValues(string(r))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "calhook_database_condition",
			Help:        "1 while requests have met the condition of the database within the last minute.",
			ConstLabels: prometheus.Labels{"condition": string(r)},
		}, func() float64 {
			if _, ok := c.since(r); ok {
				return 1
			}
			return 0
		}))
	}
	return c
}

// note records that a request failed for reason.
func (c *conditions) note(r *http.Request, reason fault.Reason) {
	c.total.WithLabelValues(string(reason)).Inc()
	now := c.now()
	c.mu.Lock()
	c.seen[reason] = now
	quiet := now.Sub(c.logged[reason]) < conditionWindow
	if !quiet {
		c.logged[reason] = now
	}
	c.mu.Unlock()
	if !quiet {
		c.log.WarnContext(r.Context(), "requests fail: "+conditionText[reason], "condition", string(reason),
			"repeats", "at most once a minute while it lasts")
	}
}

// conditionText says what a condition means for the operator.
var conditionText = map[fault.Reason]string{
	fault.StorageFull:  "the database has no room for writes (disk full or read-only); free space, writes resume by themselves",
	fault.DatabaseDown: "the database does not answer",
}

// since returns when reason was last met if that was within the window.
func (c *conditions) since(reason fault.Reason) (time.Time, bool) {
	c.mu.Lock()
	at, ok := c.seen[reason]
	c.mu.Unlock()
	return at, ok && c.now().Sub(at) < conditionWindow
}

// current returns the condition met most recently within the window.
func (c *conditions) current() (fault.Reason, bool) {
	var last time.Time
	var found fault.Reason
	for _, r := range conditionReasons {
		if at, ok := c.since(r); ok && at.After(last) {
			last, found = at, r
		}
	}
	return found, found != ""
}

// conditionNoter is the response writer of instrument, which hands the
// condition a request met to conditions once the handler is done.
type conditionNoter interface {
	noteCondition(fault.Reason)
}

// noteCondition tells the instrumenting writer under w that the request
// failed for reason.
func noteCondition(w http.ResponseWriter, reason fault.Reason) {
	for w != nil {
		if n, ok := w.(conditionNoter); ok {
			n.noteCondition(reason)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}
