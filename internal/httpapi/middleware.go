package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/tracing"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calhook_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "calhook_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// statusWriter records the status code a handler wrote, and the
// condition of the database the request met, if any.
type statusWriter struct {
	http.ResponseWriter
	status    int
	condition fault.Reason
}

func (w *statusWriter) noteCondition(r fault.Reason) { w.condition = r }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument wraps a route with panic recovery, a body size limit, metrics
// and an access log. The log names the route pattern, never the URL, so
// feed tokens in query strings stay out of logs.
func (h *Handler) instrument(pattern string, next http.Handler) http.Handler {
	route := pattern
	if _, path, ok := strings.Cut(pattern, " "); ok {
		route = path
	}
	observer := h.metrics.duration.WithLabelValues(route)
	counters := &routeCounters{vec: h.metrics.requests, route: route, m: map[codeKey]prometheus.Counter{}}
	limit := int64(maxBodyBytes)
	if l, ok := bodyLimits[pattern]; ok {
		limit = l
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(sw, r.Body, limit)
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.log.ErrorContext(r.Context(), "panic serving request", "route", route, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, h.log, errors.New("panic"))
				}
			}
			elapsed := time.Since(start)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if sw.condition != "" {
				h.conditions.note(r, sw.condition)
			}
			observer.Observe(elapsed.Seconds())
			counters.get(r.Method, status).Inc()
			if h.log.Enabled(r.Context(), slog.LevelDebug) || status >= 500 {
				h.log.LogAttrs(r.Context(), levelFor(status), "request",
					slog.String("method", r.Method), slog.String("route", route),
					slog.Int("status", status), slog.Duration("duration", elapsed))
			}
		}()
		if h.cfg.Tracer != nil && isWrite(r.Method) {
			var span trace.Span
			r, span = h.traceWrite(r, route)
			defer func() { endWriteSpan(span, sw.status) }()
		}
		next.ServeHTTP(sw, r)
	})
}

// isWrite reports whether method writes: API writes get a span each.
func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut || method == http.MethodDelete
}

// traceWrite starts the span of an API write, continuing the client's
// trace if it sent a traceparent, and puts its trace context where the
// store keeps it with the changes the write makes.
func (h *Handler) traceWrite(r *http.Request, route string) (*http.Request, trace.Span) {
	ctx, span := h.cfg.Tracer.Start(tracing.FromRequest(r.Context(), r), r.Method+" "+route,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
	return r.WithContext(store.WithTrace(ctx, tracing.Parent(ctx))), span
}

// endWriteSpan ends the span of an API write with its status.
func endWriteSpan(span trace.Span, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

type codeKey struct {
	method string
	code   int
}

// routeCounters caches a route's request counters by method and status, so
// the hot path does no label hashing.
type routeCounters struct {
	vec   *prometheus.CounterVec
	route string
	mu    sync.RWMutex
	m     map[codeKey]prometheus.Counter
}

func (rc *routeCounters) get(method string, code int) prometheus.Counter {
	k := codeKey{method, code}
	rc.mu.RLock()
	c, ok := rc.m[k]
	rc.mu.RUnlock()
	if ok {
		return c
	}
	c = rc.vec.WithLabelValues(rc.route, method, strconv.Itoa(code))
	rc.mu.Lock()
	rc.m[k] = c
	rc.mu.Unlock()
	return c
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelDebug
}

type ctxKey struct{}

// keyCtxKey holds the *store.APIKey a request authenticated with.
type keyCtxKey struct{}

// keyFrom returns the API key a request authenticated with.
func keyFrom(ctx context.Context) *store.APIKey {
	k, _ := ctx.Value(keyCtxKey{}).(*store.APIKey)
	return k
}

// accountFrom returns the authenticated account of a request.
func accountFrom(ctx context.Context) *store.Account {
	a, _ := ctx.Value(ctxKey{}).(*store.Account)
	return a
}

// credential returns the key of "Authorization: Bearer KEY" or
// "x-api-key: KEY".
func credential(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, key, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key)
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// auth requires an account API key.
func (h *Handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := credential(r)
		if key == "" {
			writeError(w, r, h.log, errUnauthorized("missing API key: send Authorization: Bearer KEY or x-api-key: KEY"))
			return
		}
		a, k, err := h.cfg.Accounts.AuthenticateKey(r.Context(), key)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, r, h.log, errUnauthorized("invalid API key"))
			return
		}
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, a)
		next(w, r.WithContext(context.WithValue(ctx, keyCtxKey{}, k)))
	}
}

// metricsAuth requires the metrics token on /metrics when one is set:
// the metrics tell how busy every tenant is.
func (h *Handler) metricsAuth(next http.Handler) http.Handler {
	if h.cfg.MetricsToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(credential(r)), []byte(h.cfg.MetricsToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, r, h.log, errUnauthorized("missing or invalid metrics token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admin requires the operator's admin token.
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.AdminToken == "" {
			writeError(w, r, h.log, errForbidden("the admin API is disabled: set CALHOOK_ADMIN_TOKEN"))
			return
		}
		key := credential(r)
		if key == "" {
			writeError(w, r, h.log, errUnauthorized("missing admin token"))
			return
		}
		if subtle.ConstantTimeCompare([]byte(key), []byte(h.cfg.AdminToken)) != 1 {
			writeError(w, r, h.log, errUnauthorized("invalid admin token"))
			return
		}
		next(w, r)
	}
}
