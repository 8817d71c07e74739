package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

// Targets of webhooks-throughput, per second.
const (
	writeTarget    = 2000
	deliverTarget  = 2000
	fanoutTarget   = 3000
	throughputName = "webhooks-throughput"
)

// throughputFlags registers the flags of webhooks-throughput.
func throughputFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Changes, "changes", DefaultChanges, "changes written per round, each delivered to one subscription")
	fs.IntVar(&cfg.Writers, "writers", DefaultWriters, "concurrent API clients writing changes")
	fs.IntVar(&cfg.FanoutSubscriptions, "fanout-subscriptions", DefaultFanoutSubscriptions,
		"subscriptions of the fan-out part, each with its own endpoint path (-1 skips the part)")
	fs.IntVar(&cfg.FanoutChanges, "fanout-changes", DefaultFanoutChanges, "changes of the fan-out part, each delivered to every subscription")
	fs.IntVar(&cfg.Batch, "batch", 0, "write the one-subscription part through POST …/events/batch, this many events a request (0: one POST per event)")
	deliveryFlags(fs, cfg)
}

// throughputRound is what one round measured.
type throughputRound struct {
	writes writeStats
	// delivered is when the last distinct webhook arrived.
	delivered time.Time
	rcv       receiverStats
	// setup is how long creating the subscriptions took.
	setup time.Duration
	// serverCPU and benchCPU are the CPU time calhook and the bench used
	// from the first write to the last arrival; serverCPU is 0 when
	// unknown.
	serverCPU, benchCPU time.Duration
}

// deliveredRPS is webhooks per second from the first write to the last
// arrival.
func (r throughputRound) deliveredRPS() float64 {
	return perSecond(r.rcv.Distinct, r.delivered.Sub(r.writes.First))
}

// runWebhooksThroughput is the webhooks-throughput scenario. Each round
// starts two fresh calhooks in turn: one where cfg.Changes changes go to
// one subscription (api_write_rps, delivered_rps), and one where
// cfg.FanoutChanges changes go to cfg.FanoutSubscriptions subscriptions
// (fanout_delivered_rps).
func runWebhooksThroughput(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, throughputName, 50)
	if err != nil {
		return nil, err
	}
	defer env.close()
	log := env.log

	events, err := genEvents(max(cfg.Changes, cfg.FanoutChanges), eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		return nil, err
	}
	bodies, err := marshalEvents(events)
	if err != nil {
		return nil, err
	}

	var single, fanout []throughputRound
	for round := 1; round <= cfg.Runs; round++ {
		r, err := env.throughputRound(ctx, fmt.Sprintf("round%d-single", round), []string{"/hooks/0"}, bodies[:cfg.Changes], cfg.Batch)
		if err != nil {
			return nil, fmt.Errorf("round %d, one subscription: %w", round, err)
		}
		single = append(single, r)
		log.Info("one subscription", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "changes", r.writes.OK,
			"api_write_rps", round1(r.writes.RPS()), "delivered_rps", round1(r.deliveredRPS()),
			"lag_after_last_write", r.delivered.Sub(r.writes.Last).Round(time.Millisecond),
			"write_errors", r.writes.Failed, "duplicates", r.rcv.Duplicates)

		if cfg.FanoutSubscriptions < 0 {
			continue
		}
		paths := make([]string, cfg.FanoutSubscriptions)
		for i := range paths {
			paths[i] = fmt.Sprintf("/fanout/%d", i)
		}
		r, err = env.throughputRound(ctx, fmt.Sprintf("round%d-fanout", round), paths, bodies[:cfg.FanoutChanges], 0)
		if err != nil {
			return nil, fmt.Errorf("round %d, fan-out: %w", round, err)
		}
		fanout = append(fanout, r)
		log.Info("fan-out", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "subscriptions", len(paths),
			"changes", r.writes.OK, "webhooks", r.rcv.Distinct, "fanout_delivered_rps", round1(r.deliveredRPS()),
			"subscriptions_created_in", r.setup.Round(time.Millisecond), "duplicates", r.rcv.Duplicates)
	}
	return webhookThroughputResults(cfg, single, fanout), nil
}

// batchBodies groups event bodies into batch-route bodies of up to n
// creates each, and returns how many events each holds.
func batchBodies(bodies [][]byte, n int) ([][]byte, []int) {
	var out [][]byte
	var sizes []int
	for len(bodies) > 0 {
		k := min(n, len(bodies))
		var b bytes.Buffer
		b.WriteString(`{"items":[`)
		for i, body := range bodies[:k] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"op":"create","event":`)
			b.Write(body)
			b.WriteByte('}')
		}
		b.WriteString(`]}`)
		out, sizes = append(out, b.Bytes()), append(sizes, k)
		bodies = bodies[k:]
	}
	return out, sizes
}

// perItemMS returns d / n in milliseconds, 0 for no items.
func perItemMS(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return ms(d) / float64(n)
}

// throughputRound runs one calhook with a subscription per path, writes
// one change per body (through the batch route, batch at a time, when
// batch > 1) and waits for every webhook.
func (env *webhookEnv) throughputRound(ctx context.Context, name string, paths []string, bodies [][]byte, batch int) (throughputRound, error) {
	var r throughputRound
	srv, err := env.startCalhook(ctx, name)
	if err != nil {
		return r, err
	}
	defer env.stopCalhook(srv)
	env.rcv.reset(false)
	start := time.Now()
	setup, err := setupSubscriptions(ctx, srv, env.rcv, paths, env.cfg.Writers)
	if err != nil {
		return r, err
	}
	r.setup = time.Since(start)

	cpu := startCPU(srv.cmd.Process.Pid)
	if batch > 1 {
		batches, sizes := batchBodies(bodies, batch)
		r.writes = postBodies(ctx, setup.api.http, []string{setup.eventsURL + "/batch"}, setup.acc.APIKey, batches, sizes,
			http.StatusOK, env.cfg.Writers)
	} else {
		r.writes = postAll(ctx, setup.api.http, []string{setup.eventsURL}, setup.acc.APIKey, bodies, env.cfg.Writers)
	}
	if r.writes.OK == 0 {
		return r, fmt.Errorf("%w: %s", errWrites, r.writes.Detail)
	}
	if r.writes.Failed > 0 {
		env.log.Warn("some writes failed", "round", name, "failed", r.writes.Failed, "detail", r.writes.Detail)
	}
	want := r.writes.OK * int64(len(paths))
	if err := env.rcv.waitFor(ctx, want, stallTimeout, srv.proc); err != nil {
		return r, err
	}
	r.serverCPU, r.benchCPU, _ = cpu.stop()
	var problem string
	r.rcv, r.delivered, problem = env.rcv.stats()
	if problem != "" {
		env.log.Warn("receiver saw bad deliveries", "round", name, "first", problem)
	}
	return r, nil
}

// webhookThroughputResults turns the rounds into result lines.
func webhookThroughputResults(cfg Config, single, fanout []throughputRound) []Result {
	machine := hostResult(throughputName)
	machine.Info["changes"] = cfg.Changes
	machine.Info["writers"] = cfg.Writers
	machine.Info["delivery_workers"] = cfg.DeliveryWorkers
	machine.Info["delivery_per_endpoint"] = cfg.DeliveryPerEndpoint
	machine.Info["runs"] = cfg.Runs
	if len(fanout) > 0 {
		machine.Info["fanout_subscriptions"] = cfg.FanoutSubscriptions
		machine.Info["fanout_changes"] = cfg.FanoutChanges
	}

	var writeRPS, deliverRPS, lagMS, fanRPS, fanSetupMS []float64
	var cpuServer, cpuBench, fanCPUServer, fanCPUBench []float64
	var writeErrs, deliverErrs, dups, fanErrs, fanDups int64
	for _, r := range single {
		writeRPS = append(writeRPS, r.writes.RPS())
		deliverRPS = append(deliverRPS, r.deliveredRPS())
		lagMS = append(lagMS, ms(r.delivered.Sub(r.writes.Last)))
		cpuServer = append(cpuServer, perItemMS(r.serverCPU, r.writes.OK))
		cpuBench = append(cpuBench, perItemMS(r.benchCPU, r.writes.OK))
		writeErrs += r.writes.Failed
		deliverErrs += r.rcv.errors()
		dups += r.rcv.Duplicates
	}
	for _, r := range fanout {
		fanRPS = append(fanRPS, r.deliveredRPS())
		fanSetupMS = append(fanSetupMS, ms(r.setup))
		fanCPUServer = append(fanCPUServer, perItemMS(r.serverCPU, r.rcv.Distinct))
		fanCPUBench = append(fanCPUBench, perItemMS(r.benchCPU, r.rcv.Distinct))
		fanErrs += r.writes.Failed + r.rcv.errors()
		fanDups += r.rcv.Duplicates
	}
	results := []Result{machine,
		{
			Scenario: throughputName, Metric: "api_write_rps", Value: round1(median(writeRPS)), Unit: "changes/s",
			Target: targetOf(writeTarget), Runs: roundAll(writeRPS, round1), Errors: errCount(writeErrs),
			Info: map[string]any{"changes": cfg.Changes, "writers": cfg.Writers},
		},
		{
			Scenario: throughputName, Metric: "delivered_rps", Value: round1(median(deliverRPS)), Unit: "webhooks/s",
			Target: targetOf(deliverTarget), Runs: roundAll(deliverRPS, round1), Errors: errCount(deliverErrs),
			Info: map[string]any{
				"subscriptions": 1, "duplicates": dups,
				// Negative when the last webhook beat the API's answer.
				"lag_after_last_write_ms":   roundAll(lagMS, round1),
				"calhook_cpu_ms_per_change": roundAll(cpuServer, round3),
				"bench_cpu_ms_per_change":   roundAll(cpuBench, round3),
			},
		},
	}
	if len(fanout) > 0 {
		results = append(results, Result{
			Scenario: throughputName, Metric: "fanout_delivered_rps", Value: round1(median(fanRPS)), Unit: "webhooks/s",
			Target: targetOf(fanoutTarget), Runs: roundAll(fanRPS, round1), Errors: errCount(fanErrs),
			Info: map[string]any{
				"subscriptions": cfg.FanoutSubscriptions, "changes": cfg.FanoutChanges,
				"webhooks": cfg.FanoutSubscriptions * cfg.FanoutChanges, "duplicates": fanDups,
				"subscription_setup_ms":      roundAll(fanSetupMS, round1),
				"calhook_cpu_ms_per_webhook": roundAll(fanCPUServer, round3),
				"bench_cpu_ms_per_webhook":   roundAll(fanCPUBench, round3),
			},
		})
	}
	return results
}
