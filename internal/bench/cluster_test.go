package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestNodesValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1", []int{1}, false},
		{"1,3", []int{1, 3}, false},
		{" 2 , 5 ", []int{2, 5}, false},
		{"0", nil, true},
		{"1,x", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		var v nodesValue
		err := v.Set(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual([]int(v), tt.want)) {
			t.Errorf("Set(%q) = %v, %v; want %v (error: %v)", tt.in, []int(v), err, tt.want, tt.wantErr)
		}
	}
	var none nodesValue
	if got := none.String(); got != "1,3" {
		t.Errorf("String() of the default = %q; want 1,3", got)
	}
}

func TestPGFlags(t *testing.T) {
	t.Setenv(PostgresEnv, "postgres://from-env/db")
	var cfg Config
	fs := flag.NewFlagSet("pg-throughput", flag.ContinueOnError)
	pgThroughputFlags(fs, &cfg)
	if cfg.Postgres != "postgres://from-env/db" {
		t.Errorf("--postgres default = %q; want $%s", cfg.Postgres, PostgresEnv)
	}
	if cfg.WarmupChanges != DefaultWarmupChanges {
		t.Errorf("--warmup-changes default = %d; want %d", cfg.WarmupChanges, DefaultWarmupChanges)
	}
	if err := fs.Parse([]string{"--nodes", "2,4", "--skip-sqlite", "--postgres", "postgres://x/y", "--changes", "10", "--warmup-changes", "0"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Nodes, []int{2, 4}) || !cfg.SkipSQLite || cfg.Postgres != "postgres://x/y" || cfg.Changes != 10 {
		t.Errorf("parsed %+v", cfg)
	}
	if got := cfg.withDefaults().WarmupChanges; got != 0 {
		t.Errorf("--warmup-changes 0 gives a warm-up of %d changes; want none", got)
	}
	if err := fs.Parse([]string{"--warmup-changes", "-5"}); err == nil {
		t.Error("--warmup-changes -5 parsed; want an error")
	}
}

func TestClusterTargets(t *testing.T) {
	t.Parallel()
	names := func(ts []clusterTarget) string {
		var s []string
		for _, x := range ts {
			s = append(s, x.Name)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		cfg     Config
		want    string
		wantErr string
	}{
		{Config{Postgres: "postgres://h/d"}, "sqlite,pg1,pg3", ""},
		{Config{Postgres: "postgres://h/d", Nodes: []int{3, 1, 3}}, "sqlite,pg3,pg1", ""},
		{Config{Postgres: "postgres://h/d", Nodes: []int{2}, SkipSQLite: true}, "pg2", ""},
		{Config{}, "", "no PostgreSQL"},
		{Config{Postgres: "postgres://h/d", Nodes: []int{0}}, "", "nodes 0"},
	}
	for _, tt := range tests {
		got, err := tt.cfg.clusterTargets()
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("clusterTargets(%+v) = %v, %v; want an error with %q", tt.cfg, names(got), err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || names(got) != tt.want):
			t.Errorf("clusterTargets(%+v) = %v, %v; want %s", tt.cfg, names(got), err, tt.want)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	got, err := withSearchPath("postgres://u@h:5432/db?sslmode=disable", "calhookbench_x")
	if err != nil || got != "postgres://u@h:5432/db?search_path=calhookbench_x&sslmode=disable" {
		t.Errorf("withSearchPath() = %q, %v", got, err)
	}
	if _, err := createPGSchema(t.Context(), "host=h dbname=d"); err == nil || !strings.Contains(err.Error(), "postgres:// URL") {
		t.Errorf("createPGSchema(keyword/value) = %v; want an error asking for a URL", err)
	}
	if got := redactURL("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("redactURL() = %q; want the password hidden", got)
	}
}

func TestPostAllSpreads(t *testing.T) {
	t.Parallel()
	var a, b atomic.Int64
	srvA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srvA.Close()
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.Add(1)%5 == 0 {
			http.Error(w, "boom", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srvB.Close()
	bodies := make([][]byte, 200)
	for i := range bodies {
		bodies[i] = []byte(`{}`)
	}
	st := postAll(t.Context(), http.DefaultClient, []string{srvA.URL, srvB.URL}, "k", bodies, 4)
	if a.Load() == 0 || b.Load() == 0 || a.Load()+b.Load() != 200 {
		t.Errorf("node A got %d, node B %d; want both some, 200 in all", a.Load(), b.Load())
	}
	if st.OK+st.Failed != 200 || st.Failed != b.Load()/5 || !strings.Contains(st.Detail, "status 503") {
		t.Errorf("postAll() over two URLs = ok %d, failed %d (%s); want B's every fifth failed", st.OK, st.Failed, st.Detail)
	}
}

func TestCPUSince(t *testing.T) {
	t.Parallel()
	before := map[int]time.Duration{1: time.Second, 2: 2 * time.Second}
	now := map[int]time.Duration{1: 3 * time.Second, 3: time.Second} // 2 exited, 3 is new
	if got := cpuSince(before, now); got != 3*time.Second {
		t.Errorf("cpuSince() = %v; want 3s", got)
	}
}

func TestPGThroughputResults(t *testing.T) {
	t.Parallel()
	round := func(ok int64, d time.Duration) clusterThroughputRound {
		var r clusterThroughputRound
		r.writes = writeStats{OK: ok, First: time.Unix(0, 0), Last: time.Unix(0, 0).Add(d)}
		r.delivered = r.writes.Last
		r.rcv.Distinct = ok
		r.serverCPU, r.postgresCPU = d, d
		return r
	}
	targets := []clusterTarget{{Name: "sqlite", Nodes: 1}, {Name: "pg1", Nodes: 1, Postgres: true}, {Name: "pg3", Nodes: 3, Postgres: true}}
	rounds := map[string][]clusterThroughputRound{
		"sqlite": {round(1000, time.Second), round(1000, time.Second)},
		"pg1":    {round(1000, time.Second), round(1000, 2*time.Second)},
		"pg3":    {round(1000, 500*time.Millisecond), round(1000, 4*time.Second)},
	}
	got := map[string]Result{}
	for _, r := range pgThroughputResults(t.Context(), Config{Runs: 2, Changes: 1000, Writers: 4}, targets, rounds) {
		if r.Scenario != pgThroughputName {
			t.Errorf("%s: scenario %q", r.Metric, r.Scenario)
		}
		got[r.Metric] = r
	}
	for metric, want := range map[string]float64{
		"sqlite_delivered_rps": 1000, "pg1_delivered_rps": 750, "pg3_delivered_rps": 1125,
		"pg1_api_write_rps": 750, "pg3_vs_pg1_delivered": 1.25,
	} {
		if r, ok := got[metric]; !ok || r.Value != want {
			t.Errorf("%s = %+v; want %v", metric, r, want)
		}
	}
	if r := got["pg3_vs_pg1_delivered"]; !reflect.DeepEqual(r.Runs, []float64{2, 0.5}) || r.Target == nil || *r.Target != 1 {
		t.Errorf("pg3_vs_pg1_delivered = %+v; want runs [2 0.5] and target 1", r)
	}
	if r := got["pg1_delivered_rps"]; r.Target == nil || *r.Target != pgDeliverTarget || r.Info["postgres_cpu_ms_per_change"] == nil {
		t.Errorf("pg1_delivered_rps = %+v; want the PostgreSQL target and its CPU", r)
	}
	if _, ok := got["machine"]; !ok || len(got) != 1+2*3+1 {
		t.Errorf("%d results; want the machine line, two per target and one ratio", len(got))
	}
}

// testPostgres returns the URL in CALHOOK_TEST_POSTGRES: it skips when
// the variable is unset and fails when the database does not answer.
func testPostgres(t *testing.T) string {
	t.Helper()
	u := os.Getenv(PostgresEnv)
	if u == "" {
		t.Skip(PostgresEnv + " is not set; set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL scenarios")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", PostgresEnv, err)
	}
	conn.Close(ctx)
	return u
}

func TestPGSchema(t *testing.T) {
	dbURL := testPostgres(t)
	s, err := createPGSchema(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := pgQueryRow(t.Context(), s.URL, `SELECT current_schema()`, nil, &schema); err != nil || schema != s.name {
		t.Errorf("current_schema() through the schema's URL = %q, %v; want %s", schema, err, s.name)
	}
	if err := s.drop(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pgQueryRow(t.Context(), dbURL, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, []any{s.name}, &n); err != nil || n != 0 {
		t.Errorf("schema %s left behind (%d, %v)", s.name, n, err)
	}
}

// TestPGScenariosEndToEnd runs each pg-* scenario once with tiny numbers
// against the real calhook, on SQLite, one node and a two-node cluster. It
// does not run in parallel, as the other end-to-end runs.
func TestPGScenariosEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs calhook; skipped with -short")
	}
	dbURL := testPostgres(t)
	bin := buildTestCalhook(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	tests := []struct {
		scenario string
		cfg      Config
		metrics  []string
	}{
		{pgThroughputName, Config{Changes: 200, Writers: 4, WarmupChanges: 50},
			[]string{"sqlite_api_write_rps", "sqlite_delivered_rps", "pg1_api_write_rps", "pg1_delivered_rps",
				"pg2_api_write_rps", "pg2_delivered_rps", "pg2_vs_pg1_delivered"}},
		{pgLatencyName, Config{Changes: 40, Rate: 100, Warmup: -1},
			[]string{"sqlite_latency_p50_ms", "sqlite_latency_p99_ms", "pg1_latency_p50_ms", "pg1_latency_p99_ms",
				"pg2_latency_p50_ms", "pg2_latency_p99_ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Bin, cfg.Runs, cfg.Logger = bin, 1, logger
			cfg.Postgres, cfg.Nodes = dbURL, []int{1, 2}
			got := runScenario(t, tt.scenario, cfg)
			if m := got["machine"]; m.Info["postgres"] == nil {
				t.Errorf("machine = %+v; want the PostgreSQL settings", m)
			}
			if w, ok := got["machine"].Info["warmup_changes"]; tt.scenario == pgThroughputName && fmt.Sprint(w) != "50" {
				t.Errorf("machine warmup_changes = %v (%v); want 50", w, ok)
			}
			checkMeasured(t, got, tt.metrics)
			if len(got) != len(tt.metrics)+1 {
				t.Errorf("%d results; want the machine line and %v", len(got), tt.metrics)
			}
		})
	}
	// Every round dropped its schema.
	var n int
	if err := pgQueryRow(t.Context(), dbURL, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'calhookbench\_%'`, nil, &n); err != nil || n != 0 {
		t.Errorf("%d calhookbench schemas left behind (%v)", n, err)
	}
}
