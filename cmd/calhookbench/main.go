// Command calhookbench runs calhook's benchmark scenarios and prints one
// JSON line per metric on stdout, with progress on stderr.
//
// Usage:
//
//	go run ./cmd/calhookbench list
//	go run ./cmd/calhookbench SCENARIO [flags]   # -h after it for its flags
//	go run ./cmd/calhookbench check [flags]      # every scenario, small, against targets and bench/baseline.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/calhook/calhook/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the scenario cleans up; a second one exits
	// at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "calhookbench:", err)
		os.Exit(1)
	}
}

// run parses args, runs one scenario and writes its results.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	name := args[0]
	if name == "list" {
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(stdout, "%-20s %s\n", s.Name, s.Summary)
		}
		return nil
	}
	if name == "check" {
		return runCheck(ctx, args[1:], stdout, stderr)
	}
	sc, ok := bench.Lookup(name)
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown scenario %q (have: %s)", name, bench.ScenarioNames())
	}

	var cfg bench.Config
	fs := flag.NewFlagSet("calhookbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Bin, "bin", "", "prebuilt calhook `binary` (default: build ./cmd/calhook)")
	fs.IntVar(&cfg.Runs, "runs", bench.DefaultRuns, "rounds; the median is reported, with every round's value")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (databases, logs, configs)")
	verbose := fs.Bool("v", false, "debug logging")
	if sc.Flags != nil {
		sc.Flags(fs, &cfg)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg.Logger = progressLogger(stderr, *verbose)
	results, err := sc.Run(ctx, cfg)
	if err != nil {
		// What was measured before the failure is still written.
		if len(results) > 0 {
			err = errors.Join(err, bench.WriteResults(stdout, results))
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return bench.WriteResults(stdout, results)
}

// progressLogger logs progress lines to w, at debug level if verbose.
func progressLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // progress lines read better without timestamps
			}
			return a
		},
	}))
}

// usage prints how to call the command.
func usage(w io.Writer) {
	fmt.Fprintf(w, `usage:
  calhookbench list                 list scenarios
  calhookbench SCENARIO [flags]     run one; -h after it for its flags
  calhookbench check [flags]        run every scenario at a small size and compare
                                    its headline figures with their targets and
                                    bench/baseline.json; -h for its flags

scenarios: %s
metrics go to stdout as JSON lines, progress to stderr.
`, bench.ScenarioNames())
}
