// Package bench runs calhook's benchmark scenarios against the real binary
// and reports one JSON line per metric.
//
// The entry point is the calhookbench command:
//
//	go run ./cmd/calhookbench list                  # the scenarios
//	go run ./cmd/calhookbench feed                  # 5 s × 3 rounds, 32 connections
//	go run ./cmd/calhookbench feed -h               # its flags
//	go run ./cmd/calhookbench webhooks-throughput   # changes in, signed webhooks out
//	go run ./cmd/calhookbench webhooks-latency      # API write to webhook arrival
//	go run ./cmd/calhookbench webhooks-baseline     # the same webhooks from a plain Go client
//
// Each scenario that measures calhook builds ./cmd/calhook (or takes
// --bin), starts it on a free loopback port with a temporary SQLite
// database and drives it through the public API only. Metrics go to stdout as JSON lines, for example
//
//	{"scenario":"feed","metric":"calhook_200_rps","value":4012.5,"unit":"req/s","runs":[…],"errors":0}
//
// and progress goes to stderr. A throughput metric is the median of its
// rounds; targets are interleaved round by round so that noise from other
// work on the machine hits every target alike. Its "errors" field counts
// every response that was not the expected one and must be 0 for the
// number to mean anything.
//
// The webhook scenarios run calhook with --allow-http-webhooks and
// --allow-private-cidr 127.0.0.1/32 and receive its webhooks in the bench
// process itself, on 127.0.0.1, so that arrival times and send times come
// from one clock. The receiver answers 204 at once and verifies a sample of
// the signatures with the public webhook package. Each round starts a
// fresh calhook with an empty database:
//
//   - webhooks-throughput writes --changes (20,000) events through the API
//     from --writers (16) clients, each change going to one subscription:
//     api_write_rps is the rate from the first send to the last answer,
//     delivered_rps from the first send to the last webhook's arrival. Then
//     --fanout-changes (50) changes go to each of --fanout-subscriptions
//     (1,000) subscriptions: fanout_delivered_rps. The info of each line
//     gives the CPU time calhook and the bench spent per change. With
//     --batch N the one-subscription part writes through the batch route,
//     N creates a request, and api_write_rps counts events.
//   - webhooks-latency writes at --rate (200/s) for --changes (2,000),
//     after --warmup (1 s) at the same pace, and reports the p50 and p99
//     of the time from just before each POST is sent to its webhook's
//     arrival.
//   - webhooks-baseline needs no calhook: --delivery-workers (64)
//     goroutines post --changes signed webhooks shaped like calhook's to
//     the same receiver. baseline_rps is what the machine allows when no
//     database is involved.
//
// calhook runs with --delivery-workers 64, its own default ceiling of
// deliveries to one endpoint (pass --delivery-per-endpoint N to set one)
// and --log-level warn.
//
// icalhooks starts a fresh calhook each round with the iCal Hooks caps
// and the per-host rate raised (every hook is on 127.0.0.1), registers
// --hooks (10,000) hooks by GETting one feed with X-ICALHOOKS-URL from 8
// clients (register_rps), writes one event and times every hook's HEAD
// at a receiver in the bench process from just before the POST:
// pings_all_received_ms (target 2,000), pings_p50_ms and pings_p99_ms; a
// second HEAD to one hook, a wrong User-Agent or a token in
// X-ICALHOOKS-FEED count as errors. Then it re-arms one hook and loads
// the unchanged feed with that hook's header and without, as the feed
// scenario does (--duration, --connections, wrk if installed):
// header_overhead is 1 - with/without (target at most 0.10), as an armed
// hook of an unchanged feed must cost no database write per GET.
//
// RunCheck (calhookbench check, make bench-check) runs every scenario
// once at the small size of checkArgs and compares its headline figures
// (headlines) with their targets and with bench/baseline.json; in its gross
// mode it fails only on a figure GrossFactor times worse than either,
// confirmed by a second run.
//
// A new scenario is a func(ctx, Config) ([]Result, error) added to the
// scenarios registry in bench.go, with a function that registers the flags
// it reads, its headline figures and its small size in check.go.
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario is one named benchmark.
type Scenario struct {
	// Name is what the command line selects the scenario by.
	Name string
	// Summary is one line for `calhookbench list`.
	Summary string
	// Run executes the scenario and returns its metrics.
	Run func(ctx context.Context, cfg Config) ([]Result, error)
	// Flags registers the scenario's own flags, with its defaults, into
	// cfg. The flags every scenario shares (bin, runs, keep) are the
	// command's.
	Flags func(fs *flag.FlagSet, cfg *Config)
}

// scenarios is the registry; later scenarios add themselves here, in the
// order `list` prints them.
var scenarios = []Scenario{
	{
		Name:    "feed",
		Summary: "single-calendar feed throughput, 200 and 304, calhook against nginx serving the same bytes",
		Run:     runFeed,
		Flags:   feedFlags,
	},
	{
		Name:    "webhooks-throughput",
		Summary: "changes written through the API and their webhooks delivered, per second; and one change fanned out to 1,000 subscriptions",
		Run:     runWebhooksThroughput,
		Flags:   throughputFlags,
	},
	{
		Name:    "webhooks-latency",
		Summary: "time from an API write to its webhook's arrival, p50 and p99, at a steady rate of changes",
		Run:     runWebhooksLatency,
		Flags:   latencyFlags,
	},
	{
		Name:    "webhooks-baseline",
		Summary: "the machine's ceiling: a plain Go client posting the same signed webhooks, no database",
		Run:     runWebhooksBaseline,
		Flags:   baselineFlags,
	},
	{
		Name:    "pg-throughput",
		Summary: "webhooks-throughput's one-subscription part on SQLite, PostgreSQL with one node and a PostgreSQL cluster, round by round",
		Run:     runPGThroughput,
		Flags:   pgThroughputFlags,
	},
	{
		Name:    "pg-latency",
		Summary: "webhooks-latency on SQLite, PostgreSQL with one node and a PostgreSQL cluster, round by round",
		Run:     runPGLatency,
		Flags:   pgLatencyFlags,
	},
	{
		Name:    "import-cpu",
		Summary: "calhook's CPU use while polling 10,000 imported feeds every 60 s that answer 304",
		Run:     runImportCPU,
		Flags:   importCPUFlags,
	},
	{
		Name:    "import-latency",
		Summary: "time from a change of an imported feed to its webhook, with iCal Hooks push from upstream and by polling alone",
		Run:     runImportLatency,
		Flags:   importLatencyFlags,
	},
	{
		Name:    availabilityName,
		Summary: "units: conflict detection per change, availability queries (one unit over a year, 500 units over a month), upstream push to availability.conflict.detected",
		Run:     runAvailability,
		Flags:   availabilityFlags,
	},
	{
		Name:    fairnessName,
		Summary: "a well-behaved tenant's write p99, feed p99 and first poll, alone and while a hostile tenant imports a big changing feed, stalls feeds, repeats syncs and fans out",
		Run:     runFairness,
		Flags:   fairnessFlags,
	},
	{
		Name:    holdsName,
		Summary: "holds on a unit with 3 imported sources answering 304: hold latency at 50 holds/s, and 100 overlapping holds at once (exactly one wins)",
		Run:     runHolds,
		Flags:   holdsFlags,
	},
	{
		Name:    scaleName,
		Summary: "the same figures on an empty database and one loaded with a realistic history (-size check, medium, full), on SQLite and PostgreSQL",
		Run:     runScale,
		Flags:   scaleFlags,
	},
	{
		Name:    "icalhooks",
		Summary: "one change to a feed with 10,000 iCal hooks: time until every HEAD arrived; and the feed's GET rate with the X-ICALHOOKS-URL header against without",
		Run:     runIcalhooks,
		Flags:   icalhooksFlags,
	},
}

// Scenarios returns every registered scenario in list order.
func Scenarios() []Scenario {
	return slices.Clone(scenarios)
}

// Lookup returns the scenario with the given name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Load generator choices for Config.LoadGen.
const (
	LoadGenAuto = "auto"
	LoadGenWrk  = "wrk"
	LoadGenGo   = "go"
)

// Config holds the settings shared by every scenario. The zero value of a
// field means its default.
type Config struct {
	// Bin is a prebuilt calhook binary; when empty the scenario builds
	// ./cmd/calhook from ModuleDir.
	Bin string
	// ModuleDir is the calhook module root used for building; when empty
	// it is found with `go env GOMOD` from the working directory.
	ModuleDir string
	// Duration is how long each measured load run lasts.
	Duration time.Duration
	// Warmup is the unmeasured load before each run; negative disables it.
	Warmup time.Duration
	// Connections is the number of concurrent keep-alive connections.
	Connections int
	// Runs is the number of interleaved rounds over all targets.
	Runs int
	// Events is the number of events the feed scenario creates.
	Events int
	// LoadGen is LoadGenAuto, LoadGenWrk or LoadGenGo.
	LoadGen string
	// Keep leaves the temporary directory in place for inspection.
	Keep bool
	// Nginx is the nginx binary; when empty it is looked up in PATH and
	// then at /usr/sbin/nginx.
	Nginx string
	// Logger receives human-readable progress; nil discards it.
	Logger *slog.Logger

	// Changes is how many event changes a webhook scenario writes per
	// run (webhooks-throughput, webhooks-latency), or how many webhooks
	// webhooks-baseline posts. Its default depends on the scenario.
	Changes int
	// Writers is the number of concurrent API clients writing changes.
	Writers int
	// WarmupChanges is how many changes pg-throughput writes and waits to
	// see delivered, unmeasured, before each round's measured ones;
	// negative disables the warm-up.
	WarmupChanges int
	// FanoutSubscriptions and FanoutChanges shape the fan-out part of
	// webhooks-throughput: that many subscriptions, each receiving that
	// many changes. FanoutSubscriptions < 0 skips the part.
	FanoutSubscriptions int
	FanoutChanges       int
	// Batch, when above 1, makes webhooks-throughput's one-subscription
	// part write its changes through the batch route, that many events a
	// request; api_write_rps then counts events, not requests.
	Batch int
	// Rate is the pace of webhooks-latency, in changes per second.
	Rate float64
	// DeliveryWorkers and DeliveryPerEndpoint are calhook's
	// --delivery-workers and --delivery-per-endpoint; DeliveryWorkers is
	// also webhooks-baseline's concurrency.
	DeliveryWorkers     int
	DeliveryPerEndpoint int

	// Feeds is how many imported feeds import-cpu polls, and
	// PollInterval their pollIntervalSeconds (import-cpu,
	// import-latency); both scenarios default them themselves.
	Feeds        int
	PollInterval time.Duration

	// Calendars and Units shape availability: the calendars of its big
	// unit (of Events events each), and the units of its many-unit query.
	Calendars int
	Units     int

	// Postgres is the postgres:// URL of the database in which the pg-*
	// scenarios make a fresh schema per round and target. Nodes are the
	// cluster sizes they measure on it (default 1 and 3), and SkipSQLite
	// leaves out their SQLite reference target.
	Postgres   string
	Nodes      []int
	SkipSQLite bool

	// ScaleSize is the scale scenario's dataset: check, medium, full or
	// a fraction of full; Samples its requests per latency figure;
	// HistoryCalendars, when positive, the calendars of its history feed
	// instead of the size's.
	ScaleSize        string
	Samples          int
	HistoryCalendars int
}

// Defaults for Config.
const (
	DefaultDuration    = 5 * time.Second
	DefaultWarmup      = time.Second
	DefaultConnections = 32
	DefaultRuns        = 3
	DefaultEvents      = 1000

	DefaultChanges             = 20000
	DefaultLatencyChanges      = 2000
	DefaultWriters             = 16
	DefaultWarmupChanges       = 2000
	DefaultFanoutSubscriptions = 1000
	DefaultFanoutChanges       = 50
	DefaultRate                = 200
	DefaultDeliveryWorkers     = 64
	// DefaultDeliveryPerEndpoint, 0, runs calhook on its own default
	// ceiling of deliveries to one endpoint, below which it adapts.
	DefaultDeliveryPerEndpoint = 0
)

// perEndpointArgs returns calhook's --delivery-per-endpoint flag for n, or
// none for 0 (calhook's default).
func perEndpointArgs(n int) []string {
	if n == 0 {
		return nil
	}
	return []string{"--delivery-per-endpoint", strconv.Itoa(n)}
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Runs == 0 {
		c.Runs = DefaultRuns
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.LoadGen == "" {
		c.LoadGen = LoadGenAuto
	}
	if c.Changes == 0 {
		c.Changes = DefaultChanges
	}
	if c.Writers == 0 {
		c.Writers = DefaultWriters
	}
	if c.WarmupChanges == 0 {
		c.WarmupChanges = DefaultWarmupChanges
	}
	if c.WarmupChanges < 0 {
		c.WarmupChanges = 0
	}
	if c.FanoutSubscriptions == 0 {
		c.FanoutSubscriptions = DefaultFanoutSubscriptions
	}
	if c.FanoutChanges == 0 {
		c.FanoutChanges = DefaultFanoutChanges
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.DeliveryWorkers == 0 {
		c.DeliveryWorkers = DefaultDeliveryWorkers
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports the first setting that cannot work, naming it.
func (c Config) validate() error {
	switch {
	case c.Duration < 0:
		return fmt.Errorf("duration %v: must be positive", c.Duration)
	case c.Connections < 1:
		return fmt.Errorf("connections %d: must be at least 1", c.Connections)
	case c.Runs < 1:
		return fmt.Errorf("runs %d: must be at least 1", c.Runs)
	case c.Events < 1:
		return fmt.Errorf("events %d: must be at least 1", c.Events)
	case c.Changes < 1:
		return fmt.Errorf("changes %d: must be at least 1", c.Changes)
	case c.Writers < 1:
		return fmt.Errorf("writers %d: must be at least 1", c.Writers)
	case c.FanoutChanges < 1:
		return fmt.Errorf("fanout-changes %d: must be at least 1", c.FanoutChanges)
	case c.Rate <= 0:
		return fmt.Errorf("rate %v: must be positive", c.Rate)
	case c.DeliveryWorkers < 1:
		return fmt.Errorf("delivery-workers %d: must be at least 1", c.DeliveryWorkers)
	case c.DeliveryPerEndpoint < 0:
		return fmt.Errorf("delivery-per-endpoint %d: must be at least 1, or 0 for calhook's default", c.DeliveryPerEndpoint)
	}
	switch c.LoadGen {
	case LoadGenAuto, LoadGenWrk, LoadGenGo:
	default:
		return fmt.Errorf("loadgen %q: must be auto, wrk or go", c.LoadGen)
	}
	return nil
}

// Result is one metric, printed as one JSON line.
type Result struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Target is the value the project aims for, where it has one.
	Target *float64 `json:"target,omitempty"`
	// Runs holds the value of each round; Value is their median.
	Runs []float64 `json:"runs,omitempty"`
	// Errors counts responses with an unexpected status, short bodies and
	// transport errors over all rounds; it is present on every
	// throughput metric so that zero is visible too.
	Errors *int64 `json:"errors,omitempty"`
	// Info carries descriptive fields, such as the machine's.
	Info map[string]any `json:"info,omitempty"`
}

// WriteResults prints results as JSON lines.
func WriteResults(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write result %s: %w", r.Metric, err)
		}
	}
	return nil
}

// ScenarioNames returns the registered names joined for messages.
func ScenarioNames() string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// median returns the middle of xs, or the mean of the two middle values
// when len(xs) is even; it is 0 for no values.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
