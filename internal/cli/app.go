package cli

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/subscription"
)

// app is calhook's parts, wired: the HTTP handler and the background
// workers of the delivery pipeline.
type app struct {
	handler    http.Handler
	fanout     *delivery.FanOut
	dispatcher *delivery.Dispatcher
	pruner     *delivery.Pruner
	importer   *importer.Importer

	// listen, when the store is shared by several nodes, follows the
	// other nodes' writes; stopListen ends it.
	listen     func(ctx context.Context) error
	stopListen context.CancelFunc
	listenDone chan struct{}
}

// notifier is a store shared by several nodes that reports their writes
// (PostgreSQL LISTEN/NOTIFY).
type notifier interface {
	Listen(ctx context.Context, onChange func(postgres.Change), onMessages func()) error
}

// newApp wires the services around a store. listenURL is the server's own
// URL, used for links when no public URL is configured.
func newApp(db store.Store, cfg Config, log *slog.Logger, listenURL string) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	baseURL := strings.TrimRight(cfg.PublicURL, "/")
	if baseURL == "" {
		baseURL = listenURL
	}
	cidrs, err := outbound.ParseCIDRs(cfg.AllowPrivateCIDRs)
	if err != nil {
		return nil, err
	}
	policy := outbound.Policy{AllowHTTP: cfg.AllowHTTPWebhooks, AllowedCIDRs: cidrs}
	userAgent := "calhook/" + Version
	client := outbound.NewClient(outbound.Options{
		Policy: policy, UserAgent: userAgent, Timeout: cfg.WebhookTimeout,
		// A webhook endpoint answers the POST; following a redirect would
		// turn it into a GET.
		MaxRedirects: outbound.NoRedirects,
		// Enough idle connections for every worker: with fewer, deliveries
		// to one busy receiver keep reconnecting.
		MaxIdleConnsPerHost: cfg.DeliveryWorkers,
	})

	// iCal Hooks URLs may be http (the draft's examples are), but the same
	// address rules apply.
	hookPolicy := outbound.Policy{AllowHTTP: true, AllowedCIDRs: cidrs}
	pingClient := outbound.NewClient(outbound.Options{
		Policy: hookPolicy, UserAgent: userAgent, Timeout: cfg.WebhookTimeout, MaxRedirects: outbound.NoRedirects,
	})
	trusted, err := outbound.ParseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}

	a := &app{}
	a.dispatcher = delivery.NewDispatcher(delivery.DispatcherConfig{
		Store: db, Client: client, PingClient: pingClient, HostRate: cfg.HooksHostRate, Logger: log.With("component", "delivery"),
		Retry:   delivery.RetryPolicy{Schedule: cfg.RetrySchedule, Jitter: 0.1, MaxRetryAfter: 24 * time.Hour},
		Workers: cfg.DeliveryWorkers, PerSubscription: cfg.DeliveryPerEndpoint, Timeout: cfg.WebhookTimeout,
		DisableAfter: cfg.DisableAfter, UserAgent: userAgent, Registerer: reg,
	})
	a.fanout = delivery.NewFanOut(delivery.FanOutConfig{
		Store: db, Logger: log.With("component", "fanout"), BaseURL: baseURL, Enqueued: a.dispatcher.Notify,
		Direct: a.dispatcher,
	})
	a.pruner = &delivery.Pruner{Store: db, Logger: log.With("component", "pruner"), Retention: cfg.Retention, HookLease: cfg.HooksLease}
	hooks := icalhooks.NewService(icalhooks.Config{
		Store: db, URLs: hookPolicy, Client: pingClient, Logger: log.With("component", "icalhooks"), BaseURL: baseURL,
		Verify: cfg.HooksVerify == "challenge", MaxPerFeed: cfg.HooksMaxPerFeed, MaxPerToken: cfg.HooksMaxPerToken,
		MaxPerHost: cfg.HooksMaxPerHost, Pinged: a.dispatcher.Notify,
	})

	feeds := feed.NewService(db, feed.Options{
		ProdID:          "-//calhook//calhook " + Version + "//EN",
		RefreshInterval: cfg.FeedRefreshInterval,
	})
	// Imported feeds follow redirects (feed hosts move them), each hop
	// checked against the same address rules.
	feedPolicy := outbound.Policy{AllowHTTP: cfg.AllowHTTPFeeds, AllowedCIDRs: cidrs}
	a.importer = importer.New(importer.Config{
		Store: db, Logger: log.With("component", "importer"),
		Client: outbound.NewClient(outbound.Options{
			Policy: feedPolicy, UserAgent: userAgent, Timeout: cfg.ImportTimeout,
			MaxRedirects: outbound.DefaultMaxRedirects, MaxIdleConnsPerHost: cfg.ImportPerHost,
		}),
		Schedule: importer.Schedule{
			Default: cfg.ImportInterval, Min: cfg.ImportMinInterval, Max: cfg.ImportMaxInterval, Jitter: importer.DefaultJitter,
		},
		Concurrency: cfg.ImportConcurrency, PerHost: cfg.ImportPerHost, PerAccount: cfg.ImportPerAccount, MaxBytes: int64(cfg.ImportMaxBytes),
		Timeout: cfg.ImportTimeout, PublicURL: cfg.PublicURL,
		Guard: importer.Guard{
			Disabled: !cfg.ImportHoldDeletes, Fraction: float64(cfg.ImportHoldPercent) / 100,
			MinDeletes: cfg.ImportHoldMinDeletes, Delay: cfg.ImportHoldDelay,
		},
		Changed: func(accountID, calendarID string) {
			feeds.Invalidate(accountID, calendarID)
			a.fanout.Notify()
		},
	})
	accounts := account.NewService(db, time.Now, func(accountID string) {
		feeds.Invalidate(accountID, "")
		a.fanout.Notify()
	})
	calendars := calendar.NewService(db, time.Now, func(accountID, calendarID string) {
		feeds.Invalidate(accountID, calendarID)
		a.fanout.Notify()
	})
	calendars.EnableImports(calendar.ImportRules{URLs: feedPolicy, MinPollInterval: cfg.ImportMinInterval,
		Created: a.importer.Notify})
	if n, ok := db.(notifier); ok {
		// Another node's write: drop what this node cached of the feeds
		// it touched and wake the fan-out, as for a local write. An empty
		// account means "anything may have changed" (after a reconnect).
		// The importer needs no wake-up: the node that made a poll due
		// polls it, and any node's scheduler finds it within safetyPoll.
		a.listen = func(ctx context.Context) error {
			return n.Listen(ctx, func(c postgres.Change) {
				switch {
				case c.AccountID == "":
					feeds.InvalidateAll()
					hooks.ForgetAll()
					accounts.Forget("")
					calendars.Forget("", "")
				case c.CalendarID == "":
					// The account itself: deleted, or its feed token
					// rotated (which drops its hooks).
					feeds.Invalidate(c.AccountID, "")
					hooks.Forget(c.AccountID)
					accounts.Forget(c.AccountID)
					calendars.Forget(c.AccountID, "")
				default:
					feeds.Invalidate(c.AccountID, c.CalendarID)
					if c.Calendar {
						calendars.Forget(c.AccountID, c.CalendarID)
					}
				}
				a.fanout.Notify()
			}, a.dispatcher.Notify)
		}
	}
	subs := subscription.NewService(db, policy, time.Now)
	subs.MaxPerAccount = cfg.MaxSubscriptions
	a.handler = httpapi.New(httpapi.Config{
		Store: db, Accounts: accounts, Calendars: calendars, Feeds: feeds,
		Subscriptions: subs, Delivered: a.dispatcher.Notify,
		Hooks: hooks, TrustedProxies: trusted, Importer: a.importer,
		Logger: log, Registry: reg, AdminToken: cfg.AdminToken, PublicURL: cfg.PublicURL,
	})
	return a, nil
}

// start runs the workers.
func (a *app) start(ctx context.Context) error {
	if a.listen != nil {
		lctx, cancel := context.WithCancel(ctx)
		a.stopListen, a.listenDone = cancel, make(chan struct{})
		go func() {
			defer close(a.listenDone)
			a.listen(lctx)
		}()
	}
	for _, start := range []func(context.Context) error{a.dispatcher.Start, a.fanout.Start, a.pruner.Start, a.importer.Start} {
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
	a.fanout.Stop()
	a.dispatcher.Stop(max(grace, time.Second))
	if a.stopListen != nil {
		a.stopListen()
		<-a.listenDone
	}
}
