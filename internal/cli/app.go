package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/console"
	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/idempotency"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/metrics"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

// app is calhook's parts, wired: the HTTP handler and the background
// components of the delivery pipeline, all joined by one notify.Bus.
type app struct {
	handler http.Handler
	// metrics serves /metrics on the address of Config.MetricsListen.
	metrics http.Handler
	// workers are the background components, in start order.
	workers *lifecycle.Group
}

// newApp wires the services around a store. listenURL is the server's own
// URL, used for links when no public URL is configured. Every component
// publishes to and subscribes on one bus (in its constructor); the caches
// are made first, so that they forget a change before any worker it wakes
// reads them.
func newApp(ctx context.Context, db store.Store, cfg Config, log *slog.Logger, listenURL string, tracer *tracing.Tracer) (*app, error) {
	out, err := newOutbound(cfg)
	if err != nil {
		return nil, err
	}
	cursorSecret, err := changeCursorSecret(ctx, db)
	if err != nil {
		return nil, err
	}
	w := wiring{db: db, cfg: cfg, log: log, out: out, bus: &notify.Bus{}, reg: newRegistry(db, log), tracer: tracer,
		baseURL: cmp.Or(strings.TrimRight(cfg.PublicURL, "/"), listenURL)}
	feeds := w.feeds()
	accounts := account.NewService(db, time.Now, w.bus)
	calendars := calendar.NewService(db, time.Now, w.bus)
	calendars.EnableImports(calendar.ImportRules{URLs: out.feedPolicy, MinPollInterval: cfg.ImportMinInterval})
	hooks := w.hooks()

	// Workers start in this order and stop in reverse: the importer and
	// the fan-out stop before the dispatcher they hand work to, and the
	// listener of other nodes' writes last.
	listener := lifecycle.Func(w.listen)
	dispatcher := w.dispatcher()
	fanout := delivery.NewFanOut(delivery.FanOutConfig{
		Store: db, Logger: w.logger("fanout"), BaseURL: w.baseURL, Bus: w.bus, Direct: dispatcher, Tracer: tracer,
		HostLimited: cfg.WebhookHostRate > 0,
	})
	pruner := delivery.NewPruner(delivery.PrunerConfig{
		Store: db, Logger: w.logger("pruner"), Retention: cfg.Retention, HookLease: cfg.HooksLease,
	})
	imports := w.importer()
	units, detector, holdSvc := w.availability(fanout, imports)
	subs := subscription.NewService(db, out.webhookPolicy, time.Now, w.bus)
	subs.MaxPerAccount = cfg.MaxSubscriptions
	sessions := session.New(session.Config{Store: db, Idle: cfg.ConsoleIdle, AdminToken: cfg.AdminToken})
	web, err := w.console(accounts, calendars, subs, hooks, imports, units, sessions)
	if err != nil {
		return nil, err
	}
	handler := httpapi.New(httpapi.Config{
		Store: db, Accounts: accounts, Calendars: calendars, Feeds: feeds, Hooks: hooks, Importer: imports,
		Subscriptions: subs, Availability: units, Holds: holdSvc, Idempotency: idempotency.New(db, nil),
		TrustedProxies: out.trusted,
		Logger:         log, Registry: w.reg, AdminToken: cfg.AdminToken, MetricsToken: cfg.MetricsToken,
		MetricsApart: cfg.MetricsListen != "", PublicURL: cfg.PublicURL,
		Sessions: sessions, Console: web, Tracer: tracer, CursorSecret: cursorSecret,
	})
	workers := lifecycle.NewGroup(listener, dispatcher, fanout, detector, pruner, imports, holdSvc)
	return &app{handler: handler, metrics: handler.Metrics(), workers: workers}, nil
}

// changeCursorSecret returns the key of the change cursors, the same on
// every node and run: the stored one, or a new one stored now.
func changeCursorSecret(ctx context.Context, db store.Store) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh) // never returns an error; it crashes the program instead
	return db.ServerSecret(ctx, "change-cursor", fresh)
}

// prodID is the PRODID of every feed calhook renders.
func prodID() string { return "-//calhook//calhook " + Version + "//EN" }

// feeds returns the feed service with its render cache.
func (w *wiring) feeds() *feed.Service {
	return feed.NewService(w.db, feed.Options{
		ProdID: prodID(), RefreshInterval: w.cfg.FeedRefreshInterval, Bus: w.bus,
		Window: w.cfg.FeedWindow, CacheBytes: int64(w.cfg.FeedCacheMB) << 20, Registerer: w.reg,
	})
}

// availability returns the units service, the conflict detector (which
// wakes the fan-out when it stores conflicts) and the holds service
// (which refreshes sources through the importer).
func (w *wiring) availability(fanout *delivery.FanOut, imports *importer.Importer) (*availability.Service,
	*availability.Detector, *holds.Service) {
	units := availability.NewService(w.db, availability.Options{
		Bus: w.bus, Horizon: w.cfg.AvailabilityHorizon, ProdID: prodID(), RefreshInterval: w.cfg.FeedRefreshInterval,
	})
	detector := availability.NewDetector(availability.DetectorConfig{
		Store: w.db, Logger: w.logger("conflicts"), Horizon: w.cfg.AvailabilityHorizon, Bus: w.bus,
		Stored: fanout.Notify, Observe: metrics.NewConflictMetrics(w.reg).Observe, BaseURL: w.baseURL,
	})
	holdSvc := holds.NewService(w.db, holds.Options{
		Bus: w.bus, Refresher: imports, Horizon: w.cfg.AvailabilityHorizon, Logger: w.logger("holds"),
	})
	return units, detector, holdSvc
}

// console returns the web console and portal.
func (w *wiring) console(accounts *account.Service, calendars *calendar.Service, subs *subscription.Service,
	hooks *icalhooks.Service, imports *importer.Importer, units *availability.Service, sessions *session.Service) (*console.Handler, error) {
	return console.New(console.Config{
		Accounts: accounts, Calendars: calendars, Subscriptions: subs, Hooks: hooks, Importer: imports, Units: units,
		Sessions: sessions, Reader: w.db, Bus: w.bus, Logger: w.log, PublicURL: w.cfg.PublicURL,
		FrameAncestors: w.cfg.PortalFrameAncestors,
		ClientIP:       func(r *http.Request) string { return httpapi.ClientIP(r, w.out.trusted) },
	})
}

// start starts the workers; if one fails, those started are stopped.
func (a *app) start(ctx context.Context) error {
	if err := a.workers.Start(ctx); err != nil {
		a.stop(0)
		return err
	}
	return nil
}

// stop stops the workers in reverse start order: the importer (polls in
// flight are cancelled; their leases bring them back), the pruner, the
// conflict detector, the fan-out, then delivery, which lets attempts in flight finish for up to
// grace (at least a second), and last the listener.
func (a *app) stop(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), max(grace, time.Second))
	defer cancel()
	a.workers.Stop(ctx)
}

// wiring is what the constructors of newApp share.
type wiring struct {
	db      store.Store
	cfg     Config
	log     *slog.Logger
	out     *outboundSet
	bus     *notify.Bus
	reg     *prometheus.Registry
	tracer  *tracing.Tracer
	baseURL string
}

// listen publishes on the bus what other nodes sharing the store write,
// until ctx ends.
func (w *wiring) listen(ctx context.Context) {
	_ = w.db.Listen(ctx, w.bus) // nil once ctx ends
}

// logger returns the logger of a component.
func (w *wiring) logger(component string) *slog.Logger { return w.log.With("component", component) }

// newRegistry returns the Prometheus registry of the process, with the
// Go runtime, process and store collectors.
func newRegistry(db store.Store, log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewStoreCollector(metrics.StoreCollectorConfig{Store: db, Logger: log.With("component", "metrics")}))
	return reg
}

// hooks returns the iCal Hooks service.
func (w *wiring) hooks() *icalhooks.Service {
	cfg := w.cfg
	return icalhooks.NewService(icalhooks.Config{
		Store: w.db, URLs: w.out.hookPolicy, Client: w.out.ping, Logger: w.logger("icalhooks"), BaseURL: w.baseURL,
		Verify: cfg.HooksVerify == "challenge", MaxPerFeed: cfg.HooksMaxPerFeed, MaxPerToken: cfg.HooksMaxPerToken,
		MaxPerHost: cfg.HooksMaxPerHost, Bus: w.bus,
	})
}

// dispatcher returns the webhook and ping dispatcher.
func (w *wiring) dispatcher() *delivery.Dispatcher {
	cfg := w.cfg
	return delivery.NewDispatcher(delivery.DispatcherConfig{
		Store: w.db, Client: w.out.webhook, PingClient: w.out.ping, HostRate: cfg.HooksHostRate, WebhookHostRate: cfg.WebhookHostRate,
		Logger:  w.logger("delivery"),
		Retry:   delivery.RetryPolicy{Schedule: cfg.RetrySchedule, Jitter: 0.1, MaxRetryAfter: 24 * time.Hour},
		Workers: cfg.DeliveryWorkers, PerSubscription: cfg.DeliveryPerEndpoint, Timeout: cfg.WebhookTimeout,
		DisableAfter: cfg.DisableAfter, UserAgent: w.out.userAgent, Registerer: w.reg, Bus: w.bus, Tracer: w.tracer,
	})
}

// importer returns the importer of imported calendars.
func (w *wiring) importer() *importer.Importer {
	cfg := w.cfg
	return importer.New(importer.Config{
		Store: w.db, Logger: w.logger("importer"), Client: w.out.feed, Bus: w.bus, Registerer: w.reg, Tracer: w.tracer,
		Schedule: importer.Schedule{
			Default: cfg.ImportInterval, Min: cfg.ImportMinInterval, Max: cfg.ImportMaxInterval, Jitter: importer.DefaultJitter,
		},
		Concurrency: cfg.ImportConcurrency, PerHost: cfg.ImportPerHost, PerAccount: cfg.ImportPerAccount,
		MaxBytes: int64(cfg.ImportMaxBytes), MaxEvents: cfg.ImportMaxEvents,
		Timeout: cfg.ImportTimeout, IdleTimeout: cfg.ImportIdleTimeout, Lease: cfg.ImportLease, PublicURL: cfg.PublicURL,
		Guard: importer.Guard{
			Disabled: !cfg.ImportHoldDeletes, Fraction: float64(cfg.ImportHoldPercent) / 100,
			MinDeletes: cfg.ImportHoldMinDeletes, Delay: cfg.ImportHoldDelay,
		},
	})
}

// outboundSet is the outbound HTTP clients and the address rules they,
// and the URL checks before them, apply.
type outboundSet struct {
	userAgent string
	// webhookPolicy checks webhook URLs, hookPolicy iCal Hooks URLs,
	// feedPolicy the sources of imported calendars.
	webhookPolicy, hookPolicy, feedPolicy outbound.Policy
	// webhook posts webhooks, ping sends iCal Hooks pings, feed fetches
	// imported calendars.
	webhook, ping, feed *http.Client
	// trusted are the proxies that may set X-Forwarded-For.
	trusted []netip.Prefix
}

// newOutbound builds the outbound clients cfg describes.
func newOutbound(cfg Config) (*outboundSet, error) {
	cidrs, err := outbound.ParseCIDRs(cfg.AllowPrivateCIDRs)
	if err != nil {
		return nil, err
	}
	trusted, err := outbound.ParseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	o := &outboundSet{
		userAgent:     "calhook/" + Version,
		webhookPolicy: outbound.Policy{AllowHTTP: cfg.AllowHTTPWebhooks, AllowedCIDRs: cidrs},
		// iCal Hooks URLs may be http (the draft's examples are), but the
		// same address rules apply.
		hookPolicy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: cidrs},
		feedPolicy: outbound.Policy{AllowHTTP: cfg.AllowHTTPFeeds, AllowedCIDRs: cidrs},
		trusted:    trusted,
	}
	o.webhook = outbound.NewClient(outbound.Options{
		Policy: o.webhookPolicy, UserAgent: o.userAgent, Timeout: cfg.WebhookTimeout,
		// A webhook endpoint answers the POST; following a redirect would
		// turn it into a GET.
		MaxRedirects: outbound.NoRedirects,
		// Enough idle connections for every worker: with fewer, deliveries
		// to one busy receiver keep reconnecting.
		MaxIdleConnsPerHost: cfg.DeliveryWorkers,
	})
	o.ping = outbound.NewClient(outbound.Options{
		Policy: o.hookPolicy, UserAgent: o.userAgent, Timeout: cfg.WebhookTimeout, MaxRedirects: outbound.NoRedirects,
	})
	// Imported feeds follow redirects (feed hosts move them), each hop
	// checked against the same address rules.
	o.feed = outbound.NewClient(outbound.Options{
		Policy: o.feedPolicy, UserAgent: o.userAgent, Timeout: cfg.ImportTimeout,
		MaxRedirects: outbound.DefaultMaxRedirects, MaxIdleConnsPerHost: cfg.ImportPerHost,
	})
	return o, nil
}
