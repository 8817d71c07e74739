package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Better says which way a headline figure improves.
type Better string

// The directions of Better.
const (
	Higher Better = "higher"
	Lower  Better = "lower"
)

// GrossFactor is how much worse than its target and its baseline a
// headline figure must be to count as a gross fall: far beyond the noise of a
// shared 2-core machine, far short of a 17× fall.
const GrossFactor = 3

// Headline is one figure bench-check watches.
type Headline struct {
	Scenario, Metric string
	Better           Better
	// Floor is the least absolute slack allowed over the baseline, for
	// figures near zero (an overhead of 0.02 is noise away from 0.06).
	Floor float64
}

// Key names the headline in baseline files: "scenario/metric".
func (h Headline) Key() string { return h.Scenario + "/" + h.Metric }

// headlines are the figures bench-check compares, scenario by scenario in
// the order they run. Each scenario's metric with a target is here, and a
// few without one whose fall would still matter.
var headlines = []Headline{
	{Scenario: "feed", Metric: "ratio_200", Better: Higher},
	{Scenario: "feed", Metric: "ratio_304", Better: Higher},
	{Scenario: throughputName, Metric: "api_write_rps", Better: Higher},
	{Scenario: throughputName, Metric: "delivered_rps", Better: Higher},
	{Scenario: throughputName, Metric: "fanout_delivered_rps", Better: Higher},
	{Scenario: latencyName, Metric: "latency_p50_ms", Better: Lower, Floor: 10},
	{Scenario: latencyName, Metric: "latency_p99_ms", Better: Lower, Floor: 60},
	{Scenario: baselineName, Metric: "baseline_rps", Better: Higher},
	{Scenario: pgThroughputName, Metric: "sqlite_delivered_rps", Better: Higher},
	{Scenario: pgThroughputName, Metric: "pg1_delivered_rps", Better: Higher},
	{Scenario: pgThroughputName, Metric: "pg3_delivered_rps", Better: Higher},
	{Scenario: pgThroughputName, Metric: "pg3_vs_pg1_delivered", Better: Higher},
	{Scenario: pgLatencyName, Metric: "sqlite_latency_p99_ms", Better: Lower, Floor: 60},
	{Scenario: pgLatencyName, Metric: "pg1_latency_p99_ms", Better: Lower, Floor: 60},
	{Scenario: pgLatencyName, Metric: "pg3_latency_p99_ms", Better: Lower, Floor: 60},
	{Scenario: importCPUName, Metric: "calhook_cpu_percent", Better: Lower, Floor: 5},
	{Scenario: importLatencyName, Metric: "push_p99_ms", Better: Lower, Floor: 50},
	{Scenario: importLatencyName, Metric: "poll_after_fetch_p99_ms", Better: Lower, Floor: 50},
	{Scenario: icalhooksName, Metric: "register_rps", Better: Higher},
	{Scenario: icalhooksName, Metric: "pings_all_received_ms", Better: Lower, Floor: 250},
	{Scenario: icalhooksName, Metric: "header_overhead", Better: Lower, Floor: 0.25},
	{Scenario: availabilityName, Metric: "detect_p99_ms", Better: Lower, Floor: 2},
	{Scenario: availabilityName, Metric: "year_query_p99_ms", Better: Lower, Floor: 5},
	{Scenario: availabilityName, Metric: "many_units_month_p99_ms", Better: Lower, Floor: 25},
	{Scenario: availabilityName, Metric: "push_to_conflict_p99_ms", Better: Lower, Floor: 50},
	{Scenario: fairnessName, Metric: "hostile_write_p99_ms", Better: Lower, Floor: 50},
	{Scenario: fairnessName, Metric: "hostile_feed_p99_ms", Better: Lower, Floor: 10},
	{Scenario: fairnessName, Metric: "hostile_first_poll_ms", Better: Lower, Floor: 1000},
	{Scenario: holdsName, Metric: "hold_p50_ms", Better: Lower, Floor: 5},
	{Scenario: holdsName, Metric: "hold_p99_ms", Better: Lower, Floor: 25},
	{Scenario: holdsName, Metric: "overlap_slowest_ms", Better: Lower, Floor: 250},
	// scale fails unless it produced every figure with nothing lost; its
	// timings are for the closing note, not for CI.
	{Scenario: scaleName, Metric: "sqlite_empty_feed_cold_p50_ms", Better: Lower, Floor: 1000},
	{Scenario: scaleName, Metric: "sqlite_loaded_feed_cold_p50_ms", Better: Lower, Floor: 1000},
	{Scenario: scaleName, Metric: "sqlite_loaded_api_write_p99_ms", Better: Lower, Floor: 1000},
	{Scenario: scaleName, Metric: "sqlite_loaded_startup_ms", Better: Lower, Floor: 5000},
}

// Headlines returns the figures bench-check compares.
func Headlines() []Headline { return slices.Clone(headlines) }

// checkArgs are the small sizes bench-check runs each scenario at, as the
// scenario's own flags: every scenario in a few minutes in all, one round
// each.
var checkArgs = map[string][]string{
	"feed":            {"-duration", "1s", "-warmup", "300ms", "-events", "200"},
	throughputName:    {"-changes", "2000", "-fanout-subscriptions", "200", "-fanout-changes", "10"},
	latencyName:       {"-changes", "600", "-warmup", "500ms"},
	baselineName:      {"-changes", "2000"},
	pgThroughputName:  {"-changes", "2000", "-warmup-changes", "500"},
	pgLatencyName:     {"-changes", "400", "-warmup", "500ms"},
	importCPUName:     {"-feeds", "1000", "-poll-interval", "10s", "-duration", "10s", "-warmup", "10s"},
	importLatencyName: {"-changes", "20"},
	icalhooksName:     {"-hooks", "2000", "-duration", "1s", "-warmup", "300ms"},
	availabilityName:  {"-calendars", "10", "-events", "200", "-units", "100", "-samples", "20"},
	fairnessName:      {"-events", "5000", "-duration", "6s"},
	holdsName:         {"-samples", "100"},
	scaleName:         {"-size", "check", "-samples", "50", "-events", "500", "-webhooks", "1000"},
}

// Fail modes of CheckConfig.Fail.
const (
	// FailGross fails only on a gross fall (GrossFactor past the target
	// and the baseline), confirmed by a second run of its scenario.
	FailGross = "gross"
	// FailTarget also fails on a figure that misses its target.
	FailTarget = "target"
	// FailNever only reports.
	FailNever = "never"
)

// CheckConfig configures RunCheck.
type CheckConfig struct {
	// Bin is a prebuilt calhook; empty builds ./cmd/calhook once.
	Bin string
	// Baseline is the committed baseline file; empty or missing compares
	// with targets alone.
	Baseline string
	// Postgres is the database of the pg-* scenarios; empty skips them.
	Postgres string
	// Scenarios limits the run to these names; empty runs every one.
	Scenarios []string
	// Fail is FailGross, FailTarget or FailNever.
	Fail string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// CheckRow is one headline figure of a check.
type CheckRow struct {
	Headline
	Unit     string
	Value    float64
	Target   *float64
	Baseline *float64
	// Limit is the value past which the figure is a gross fall.
	Limit float64
	// Status is ok, below-target, gross-fall, errors, missing or skipped.
	Status string
	// Note says why a figure is missing or skipped, or its error count.
	Note string
}

// Row statuses.
const (
	StatusOK          = "ok"
	StatusBelowTarget = "below target"
	StatusGross       = "GROSS FALL"
	StatusErrors      = "ERRORS"
	StatusMissing     = "MISSING"
	StatusSkipped     = "skipped"
)

// CheckReport is the outcome of RunCheck.
type CheckReport struct {
	Machine Result
	Rows    []CheckRow
	Elapsed time.Duration
}

// Failed returns the rows that fail under mode.
func (r CheckReport) Failed(mode string) []CheckRow {
	var out []CheckRow
	for _, row := range r.Rows {
		switch row.Status {
		case StatusGross, StatusErrors, StatusMissing:
			if mode != FailNever {
				out = append(out, row)
			}
		case StatusBelowTarget:
			if mode == FailTarget {
				out = append(out, row)
			}
		}
	}
	return out
}

// BaselineFile is the committed record of the figures bench-check made
// on a known machine, at its small sizes.
type BaselineFile struct {
	// Recorded is when, Commit of what, Machine on what.
	Recorded string         `json:"recorded"`
	Commit   string         `json:"commit,omitempty"`
	Machine  map[string]any `json:"machine,omitempty"`
	// Figures maps Headline.Key to the figure.
	Figures map[string]float64 `json:"figures"`
}

// ReadBaseline reads a baseline file; a missing file is an empty baseline.
func ReadBaseline(path string) (BaselineFile, error) {
	var b BaselineFile
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read baseline: %w", err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("read baseline %s: %w", path, err)
	}
	return b, nil
}

// Baseline returns the report's figures as a baseline file.
func (r CheckReport) Baseline(commit string) BaselineFile {
	b := BaselineFile{Recorded: time.Now().UTC().Format(time.DateOnly), Commit: commit,
		Machine: r.Machine.Info, Figures: map[string]float64{}}
	for _, row := range r.Rows {
		if row.Status != StatusSkipped && row.Status != StatusMissing && row.Status != StatusErrors {
			b.Figures[row.Key()] = row.Value
		}
	}
	return b
}

// runFunc runs one scenario with its arguments; tests replace it.
type runFunc func(ctx context.Context, sc Scenario, args []string) ([]Result, error)

// RunCheck runs every scenario at its small size, once, and compares each
// headline figure with its target and the baseline. A scenario with a
// gross fall runs a second time and keeps the better figure, so that one
// noisy round does not fail a check.
func RunCheck(ctx context.Context, cfg CheckConfig) (CheckReport, error) {
	start := time.Now()
	if cfg.Fail == "" {
		cfg.Fail = FailGross
	}

	switch cfg.Fail {
	case FailGross, FailTarget, FailNever:
	default:
		return CheckReport{}, fmt.Errorf("fail %q: must be gross, target or never", cfg.Fail)
	}
	for _, name := range cfg.Scenarios {
		if _, ok := Lookup(name); !ok {
			return CheckReport{}, fmt.Errorf("unknown scenario %q (have: %s)", name, ScenarioNames())
		}
	}
	base, err := ReadBaseline(cfg.Baseline)
	if err != nil {
		return CheckReport{}, err
	}
	bin := cfg.Bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "calhook-bench-check-")
		if err != nil {
			return CheckReport{}, fmt.Errorf("bench check: %w", err)
		}
		defer os.RemoveAll(dir)
		mod, err := moduleDir(ctx)
		if err != nil {
			return CheckReport{}, err
		}
		bin = filepath.Join(dir, "calhook")
		if err := buildCalhook(ctx, mod, bin); err != nil {
			return CheckReport{}, err
		}
	}
	run := func(ctx context.Context, sc Scenario, args []string) ([]Result, error) {
		var c Config
		fs := newFlagSet(sc.Name)
		if sc.Flags != nil {
			sc.Flags(fs, &c)
		}
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%s: check arguments %q: %w", sc.Name, args, err)
		}
		c.Bin, c.Runs = bin, 1
		if strings.HasPrefix(sc.Name, "pg-") {
			c.Postgres = cfg.Postgres
		}
		return sc.Run(ctx, c)
	}
	report, err := check(ctx, cfg, base, run)
	report.Elapsed = time.Since(start)
	return report, err
}

// newFlagSet returns a quiet flag set for a scenario's check arguments.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// check is RunCheck after its setup.
func check(ctx context.Context, cfg CheckConfig, base BaselineFile, run runFunc) (CheckReport, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var report CheckReport
	for _, sc := range Scenarios() {
		if len(cfg.Scenarios) > 0 && !slices.Contains(cfg.Scenarios, sc.Name) {
			continue
		}
		hs := scenarioHeadlines(sc.Name)
		if len(hs) == 0 {
			continue
		}
		if strings.HasPrefix(sc.Name, "pg-") && cfg.Postgres == "" {
			for _, h := range hs {
				report.Rows = append(report.Rows, CheckRow{Headline: h, Status: StatusSkipped,
					Note: "no PostgreSQL: set " + PostgresEnv + " or pass -postgres"})
			}
			cfg.Logger.Warn("skipping: no PostgreSQL", "scenario", sc.Name)
			continue
		}
		cfg.Logger.Info("running", "scenario", sc.Name, "args", strings.Join(checkArgs[sc.Name], " "))
		results, runErr := run(ctx, sc, checkArgs[sc.Name])
		if ctx.Err() != nil {
			return report, ctx.Err()
		}
		rows := compare(hs, results, runErr, base)
		if anyGross(rows) {
			// Confirm before failing: a fall that is real is there twice.
			cfg.Logger.Warn("gross fall: running the scenario again to confirm", "scenario", sc.Name)
			again, err2 := run(ctx, sc, checkArgs[sc.Name])
			if ctx.Err() != nil {
				return report, ctx.Err()
			}
			rows = better(rows, compare(hs, again, err2, base))
		}
		report.Rows = append(report.Rows, rows...)
		if m, ok := findMetric(results, "machine"); ok && report.Machine.Info == nil {
			report.Machine = m
		}
	}
	return report, nil
}

// scenarioHeadlines returns the headlines of one scenario.
func scenarioHeadlines(name string) []Headline {
	var hs []Headline
	for _, h := range headlines {
		if h.Scenario == name {
			hs = append(hs, h)
		}
	}
	return hs
}

func findMetric(results []Result, metric string) (Result, bool) {
	for _, r := range results {
		if r.Metric == metric {
			return r, true
		}
	}
	return Result{}, false
}

// compare makes the rows of one scenario's run.
func compare(hs []Headline, results []Result, runErr error, base BaselineFile) []CheckRow {
	rows := make([]CheckRow, 0, len(hs))
	for _, h := range hs {
		row := CheckRow{Headline: h}
		if b, ok := base.Figures[h.Key()]; ok {
			row.Baseline = &b
		}
		r, ok := findMetric(results, h.Metric)
		switch {
		case runErr != nil:
			row.Status, row.Note = StatusMissing, runErr.Error()
		case !ok:
			row.Status, row.Note = StatusMissing, "the scenario reported no such metric"
		default:
			row.Unit, row.Value, row.Target = r.Unit, r.Value, r.Target
			row.Limit = grossLimit(h, r.Target, row.Baseline)
			row.Status = status(h, r, row.Limit)
			if r.Errors != nil && *r.Errors > 0 {
				row.Note = fmt.Sprintf("%d errors", *r.Errors)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// grossLimit is the figure past which h is a gross fall: GrossFactor times
// worse than its target and than its baseline (with the headline's floor
// of slack over the baseline). Both must be missed so that a figure the
// machine never reached its target on (pg1_delivered_rps here, which the
// target puts at 2,000/s) is judged by its baseline and not failed by
// noise, while a fall like the 17x of iCal Hooks pings misses both. NaN
// means no limit.
func grossLimit(h Headline, target, baseline *float64) float64 {
	limit := math.NaN()
	looser := func(v float64) {
		switch {
		case math.IsNaN(limit):
			limit = v
		case h.Better == Higher:
			limit = min(limit, v)
		default:
			limit = max(limit, v)
		}
	}
	if target != nil {
		if h.Better == Higher {
			looser(*target / GrossFactor)
		} else {
			looser(*target * GrossFactor)
		}
	}
	if baseline != nil {
		b := *baseline
		if h.Better == Higher {
			looser(min(b/GrossFactor, b-h.Floor))
		} else {
			// A figure that can fall below zero (an overhead in noise)
			// is compared as if it were zero.
			b = max(b, 0)
			looser(max(b*GrossFactor, b+h.Floor))
		}
	}
	return limit
}

// status grades one figure.
func status(h Headline, r Result, limit float64) string {
	worse := func(v, than float64) bool {
		if h.Better == Higher {
			return v < than
		}
		return v > than
	}
	switch {
	case r.Errors != nil && *r.Errors > 0:
		return StatusErrors
	case !math.IsNaN(limit) && worse(r.Value, limit):
		return StatusGross
	case r.Target != nil && worse(r.Value, *r.Target):
		return StatusBelowTarget
	}
	return StatusOK
}

func anyGross(rows []CheckRow) bool {
	return slices.ContainsFunc(rows, func(r CheckRow) bool { return r.Status == StatusGross })
}

// better keeps, headline by headline, the better of two runs' rows.
func better(a, b []CheckRow) []CheckRow {
	out := slices.Clone(a)
	for i := range out {
		if i >= len(b) {
			break
		}
		x, y := out[i], b[i]
		switch {
		case x.Status == StatusMissing || x.Status == StatusErrors:
			out[i] = y
		case y.Status == StatusMissing || y.Status == StatusErrors:
		case (x.Better == Higher && y.Value > x.Value) || (x.Better == Lower && y.Value < x.Value):
			out[i] = y
		}
		out[i].Note = strings.TrimSpace(out[i].Note + " (better of 2 runs)")
	}
	return out
}

// WriteTable prints the report as a Markdown table, for people and
// closing notes.
func (r CheckReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| scenario\t metric\t value\t target\t baseline\t gross limit\t status\t note |")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t--- |")
	num := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmtFigure(*p)
	}
	for _, row := range r.Rows {
		value, limit := "—", "—"
		if row.Status != StatusMissing && row.Status != StatusSkipped {
			value = fmtFigure(row.Value) + " " + row.Unit
		}
		if !math.IsNaN(row.Limit) && row.Limit != 0 {
			limit = fmtFigure(row.Limit)
		}
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s |\n", row.Scenario, row.Metric, value,
			num(row.Target), num(row.Baseline), limit, row.Status, strings.ReplaceAll(row.Note, "|", "/"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d figures in %s; machine: %s\n", len(r.Rows), r.Elapsed.Round(time.Second), machineSummary(r.Machine))
	return err
}

func fmtFigure(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func machineSummary(m Result) string {
	if m.Info == nil {
		return "unknown"
	}
	return fmt.Sprintf("%v, %v cpus, %v, loadavg %v", m.Info["cpu"], m.Value, m.Info["go"], m.Info["loadavg"])
}
