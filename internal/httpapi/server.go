// Package httpapi is calhook's HTTP interface: the JSON API under /v1, the
// iCalendar feeds under /feeds, and the operational endpoints. Handlers
// decode, validate, call a domain service and encode; they hold no SQL.
package httpapi

import (
	"context"
	_ "embed"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/idempotency"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

//go:embed openapi.json
var openAPI []byte

// maxBodyBytes bounds every request body but those of bodyLimits.
const maxBodyBytes = 1 << 20

// The bulk routes, and the bounds of their bodies.
const (
	batchRoute   = "POST /v1/calendars/{calendarId}/events/batch"
	replaceRoute = "PUT /v1/calendars/{calendarId}/ics"
)

var bodyLimits = map[string]int64{batchRoute: maxBatchBytes, replaceRoute: maxICSBytes}

// Pinger is what the readiness check asks whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what the handlers need.
type Config struct {
	// Store answers the readiness check; handlers reach data only
	// through the services below.
	Store     Pinger
	Accounts  *account.Service
	Calendars *calendar.Service
	Feeds     *feed.Service
	// Hooks registers iCal Hooks on feed GETs.
	Hooks *icalhooks.Service
	// Importer polls imported calendars; nil disables the sync and
	// /hooks/in routes.
	Importer *importer.Importer
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Subscriptions manages webhook subscriptions.
	Subscriptions *subscription.Service
	// Availability manages units, conflicts and export feeds; nil
	// disables the unit routes.
	Availability *availability.Service
	// Holds places and ends holds on units; nil disables the hold routes.
	Holds *holds.Service
	// Idempotency keeps the answers of hold requests sent with an
	// Idempotency-Key; nil ignores the header.
	Idempotency *idempotency.Keeper
	Logger      *slog.Logger
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Tracer traces API writes; nil is tracing off.
	Tracer *tracing.Tracer
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// MetricsApart leaves /metrics out of the routes (it answers 404): the
	// operator serves Handler.Metrics on a listen address of its own.
	MetricsApart bool
	// CursorSecret keys the change cursors, which are opaque per account
	// (see cursorCodec); every node must have the same one. Empty makes a
	// random one: cursors then last as long as the process.
	CursorSecret []byte
	// AdminToken authorises the account routes; empty disables them.
	AdminToken string
	// PublicURL is the base of URLs handed out (feed URLs); when empty the
	// request's own scheme and host are used.
	PublicURL string
	// Sessions makes portal links; nil disables /v1/portal-links.
	Sessions *session.Service
	// Console serves /console/; nil leaves it out.
	Console http.Handler
}

// Handler serves the whole HTTP interface.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	// conditions are the database conditions requests met, for /readyz.
	conditions *conditions
	cursors    cursorCodec
	// routes lists the registered patterns, for the OpenAPI check.
	routes []string
}

// New builds the handler with every route registered.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), metrics: newMetrics(cfg.Registry),
		cursors: newCursorCodec(cfg.CursorSecret)}
	h.conditions = newConditions(h.log, cfg.Registry, time.Now)

	h.handle("GET /healthz", h.healthz)
	h.handle("GET /readyz", h.readyz)
	if !cfg.MetricsApart {
		h.handleHTTP("GET /metrics", h.Metrics())
	}
	h.handle("GET /openapi.json", h.openapi)

	h.handle("POST /v1/accounts", h.admin(h.createAccount))
	h.handle("GET /v1/accounts/{accountId}", h.admin(h.getAccount))
	h.handle("DELETE /v1/accounts/{accountId}", h.admin(h.deleteAccount))

	h.handle("GET /v1/feed-token", h.auth(h.getFeedToken))
	h.handle("POST /v1/feed-token/rotate", h.auth(h.rotateFeedToken))
	h.handle("GET /v1/feed-settings", h.auth(h.getFeedSettings))
	h.handle("PATCH /v1/feed-settings", h.auth(h.updateFeedSettings))

	h.handle("POST /v1/calendars", h.auth(h.createCalendar))
	h.handle("GET /v1/calendars", h.auth(h.listCalendars))
	h.handle("GET /v1/calendars/{calendarId}", h.auth(h.getCalendar))
	h.handle("PATCH /v1/calendars/{calendarId}", h.auth(h.updateCalendar))
	h.handle("DELETE /v1/calendars/{calendarId}", h.auth(h.deleteCalendar))
	h.handle("GET /v1/calendars/{calendarId}/changes", h.auth(h.listChanges))
	h.handle("POST /v1/calendars/{calendarId}/sync", h.auth(h.syncCalendar))
	h.handle("POST /v1/calendars/{calendarId}/sync/confirm", h.auth(h.confirmSync))

	h.handle("POST /v1/calendars/{calendarId}/events", h.auth(h.createEvent))
	h.handle("GET /v1/calendars/{calendarId}/events", h.auth(h.listEvents))
	h.handle("GET /v1/calendars/{calendarId}/events/{eventId}", h.auth(h.getEvent))
	h.handle("PATCH /v1/calendars/{calendarId}/events/{eventId}", h.auth(h.updateEvent))
	h.handle("DELETE /v1/calendars/{calendarId}/events/{eventId}", h.auth(h.deleteEvent))
	h.handle(batchRoute, h.auth(h.idempotent(h.writeBatch)))
	h.handle(replaceRoute, h.auth(h.replaceICS))

	h.handle("POST /v1/subscriptions", h.auth(h.createSubscription))
	h.handle("GET /v1/subscriptions", h.auth(h.listSubscriptions))
	h.handle("GET /v1/subscriptions/{subscriptionId}", h.auth(h.getSubscription))
	h.handle("PATCH /v1/subscriptions/{subscriptionId}", h.auth(h.updateSubscription))
	h.handle("DELETE /v1/subscriptions/{subscriptionId}", h.auth(h.deleteSubscription))
	h.handle("POST /v1/subscriptions/{subscriptionId}/rotate-secret", h.auth(h.rotateSecret))
	h.handle("GET /v1/subscriptions/{subscriptionId}/messages", h.auth(h.listMessages))
	h.handle("GET /v1/messages/{messageId}/attempts", h.auth(h.listAttempts))
	h.handle("POST /v1/messages/{messageId}/redeliver", h.auth(h.redeliver))

	h.handle("GET /v1/calendarSubscriptions/{endUserAccountId}", h.auth(h.listOneCal))
	h.handle("POST /v1/calendarSubscriptions/{endUserAccountId}", h.auth(h.createOneCal))
	h.handle("DELETE /v1/calendarSubscriptions/{endUserAccountId}", h.auth(h.deleteOneCal))

	h.handle("POST /v1/api-keys", h.auth(h.createKey))
	h.handle("GET /v1/api-keys", h.auth(h.listKeys))
	h.handle("DELETE /v1/api-keys/{keyId}", h.auth(h.revokeKey))
	h.handle("POST /v1/portal-links", h.auth(h.createPortalLink))
	if cfg.Console != nil {
		h.handleHTTP("/console/", cfg.Console)
	}
	if cfg.Availability != nil {
		h.handle("POST /v1/units", h.auth(h.createUnit))
		h.handle("GET /v1/units", h.auth(h.listUnits))
		h.handle("GET /v1/units/{unitId}", h.auth(h.getUnit))
		h.handle("PATCH /v1/units/{unitId}", h.auth(h.updateUnit))
		h.handle("DELETE /v1/units/{unitId}", h.auth(h.deleteUnit))
		h.handle("GET /v1/units/{unitId}/availability", h.auth(h.unitAvailability))
		h.handle("GET /v1/units/{unitId}/conflicts", h.auth(h.listConflicts))
		h.handle("GET /v1/units/{unitId}/conflicts/{conflictId}", h.auth(h.getConflict))
		h.handle("GET /v1/availability", h.auth(h.availability))
		h.handle("GET /feeds/{accountId}/{calendarId}/{file}", h.exportFeed)
	}
	if cfg.Holds != nil {
		h.handle("POST /v1/units/{unitId}/holds", h.auth(h.idempotent(h.placeHold)))
		h.handle("GET /v1/units/{unitId}/holds", h.auth(h.listHolds))
		h.handle("GET /v1/holds/{holdId}", h.auth(h.getHold))
		h.handle("POST /v1/holds/{holdId}/confirm", h.auth(h.idempotent(h.confirmHold)))
		h.handle("DELETE /v1/holds/{holdId}", h.auth(h.releaseHold))
	}

	h.handle("GET /v1/icalhooks", h.auth(h.listHooks))
	h.handle("DELETE /v1/icalhooks/{hookId}", h.auth(h.deleteHook))

	// A wildcard must be a whole path segment, so the ".ics" suffix is cut
	// off in the handler.
	h.handle("GET /feeds/{file}", h.accountFeed)
	h.handle("GET /feeds/{accountId}/{file}", h.calendarFeed)

	// calhook's own iCal Hooks receiver; GET also matches the HEAD that
	// upstreams send.
	h.handle("GET /hooks/in/{token}", h.hookIn)
	h.handle("POST /hooks/in/{token}", h.hookIn)

	// Everything else answers JSON instead of the mux's plain text: a
	// 405 with an Allow header for a known path with the wrong method (the
	// catch-all would otherwise hide those from the mux), else a 404.
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, h.log, errMethodNotAllowed)
			return
		}
		writeError(w, r, h.log, errNotFound)
	})
	return h
}

// routeMethods are the methods a route may be registered for.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed returns the methods that a route serves at r's path, none if no
// route but the catch-all matches it. It runs only for requests no route
// took, so it costs the routed ones nothing.
func (h *Handler) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range routeMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := h.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// ServeHTTP serves a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Routes returns the patterns registered, such as "GET /v1/calendars".
func (h *Handler) Routes() []string { return h.routes }

// handle registers a handler with the per-route middleware.
func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	h.handleHTTP(pattern, fn)
}

func (h *Handler) handleHTTP(pattern string, next http.Handler) {
	h.routes = append(h.routes, pattern)
	h.mux.Handle(pattern, h.instrument(pattern, next))
}

// NewServer returns an http.Server for handler with every timeout set.
func NewServer(addr string, handler http.Handler, log *slog.Logger) *http.Server {
	// Requests carry a drain that Shutdown ends first: long waits end
	// with 503 shutting_down rather than hold the shutdown
	// (lifecycle.Draining).
	drain, startDrain := context.WithCancel(context.Background())
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			return lifecycle.WithDrain(context.Background(), drain)
		},
	}
	srv.RegisterOnShutdown(startDrain)
	return srv
}

// Metrics serves the Prometheus metrics, behind the metrics token when
// one is set: GET /metrics of the API, or of the separate address of
// Config.MetricsApart.
func (h *Handler) Metrics() http.Handler {
	return h.metricsAuth(promhttp.HandlerFor(h.cfg.Registry, promhttp.HandlerOpts{}))
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database answers and no request met a
// condition of it (no room for writes, no answer) within the last
// minute; otherwise 503 with the condition's code and a Retry-After.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.Ping(r.Context()); err != nil {
		h.log.ErrorContext(r.Context(), "readiness check failed", "error", err)
		w.Header().Set("Retry-After", retryAfter[fault.DatabaseDown])
		writeJSON(w, http.StatusServiceUnavailable, errorBody(reasonCodes[fault.DatabaseDown], "database not reachable"))
		return
	}
	if reason, ok := h.conditions.current(); ok {
		w.Header().Set("Retry-After", retryAfter[reason])
		writeJSON(w, http.StatusServiceUnavailable, errorBody(reasonCodes[reason], readyText[reason]))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyText is what /readyz says of a condition requests met.
var readyText = map[fault.Reason]string{
	fault.StorageFull:  "writes failed within the last minute: the database has no room for them",
	fault.DatabaseDown: "requests failed within the last minute: the database did not answer",
}

func (h *Handler) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
