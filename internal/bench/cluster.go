package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The pg-* scenarios measure what webhooks-throughput (its one-subscription
// part) and webhooks-latency measure, on several storage targets in turn
// within every round, so that noise on the machine hits each alike:
//
//   - sqlite: one node on a SQLite file, the reference (--skip-sqlite
//     leaves it out);
//   - pgN for each N of --nodes (default 1,3): N calhook nodes on one
//     fresh schema of the PostgreSQL database at --postgres (default
//     $CALHOOK_TEST_POSTGRES), dropped after the round.
//
// Every node of a target takes writes: writer w of pg-throughput, and the
// i-th paced write of pg-latency, go to node w (or i) modulo N; every node
// fans out and delivers, to the one receiver in the bench process. The
// nodes share the admin token; the account, calendar and subscription are
// made through the first node. With --keep the schemas stay, as the
// SQLite files and the nodes' logs do.
//
// pg-throughput reports <target>_api_write_rps and <target>_delivered_rps
// (as webhooks-throughput's api_write_rps and delivered_rps), and
// pgN_vs_pg1_delivered, the ratio of the delivered rates of the same round
// (target: at least 1, more nodes are not slower). Its info gives the CPU
// time per change of the nodes together, of every postgres process on the
// machine, and of the bench. pg-latency reports <target>_latency_p50_ms and
// <target>_latency_p99_ms (target for PostgreSQL: p99 under 100 ms at 200
// changes/s).

// Names and targets of the pg-* scenarios.
const (
	pgThroughputName = "pg-throughput"
	pgLatencyName    = "pg-latency"
	// pgDeliverTarget is the delivered webhooks per second one node on
	// PostgreSQL is to reach.
	pgDeliverTarget = 2000
	// pgP99Target is the p99 in milliseconds at 200 changes/s on
	// PostgreSQL, with any number of nodes.
	pgP99Target = 100
	// scaleTarget is the least ratio of a cluster's delivered rate to one
	// node's.
	scaleTarget = 1.0
)

// defaultNodes are the PostgreSQL cluster sizes measured by default.
var defaultNodes = []int{1, 3}

// nodesValue is the --nodes flag: cluster sizes, comma-separated.
type nodesValue []int

func (v *nodesValue) String() string {
	if v == nil || len(*v) == 0 {
		return formatNodes(defaultNodes)
	}
	return formatNodes(*v)
}

func (v *nodesValue) Set(s string) error {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q: want cluster sizes of at least 1, comma-separated, such as 1,3", s)
		}
		out = append(out, n)
	}
	*v = out
	return nil
}

func formatNodes(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// pgFlags registers the flags both pg-* scenarios share.
func pgFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Postgres, "postgres", os.Getenv(PostgresEnv),
		"postgres:// URL of the database to make a fresh schema in per round and target (default $"+PostgresEnv+")")
	fs.Var((*nodesValue)(&cfg.Nodes), "nodes", "calhook nodes on PostgreSQL, one target per size, comma-separated (default 1,3)")
	fs.BoolVar(&cfg.SkipSQLite, "skip-sqlite", false, "leave out the SQLite reference target")
	deliveryFlags(fs, cfg)
}

// pgThroughputFlags registers the flags of pg-throughput.
func pgThroughputFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Changes, "changes", DefaultChanges, "changes written per round and target, each delivered to one subscription")
	fs.IntVar(&cfg.Writers, "writers", DefaultWriters, "concurrent API clients writing changes, spread over the nodes")
	cfg.WarmupChanges = DefaultWarmupChanges
	fs.Var((*warmupCount)(&cfg.WarmupChanges), "warmup-changes",
		"unmeasured changes written and delivered before each round's measured ones, so that every node's connections and caches are warm (0 for none)")
	pgFlags(fs, cfg)
}

// warmupCount is the --warmup-changes flag: Config reads a zero
// WarmupChanges as "the default", so an explicit 0 is stored as -1,
// meaning none.
type warmupCount int

func (v *warmupCount) String() string {
	if v == nil || *v < 0 {
		return "0"
	}
	return strconv.Itoa(int(*v))
}

func (v *warmupCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number of changes, 0 or more")
	}
	if n == 0 {
		n = -1
	}
	*v = warmupCount(n)
	return nil
}

// pgLatencyFlags registers the flags of pg-latency.
func pgLatencyFlags(fs *flag.FlagSet, cfg *Config) {
	fs.Float64Var(&cfg.Rate, "rate", DefaultRate, "changes written per second, at a steady pace, spread over the nodes")
	fs.IntVar(&cfg.Changes, "changes", DefaultLatencyChanges, "measured changes per round and target")
	cfg.Warmup = DefaultWarmup
	fs.Var((*warmupValue)(&cfg.Warmup), "warmup", "unmeasured changes at the same pace before each round, as a duration (0 for none)")
	pgFlags(fs, cfg)
}

// clusterTarget is one storage setup the pg-* scenarios measure.
type clusterTarget struct {
	// Name prefixes the target's metrics: sqlite, pg1, pg3, …
	Name     string
	Nodes    int
	Postgres bool
}

// clusterTargets returns the targets cfg asks for, SQLite first.
func (c Config) clusterTargets() ([]clusterTarget, error) {
	var ts []clusterTarget
	if !c.SkipSQLite {
		ts = append(ts, clusterTarget{Name: "sqlite", Nodes: 1})
	}
	nodes := c.Nodes
	if len(nodes) == 0 {
		nodes = defaultNodes
	}
	seen := map[int]bool{}
	for _, n := range nodes {
		if n < 1 {
			return nil, fmt.Errorf("nodes %d: must be at least 1", n)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		ts = append(ts, clusterTarget{Name: "pg" + strconv.Itoa(n), Nodes: n, Postgres: true})
	}
	if len(ts) > 0 && ts[len(ts)-1].Postgres && c.Postgres == "" {
		return nil, fmt.Errorf("no PostgreSQL to measure: pass --postgres URL or set %s", PostgresEnv)
	}
	if len(ts) == 0 {
		return nil, errors.New("no target: --skip-sqlite needs at least one --nodes")
	}
	return ts, nil
}

// cluster is the running nodes of one target.
type cluster struct {
	target clusterTarget
	nodes  []*calhookServer
	schema *pgSchema // nil on SQLite
}

// startCluster starts the target's nodes on a fresh database: a SQLite
// file in its own directory, or a new PostgreSQL schema. The nodes start
// one after the other; the first applies the migrations.
func (env *webhookEnv) startCluster(ctx context.Context, name string, t clusterTarget) (*cluster, error) {
	dir := filepath.Join(env.dir, name)
	c := &cluster{target: t}
	db := filepath.Join(dir, "calhook.db")
	if t.Postgres {
		s, err := createPGSchema(ctx, env.cfg.Postgres)
		if err != nil {
			return nil, err
		}
		c.schema, db = s, s.URL
	}
	admin := randomHex(32)
	for i := range t.Nodes {
		env.log.Debug("starting calhook node", "target", t.Name, "node", i, "dir", dir)
		srv, err := startNode(ctx, env.bin, filepath.Join(dir, fmt.Sprintf("node%d", i)), db, admin, append([]string{
			"--log-level", "warn",
			"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32",
			"--delivery-workers", strconv.Itoa(env.cfg.DeliveryWorkers)},
			perEndpointArgs(env.cfg.DeliveryPerEndpoint)...)...)
		if err != nil {
			env.stopCluster(c)
			return nil, fmt.Errorf("%s node %d: %w", t.Name, i, err)
		}
		c.nodes = append(c.nodes, srv)
	}
	return c, nil
}

// stopCluster stops the nodes at once and drops the schema, logging what
// did not go cleanly.
func (env *webhookEnv) stopCluster(c *cluster) {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { env.stopCalhook(n) })
	}
	wg.Wait()
	if c.schema != nil && !env.keep {
		if err := c.schema.drop(); err != nil {
			env.log.Warn("could not drop the round's schema", "error", err)
		}
	}
}

// watch returns a context that ends, with the node's log as its cause,
// when any node exits; stop releases it.
func (c *cluster) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	for _, n := range c.nodes {
		go func() {
			select {
			case <-n.Exited():
				cancel(fmt.Errorf("%s exited (%v); log:\n%s", n.name, n.waitErr, n.logTail(20)))
			case <-done:
			}
		}()
	}
	return ctx, func() { close(done); cancel(nil) }
}

// waitDelivered waits for n distinct webhooks as hookReceiver.waitFor
// does, and gives up when any node exits.
func (env *webhookEnv) waitDelivered(ctx context.Context, c *cluster, n int64) error {
	wctx, stop := c.watch(ctx)
	defer stop()
	err := env.rcv.waitFor(wctx, n, stallTimeout, nil)
	if cause := context.Cause(wctx); err != nil && cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// eventsURLs returns the events collection of the calendar on every node.
func (c *cluster) eventsURLs(calendarID string) []string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.baseURL + "/v1/calendars/" + calendarID + "/events"
	}
	return urls
}

// pgEnv sets up what a pg-* scenario needs: defaults, targets, the
// temporary directory, the calhook binary and the receiver.
func pgEnv(ctx context.Context, cfg Config, scenario string, verifyEvery int) (*webhookEnv, []clusterTarget, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	targets, err := cfg.clusterTargets()
	if err != nil {
		return nil, nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, scenario, verifyEvery)
	if err != nil {
		return nil, nil, err
	}
	return env, targets, nil
}

// clusterThroughputRound is what one round measured on one target.
type clusterThroughputRound struct {
	throughputRound
	// postgresCPU is the CPU time every postgres process used from the
	// first write to the last arrival.
	postgresCPU time.Duration
}

// runPGThroughput is the pg-throughput scenario.
func runPGThroughput(ctx context.Context, cfg Config) ([]Result, error) {
	env, targets, err := pgEnv(ctx, cfg, pgThroughputName, 50)
	if err != nil {
		return nil, err
	}
	defer env.close()
	cfg = env.cfg
	events, err := genEvents(cfg.WarmupChanges+cfg.Changes, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		return nil, err
	}
	bodies, err := marshalEvents(events)
	if err != nil {
		return nil, err
	}
	rounds := map[string][]clusterThroughputRound{}
	for round := 1; round <= cfg.Runs; round++ {
		for _, t := range targets {
			r, err := env.clusterThroughputRound(ctx, fmt.Sprintf("round%d-%s", round, t.Name), t, bodies)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, t.Name, err)
			}
			rounds[t.Name] = append(rounds[t.Name], r)
			env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "target", t.Name,
				"changes", r.writes.OK, "api_write_rps", round1(r.writes.RPS()), "delivered_rps", round1(r.deliveredRPS()),
				"lag_after_last_write", r.delivered.Sub(r.writes.Last).Round(time.Millisecond),
				"calhook_cpu_ms_per_change", round3(perItemMS(r.serverCPU, r.writes.OK)),
				"postgres_cpu_ms_per_change", round3(perItemMS(r.postgresCPU, r.writes.OK)),
				"write_errors", r.writes.Failed, "duplicates", r.rcv.Duplicates)
		}
	}
	return pgThroughputResults(ctx, cfg, targets, rounds), nil
}

// clusterThroughputRound starts the target's nodes, subscribes the
// receiver to a calendar through the first node, writes one change per
// body from cfg.Writers clients spread over the nodes and waits for every
// webhook. The first cfg.WarmupChanges bodies are a warm-up, written and
// delivered before the measured ones, so that a round measures sustained
// throughput rather than the nodes' start: their database connections,
// prepared statements and PostgreSQL's caches for the new backends, which
// three nodes pay three times over.
func (env *webhookEnv) clusterThroughputRound(ctx context.Context, name string, t clusterTarget, bodies [][]byte) (clusterThroughputRound, error) {
	var r clusterThroughputRound
	c, err := env.startCluster(ctx, name, t)
	if err != nil {
		return r, err
	}
	defer env.stopCluster(c)
	env.rcv.reset(false)
	start := time.Now()
	setup, err := setupSubscriptions(ctx, c.nodes[0], env.rcv, []string{"/hooks/0"}, env.cfg.Writers)
	if err != nil {
		return r, err
	}
	r.setup = time.Since(start)

	urls := c.eventsURLs(setup.cal.ID)
	if warm := env.cfg.WarmupChanges; warm > 0 {
		w := postAll(ctx, setup.api.http, urls, setup.acc.APIKey, bodies[:warm], env.cfg.Writers)
		if w.Failed > 0 {
			return r, fmt.Errorf("%w in the warm-up: %s", errWrites, w.Detail)
		}
		if err := env.waitDelivered(ctx, c, w.OK); err != nil {
			return r, fmt.Errorf("warm-up: %w", err)
		}
		if _, _, problem := env.rcv.stats(); problem != "" {
			return r, fmt.Errorf("warm-up: receiver saw a bad delivery: %s", problem)
		}
		env.rcv.restartCounts()
		bodies = bodies[warm:]
	}

	cpu := startClusterCPU(c.nodes)
	r.writes = postAll(ctx, setup.api.http, urls, setup.acc.APIKey, bodies, env.cfg.Writers)
	if r.writes.OK == 0 {
		return r, fmt.Errorf("%w: %s", errWrites, r.writes.Detail)
	}
	if r.writes.Failed > 0 {
		env.log.Warn("some writes failed", "round", name, "failed", r.writes.Failed, "detail", r.writes.Detail)
	}
	if err := env.waitDelivered(ctx, c, r.writes.OK); err != nil {
		return r, err
	}
	r.serverCPU, r.postgresCPU, r.benchCPU, err = cpu.stop()
	if err != nil {
		env.log.Warn("CPU time of a node unknown", "error", err)
	}
	var problem string
	r.rcv, r.delivered, problem = env.rcv.stats()
	if problem != "" {
		env.log.Warn("receiver saw bad deliveries", "round", name, "first", problem)
	}
	return r, nil
}

// pgMachine is the machine line of a pg-* scenario, with the PostgreSQL
// server's version and durability setting when one was used.
func pgMachine(ctx context.Context, scenario string, cfg Config, targets []clusterTarget) Result {
	m := hostResult(scenario)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	m.Info["targets"] = names
	m.Info["runs"] = cfg.Runs
	m.Info["delivery_workers"] = cfg.DeliveryWorkers
	m.Info["delivery_per_endpoint"] = cfg.DeliveryPerEndpoint
	if cfg.Postgres != "" {
		m.Info["postgres"] = pgSettings(ctx, cfg.Postgres)
	}
	return m
}

// pgSettings reads the server version and the settings that bound the
// write path; a failure leaves them out.
func pgSettings(ctx context.Context, dbURL string) map[string]string {
	names := []string{"server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections"}
	vals := make([]string, len(names))
	dest := make([]any, len(names))
	var cols []string
	for i, n := range names {
		dest[i] = &vals[i]
		cols = append(cols, "current_setting('"+n+"')")
	}
	out := map[string]string{}
	if err := pgQueryRow(ctx, dbURL, `SELECT `+strings.Join(cols, ", "), nil, dest...); err != nil {
		return out
	}
	for i, n := range names {
		out[n] = vals[i]
	}
	return out
}

// pgThroughputResults turns the rounds into result lines, per target in
// target order, then the scaling ratios.
func pgThroughputResults(ctx context.Context, cfg Config, targets []clusterTarget, rounds map[string][]clusterThroughputRound) []Result {
	machine := pgMachine(ctx, pgThroughputName, cfg, targets)
	machine.Info["changes"] = cfg.Changes
	machine.Info["writers"] = cfg.Writers
	machine.Info["warmup_changes"] = cfg.WarmupChanges
	results := []Result{machine}
	delivered := map[string][]float64{}
	for _, t := range targets {
		var writeRPS, deliverRPS, lagMS, cpuServer, cpuPG, cpuBench []float64
		var writeErrs, deliverErrs, dups int64
		for _, r := range rounds[t.Name] {
			writeRPS = append(writeRPS, r.writes.RPS())
			deliverRPS = append(deliverRPS, r.deliveredRPS())
			lagMS = append(lagMS, ms(r.delivered.Sub(r.writes.Last)))
			cpuServer = append(cpuServer, perItemMS(r.serverCPU, r.writes.OK))
			cpuPG = append(cpuPG, perItemMS(r.postgresCPU, r.writes.OK))
			cpuBench = append(cpuBench, perItemMS(r.benchCPU, r.writes.OK))
			writeErrs += r.writes.Failed
			deliverErrs += r.rcv.errors()
			dups += r.rcv.Duplicates
		}
		delivered[t.Name] = deliverRPS
		var target *float64
		if t.Postgres {
			target = targetOf(pgDeliverTarget)
		} else {
			target = targetOf(deliverTarget)
		}
		info := map[string]any{
			"nodes": t.Nodes, "subscriptions": 1, "duplicates": dups,
			"lag_after_last_write_ms":   roundAll(lagMS, round1),
			"calhook_cpu_ms_per_change": roundAll(cpuServer, round3),
			"bench_cpu_ms_per_change":   roundAll(cpuBench, round3),
		}
		if t.Postgres {
			info["postgres_cpu_ms_per_change"] = roundAll(cpuPG, round3)
		}
		results = append(results,
			Result{
				Scenario: pgThroughputName, Metric: t.Name + "_api_write_rps", Value: round1(median(writeRPS)), Unit: "changes/s",
				Runs: roundAll(writeRPS, round1), Errors: errCount(writeErrs),
				Info: map[string]any{"nodes": t.Nodes, "changes": cfg.Changes, "writers": cfg.Writers},
			},
			Result{
				Scenario: pgThroughputName, Metric: t.Name + "_delivered_rps", Value: round1(median(deliverRPS)), Unit: "webhooks/s",
				Target: target, Runs: roundAll(deliverRPS, round1), Errors: errCount(deliverErrs), Info: info,
			})
	}
	// Scaling: each cluster against one node, round by round.
	one, ok := delivered["pg1"]
	if !ok {
		return results
	}
	for _, t := range targets {
		if !t.Postgres || t.Nodes == 1 {
			continue
		}
		var ratios []float64
		for i, x := range delivered[t.Name] {
			if i < len(one) && one[i] > 0 {
				ratios = append(ratios, x/one[i])
			}
		}
		results = append(results, Result{
			Scenario: pgThroughputName, Metric: t.Name + "_vs_pg1_delivered", Value: round3(median(ratios)), Unit: "ratio",
			Target: targetOf(scaleTarget), Runs: roundAll(ratios, round3),
			Info: map[string]any{"nodes": t.Nodes, "of": t.Name + "_delivered_rps / pg1_delivered_rps, same round"},
		})
	}
	return results
}

// runPGLatency is the pg-latency scenario.
func runPGLatency(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Changes == 0 {
		cfg.Changes = DefaultLatencyChanges
	}
	env, targets, err := pgEnv(ctx, cfg, pgLatencyName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	cfg = env.cfg
	warm := int(cfg.Rate * cfg.Warmup.Seconds())
	rounds := map[string][]latencyRound{}
	for round := 1; round <= cfg.Runs; round++ {
		for _, t := range targets {
			r, err := env.clusterLatencyRound(ctx, round, t, warm)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, t.Name, err)
			}
			rounds[t.Name] = append(rounds[t.Name], r)
			env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "target", t.Name, "changes", len(r.latency),
				"p50_ms", round2(percentile(r.latency, 50)), "p99_ms", round2(percentile(r.latency, 99)),
				"max_ms", round2(percentile(r.latency, 100)), "api_p50_ms", round2(percentile(r.api, 50)),
				"late_sends", r.late, "write_errors", r.failed)
		}
	}
	return pgLatencyResults(ctx, cfg, warm, targets, rounds), nil
}

// clusterLatencyRound starts the target's nodes, writes warm unmeasured and
// then cfg.Changes measured changes at cfg.Rate, the i-th to node i modulo
// the nodes, and matches each measured write to its webhook by UID.
func (env *webhookEnv) clusterLatencyRound(ctx context.Context, round int, t clusterTarget, warm int) (latencyRound, error) {
	cfg := env.cfg
	c, err := env.startCluster(ctx, fmt.Sprintf("round%d-%s", round, t.Name), t)
	if err != nil {
		return latencyRound{}, err
	}
	defer env.stopCluster(c)
	env.rcv.reset(true)
	setup, err := setupSubscriptions(ctx, c.nodes[0], env.rcv, []string{"/hooks/0"}, 1)
	if err != nil {
		return latencyRound{}, err
	}
	// Keep-alive connections for every writer to every node.
	writer := newAPIClient(c.nodes[0].baseURL, latencyWriters).http
	events, bodies, err := latencyEvents(warm+cfg.Changes, round, fmt.Sprintf("latency-%d-%s", round, t.Name))
	if err != nil {
		return latencyRound{}, err
	}
	w, err := writePaced(ctx, writer, c.eventsURLs(setup.cal.ID), setup.acc.APIKey, bodies, cfg.Rate, warm)
	if err != nil {
		return latencyRound{}, err
	}
	acked := w.acked()
	if acked == 0 {
		return latencyRound{}, errWrites
	}
	if err := env.waitDelivered(ctx, c, acked); err != nil {
		return latencyRound{}, err
	}
	st, _, problem := env.rcv.stats()
	if problem != "" {
		env.log.Warn("receiver saw bad deliveries", "round", round, "target", t.Name, "first", problem)
	}
	return w.measure(env.rcv, st, events, warm)
}

// pgLatencyResults turns the rounds into result lines per target: the
// median over the rounds of each round's percentile.
func pgLatencyResults(ctx context.Context, cfg Config, warm int, targets []clusterTarget, rounds map[string][]latencyRound) []Result {
	machine := pgMachine(ctx, pgLatencyName, cfg, targets)
	machine.Info["rate"] = cfg.Rate
	machine.Info["changes"] = cfg.Changes
	machine.Info["warmup_changes"] = warm
	results := []Result{machine}
	for _, t := range targets {
		s := summarizeLatency(rounds[t.Name])
		p50Goal, p99Goal := targetOf(p50Target), targetOf(p99Target)
		if t.Postgres {
			p50Goal, p99Goal = nil, targetOf(pgP99Target)
		}
		results = append(results,
			Result{
				Scenario: pgLatencyName, Metric: t.Name + "_latency_p50_ms", Value: round2(median(s.p50)), Unit: "ms",
				Target: p50Goal, Runs: roundAll(s.p50, round2), Errors: errCount(s.errs),
				Info: map[string]any{
					"nodes": t.Nodes, "max_ms": roundAll(s.pmax, round2),
					"api_p50_ms": roundAll(s.api50, round2), "api_p99_ms": roundAll(s.api99, round2),
					"late_sends": s.late, "duplicates": s.dups, "rate": cfg.Rate,
					"measured_by": latencyMeasuredBy,
				},
			},
			Result{
				Scenario: pgLatencyName, Metric: t.Name + "_latency_p99_ms", Value: round2(median(s.p99)), Unit: "ms",
				Target: p99Goal, Runs: roundAll(s.p99, round2), Errors: errCount(s.errs),
				Info: map[string]any{"nodes": t.Nodes},
			})
	}
	return results
}
