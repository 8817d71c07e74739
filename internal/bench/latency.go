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
	srv, err := env.startCalhook(ctx, fmt.Sprintf("round%d", round))
	if err != nil {
		return latencyRound{}, err
	}
	defer env.stopCalhook(srv)
	env.rcv.reset(true)
	setup, err := setupSubscriptions(ctx, srv, env.rcv, []string{"/hooks/0"}, 1)
	if err != nil {
		return latencyRound{}, err
	}
	events, bodies, err := latencyEvents(warm+cfg.Changes, round, fmt.Sprintf("latency-%d", round))
	if err != nil {
		return latencyRound{}, err
	}
	w, err := writePaced(ctx, setup.api.http, []string{setup.eventsURL}, setup.acc.APIKey, bodies, cfg.Rate, warm)
	if err != nil {
		return latencyRound{}, err
	}
	acked := w.acked()
	if acked == 0 {
		return latencyRound{}, errWrites
	}
	if err := env.rcv.waitFor(ctx, acked, stallTimeout, srv.proc); err != nil {
		return latencyRound{}, err
	}
	st, _, problem := env.rcv.stats()
	if problem != "" {
		env.log.Warn("receiver saw bad deliveries", "round", round, "first", problem)
	}
	return w.measure(env.rcv, st, events, warm)
}

// latencyEvents generates total events for a latency round, with UIDs
// prefix-00000@calhookbench, … so that each webhook can be matched to its
// write, and encodes them.
func latencyEvents(total, round int, prefix string) ([]eventInput, [][]byte, error) {
	events, err := genEvents(total, eventSeed+uint64(round), eventBase, "Europe/Berlin")
	if err != nil {
		return nil, nil, err
	}
	for i := range events {
		events[i].UID = fmt.Sprintf("%s-%05d@calhookbench", prefix, i)
	}
	bodies, err := marshalEvents(events)
	if err != nil {
		return nil, nil, err
	}
	return events, bodies, nil
}

// pacedWrites is what writePaced recorded, indexed like its bodies.
type pacedWrites struct {
	// sent holds when each write was about to be sent, answered when its
	// answer was read, ok whether that answer was 201.
	sent, answered []time.Time
	ok             []bool
	// late counts measured writes sent more than one interval after
	// their turn because every writer was busy.
	late int64
	// elapsed is from the first write's turn to the last answer.
	elapsed time.Duration
}

// writePaced posts bodies[i] at its turn, i/rate seconds after the start,
// to urls[i % len(urls)], handing each write to whichever of
// latencyWriters clients is free, so that a slow answer does not delay
// the next write. The first warm writes are not counted as late. It
// returns once every write was answered, or with ctx's error.
func writePaced(ctx context.Context, client *http.Client, urls []string, bearer string, bodies [][]byte, rate float64, warm int) (*pacedWrites, error) {
	total := len(bodies)
	w := &pacedWrites{sent: make([]time.Time, total), answered: make([]time.Time, total), ok: make([]bool, total)}
	interval := time.Duration(float64(time.Second) / rate)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range latencyWriters {
		wg.Go(func() {
			for i := range jobs {
				// Each slot is written by one goroutine only and read
				// after wg.Wait.
				w.sent[i] = time.Now()
				status, err := postJSON(ctx, client, urls[i%len(urls)], bearer, bodies[i])
				w.answered[i] = time.Now()
				w.ok[i] = err == nil && status == http.StatusCreated
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
			w.late++
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.elapsed = time.Since(start)
	return w, nil
}

// acked counts the writes calhook answered with 201.
func (w *pacedWrites) acked() int64 {
	var n int64
	for _, ok := range w.ok {
		if ok {
			n++
		}
	}
	return n
}

// measure matches each measured write, from warm on, to its webhook's
// arrival at rcv by the event's UID, and returns the round with the
// receiver's tally st. A failed write counts as failed, an acknowledged
// one without a webhook as missing; it is an error when none is left.
func (w *pacedWrites) measure(rcv *hookReceiver, st receiverStats, events []eventInput, warm int) (latencyRound, error) {
	r := latencyRound{late: w.late, rcv: st, elapsed: w.elapsed}
	for i := warm; i < len(events); i++ {
		if !w.ok[i] {
			r.failed++
			continue
		}
		at, found := rcv.arrival(events[i].UID)
		if !found {
			r.missing++
			continue
		}
		r.latency = append(r.latency, ms(at.Sub(w.sent[i])))
		r.api = append(r.api, ms(w.answered[i].Sub(w.sent[i])))
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

	s := summarizeLatency(rounds)
	info := map[string]any{
		"max_ms":      roundAll(s.pmax, round2),
		"mean_ms":     roundAll(s.mean, round2),
		"api_p50_ms":  roundAll(s.api50, round2),
		"api_p99_ms":  roundAll(s.api99, round2),
		"late_sends":  s.late,
		"duplicates":  s.dups,
		"rate":        cfg.Rate,
		"measured_by": latencyMeasuredBy,
	}
	return []Result{machine,
		{
			Scenario: latencyName, Metric: "latency_p50_ms", Value: round2(median(s.p50)), Unit: "ms",
			Target: targetOf(p50Target), Runs: roundAll(s.p50, round2), Errors: errCount(s.errs), Info: info,
		},
		{
			Scenario: latencyName, Metric: "latency_p99_ms", Value: round2(median(s.p99)), Unit: "ms",
			Target: targetOf(p99Target), Runs: roundAll(s.p99, round2), Errors: errCount(s.errs),
		},
	}
}

// latencyMeasuredBy says, in the results' info, what a latency spans.
const latencyMeasuredBy = "bench clock: just before the POST is sent → webhook arrival at the in-process receiver"

// latencySummary is the figures of every round side by side, in round
// order, and the counts summed over the rounds, for the result lines.
type latencySummary struct {
	// p50, p99, pmax and mean are of the webhook latency, api50 and
	// api99 of the API's answer, in milliseconds.
	p50, p99, pmax, mean, api50, api99 []float64
	// errs counts failed writes, missing webhooks and bad deliveries.
	errs, late, dups int64
}

// summarizeLatency takes each round's percentiles and mean and sums the
// counts of the rounds.
func summarizeLatency(rounds []latencyRound) latencySummary {
	var s latencySummary
	for _, r := range rounds {
		s.p50 = append(s.p50, percentile(r.latency, 50))
		s.p99 = append(s.p99, percentile(r.latency, 99))
		s.pmax = append(s.pmax, percentile(r.latency, 100))
		var sum float64
		for _, x := range r.latency {
			sum += x
		}
		s.mean = append(s.mean, sum/float64(len(r.latency)))
		s.api50 = append(s.api50, percentile(r.api, 50))
		s.api99 = append(s.api99, percentile(r.api, 99))
		s.errs += r.failed + r.missing + r.rcv.errors()
		s.late += r.late
		s.dups += r.rcv.Duplicates
	}
	return s
}
