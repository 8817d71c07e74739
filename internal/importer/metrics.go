package importer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/outbound"
)

// pollMetrics count polls by outcome, the time to parse a feed and the
// events polls changed.
type pollMetrics struct {
	polls  *prometheus.CounterVec
	parse  prometheus.Histogram
	events *prometheus.CounterVec
}

// pollOutcomes are the outcome label values: a fetched feed that changed
// events or not (200), a 304, and the kinds of failure. The set is
// bounded: outcome returns one of these.
var pollOutcomes = []string{
	StatusChanged, StatusUnchanged, StatusNotModified,
	"http_4xx", "http_5xx", "http_other", "timeout", "dns", "tls", "blocked", "network", "too_large", "bad_body", "unparsable", "internal",
}

func newPollMetrics(reg prometheus.Registerer) *pollMetrics {
	m := &pollMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calhook_import_polls_total",
			Help: "Polls of imported calendars, by outcome: changed or unchanged (200), not_modified (304), or the kind of failure.",
		}, []string{"outcome"}),
		parse: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calhook_import_parse_seconds",
			Help:    "Time to parse a fetched feed.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12),
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calhook_import_events_changed_total",
			Help: "Events that polls created, updated or deleted.",
		}, []string{"change"}),
	}
	for _, o := range pollOutcomes {
		m.polls.WithLabelValues(o)
	}
	for _, c := range []string{"created", "updated", "deleted"} {
		m.events.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.parse, m.events)
	}
	return m
}

// observe counts a finished poll.
func (m *pollMetrics) observe(res *Result) {
	m.polls.WithLabelValues(pollOutcome(res)).Inc()
	if res.Created > 0 {
		m.events.WithLabelValues("created").Add(float64(res.Created))
	}
	if res.Updated > 0 {
		m.events.WithLabelValues("updated").Add(float64(res.Updated))
	}
	if res.Deleted > 0 {
		m.events.WithLabelValues("deleted").Add(float64(res.Deleted))
	}
}

// observeParse records the time a parse took.
func (m *pollMetrics) observeParse(d time.Duration) { m.parse.Observe(d.Seconds()) }

// pollOutcome returns the outcome label of a poll's result.
func pollOutcome(res *Result) string {
	if res.Status != StatusError {
		return res.Status
	}
	var fe *FetchError
	if !errors.As(res.Err, &fe) {
		return "internal" // the outcome could not be recorded
	}
	var (
		oe   *outbound.URLError
		dnse *net.DNSError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		ne   net.Error
	)
	switch {
	case strings.HasPrefix(fe.Msg, "unparsable"):
		return "unparsable"
	case strings.HasPrefix(fe.Msg, "body larger"):
		return "too_large"
	case fe.Status >= 500:
		return "http_5xx"
	case fe.Status >= 400:
		return "http_4xx"
	case fe.Status >= 200 && fe.Status < 300:
		return "bad_body" // a 2xx whose body could not be read or decoded
	case fe.Status != 0:
		return "http_other"
	case errors.As(fe, &oe):
		return "blocked"
	case errors.Is(fe, context.DeadlineExceeded) || errors.As(fe, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(fe, &dnse):
		return "dns"
	case errors.As(fe, &cve), errors.As(fe, &uae), errors.As(fe, &hne):
		return "tls"
	}
	return "network"
}
