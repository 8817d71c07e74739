package bench

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Settings and targets of import-latency.
const (
	importLatencyName = "import-latency"
	// DefaultImportSamples is how many changes each mode measures.
	DefaultImportSamples = 40
	// DefaultImportLatencyInterval is the poll interval of the calendars
	// without push (and calhook's floor for the run).
	DefaultImportLatencyInterval = 2 * time.Second
	// pushCalendars spreads the pushed changes over calendars so that no
	// calendar is pinged twice within calhook's 5 s coalescing window.
	pushCalendars = 20
	pushPace      = 300 * time.Millisecond
	// pollCalendars change together in each round of the polling mode.
	pollCalendars = 5
	// pushTargetMS is the p99 target with push, in milliseconds.
	pushTargetMS = 1000
	// pollExtraTargetMS is what polling may add to the wait for the next
	// poll: from the fetch that saw the change to the webhook.
	pollExtraTargetMS = 100
	// importJitter is calhook's poll jitter (±10%), part of the interval
	// the polling target allows for.
	importJitter = 0.1
	// sampleTimeout bounds the wait for one webhook.
	sampleTimeout = 30 * time.Second
)

// importLatencyFlags registers the flags of import-latency.
func importLatencyFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Changes, "changes", DefaultImportSamples, "changes measured in each mode")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", DefaultImportLatencyInterval,
		"poll interval of the calendars without push, and calhook's --import-min-interval")
}

// sample is one measured change.
type sample struct {
	// total is from the upstream change to the webhook's arrival;
	// afterFetch from the first fetch that saw the change to the arrival.
	total, afterFetch float64 // milliseconds
}

// runImportLatency is the import-latency scenario. One calhook imports
// feeds from a feed server in the bench process and delivers their
// changes to the bench's webhook receiver. With push, the feed server
// sends a HEAD to the X-ICALHOOKS-URL calhook fetched the feed with right
// after changing it, as an iCal Hooks provider does; without, calhook
// notices the change at its next poll. Every time is read from this
// process's clock.
func runImportLatency(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Changes <= 0 {
		cfg.Changes = DefaultImportSamples
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultImportLatencyInterval
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, importLatencyName, 1)
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

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := startCalhookAt(ctx, env.bin, filepath.Join(env.dir, "calhook"), addr,
		"--log-level", "warn", "--public-url", "http://"+addr,
		"--allow-http-feeds", "--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32",
		"--import-min-interval", cfg.PollInterval.String())
	if err != nil {
		return nil, err
	}
	defer env.stopCalhook(srv)

	api := newAPIClient(srv.baseURL, 4)
	acc, err := api.createAccount(ctx, srv.adminToken, "calhookbench")
	if err != nil {
		return nil, err
	}
	env.rcv.reset(true)
	secret, err := api.createAccountSubscription(ctx, acc.APIKey, env.rcv.URL+"/hooks/import")
	if err != nil {
		return nil, err
	}
	env.rcv.addEndpoint("/hooks/import", secret)

	// Push calendars are polled hourly: only the pings bring changes in
	// quickly. Polling calendars use the short interval.
	var pushPaths, pollPaths []string
	for i := range pushCalendars {
		p := "/push/" + strconv.Itoa(i) + ".ics"
		feeds.add(p, []string{"seed-" + p}, true)
		pushPaths = append(pushPaths, p)
		if _, err := api.createImported(ctx, acc.APIKey, "Push "+strconv.Itoa(i), feeds.URL+p, time.Hour); err != nil {
			return nil, err
		}
	}
	for i := range pollCalendars {
		p := "/poll/" + strconv.Itoa(i) + ".ics"
		feeds.add(p, []string{"seed-" + p}, true)
		pollPaths = append(pollPaths, p)
		if _, err := api.createImported(ctx, acc.APIKey, "Poll "+strconv.Itoa(i), feeds.URL+p, cfg.PollInterval); err != nil {
			return nil, err
		}
	}
	// The first imports are done when every seed event has arrived as a
	// webhook; by then each push feed knows its hook URL.
	for _, p := range append(slices.Clone(pushPaths), pollPaths...) {
		if _, err := waitArrival(ctx, env.rcv, "seed-"+p, srv.proc); err != nil {
			return nil, fmt.Errorf("first import of %s: %w", p, err)
		}
	}
	for _, p := range pushPaths {
		if feeds.hookOf(p) == "" {
			return nil, fmt.Errorf("calhook fetched %s without X-ICALHOOKS-URL", p)
		}
	}
	log.Info("feeds imported", "push", len(pushPaths), "poll", len(pollPaths))

	push, err := measurePush(ctx, feeds, env.rcv, srv, pushPaths, cfg.Changes)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	log.Info("push", "samples", len(push), "p50_ms", round2(pct(push, 50, total)), "p99_ms", round2(pct(push, 99, total)))
	poll, err := measurePoll(ctx, feeds, env.rcv, srv, pollPaths, cfg.Changes, cfg.PollInterval)
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	log.Info("poll", "samples", len(poll), "p50_ms", round2(pct(poll, 50, total)), "p99_ms", round2(pct(poll, 99, total)),
		"max_ms", round2(pct(poll, 100, total)), "after_fetch_p99_ms", round2(pct(poll, 99, afterFetch)))

	intervalMS := ms(cfg.PollInterval)
	pollTarget := intervalMS*(1+importJitter) + pollExtraTargetMS
	info := map[string]any{"samples": len(push), "calendars": pushCalendars}
	pollInfo := map[string]any{"samples": len(poll), "poll_interval_ms": intervalMS,
		"target_note": "one poll interval (with its +10% jitter) + 100 ms"}
	return []Result{
		{Scenario: importLatencyName, Metric: "push_p50_ms", Value: round2(pct(push, 50, total)), Unit: "ms", Info: info},
		{Scenario: importLatencyName, Metric: "push_p99_ms", Value: round2(pct(push, 99, total)), Unit: "ms",
			Target: targetOf(pushTargetMS), Info: info},
		{Scenario: importLatencyName, Metric: "poll_p50_ms", Value: round2(pct(poll, 50, total)), Unit: "ms", Info: pollInfo},
		{Scenario: importLatencyName, Metric: "poll_p99_ms", Value: round2(pct(poll, 99, total)), Unit: "ms",
			Target: targetOf(round2(pollTarget)), Info: pollInfo},
		{Scenario: importLatencyName, Metric: "poll_max_ms", Value: round2(pct(poll, 100, total)), Unit: "ms",
			Target: targetOf(round2(pollTarget)), Info: pollInfo},
		{Scenario: importLatencyName, Metric: "poll_after_fetch_p99_ms", Value: round2(pct(poll, 99, afterFetch)), Unit: "ms",
			Target: targetOf(pollExtraTargetMS),
			Info:   map[string]any{"note": "from the fetch that saw the change to the webhook's arrival"}},
		hostResult(importLatencyName),
	}, nil
}

func total(s sample) float64      { return s.total }
func afterFetch(s sample) float64 { return s.afterFetch }

// pct returns the p-th percentile of one field of the samples.
func pct(samples []sample, p float64, field func(sample) float64) float64 {
	xs := make([]float64, len(samples))
	for i, s := range samples {
		xs[i] = field(s)
	}
	return pctOf(xs, p)
}

// measurePush changes the push feeds one at a time, pinging calhook after
// each change, and times each change's webhook.
func measurePush(ctx context.Context, feeds *upstreamFeeds, rcv *hookReceiver, srv *calhookServer, paths []string, n int) ([]sample, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	var out []sample
	for i := range n {
		p := paths[i%len(paths)]
		t0, at, err := pushSample(ctx, client, feeds, rcv, srv.proc, p, fmt.Sprintf("push-%d@upstream", i))
		if err != nil {
			return nil, err
		}
		fetched, _ := feeds.fetchedAfter(p, t0)
		out = append(out, sample{total: ms(at.Sub(t0)), afterFetch: ms(at.Sub(fetched))})
		if err := sleepCtx(ctx, pushPace); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// measurePoll changes every polling feed at once, at a random moment of
// the poll cycle, and times each change's webhook; it repeats until n
// changes are measured.
func measurePoll(ctx context.Context, feeds *upstreamFeeds, rcv *hookReceiver, srv *calhookServer, paths []string, n int, interval time.Duration) ([]sample, error) {
	var out []sample
	for round := 0; len(out) < n; round++ {
		if err := sleepCtx(ctx, time.Duration(rand.Int64N(int64(interval)))); err != nil {
			return nil, err
		}
		t0 := time.Now()
		uids := make([]string, len(paths))
		for k, p := range paths {
			uids[k] = fmt.Sprintf("poll-%d-%d@upstream", round, k)
			feeds.addEvent(p, uids[k])
		}
		for k, p := range paths {
			at, err := waitArrival(ctx, rcv, uids[k], srv.proc)
			if err != nil {
				return nil, err
			}
			fetched, _ := feeds.fetchedAfter(p, t0)
			out = append(out, sample{total: ms(at.Sub(t0)), afterFetch: ms(at.Sub(fetched))})
		}
	}
	return out[:n], nil
}
