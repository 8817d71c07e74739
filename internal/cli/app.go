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
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/metrics"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

// app is calhook's parts, wired: the HTTP handler and the background
// workers of the delivery pipeline, all joined by one notify.Bus.
type app struct {
	handler    http.Handler
	db         store.Store
	bus        *notify.Bus
	fanout     *delivery.FanOut
	dispatcher *delivery.Dispatcher
	pruner     *delivery.Pruner
	importer   *importer.Importer
	detector   *availability.Detector

	// stopListen ends the store's Listen; listenDone closes when it has.
	stopListen context.CancelFunc
	listenDone chan struct{}
}

// newApp wires the services around a store. listenURL is the server's own
// URL, used for links when no public URL is configured. Every component
// publishes to and subscribes on one bus; the caches are made first, so
// that they forget a change before any worker it wakes reads them.
func newApp(ctx context.Context, db store.Store, cfg Config, log *slog.Logger, listenURL string, tracer *tracing.Tracer) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewStoreCollector(metrics.StoreCollectorConfig{Store: db, Logger: log.With("component", "metrics")}))
	baseURL := cmp.Or(strings.TrimRight(cfg.PublicURL, "/"), listenURL)
	out, err := newOutbound(cfg)
	if err != nil {
		return nil, err
	}
	// The key of the change cursors, the same on every node and run.
	fresh := make([]byte, 32)
	rand.Read(fresh) // never returns an error; it crashes the program instead
	cursorSecret, err := db.ServerSecret(ctx, "change-cursor", fresh)
	if err != nil {
		return nil, err
	}
	bus := &notify.Bus{}
	feeds := feed.NewService(db, feed.Options{
		ProdID: "-//calhook//calhook " + Version + "//EN", RefreshInterval: cfg.FeedRefreshInterval, Bus: bus,
	})
	accounts := account.NewService(db, time.Now, bus)
	calendars := calendar.NewService(db, time.Now, bus)
	calendars.EnableImports(calendar.ImportRules{URLs: out.feedPolicy, MinPollInterval: cfg.ImportMinInterval})
	hooks := icalhooks.NewService(icalhooks.Config{
		Store: db, URLs: out.hookPolicy, Client: out.ping, Logger: log.With("component", "icalhooks"), BaseURL: baseURL,
		Verify: cfg.HooksVerify == "challenge", MaxPerFeed: cfg.HooksMaxPerFeed, MaxPerToken: cfg.HooksMaxPerToken,
		MaxPerHost: cfg.HooksMaxPerHost, Bus: bus,
	})
	a := &app{db: db, bus: bus}
	a.dispatcher = delivery.NewDispatcher(delivery.DispatcherConfig{
		Store: db, Client: out.webhook, PingClient: out.ping, HostRate: cfg.HooksHostRate, WebhookHostRate: cfg.WebhookHostRate,
		Logger:  log.With("component", "delivery"),
		Retry:   delivery.RetryPolicy{Schedule: cfg.RetrySchedule, Jitter: 0.1, MaxRetryAfter: 24 * time.Hour},
		Workers: cfg.DeliveryWorkers, PerSubscription: cfg.DeliveryPerEndpoint, Timeout: cfg.WebhookTimeout,
		DisableAfter: cfg.DisableAfter, UserAgent: out.userAgent, Registerer: reg, Bus: bus, Tracer: tracer,
	})
	a.fanout = delivery.NewFanOut(delivery.FanOutConfig{
		Store: db, Logger: log.With("component", "fanout"), BaseURL: baseURL, Bus: bus, Direct: a.dispatcher, Tracer: tracer,
		HostLimited: cfg.WebhookHostRate > 0,
	})
	a.pruner = &delivery.Pruner{Store: db, Logger: log.With("component", "pruner"), Retention: cfg.Retention, HookLease: cfg.HooksLease}
	a.importer = importer.New(importer.Config{
		Store: db, Logger: log.With("component", "importer"), Client: out.feed, Bus: bus, Registerer: reg, Tracer: tracer,
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
	units := availability.NewService(db, availability.Options{
		Bus: bus, Horizon: cfg.AvailabilityHorizon,
		ProdID: "-//calhook//calhook " + Version + "//EN", RefreshInterval: cfg.FeedRefreshInterval,
	})
	a.detector = availability.NewDetector(availability.DetectorConfig{
		Store: db, Logger: log.With("component", "conflicts"), Horizon: cfg.AvailabilityHorizon, Bus: bus,
		Stored: a.fanout.Notify, BaseURL: baseURL,
	})
	subs := subscription.NewService(db, out.webhookPolicy, time.Now, bus)
	subs.MaxPerAccount = cfg.MaxSubscriptions
	sessions := session.New(session.Config{Store: db, Idle: cfg.ConsoleIdle, AdminToken: cfg.AdminToken})
	web, err := console.New(console.Config{
		Accounts: accounts, Calendars: calendars, Subscriptions: subs, Hooks: hooks, Importer: a.importer,
		Sessions: sessions, Reader: db, Bus: bus, Logger: log, PublicURL: cfg.PublicURL,
		FrameAncestors: cfg.PortalFrameAncestors,
		ClientIP:       func(r *http.Request) string { return httpapi.ClientIP(r, out.trusted) },
	})
	if err != nil {
		return nil, err
	}
	a.handler = httpapi.New(httpapi.Config{
		Store: db, Accounts: accounts, Calendars: calendars, Feeds: feeds, Hooks: hooks, Importer: a.importer,
		Subscriptions: subs, Availability: units, TrustedProxies: out.trusted,
		Logger: log, Registry: reg, AdminToken: cfg.AdminToken, MetricsToken: cfg.MetricsToken, PublicURL: cfg.PublicURL,
		Sessions: sessions, Console: web, Tracer: tracer, CursorSecret: cursorSecret,
	})
	return a, nil
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

// start runs the store's listener (other nodes' writes, published on the
// bus) and the workers.
func (a *app) start(ctx context.Context) error {
	lctx, cancel := context.WithCancel(ctx)
	a.stopListen, a.listenDone = cancel, make(chan struct{})
	go func() {
		defer close(a.listenDone)
		_ = a.db.Listen(lctx, a.bus) // it returns nil once lctx ends
	}()
	for _, start := range []func(context.Context) error{a.dispatcher.Start, a.fanout.Start, a.detector.Start, a.pruner.Start, a.importer.Start} {
		if err := start(ctx); err != nil {
			a.stop(0)
			return err
		}
	}
	return nil
}

// stop stops the workers: the importer (polls in flight are cancelled;
// their leases bring them back), the fan-out, then delivery, which lets
// attempts in flight finish for up to grace.
func (a *app) stop(grace time.Duration) {
	a.importer.Stop()
	a.pruner.Stop()
	a.detector.Stop()
	a.fanout.Stop()
	a.dispatcher.Stop(max(grace, time.Second))
	if a.stopListen != nil {
		a.stopListen()
		<-a.listenDone
	}
}
