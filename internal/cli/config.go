package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/subscription"
)

// Config is everything `calhook serve` can be told. It carries its own
// defaults and validation and is passed down explicitly.
type Config struct {
	// DB is a SQLite file path (or sqlite:// URL).
	DB string
	// Addr is the listen address of the HTTP server.
	Addr string
	// PublicURL is the externally visible base URL, used in feed URLs.
	PublicURL string
	// AdminToken authorises the account admin API; empty disables it.
	// It must have at least MinAdminTokenLength characters.
	AdminToken string
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken string
	// MetricsListen, when set, is a listen address of its own for GET
	// /metrics (such as 127.0.0.1:9090, reachable by the monitoring only);
	// the API's address then answers /metrics with 404.
	MetricsListen string
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// FeedRefreshInterval is the REFRESH-INTERVAL hint in served feeds.
	FeedRefreshInterval time.Duration
	// FeedWindow is the default feed window: events that ended longer ago
	// leave feeds (a calendar may set its own); zero keeps all history.
	FeedWindow time.Duration
	// FeedCacheMB is the render cache's budget in MiB.
	FeedCacheMB int
	// ShutdownTimeout bounds the graceful part of shutdown.
	ShutdownTimeout time.Duration
	// AvailabilityHorizon is how far ahead recurring events block a unit.
	AvailabilityHorizon time.Duration

	// AllowHTTPWebhooks allows http:// webhook URLs (tests, development).
	AllowHTTPWebhooks bool
	// AllowPrivateCIDRs are address ranges outbound requests may reach
	// despite the SSRF rules, e.g. 127.0.0.1/32 in tests.
	AllowPrivateCIDRs []string
	// DeliveryWorkers bounds webhook deliveries in flight, and
	// DeliveryPerEndpoint is the ceiling of those to one subscription.
	DeliveryWorkers     int
	DeliveryPerEndpoint int
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout time.Duration
	// RetrySchedule is the wait before each retry.
	RetrySchedule []time.Duration
	// Retention is how long attempts, finished messages and changes are
	// kept.
	Retention time.Duration
	// DisableAfter disables a subscription whose deliveries all failed for
	// this long.
	DisableAfter time.Duration

	// MaxSubscriptions bounds the webhook subscriptions of one account.
	MaxSubscriptions int
	// WebhookHostRate is the most webhook deliveries per second to one
	// host, whole instance; 0 is unlimited.
	WebhookHostRate int

	// HooksVerify is "off" or "challenge": whether new iCal hooks must
	// echo a challenge before they are armed.
	HooksVerify string
	// Caps on iCal hooks per feed, per feed token and per target host.
	HooksMaxPerFeed, HooksMaxPerToken, HooksMaxPerHost int
	// HooksHostRate is the most pings per second to one host.
	HooksHostRate int
	// HooksLease deletes hooks not registered again for this long.
	HooksLease time.Duration
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []string
	// ConsoleIdle ends a console session idle this long.
	ConsoleIdle time.Duration
	// PortalFrameAncestors are the origins that may frame the portal.
	PortalFrameAncestors []string

	// AllowHTTPFeeds allows http:// source URLs for imported calendars
	// (the address rules still apply).
	AllowHTTPFeeds bool
	// ImportInterval is the base poll interval of imported calendars
	// without their own; ImportMinInterval is the floor no poll goes
	// below, ImportMaxInterval the ceiling of the slowdown and backoff.
	ImportInterval    time.Duration
	ImportMinInterval time.Duration
	ImportMaxInterval time.Duration
	// ImportTimeout bounds one fetch of a feed; ImportIdleTimeout
	// abandons a fetch that has received nothing for that long.
	ImportTimeout     time.Duration
	ImportIdleTimeout time.Duration
	// ImportLease is how long a claimed poll is held before it is taken
	// again (its poller died); zero means the importer's default.
	ImportLease time.Duration
	// ImportMaxEvents bounds the events of one imported calendar.
	ImportMaxEvents int
	// ImportConcurrency bounds polls in flight, ImportPerHost those to one
	// host.
	ImportConcurrency int
	ImportPerHost     int
	// ImportPerAccount bounds the polls in flight of one account; zero
	// means half of ImportConcurrency.
	ImportPerAccount int
	// ImportMaxBytes is the largest feed accepted, after decompression.
	ImportMaxBytes int
	// ImportHoldDeletes turns on the mass-deletion guard (see
	// importer.Guard): a poll that would delete at least
	// ImportHoldPercent % of a calendar's events and at least
	// ImportHoldMinDeletes of them, or all of them, holds the deletes
	// until a fetch ImportHoldDelay later confirms them.
	ImportHoldDeletes    bool
	ImportHoldPercent    int
	ImportHoldMinDeletes int
	ImportHoldDelay      time.Duration
}

// ConfigError names the setting that is wrong and why.
type ConfigError struct {
	Field string
	Value string
	Err   string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Err)
}

// DefaultWebhookHostRate is the default --webhook-host-rate: no limit. A
// limit caps every endpoint of a host, a SaaS receiving all its accounts'
// webhooks at one host included, and sends every webhook through the
// queue (none straight to a free worker), which costs each a claim; an
// instance whose tenants may point many subscriptions at a third party's
// host sets one.
const DefaultWebhookHostRate = 0

// defaultConfig returns the settings used when nothing is given.
func defaultConfig() Config {
	return Config{
		DB:                   "./calhook.db",
		Addr:                 "127.0.0.1:8080",
		LogFormat:            "text",
		LogLevel:             "info",
		FeedRefreshInterval:  15 * time.Minute,
		FeedWindow:           90 * 24 * time.Hour,
		FeedCacheMB:          64,
		ShutdownTimeout:      15 * time.Second,
		AvailabilityHorizon:  2 * 365 * 24 * time.Hour,
		DeliveryWorkers:      64,
		DeliveryPerEndpoint:  delivery.DefaultPerSubscription,
		WebhookTimeout:       10 * time.Second,
		RetrySchedule:        []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 12 * time.Hour, 24 * time.Hour},
		Retention:            30 * 24 * time.Hour,
		DisableAfter:         5 * 24 * time.Hour,
		HooksVerify:          "off",
		HooksMaxPerFeed:      100,
		MaxSubscriptions:     subscription.DefaultMaxPerAccount,
		ConsoleIdle:          session.DefaultIdle,
		WebhookHostRate:      DefaultWebhookHostRate,
		HooksMaxPerToken:     1000,
		HooksMaxPerHost:      1000,
		HooksHostRate:        10,
		HooksLease:           30 * 24 * time.Hour,
		ImportInterval:       importer.DefaultInterval,
		ImportMinInterval:    importer.DefaultMinInterval,
		ImportMaxInterval:    importer.DefaultMaxInterval,
		ImportTimeout:        importer.DefaultTimeout,
		ImportIdleTimeout:    importer.DefaultIdleTimeout,
		ImportMaxEvents:      importer.DefaultMaxEvents,
		ImportConcurrency:    importer.DefaultConcurrency,
		ImportPerHost:        importer.DefaultPerHost,
		ImportMaxBytes:       importer.DefaultMaxBytes,
		ImportHoldDeletes:    true,
		ImportHoldPercent:    int(importer.DefaultGuardFraction * 100),
		ImportHoldMinDeletes: importer.DefaultGuardMinDeletes,
		ImportHoldDelay:      importer.DefaultGuardDelay,
	}
}

// envOr returns the value of CALHOOK_<name>, or the contents of the file
// named by CALHOOK_<name>_FILE (for secrets), or def.
func envOr(getenv func(string) string, name, def string) (string, error) {
	if v := getenv("CALHOOK_" + name); v != "" {
		return v, nil
	}
	if path := getenv("CALHOOK_" + name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read CALHOOK_%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return def, nil
}

// bindCommon registers the flags every command shares (the database) with
// defaults taken from the environment.
func bindCommon(fs *flag.FlagSet, cfg *Config, getenv func(string) string) error {
	db, err := envOr(getenv, "DB", cfg.DB)
	if err != nil {
		return err
	}
	fs.StringVar(&cfg.DB, "db", db, "SQLite database file, or a postgres:// URL (env CALHOOK_DB)")
	return nil
}

// bindServe registers the flags of `calhook serve`.
func bindServe(fs *flag.FlagSet, cfg *Config, getenv func(string) string) error {
	if err := bindCommon(fs, cfg, getenv); err != nil {
		return err
	}
	vals := map[string]*string{}
	for _, name := range []string{"ADDR", "PUBLIC_URL", "ADMIN_TOKEN", "METRICS_TOKEN", "METRICS_LISTEN", "LOG_FORMAT", "LOG_LEVEL", "FEED_REFRESH_INTERVAL",
		"FEED_WINDOW", "FEED_CACHE_MB",
		"SHUTDOWN_TIMEOUT", "WEBHOOK_TIMEOUT", "RETENTION", "DISABLE_AFTER", "ALLOW_HTTP_WEBHOOKS", "ALLOW_PRIVATE_CIDR",
		"DELIVERY_WORKERS", "DELIVERY_PER_ENDPOINT", "RETRY_SCHEDULE", "MAX_SUBSCRIPTIONS", "WEBHOOK_HOST_RATE", "ICALHOOKS_VERIFY", "ICALHOOKS_MAX_PER_FEED",
		"ICALHOOKS_MAX_PER_TOKEN", "ICALHOOKS_MAX_PER_HOST", "ICALHOOKS_HOST_RATE", "ICALHOOKS_LEASE", "TRUSTED_PROXY",
		"ALLOW_HTTP_FEEDS", "IMPORT_INTERVAL", "IMPORT_MIN_INTERVAL", "IMPORT_MAX_INTERVAL", "IMPORT_TIMEOUT",
		"IMPORT_IDLE_TIMEOUT", "IMPORT_MAX_EVENTS", "IMPORT_LEASE",
		"IMPORT_CONCURRENCY", "IMPORT_PER_HOST", "IMPORT_PER_ACCOUNT", "IMPORT_MAX_BYTES", "IMPORT_HOLD_DELETES", "IMPORT_HOLD_PERCENT",
		"IMPORT_HOLD_MIN_DELETES", "IMPORT_HOLD_DELAY", "CONSOLE_IDLE", "PORTAL_FRAME_ANCESTORS", "AVAILABILITY_HORIZON"} {
		v, err := envOr(getenv, name, "")
		if err != nil {
			return err
		}
		vals[name] = &v
	}
	def := func(env, fallback string) string {
		if v := *vals[env]; v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&cfg.Addr, "addr", def("ADDR", cfg.Addr), "listen address (env CALHOOK_ADDR)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", def("METRICS_LISTEN", cfg.MetricsListen),
		"serve /metrics on this address of its own instead of the API's (env CALHOOK_METRICS_LISTEN)")
	fs.StringVar(&cfg.PublicURL, "public-url", def("PUBLIC_URL", cfg.PublicURL), "public base URL used in feed URLs (env CALHOOK_PUBLIC_URL)")
	fs.StringVar(&cfg.LogFormat, "log-format", def("LOG_FORMAT", cfg.LogFormat), "log format: text or json (env CALHOOK_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", def("LOG_LEVEL", cfg.LogLevel), "log level: debug, info, warn, error (env CALHOOK_LOG_LEVEL)")
	cfg.AdminToken = *vals["ADMIN_TOKEN"]
	cfg.MetricsToken = *vals["METRICS_TOKEN"]
	for _, d := range []struct {
		flag, env string
		dst       *time.Duration
		usage     string
	}{
		{"feed-refresh-interval", "FEED_REFRESH_INTERVAL", &cfg.FeedRefreshInterval, "REFRESH-INTERVAL hint in feeds"},
		{"feed-window", "FEED_WINDOW", &cfg.FeedWindow, "feeds leave out events that ended longer ago, unless a calendar sets its own window (0: all history)"},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout, "how long shutdown waits for requests in flight"},
		{"availability-horizon", "AVAILABILITY_HORIZON", &cfg.AvailabilityHorizon, "how far ahead recurring events block a unit"},
		{"webhook-timeout", "WEBHOOK_TIMEOUT", &cfg.WebhookTimeout, "how long one webhook attempt may take"},
		{"retention", "RETENTION", &cfg.Retention, "how long delivery logs and changes are kept"},
		{"disable-after", "DISABLE_AFTER", &cfg.DisableAfter, "disable a subscription whose deliveries all failed this long"},
		{"icalhooks-lease", "ICALHOOKS_LEASE", &cfg.HooksLease, "delete iCal hooks not registered again for this long"},
		{"import-interval", "IMPORT_INTERVAL", &cfg.ImportInterval, "base poll interval of imported feeds without their own"},
		{"import-min-interval", "IMPORT_MIN_INTERVAL", &cfg.ImportMinInterval, "no imported feed is polled more often (also the least pollIntervalSeconds)"},
		{"import-max-interval", "IMPORT_MAX_INTERVAL", &cfg.ImportMaxInterval, "longest poll interval of a quiet or failing feed"},
		{"import-timeout", "IMPORT_TIMEOUT", &cfg.ImportTimeout, "how long one fetch of an imported feed may take"},
		{"import-idle-timeout", "IMPORT_IDLE_TIMEOUT", &cfg.ImportIdleTimeout, "abandon a fetch of an imported feed that has received nothing for this long"},
		{"import-lease", "IMPORT_LEASE", &cfg.ImportLease, "how long a poll whose poller died (a crash) waits before it runs again (0: the larger of 5m and 4 × import-timeout)"},
		{"import-hold-delay", "IMPORT_HOLD_DELAY", &cfg.ImportHoldDelay, "how long held deletes wait for the fetch that confirms them (at least import-min-interval)"},
		{"console-idle", "CONSOLE_IDLE", &cfg.ConsoleIdle, "end a console session idle this long"},
	} {
		if v := *vals[d.env]; v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil {
				return &ConfigError{Field: "CALHOOK_" + d.env, Value: v, Err: "not a duration such as 15m"}
			}
			*d.dst = parsed
		}
		fs.DurationVar(d.dst, d.flag, *d.dst, d.usage+" (env CALHOOK_"+d.env+")")
	}
	for _, n := range []struct {
		flag, env string
		dst       *int
		usage     string
	}{
		{"delivery-workers", "DELIVERY_WORKERS", &cfg.DeliveryWorkers, "webhook deliveries in flight at most"},
		{"feed-cache-mb", "FEED_CACHE_MB", &cfg.FeedCacheMB, "MiB of rendered feeds kept in memory at most (least recently served leave first)"},
		{"delivery-per-endpoint", "DELIVERY_PER_ENDPOINT", &cfg.DeliveryPerEndpoint, "ceiling of webhook deliveries in flight to one subscription; below it the limit adapts to how the endpoint answers"},
		{"max-subscriptions", "MAX_SUBSCRIPTIONS", &cfg.MaxSubscriptions, "webhook subscriptions per account at most"},
		{"webhook-host-rate", "WEBHOOK_HOST_RATE", &cfg.WebhookHostRate, "webhook deliveries per second to one host, whole instance, at most (0: no limit)"},
		{"icalhooks-max-per-feed", "ICALHOOKS_MAX_PER_FEED", &cfg.HooksMaxPerFeed, "iCal hooks per feed at most"},
		{"icalhooks-max-per-token", "ICALHOOKS_MAX_PER_TOKEN", &cfg.HooksMaxPerToken, "iCal hooks per feed token at most"},
		{"icalhooks-max-per-host", "ICALHOOKS_MAX_PER_HOST", &cfg.HooksMaxPerHost, "iCal hooks per target host, instance-wide, at most"},
		{"icalhooks-host-rate", "ICALHOOKS_HOST_RATE", &cfg.HooksHostRate, "iCal Hooks pings per second to one host at most"},
		{"import-concurrency", "IMPORT_CONCURRENCY", &cfg.ImportConcurrency, "imported feeds polled at once at most"},
		{"import-per-host", "IMPORT_PER_HOST", &cfg.ImportPerHost, "imported feeds of one host polled at once at most"},
		{"import-per-account", "IMPORT_PER_ACCOUNT", &cfg.ImportPerAccount, "imported feeds of one account polled at once at most (0: half of import-concurrency)"},
		{"import-max-bytes", "IMPORT_MAX_BYTES", &cfg.ImportMaxBytes, "largest imported feed in bytes, after decompression"},
		{"import-max-events", "IMPORT_MAX_EVENTS", &cfg.ImportMaxEvents, "most events of one imported calendar; a feed with more fails its poll"},
		{"import-hold-percent", "IMPORT_HOLD_PERCENT", &cfg.ImportHoldPercent, "a poll deleting at least this % of an imported calendar's events holds the deletes"},
		{"import-hold-min-deletes", "IMPORT_HOLD_MIN_DELETES", &cfg.ImportHoldMinDeletes, "fewest deletes a poll holds (deleting every event is always held)"},
	} {
		if v := *vals[n.env]; v != "" {
			parsed, err := strconv.Atoi(v)
			if err != nil {
				return &ConfigError{Field: "CALHOOK_" + n.env, Value: v, Err: "not a whole number"}
			}
			*n.dst = parsed
		}
		fs.IntVar(n.dst, n.flag, *n.dst, n.usage+" (env CALHOOK_"+n.env+")")
	}
	if v := *vals["ALLOW_HTTP_WEBHOOKS"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &ConfigError{Field: "CALHOOK_ALLOW_HTTP_WEBHOOKS", Value: v, Err: "not true or false"}
		}
		cfg.AllowHTTPWebhooks = b
	}
	fs.BoolVar(&cfg.AllowHTTPWebhooks, "allow-http-webhooks", cfg.AllowHTTPWebhooks,
		"allow http:// webhook and hook URLs, for tests and development (env CALHOOK_ALLOW_HTTP_WEBHOOKS)")
	if v := *vals["ALLOW_HTTP_FEEDS"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &ConfigError{Field: "CALHOOK_ALLOW_HTTP_FEEDS", Value: v, Err: "not true or false"}
		}
		cfg.AllowHTTPFeeds = b
	}
	fs.BoolVar(&cfg.AllowHTTPFeeds, "allow-http-feeds", cfg.AllowHTTPFeeds,
		"allow http:// source URLs for imported calendars (env CALHOOK_ALLOW_HTTP_FEEDS)")
	if v := *vals["IMPORT_HOLD_DELETES"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &ConfigError{Field: "CALHOOK_IMPORT_HOLD_DELETES", Value: v, Err: "not true or false"}
		}
		cfg.ImportHoldDeletes = b
	}
	fs.BoolVar(&cfg.ImportHoldDeletes, "import-hold-deletes", cfg.ImportHoldDeletes,
		"hold a poll's mass deletion until a later fetch confirms it; false applies every delete at once (env CALHOOK_IMPORT_HOLD_DELETES)")
	if v := *vals["ALLOW_PRIVATE_CIDR"]; v != "" {
		cfg.AllowPrivateCIDRs = splitList(v)
	}
	fs.Func("allow-private-cidr", "an address range outbound requests may reach despite the SSRF rules, e.g. 127.0.0.1/32; repeatable or comma-separated (env CALHOOK_ALLOW_PRIVATE_CIDR)",
		func(v string) error {
			cfg.AllowPrivateCIDRs = append(cfg.AllowPrivateCIDRs, splitList(v)...)
			return nil
		})
	fs.StringVar(&cfg.HooksVerify, "icalhooks-verify", def("ICALHOOKS_VERIFY", cfg.HooksVerify),
		"off, or challenge: new iCal hooks must echo GET ?icalhooks.challenge=X before they are armed (env CALHOOK_ICALHOOKS_VERIFY)")
	if v := *vals["PORTAL_FRAME_ANCESTORS"]; v != "" {
		cfg.PortalFrameAncestors = splitList(v)
	}
	fs.Func("portal-frame-ancestors", "an origin that may frame the portal, e.g. https://app.example.com; repeatable or comma-separated (env CALHOOK_PORTAL_FRAME_ANCESTORS)",
		func(v string) error {
			cfg.PortalFrameAncestors = append(cfg.PortalFrameAncestors, splitList(v)...)
			return nil
		})
	if v := *vals["TRUSTED_PROXY"]; v != "" {
		cfg.TrustedProxies = splitList(v)
	}
	fs.Func("trusted-proxy", "a proxy address range whose X-Forwarded-For is believed; repeatable or comma-separated (env CALHOOK_TRUSTED_PROXY)",
		func(v string) error {
			cfg.TrustedProxies = append(cfg.TrustedProxies, splitList(v)...)
			return nil
		})
	if v := *vals["RETRY_SCHEDULE"]; v != "" {
		if err := setSchedule(&cfg.RetrySchedule, v); err != nil {
			return &ConfigError{Field: "CALHOOK_RETRY_SCHEDULE", Value: v, Err: err.Error()}
		}
	}
	fs.Func("retry-schedule", "waits before each webhook retry, comma-separated (default 1m,5m,1h,12h,24h; env CALHOOK_RETRY_SCHEDULE)",
		func(v string) error { return setSchedule(&cfg.RetrySchedule, v) })
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func setSchedule(dst *[]time.Duration, v string) error {
	var out []time.Duration
	for _, s := range splitList(v) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration such as 5m", s)
		}
		out = append(out, d)
	}
	*dst = out
	return nil
}

// MinAdminTokenLength is the fewest characters an admin token may have:
// it opens every account, so it must not be guessable (32 hex digits, as
// `openssl rand -hex 16` gives, are 128 bits).
const MinAdminTokenLength = 32

// Validate checks every setting and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	if c.AdminToken != "" && len(strings.TrimSpace(c.AdminToken)) < MinAdminTokenLength {
		// The value is a secret: the error gives only its length.
		errs = append(errs, &ConfigError{"CALHOOK_ADMIN_TOKEN", fmt.Sprintf("%d characters", len(strings.TrimSpace(c.AdminToken))),
			fmt.Sprintf("must have at least %d characters besides spaces (try: openssl rand -hex 16)", MinAdminTokenLength)})
	}
	if c.DB == "" {
		errs = append(errs, &ConfigError{"db", c.DB, "must not be empty"})
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, &ConfigError{"addr", c.Addr, "must be host:port"})
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, &ConfigError{"metrics-listen", c.MetricsListen, "must be host:port"})
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, &ConfigError{"public-url", c.PublicURL, "must be an http(s) URL"})
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, &ConfigError{"log-format", c.LogFormat, "must be text or json"})
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, &ConfigError{"log-level", c.LogLevel, "must be debug, info, warn or error"})
	}
	if c.AvailabilityHorizon < 24*time.Hour || c.AvailabilityHorizon > 10*366*24*time.Hour {
		errs = append(errs, &ConfigError{"availability-horizon", c.AvailabilityHorizon.String(), "must be between 24h and ten years"})
	}
	if c.FeedRefreshInterval < 0 {
		errs = append(errs, &ConfigError{"feed-refresh-interval", c.FeedRefreshInterval.String(), "must not be negative"})
	}
	if c.FeedWindow < 0 {
		errs = append(errs, &ConfigError{"feed-window", c.FeedWindow.String(), "must not be negative"})
	}
	if c.FeedCacheMB < 1 {
		errs = append(errs, &ConfigError{"feed-cache-mb", strconv.Itoa(c.FeedCacheMB), "must be at least 1"})
	}
	if _, err := outbound.ParseCIDRs(c.AllowPrivateCIDRs); err != nil {
		errs = append(errs, &ConfigError{"allow-private-cidr", strings.Join(c.AllowPrivateCIDRs, ","), err.Error()})
	}
	if _, err := outbound.ParseCIDRs(c.TrustedProxies); err != nil {
		errs = append(errs, &ConfigError{"trusted-proxy", strings.Join(c.TrustedProxies, ","), err.Error()})
	}
	if c.HooksVerify != "off" && c.HooksVerify != "challenge" {
		errs = append(errs, &ConfigError{"icalhooks-verify", c.HooksVerify, "must be off or challenge"})
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max-subscriptions", c.MaxSubscriptions}, {"icalhooks-max-per-feed", c.HooksMaxPerFeed}, {"icalhooks-max-per-token", c.HooksMaxPerToken},
		{"icalhooks-max-per-host", c.HooksMaxPerHost}, {"icalhooks-host-rate", c.HooksHostRate}} {
		if n.v < 1 {
			errs = append(errs, &ConfigError{n.name, strconv.Itoa(n.v), "must be at least 1"})
		}
	}
	if c.ImportMinInterval <= 0 {
		errs = append(errs, &ConfigError{"import-min-interval", c.ImportMinInterval.String(), "must be positive"})
	}
	if c.ImportMaxInterval < c.ImportMinInterval {
		errs = append(errs, &ConfigError{"import-max-interval", c.ImportMaxInterval.String(), "must be at least import-min-interval"})
	}
	if c.ImportInterval < c.ImportMinInterval || c.ImportInterval > c.ImportMaxInterval {
		errs = append(errs, &ConfigError{"import-interval", c.ImportInterval.String(), "must be within import-min-interval and import-max-interval"})
	}
	if c.ImportTimeout <= 0 {
		errs = append(errs, &ConfigError{"import-timeout", c.ImportTimeout.String(), "must be positive"})
	}
	if c.WebhookHostRate < 0 {
		errs = append(errs, &ConfigError{"webhook-host-rate", strconv.Itoa(c.WebhookHostRate), "must not be negative (0: no limit)"})
	}
	if c.ImportLease != 0 && c.ImportLease <= c.ImportTimeout {
		errs = append(errs, &ConfigError{"import-lease", c.ImportLease.String(), "must be longer than import-timeout (or 0)"})
	}
	if c.ImportIdleTimeout <= 0 {
		errs = append(errs, &ConfigError{"import-idle-timeout", c.ImportIdleTimeout.String(), "must be positive"})
	}
	if c.ImportMaxEvents < 1 {
		errs = append(errs, &ConfigError{"import-max-events", strconv.Itoa(c.ImportMaxEvents), "must be at least 1"})
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"import-concurrency", c.ImportConcurrency}, {"import-per-host", c.ImportPerHost}} {
		if n.v < 1 {
			errs = append(errs, &ConfigError{n.name, strconv.Itoa(n.v), "must be at least 1"})
		}
	}
	if c.ImportPerAccount < 0 {
		errs = append(errs, &ConfigError{"import-per-account", strconv.Itoa(c.ImportPerAccount), "must not be negative"})
	}
	if c.ImportHoldPercent < 1 || c.ImportHoldPercent > 100 {
		errs = append(errs, &ConfigError{"import-hold-percent", strconv.Itoa(c.ImportHoldPercent), "must be within 1 and 100"})
	}
	if c.ImportHoldMinDeletes < 1 {
		errs = append(errs, &ConfigError{"import-hold-min-deletes", strconv.Itoa(c.ImportHoldMinDeletes), "must be at least 1"})
	}
	if c.ImportHoldDelay < c.ImportMinInterval {
		errs = append(errs, &ConfigError{"import-hold-delay", c.ImportHoldDelay.String(), "must be at least import-min-interval"})
	}
	if c.ImportMaxBytes < 1024 {
		errs = append(errs, &ConfigError{"import-max-bytes", strconv.Itoa(c.ImportMaxBytes), "must be at least 1024"})
	}
	if c.DeliveryWorkers < 1 {
		errs = append(errs, &ConfigError{"delivery-workers", strconv.Itoa(c.DeliveryWorkers), "must be at least 1"})
	}
	if c.DeliveryPerEndpoint < 1 {
		errs = append(errs, &ConfigError{"delivery-per-endpoint", strconv.Itoa(c.DeliveryPerEndpoint), "must be at least 1"})
	}
	if c.WebhookTimeout <= 0 {
		errs = append(errs, &ConfigError{"webhook-timeout", c.WebhookTimeout.String(), "must be positive"})
	}
	if c.Retention < time.Hour {
		errs = append(errs, &ConfigError{"retention", c.Retention.String(), "must be at least 1h"})
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, &ConfigError{"shutdown-timeout", c.ShutdownTimeout.String(), "must be positive"})
	}
	return errors.Join(errs...)
}

// logger builds the configured slog logger.
func (c *Config) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel)) // Validate refused an unknown level
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
