package bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Targets of webhooks-latency, in milliseconds.
const (
	p50Target   = 10
	p99Target   = 50
	latencyName = "webhooks-latency"
	// latencyWriters is how many clients the pacer hands writes to; a
	// write is late only when every one of them is busy.
	latencyWriters = 32
)

// latencyFlags registers the flags of webhooks-latency.
func latencyFlags(fs *flag.FlagSet, cfg *Config) {
	fs.Float64Var(&cfg.Rate, "rate", DefaultRate, "changes written per second, at a steady pace")
	fs.IntVar(&cfg.Changes, "changes", DefaultLatencyChanges, "measured changes per round (2,000 at 200/s is 10 s)")
	cfg.Warmup = DefaultWarmup
	fs.Var((*warmupValue)(&cfg.Warmup), "warmup", "unmeasured changes at the same pace before each round, as a duration (0 for none)")
	deliveryFlags(fs, cfg)
}

// latencyRound is what one round measured.
type latencyRound struct {
	// latency holds, in milliseconds and sorted, the time from just
	// before each measured write was sent to its webhook's arrival.
	latency []float64
	// api holds, in milliseconds and sorted, the time each measured
	// write took to be answered.
	api []float64
	// late counts writes sent more than one interval after their turn
	// because every writer was busy.
	late    int64
	failed  int64
	missing int64
	rcv     receiverStats
	elapsed time.Duration
}

// runWebhooksLatency is the webhooks-latency scenario: each round starts a
// fresh calhook with one subscription and writes changes at cfg.Rate; the
// latency of a change is from just before its POST is sent to the arrival
// of its webhook at the receiver, both read from this process's clock.
func runWebhooksLatency(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Changes == 0 {
		cfg.Changes = DefaultLatencyChanges
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, latencyName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	warm := int(cfg.Rate * cfg.Warmup.Seconds())

	var rounds []latencyRound
	for round := 1; round <= cfg.Runs; round++ {
		r, err := env.latencyRound(ctx, round, warm)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		rounds = append(rounds, r)
		env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "changes", len(r.latency),
			"p50_ms", round2(percentile(r.latency, 50)), "p99_ms", round2(percentile(r.latency, 99)),
			"max_ms", round2(percentile(r.latency, 100)), "api_p50_ms", round2(percentile(r.api, 50)),
			"late_sends", r.late, "write_errors", r.failed)
	}
	return latencyResults(cfg, warm, rounds), nil
}

// latencyRound runs one calhook, writes warm unmeasured and then
// cfg.Changes measured changes at cfg.Rate, and matches each measured
// write to its webhook by the event's UID.
func (env *webhookEnv) latencyRound(ctx context.Context, round, warm int) (latencyRound, error) {
	cfg := env.cfg
	var r latencyRound
	srv, err := env.startCalhook(ctx, fmt.Sprintf("round%d", round))
	if err != nil {
		return r, err
	}
	defer env.stopCalhook(srv)
	env.rcv.reset(true)
	setup, err := setupSubscriptions(ctx, srv, env.rcv, []string{"/hooks/0"}, 1)
	if err != nil {
		return r, err
	}

	total := warm + cfg.Changes
	events, err := genEvents(total, eventSeed+uint64(round), eventBase, "Europe/Berlin")
	if err != nil {
		return r, err
	}
	for i := range events {
		events[i].UID = fmt.Sprintf("latency-%d-%05d@calhookbench", round, i)
	}
	bodies, err := marshalEvents(events)
	if err != nil {
		return r, err
	}

	sent := make([]time.Time, total)
	answered := make([]time.Time, total)
	ok := make([]bool, total)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range latencyWriters {
		wg.Go(func() {
			for i := range jobs {
				// Each slot is written by one goroutine only and read
				// after wg.Wait.
				sent[i] = time.Now()
				status, err := postJSON(ctx, setup.api.http, setup.eventsURL, setup.acc.APIKey, bodies[i])
				answered[i] = time.Now()
				ok[i] = err == nil && status == http.StatusCreated
			}
		})
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
pace:
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break pace
			}
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break pace
		}
		if i >= warm && time.Since(due) > interval {
			r.late++
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.elapsed = time.Since(start)

	var acked int64
	for i := range total {
		if ok[i] {
			acked++
		}
	}
	if acked == 0 {
		return r, errWrites
	}
	if err := env.rcv.waitFor(ctx, acked, stallTimeout, srv.proc); err != nil {
		return r, err
	}
	var problem string
	r.rcv, _, problem = env.rcv.stats()
	if problem != "" {
		env.log.Warn("receiver saw bad deliveries", "round", round, "first", problem)
	}
	for i := warm; i < total; i++ {
		if !ok[i] {
			r.failed++
			continue
		}
		at, found := env.rcv.arrival(events[i].UID)
		if !found {
			r.missing++
			continue
		}
		r.latency = append(r.latency, ms(at.Sub(sent[i])))
		r.api = append(r.api, ms(answered[i].Sub(sent[i])))
	}
	slices.Sort(r.latency)
	slices.Sort(r.api)
	if len(r.latency) == 0 {
		return r, fmt.Errorf("no measured change was delivered (%d failed, %d missing)", r.failed, r.missing)
	}
	return r, nil
}

// latencyResults turns the rounds into result lines: the median over the
// rounds of each round's percentile.
func latencyResults(cfg Config, warm int, rounds []latencyRound) []Result {
	machine := hostResult(latencyName)
	machine.Info["rate"] = cfg.Rate
	machine.Info["changes"] = cfg.Changes
	machine.Info["warmup_changes"] = warm
	machine.Info["delivery_workers"] = cfg.DeliveryWorkers
	machine.Info["delivery_per_endpoint"] = cfg.DeliveryPerEndpoint
	machine.Info["runs"] = cfg.Runs

	var p50, p99, pmax, mean, api50, api99 []float64
	var errs, late, dups int64
	for _, r := range rounds {
		p50 = append(p50, percentile(r.latency, 50))
		p99 = append(p99, percentile(r.latency, 99))
		pmax = append(pmax, percentile(r.latency, 100))
		var sum float64
		for _, x := range r.latency {
			sum += x
		}
		mean = append(mean, sum/float64(len(r.latency)))
		api50 = append(api50, percentile(r.api, 50))
		api99 = append(api99, percentile(r.api, 99))
		errs += r.failed + r.missing + r.rcv.errors()
		late += r.late
		dups += r.rcv.Duplicates
	}
	info := map[string]any{
		"max_ms":      roundAll(pmax, round2),
		"mean_ms":     roundAll(mean, round2),
		"api_p50_ms":  roundAll(api50, round2),
		"api_p99_ms":  roundAll(api99, round2),
		"late_sends":  late,
		"duplicates":  dups,
		"rate":        cfg.Rate,
		"measured_by": "bench clock: just before the POST is sent → webhook arrival at the in-process receiver",
	}
	return []Result{machine,
		{
			Scenario: latencyName, Metric: "latency_p50_ms", Value: round2(median(p50)), Unit: "ms",
			Target: targetOf(p50Target), Runs: roundAll(p50, round2), Errors: errCount(errs), Info: info,
		},
		{
			Scenario: latencyName, Metric: "latency_p99_ms", Value: round2(median(p99)), Unit: "ms",
			Target: targetOf(p99Target), Runs: roundAll(p99, round2), Errors: errCount(errs),
		},
	}
}
