// Command calhook runs the calhook service and its administrative commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // IANA zones even on machines without /usr/share/zoneinfo

	"github.com/calhook/calhook/internal/cli"
)

// gcPercent is the garbage collector's target (GOGC) unless the
// environment sets one. calhook's live heap is small (tens of MB) and its
// allocation rate high (every request and delivery): under load, 400
// rather than Go's 100 cut its CPU per change by about a sixth, for some
// 15 MB more memory.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// A second signal exits at once instead of waiting for shutdown.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
		<-again
		os.Exit(1)
	}()
	os.Exit(cli.Main(ctx, cli.Env{Args: os.Args, Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}))
}
