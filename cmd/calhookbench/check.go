package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/calhook/calhook/internal/bench"
)

// runCheck is the check mode: every scenario at a small size, its headline
// figures compared with their targets and the committed baseline.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.CheckConfig
	var scenarios, writeBaseline string
	fs := flag.NewFlagSet("calhookbench check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Bin, "bin", "", "prebuilt calhook `binary` (default: build ./cmd/calhook once)")
	fs.StringVar(&cfg.Baseline, "baseline", "bench/baseline.json", "baseline `file` to compare with (missing: targets only)")
	fs.StringVar(&cfg.Postgres, "postgres", os.Getenv(bench.PostgresEnv),
		"postgres:// `URL` for the pg-* scenarios (default $"+bench.PostgresEnv+"; empty skips them)")
	fs.StringVar(&cfg.Fail, "fail", bench.FailGross,
		"exit 1 on: gross (a fall past "+fmt.Sprint(bench.GrossFactor)+"× the target or baseline, confirmed by a second run), target (also a missed target) or never")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run (default: all)")
	fs.StringVar(&writeBaseline, "write-baseline", "", "write this run's figures to `file` as the new baseline")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if scenarios != "" {
		cfg.Scenarios = strings.Split(scenarios, ",")
	}
	cfg.Logger = progressLogger(stderr, *verbose)

	report, err := bench.RunCheck(ctx, cfg)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := report.WriteTable(stdout); err != nil {
		return err
	}
	if writeBaseline != "" {
		b := report.Baseline(gitCommit(ctx))
		data, err := json.MarshalIndent(b, "", "  ")
		if err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
		if err := os.WriteFile(writeBaseline, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %d figures to %s\n", len(b.Figures), writeBaseline)
	}
	if failed := report.Failed(cfg.Fail); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, r := range failed {
			names[i] = r.Key() + " (" + r.Status + ")"
		}
		return fmt.Errorf("check: %d figures failed: %s", len(failed), strings.Join(names, ", "))
	}
	return nil
}

// gitCommit returns the short commit of the working tree, if any.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
