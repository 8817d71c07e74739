// Package bench runs calhook's benchmark scenarios against the real binary
// and reports one JSON line per metric.
//
// The entry point is the calhookbench command:
//
//	go run ./cmd/calhookbench list            # the scenarios
//	go run ./cmd/calhookbench feed            # 5 s × 3 rounds, 32 connections
//	go run ./cmd/calhookbench feed -h         # its flags
//
// Each scenario builds ./cmd/calhook (or takes --bin), starts it on a free
// loopback port with a temporary SQLite database and drives it through the
// public API only. Metrics go to stdout as JSON lines, for example
//
//	{"scenario":"feed","metric":"calhook_200_rps","value":4012.5,"unit":"req/s","runs":[…],"errors":0}
//
// and progress goes to stderr. A throughput metric is the median of its
// rounds; targets are interleaved round by round so that noise from other
// work on the machine hits every target alike. Its "errors" field counts
// every response that was not the expected one and must be 0 for the
// number to mean anything.
//
// A new scenario is a func(ctx, Config) ([]Result, error) added to the
// scenarios registry in bench.go.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
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
}

// scenarios is the registry; later scenarios add themselves here, in the
// order `list` prints them.
var scenarios = []Scenario{
	{
		Name:    "feed",
		Summary: "single-calendar feed throughput, 200 and 304, calhook against nginx serving the same bytes",
		Run:     runFeed,
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
}

// Defaults for Config.
const (
	DefaultDuration    = 5 * time.Second
	DefaultWarmup      = time.Second
	DefaultConnections = 32
	DefaultRuns        = 3
	DefaultEvents      = 1000
)

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
