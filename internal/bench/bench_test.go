package bench

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1000}, 10},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v; want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Errorf("median(%v) reordered its argument", in)
				break
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (Config{}).withDefaults().validate(); err != nil {
		t.Errorf("default Config: validate() = %v; want nil", err)
	}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Connections: -1}, "connections -1"},
		{Config{Runs: -2}, "runs -2"},
		{Config{Events: -3}, "events -3"},
		{Config{Duration: -time.Second}, "duration -1s"},
		{Config{LoadGen: "ab"}, `loadgen "ab"`},
	}
	for _, tt := range tests {
		err := tt.cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("validate(%+v) = %v; want an error naming %q", tt.cfg, err, tt.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	s, ok := Lookup("feed")
	if !ok || s.Run == nil || s.Summary == "" {
		t.Fatalf("Lookup(feed) = %+v, %v; want a runnable scenario", s, ok)
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) found a scenario")
	}
	seen := map[string]bool{}
	for _, s := range Scenarios() {
		if seen[s.Name] {
			t.Errorf("scenario %q registered twice", s.Name)
		}
		seen[s.Name] = true
	}
}

func TestWriteResults(t *testing.T) {
	t.Parallel()
	target, errs := 0.7, int64(0)
	var buf bytes.Buffer
	err := WriteResults(&buf, []Result{
		{Scenario: "feed", Metric: "calhook_200_rps", Value: 12345.6, Unit: "req/s", Runs: []float64{1, 2}, Errors: &errs},
		{Scenario: "feed", Metric: "ratio_200", Value: 0.8, Unit: "ratio", Target: &target},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"scenario":"feed","metric":"calhook_200_rps","value":12345.6,"unit":"req/s","runs":[1,2],"errors":0}
{"scenario":"feed","metric":"ratio_200","value":0.8,"unit":"ratio","target":0.7}
`
	if buf.String() != want {
		t.Errorf("WriteResults() wrote\n%s\nwant\n%s", buf.String(), want)
	}
	for line := range strings.Lines(buf.String()) {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %q is not JSON", line)
		}
	}
}

func TestThroughputResults(t *testing.T) {
	t.Parallel()
	names := []string{"calhook_200", "nginx_200", "calhook_304", "nginx_304"}
	rps := map[string][]float64{
		"calhook_200": {700, 800, 900},
		"nginx_200":   {1000, 1000, 1000},
		"calhook_304": {50, 40, 60},
		"nginx_304":   {100, 200, 100},
	}
	got := throughputResults(names, rps, map[string]int64{"nginx_304": 3})
	byMetric := map[string]Result{}
	for _, r := range got {
		byMetric[r.Metric] = r
	}
	tests := []struct {
		metric     string
		value      float64
		unit       string
		wantErrors int64
		hasTarget  bool
	}{
		{"calhook_200_rps", 800, "req/s", 0, false},
		{"nginx_200_rps", 1000, "req/s", 0, false},
		{"calhook_304_rps", 50, "req/s", 0, false},
		{"nginx_304_rps", 100, "req/s", 3, false},
		{"ratio_200", 0.8, "ratio", 0, true},
		{"ratio_304", 0.5, "ratio", 0, true},
	}
	if len(got) != len(tests) {
		t.Errorf("throughputResults() returned %d results; want %d", len(got), len(tests))
	}
	for _, tt := range tests {
		r, ok := byMetric[tt.metric]
		if !ok {
			t.Errorf("throughputResults() lacks %s", tt.metric)
			continue
		}
		if r.Value != tt.value || r.Unit != tt.unit || r.Scenario != "feed" {
			t.Errorf("%s = %v %s (%s); want %v %s (feed)", tt.metric, r.Value, r.Unit, r.Scenario, tt.value, tt.unit)
		}
		if len(r.Runs) != 3 {
			t.Errorf("%s runs = %v; want 3", tt.metric, r.Runs)
		}
		if tt.hasTarget != (r.Target != nil) || (r.Target != nil && *r.Target != ratioTarget) {
			t.Errorf("%s target = %v; want set: %v", tt.metric, r.Target, tt.hasTarget)
		}
		if tt.unit == "req/s" && (r.Errors == nil || *r.Errors != tt.wantErrors) {
			t.Errorf("%s errors = %v; want %d", tt.metric, r.Errors, tt.wantErrors)
		}
	}
	if r := byMetric["ratio_304"]; r.Runs[1] != 0.2 {
		t.Errorf("ratio_304 runs = %v; want per-round ratios [0.5 0.2 0.6]", r.Runs)
	}
}

// buildTestCalhook builds ./cmd/calhook of the module into the test's
// temporary directory and returns its path, for the end-to-end tests that
// run scenarios against the real server.
func buildTestCalhook(t *testing.T) string {
	t.Helper()
	modDir, err := moduleDir(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "calhook")
	if err := buildCalhook(t.Context(), modDir, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runScenario runs the registered scenario name with cfg and returns its
// results by metric. It stops the test when the scenario is missing or
// fails, and flags any result that names another scenario.
func runScenario(t *testing.T, name string, cfg Config) map[string]Result {
	t.Helper()
	sc, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%s) found nothing", name)
	}
	results, err := sc.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	got := map[string]Result{}
	for _, r := range results {
		if r.Scenario != name {
			t.Errorf("result %s has scenario %q", r.Metric, r.Scenario)
		}
		got[r.Metric] = r
	}
	return got
}

// checkMeasured flags each of metrics that is missing from got, is not a
// positive value from one run, or, unless it is a ratio of two other
// results, counts errors: what a tiny end-to-end run must still show.
func checkMeasured(t *testing.T, got map[string]Result, metrics []string) {
	t.Helper()
	for _, name := range metrics {
		r, ok := got[name]
		switch {
		case !ok:
			t.Errorf("no %s result", name)
		case r.Value <= 0 || len(r.Runs) != 1:
			t.Errorf("%s = %+v; want a positive value from 1 run", name, r)
		case r.Unit != "ratio" && (r.Errors == nil || *r.Errors != 0):
			t.Errorf("%s errors = %v (%v); want 0", name, r.Errors, r.Info)
		}
	}
}
