package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

func TestGrossLimit(t *testing.T) {
	t.Parallel()
	lower := Headline{Better: Lower, Floor: 10}
	higher := Headline{Better: Higher}
	tests := []struct {
		name             string
		h                Headline
		target, baseline *float64
		want             float64
	}{
		{"lower, target only", lower, ptr(100), nil, 300},
		{"lower, baseline far better than the target", lower, ptr(100), ptr(15), 300},
		{"lower, baseline worse than the target", lower, ptr(10), ptr(50), 150},
		{"lower, floor for a figure near zero", lower, nil, ptr(2), 12},
		{"lower, a baseline below zero counts as zero", lower, nil, ptr(-0.2), 10},
		{"higher, target only", higher, ptr(2000), nil, 2000.0 / 3},
		{"higher, a target the machine does not reach", higher, ptr(2000), ptr(1200), 400},
		{"higher, baseline better than the target", higher, ptr(600), ptr(3000), 200},
		{"higher, baseline only", higher, nil, ptr(90), 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grossLimit(tt.h, tt.target, tt.baseline); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("grossLimit = %v; want %v", got, tt.want)
			}
		})
	}
	if got := grossLimit(higher, nil, nil); !math.IsNaN(got) {
		t.Errorf("grossLimit with neither = %v; want NaN (no limit)", got)
	}
}

// TestCheckCatchesAFall plays the icalhooks fall that went unnoticed: a
// 17× slower figure fails even though the scenario ran without errors,
// noise within the factor passes, and a one-off spike that the second
// run does not repeat passes too.
func TestCheckCatchesAFall(t *testing.T) {
	t.Parallel()
	base := BaselineFile{Figures: map[string]float64{"icalhooks/pings_all_received_ms": 900, "icalhooks/register_rps": 700}}
	zero := int64(0)
	results := func(ms float64) []Result {
		return []Result{
			{Scenario: icalhooksName, Metric: "register_rps", Value: 690, Unit: "req/s", Errors: &zero},
			{Scenario: icalhooksName, Metric: "pings_all_received_ms", Value: ms, Unit: "ms", Target: ptr(2000), Errors: &zero},
			{Scenario: icalhooksName, Metric: "header_overhead", Value: 0.03, Unit: "ratio", Target: ptr(0.1)},
		}
	}
	tests := []struct {
		name  string
		runs  []float64 // pings_all_received_ms of each run the check makes
		want  string
		calls int
	}{
		{"the same figure", []float64{880}, StatusOK, 1},
		{"noise within the factor", []float64{2400}, StatusBelowTarget, 1},
		{"a 17x fall", []float64{15300, 15100}, StatusGross, 2},
		{"a spike the second run does not repeat", []float64{15300, 950}, StatusOK, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			run := func(_ context.Context, sc Scenario, args []string) ([]Result, error) {
				if sc.Name != icalhooksName {
					t.Errorf("ran %s; want only %s", sc.Name, icalhooksName)
				}
				if strings.Join(args, " ") != strings.Join(checkArgs[icalhooksName], " ") {
					t.Errorf("args %q; want the small size %q", args, checkArgs[icalhooksName])
				}
				calls++
				return results(tt.runs[calls-1]), nil
			}
			cfg := CheckConfig{Scenarios: []string{icalhooksName}, Fail: FailGross}
			report, err := check(context.Background(), cfg, base, run)
			if err != nil {
				t.Fatal(err)
			}
			if calls != tt.calls {
				t.Errorf("the scenario ran %d times; want %d", calls, tt.calls)
			}
			var got string
			for _, r := range report.Rows {
				if r.Metric == "pings_all_received_ms" {
					got = r.Status
				}
			}
			if got != tt.want {
				t.Errorf("status = %q; want %q", got, tt.want)
			}
			failed := len(report.Failed(FailGross)) > 0
			if failed != (tt.want == StatusGross) {
				t.Errorf("Failed(gross) = %v; want %v", failed, tt.want == StatusGross)
			}
		})
	}
}

func TestCheckFailsOnErrorsAndMissingFigures(t *testing.T) {
	t.Parallel()
	two := int64(2)
	tests := []struct {
		name    string
		results []Result
		err     error
		want    string
	}{
		{"a scenario that fails", nil, errors.New("nginx: not installed"), StatusMissing},
		{"a metric that is gone", []Result{{Metric: "other"}}, nil, StatusMissing},
		{"a figure with errors", []Result{{Metric: "latency_p99_ms", Value: 3, Target: ptr(50), Errors: &two}}, nil, StatusErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(context.Context, Scenario, []string) ([]Result, error) { return tt.results, tt.err }
			report, err := check(context.Background(), CheckConfig{Scenarios: []string{latencyName}}, BaselineFile{}, run)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range report.Rows {
				if r.Metric == "latency_p99_ms" && r.Status != tt.want {
					t.Errorf("status = %q; want %q", r.Status, tt.want)
				}
			}
			if len(report.Failed(FailGross)) == 0 {
				t.Error("Failed(gross) is empty; want the row")
			}
			if len(report.Failed(FailNever)) != 0 {
				t.Error("Failed(never) is not empty")
			}
		})
	}
}

func TestCheckSkipsPostgresWithoutURL(t *testing.T) {
	t.Parallel()
	run := func(_ context.Context, sc Scenario, _ []string) ([]Result, error) {
		t.Errorf("ran %s without PostgreSQL", sc.Name)
		return nil, nil
	}
	report, err := check(context.Background(), CheckConfig{Scenarios: []string{pgThroughputName}}, BaselineFile{}, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Rows) == 0 {
		t.Fatal("no rows; want the skipped headlines")
	}
	for _, r := range report.Rows {
		if r.Status != StatusSkipped {
			t.Errorf("%s: status %q; want %q", r.Key(), r.Status, StatusSkipped)
		}
	}
	if len(report.Failed(FailGross)) != 0 {
		t.Error("skipped figures fail the check")
	}
}

// TestCheckArgsParse checks that every scenario with headlines has a
// small size its own flags accept, and that every headline names a
// registered scenario.
func TestCheckArgsParse(t *testing.T) {
	t.Parallel()
	for _, h := range Headlines() {
		if _, ok := Lookup(h.Scenario); !ok {
			t.Errorf("headline %s names no scenario", h.Key())
		}
	}
	for _, sc := range Scenarios() {
		if len(scenarioHeadlines(sc.Name)) == 0 {
			t.Errorf("scenario %s has no headline figure", sc.Name)
			continue
		}
		args, ok := checkArgs[sc.Name]
		if !ok {
			t.Errorf("scenario %s has no check size", sc.Name)
			continue
		}
		var c Config
		fs := newFlagSet(sc.Name)
		sc.Flags(fs, &c)
		if err := fs.Parse(args); err != nil {
			t.Errorf("%s: %q: %v", sc.Name, args, err)
		}
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "baseline.json")
	if b, err := ReadBaseline(path); err != nil || len(b.Figures) != 0 {
		t.Fatalf("ReadBaseline(missing) = %v, %v; want empty, nil", b, err)
	}
	if err := os.WriteFile(path, []byte(`{"figures":{"icalhooks/pings_all_received_ms":900}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBaseline(path)
	if err != nil || b.Figures["icalhooks/pings_all_received_ms"] != 900 {
		t.Errorf("ReadBaseline = %v, %v; want the figure", b, err)
	}
	if err := os.WriteFile(path, []byte(`{"figures":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBaseline(path); err == nil {
		t.Error("ReadBaseline(truncated) = nil error; want one")
	}
}

// TestCommittedBaseline checks that the committed baseline has a figure
// for every headline, so that no figure is compared with its target only.
func TestCommittedBaseline(t *testing.T) {
	t.Parallel()
	b, err := ReadBaseline(filepath.Join("..", "..", "bench", "baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range Headlines() {
		if _, ok := b.Figures[h.Key()]; !ok {
			t.Errorf("bench/baseline.json has no %s", h.Key())
		}
	}
}
