package bench

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Settings and targets of import-cpu.
const (
	importCPUName = "import-cpu"
	// DefaultImportFeeds and DefaultImportPollInterval are the load the
	// target is stated for: 10,000 feeds every 60 s (about 167 polls/s).
	DefaultImportFeeds        = 10000
	DefaultImportPollInterval = 60 * time.Second
	// DefaultImportWindow is how long CPU is measured per round: one
	// poll interval, so that every feed is polled about once.
	DefaultImportWindow = 60 * time.Second
	// importCPUTarget is the most calhook may use, in % of one core.
	importCPUTarget = 25
	// importCreateWorkers is how many clients create the calendars.
	importCreateWorkers = 8
)

// importCPUFlags registers the flags of import-cpu.
func importCPUFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Feeds, "feeds", DefaultImportFeeds, "imported feeds, each its own calendar")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", DefaultImportPollInterval,
		"pollIntervalSeconds of every calendar, and calhook's --import-min-interval")
	fs.DurationVar(&cfg.Duration, "duration", DefaultImportWindow, "measured window of each round")
	fs.DurationVar(&cfg.Warmup, "warmup", DefaultImportPollInterval,
		"wait after the first import of every feed before measuring, so polls have spread out")
}

// runImportCPU is the import-cpu scenario: calhook polls cfg.Feeds
// imported feeds every cfg.PollInterval from a feed server on loopback
// that answers 304 (the feeds do not change), and the CPU time calhook
// uses (utime+stime from /proc) is measured over each round's window.
func runImportCPU(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Feeds <= 0 {
		cfg.Feeds = DefaultImportFeeds
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultImportPollInterval
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultImportWindow
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.PollInterval < time.Second {
		return nil, fmt.Errorf("poll-interval %v: must be at least 1s", cfg.PollInterval)
	}
	env, err := newWebhookEnv(ctx, cfg, importCPUName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	log := env.log

	feeds, err := newUpstreamFeeds()
	if err != nil {
		return nil, err
	}
	defer feeds.Close()
	for i := range cfg.Feeds {
		feeds.add(feedPath(i), []string{
			fmt.Sprintf("a-%d@upstream", i), fmt.Sprintf("b-%d@upstream", i), fmt.Sprintf("c-%d@upstream", i),
		}, false)
	}

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	interval := cfg.PollInterval.String()
	srv, err := startCalhookAt(ctx, env.bin, filepath.Join(env.dir, "calhook"), addr,
		"--log-level", "warn", "--allow-http-feeds", "--allow-private-cidr", "127.0.0.1/32",
		"--import-min-interval", interval, "--import-interval", interval,
		"--import-max-interval", max(cfg.PollInterval, time.Hour).String())
	if err != nil {
		return nil, err
	}
	defer env.stopCalhook(srv)

	api := newAPIClient(srv.baseURL, importCreateWorkers)
	acc, err := api.createAccount(ctx, srv.adminToken, "calhookbench")
	if err != nil {
		return nil, err
	}
	log.Info("creating imported calendars", "feeds", cfg.Feeds, "poll_interval", cfg.PollInterval)
	start := time.Now()
	if err := createImportedCalendars(ctx, api, acc.APIKey, feeds.URL, cfg.Feeds, cfg.PollInterval); err != nil {
		return nil, err
	}
	log.Info("created", "elapsed", time.Since(start).Round(time.Millisecond))
	// Every feed is fetched in full once (its first import); after that
	// the polls are conditional and answered 304.
	for feeds.full.Load() < int64(cfg.Feeds) {
		select {
		case <-srv.Exited():
			return nil, fmt.Errorf("calhook exited during the first imports; log:\n%s", srv.logTail(20))
		default:
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
		if time.Since(start) > 10*time.Minute {
			return nil, fmt.Errorf("first imports: %d of %d feeds fetched after 10 min", feeds.full.Load(), cfg.Feeds)
		}
	}
	log.Info("first import of every feed done", "elapsed", time.Since(start).Round(time.Millisecond),
		"warmup", cfg.Warmup)
	if err := sleepCtx(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	var cpu, polls []float64
	var unexpected int64
	for round := 1; round <= cfg.Runs; round++ {
		full0, nm0, other0 := feeds.full.Load(), feeds.notModified.Load(), feeds.other.Load()
		meter := startCPU(srv.cmd.Process.Pid)
		t0 := time.Now()
		if err := sleepCtx(ctx, cfg.Duration); err != nil {
			return nil, err
		}
		serverCPU, _, ok := meter.stop()
		elapsed := time.Since(t0)
		if !ok {
			return nil, fmt.Errorf("cannot read calhook's CPU time from /proc (Linux only)")
		}
		full, nm, other := feeds.full.Load()-full0, feeds.notModified.Load()-nm0, feeds.other.Load()-other0
		pct := 100 * serverCPU.Seconds() / elapsed.Seconds()
		rate := float64(full+nm) / elapsed.Seconds()
		cpu, polls = append(cpu, round2(pct)), append(polls, round1(rate))
		unexpected += full + other // the feeds never change: every poll should be a 304
		log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "cpu_percent", round2(pct),
			"polls_per_s", round1(rate), "not_modified", nm, "full", full, "other", other)
	}
	expected := float64(cfg.Feeds) / cfg.PollInterval.Seconds()
	// Jitter (never below the floor) and the per-host limit stretch the
	// cycle a little beyond the interval; the CPU use at exactly the
	// nominal rate is given alongside, scaled linearly.
	info := map[string]any{
		"feeds": cfg.Feeds, "poll_interval_s": cfg.PollInterval.Seconds(), "window_s": cfg.Duration.Seconds(),
		"expected_polls_per_s":         round1(expected),
		"cpu_percent_at_expected_rate": round2(median(cpu) * expected / max(median(polls), 1)),
	}
	return []Result{
		{Scenario: importCPUName, Metric: "calhook_cpu_percent", Value: median(cpu), Unit: "% of one core",
			Target: targetOf(importCPUTarget), Runs: cpu, Errors: errCount(unexpected), Info: info},
		{Scenario: importCPUName, Metric: "polls_per_s", Value: median(polls), Unit: "polls/s", Runs: polls,
			Info: map[string]any{"expected": round1(expected)}},
		hostResult(importCPUName),
	}, nil
}

// feedPath is the path of the i-th feed.
func feedPath(i int) string { return "/feeds/" + strconv.Itoa(i) + ".ics" }

// createImportedCalendars creates n imported calendars, one per feed, with
// importCreateWorkers clients at once.
func createImportedCalendars(ctx context.Context, api *apiClient, apiKey, base string, n int, interval time.Duration) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range importCreateWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := api.createImported(ctx, apiKey, "Feed "+strconv.Itoa(i), base+feedPath(i), interval); err != nil {
					cancel(fmt.Errorf("calendar %d of %d: %w", i+1, n, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
