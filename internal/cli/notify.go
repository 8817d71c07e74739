package cli

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/calhook/calhook/internal/sdnotify"
)

// notifySystemd tells a service manager that started serve with
// Type=notify that it is ready (the listener accepts and the workers
// run), then feeds its watchdog while serve's own /healthz answers, so a
// wedged HTTP server is restarted. It returns the function to call when
// shutdown begins: it stops the watchdog and sends STOPPING=1. Outside
// systemd (no NOTIFY_SOCKET) it does nothing.
func notifySystemd(ctx context.Context, env Env, log *slog.Logger, addr string) (stopping func()) {
	n := sdnotify.New(env.Getenv)
	if !n.Enabled() {
		return func() {}
	}
	log = log.With("component", "sd_notify")
	if err := n.Notify(ctx, sdnotify.Ready, "STATUS=serving on "+addr); err != nil {
		log.Warn("cannot tell systemd calhook is ready", "error", err)
	}
	interval, err := sdnotify.WatchdogInterval(env.Getenv, os.Getpid())
	if err != nil {
		log.Warn("watchdog disabled", "error", err)
	}
	healthz, err := localURL(addr, "/healthz")
	if err != nil {
		log.Warn("watchdog disabled", "error", err)
		interval = 0
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if interval > 0 {
		client := &http.Client{Timeout: interval / 4, Transport: &http.Transport{DisableKeepAlives: true}}
		healthy := func(ctx context.Context) bool {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthz, nil)
			if err != nil {
				return false
			}
			resp, err := client.Do(req)
			if err != nil {
				log.Warn("watchdog: /healthz failed, not feeding the watchdog", "error", err)
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.RunWatchdog(wctx, interval, healthy, func(err error) { log.Warn("watchdog keep-alive", "error", err) })
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			// ctx is done by now (a signal): the notification must still go.
			if err := n.Notify(context.WithoutCancel(ctx), sdnotify.Stopping, "STATUS=shutting down"); err != nil {
				log.Warn("cannot tell systemd calhook is stopping", "error", err)
			}
		})
	}
}
