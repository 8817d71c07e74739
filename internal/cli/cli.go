// Package cli implements the calhook command: flag and environment parsing,
// wiring of the store, services and HTTP server, and the subcommands.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/listen"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
	"github.com/calhook/calhook/internal/tracing"
)

// Version is the calhook version, set at build time with
// -ldflags "-X github.com/calhook/calhook/internal/cli.Version=…".
var Version = defaultVersion

// Env is the process environment the commands run in.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Ready, when set, receives the listening address once serve accepts
	// connections (tests listen on port 0).
	Ready func(addr string)
	// MetricsReady, when set, receives the address of --metrics-listen
	// once it accepts connections.
	MetricsReady func(addr string)
	// TracerProvider, when set, receives serve's spans (tests pass an
	// in-memory one); otherwise the OTEL_* variables decide (see
	// internal/tracing).
	TracerProvider trace.TracerProvider
}

const usage = `calhook — real-time calendar change notification

Usage:
  calhook serve [flags]                  run the API, feeds and workers
  calhook migrate [--db PATH]            create or upgrade the database schema
  calhook account create --name NAME     create an account, print its API key and feed token
  calhook listen --secret whsec_… [--port N]
                                         receive, verify and print webhooks and iCal Hooks pings
  calhook version                        print the version, commit and build date
  calhook healthcheck [--url URL]        exit 0 if a running calhook is ready (for containers)
  calhook backup [--db PATH] --to FILE   copy a SQLite database, also while serve runs
  calhook restore [--db PATH] --from FILE
                                         put a backup in place of a database no process has open

Run "calhook COMMAND -h" for the flags of a command.
`

// Main runs the command named by env.Args and returns its exit code.
func Main(ctx context.Context, env Env) int {
	if err := run(ctx, env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(env.Stderr, "calhook:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, env Env) error {
	args := env.Args[1:]
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, env, args[1:])
	case "migrate":
		return migrate(ctx, env, args[1:])
	case "account":
		if len(args) < 2 || args[1] != "create" {
			return errors.New(`usage: calhook account create --name NAME`)
		}
		return createAccount(ctx, env, args[2:])
	case "listen":
		return listenCmd(ctx, env, args[1:])
	case "version":
		return versionCmd(env, args[1:])
	case "healthcheck":
		return healthcheck(ctx, env, args[1:])
	case "backup":
		return backupCmd(ctx, env, args[1:])
	case "restore":
		return restoreCmd(ctx, env, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	fmt.Fprint(env.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// openStore opens the store named by dsn: a postgres:// or postgresql://
// URL opens PostgreSQL; anything else is a SQLite path (or sqlite:// URL).
// log receives what the store's background work recovers from; nil
// discards it.
func openStore(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn, log)
	case strings.HasPrefix(dsn, "sqlite://"):
		dsn = strings.TrimPrefix(dsn, "sqlite://")
	}
	return sqlite.Open(ctx, dsn)
}

// redactDSN hides the password of a database URL, for output and logs.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func migrate(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := bindCommon(fs, &cfg, env.Getenv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openStore(ctx, cfg.DB, nil) // Open applies the migrations
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "database %s is at schema version %d\n", redactDSN(cfg.DB), v)
	return nil
}

func createAccount(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("account create", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := bindCommon(fs, &cfg, env.Getenv); err != nil {
		return err
	}
	name := fs.String("name", "", "account name (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openStore(ctx, cfg.DB, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := account.NewService(db, nil, nil).Create(ctx, *name)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"id": a.ID, "name": a.Name, "apiKey": a.APIKey, "feedToken": a.FeedToken, "createdAt": a.CreatedAt,
	})
}

func serve(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := bindServe(fs, &cfg, env.Getenv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.logger(env.Stderr)

	db, err := openStore(ctx, cfg.DB, log.With("component", "store"))
	if err != nil {
		return err
	}
	defer db.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	tp := env.TracerProvider
	if tp == nil {
		sdk, err := tracing.Setup(ctx, env.Getenv, Version)
		if err != nil {
			ln.Close()
			return err
		}
		if sdk != nil {
			tp = sdk
			log.Info("tracing on: spans go out over OTLP/HTTP")
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := sdk.Shutdown(sctx); err != nil {
					log.Warn("send the last spans", "error", err)
				}
			}()
		}
	}
	a, err := newApp(ctx, db, cfg, log, "http://"+ln.Addr().String(), tracing.New(tp))
	if err != nil {
		ln.Close()
		return err
	}
	// The workers run until a.stop, after the API has shut down: ctx
	// ends with the signal, and a poll cancelled then would answer a
	// waiting sync with its failure before the shutdown could answer it
	// 503 (and writes would be left without their fan-out).
	if err := a.start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}
	srv := httpapi.NewServer(cfg.Addr, a.handler, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	msrv, merrc, err := serveMetrics(cfg, a.metrics, env, log)
	if err != nil {
		srv.Close()
		a.stop(0)
		return err
	}
	log.Info("calhook serving", "addr", ln.Addr().String(), "db", redactDSN(cfg.DB), "version", Version,
		"admin_api", cfg.AdminToken != "")
	if cfg.AdminToken == "" {
		log.Warn("CALHOOK_ADMIN_TOKEN is not set: the admin API is disabled; create accounts with `calhook account create`")
	}
	if env.Ready != nil {
		env.Ready(ln.Addr().String())
	}
	stopping := notifySystemd(ctx, env, log, ln.Addr().String())
	defer stopping()

	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case err := <-merrc:
		serveErr = fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	stopping()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		serveErr = errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
	}
	if msrv != nil {
		if err := msrv.Shutdown(sctx); err != nil {
			msrv.Close()
			serveErr = errors.Join(serveErr, fmt.Errorf("shutdown metrics: %w", err))
		}
	}
	// Workers stop after the API, so no write is left without its
	// fan-out; deliveries in flight get what is left of the timeout.
	a.stop(time.Until(deadlineOf(sctx)))
	if serveErr != nil {
		return serveErr
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics on cfg.MetricsListen, when set, until the
// returned server is shut down; its Serve error arrives on the channel
// (which stays empty without a server).
func serveMetrics(cfg Config, metrics http.Handler, env Env, log *slog.Logger) (*http.Server, <-chan error, error) {
	errc := make(chan error, 1)
	if cfg.MetricsListen == "" {
		return nil, errc, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s for metrics: %w", cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := httpapi.NewServer(cfg.MetricsListen, mux, log)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	log.Info("metrics serving", "addr", ln.Addr().String())
	if env.MetricsReady != nil {
		env.MetricsReady(ln.Addr().String())
	}
	return srv, errc, nil
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func listenCmd(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	secret := fs.String("secret", env.Getenv("CALHOOK_LISTEN_SECRET"), "the subscription's endpoint secret, whsec_… (env CALHOOK_LISTEN_SECRET)")
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	port := fs.Int("port", 9000, "port to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return listen.Run(ctx, listen.Config{Addr: net.JoinHostPort(*host, strconv.Itoa(*port)), Secret: *secret, Out: env.Stdout},
		func(addr string) {
			fmt.Fprintf(env.Stderr, "listening on http://%s/ — point a subscription's webhookUrl here\n", addr)
			if env.Ready != nil {
				env.Ready(addr)
			}
		})
}
