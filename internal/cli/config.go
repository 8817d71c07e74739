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
	"strings"
	"time"
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
	AdminToken string
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// FeedRefreshInterval is the REFRESH-INTERVAL hint in served feeds.
	FeedRefreshInterval time.Duration
	// ShutdownTimeout bounds the graceful part of shutdown.
	ShutdownTimeout time.Duration
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

// defaultConfig returns the settings used when nothing is given.
func defaultConfig() Config {
	return Config{
		DB:                  "./calhook.db",
		Addr:                "127.0.0.1:8080",
		LogFormat:           "text",
		LogLevel:            "info",
		FeedRefreshInterval: 15 * time.Minute,
		ShutdownTimeout:     15 * time.Second,
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
	fs.StringVar(&cfg.DB, "db", db, "SQLite database file (env CALHOOK_DB)")
	return nil
}

// bindServe registers the flags of `calhook serve`.
func bindServe(fs *flag.FlagSet, cfg *Config, getenv func(string) string) error {
	if err := bindCommon(fs, cfg, getenv); err != nil {
		return err
	}
	vals := map[string]*string{}
	for _, name := range []string{"ADDR", "PUBLIC_URL", "ADMIN_TOKEN", "LOG_FORMAT", "LOG_LEVEL", "FEED_REFRESH_INTERVAL", "SHUTDOWN_TIMEOUT"} {
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
	fs.StringVar(&cfg.PublicURL, "public-url", def("PUBLIC_URL", cfg.PublicURL), "public base URL used in feed URLs (env CALHOOK_PUBLIC_URL)")
	fs.StringVar(&cfg.LogFormat, "log-format", def("LOG_FORMAT", cfg.LogFormat), "log format: text or json (env CALHOOK_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", def("LOG_LEVEL", cfg.LogLevel), "log level: debug, info, warn, error (env CALHOOK_LOG_LEVEL)")
	cfg.AdminToken = *vals["ADMIN_TOKEN"]
	for _, d := range []struct {
		flag, env string
		dst       *time.Duration
		usage     string
	}{
		{"feed-refresh-interval", "FEED_REFRESH_INTERVAL", &cfg.FeedRefreshInterval, "REFRESH-INTERVAL hint in feeds"},
		{"shutdown-timeout", "SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout, "how long shutdown waits for requests in flight"},
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
	return nil
}

// Validate checks every setting and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	if c.DB == "" {
		errs = append(errs, &ConfigError{"db", c.DB, "must not be empty"})
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, &ConfigError{"addr", c.Addr, "must be host:port"})
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
	if c.FeedRefreshInterval < 0 {
		errs = append(errs, &ConfigError{"feed-refresh-interval", c.FeedRefreshInterval.String(), "must not be negative"})
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, &ConfigError{"shutdown-timeout", c.ShutdownTimeout.String(), "must be positive"})
	}
	return errors.Join(errs...)
}

// logger builds the configured slog logger.
func (c *Config) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
