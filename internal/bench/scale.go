package bench

// The scale scenario: the same figures on an empty database and on one
// loaded with a realistic history, on SQLite and on PostgreSQL.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const scaleName = "scale"

// scaleFull is the full-size dataset of issue 23. Updates are the change
// rows beyond each event's "created" one; Messages are the delivery log's
// (each with its attempt); Imports are the imported calendars the import
// figures poll; History is the calendars of the account whose
// all-calendars feed is measured (historyEvents each, written through the
// API in both rounds).
var scaleFull = scaleSize{Accounts: 2000, Calendars: 50000, Events: 2000000, Updates: 8000000,
	Subscriptions: 20000, Messages: 5000000, Hooks: 200000, Imports: 30000, History: historyCalendars}

// scaleSize shapes the loaded dataset.
type scaleSize struct {
	Accounts, Calendars, Events, Updates, Subscriptions, Messages, Hooks, Imports, History int
}

// scaleSizes are the named sizes of -size; a number in (0, 1] is a
// fraction of full.
var scaleSizes = map[string]float64{"check": 0.0005, "medium": 0.1, "full": 1}

// parseScaleSize reads -size: a name or a fraction of the full size.
func parseScaleSize(s string) (scaleSize, error) {
	f, ok := scaleSizes[s]
	if !ok {
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil || f <= 0 || f > 1 {
			return scaleSize{}, fmt.Errorf("size %q: want check, medium, full or a fraction in (0, 1]", s)
		}
	}
	scale := func(n int) int { return max(1, int(float64(n)*f)) }
	return scaleSize{Accounts: scale(scaleFull.Accounts), Calendars: scale(scaleFull.Calendars),
		Events: scale(scaleFull.Events), Updates: scale(scaleFull.Updates), Subscriptions: scale(scaleFull.Subscriptions),
		Messages: scale(scaleFull.Messages), Hooks: scale(scaleFull.Hooks), Imports: scale(scaleFull.Imports),
		History: scale(scaleFull.History)}, nil
}

// scaleFlags registers the flags of the scale scenario.
func scaleFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.ScaleSize, "size", "check", "dataset size: check, medium (1/10), full, or a fraction of full")
	fs.StringVar(&cfg.Postgres, "postgres", os.Getenv(PostgresEnv), "postgres:// URL to measure PostgreSQL too (env "+PostgresEnv+")")
	fs.BoolVar(&cfg.SkipSQLite, "skip-sqlite", false, "measure PostgreSQL only (with -postgres)")
	fs.IntVar(&cfg.Samples, "samples", 200, "requests per latency figure")
	fs.IntVar(&cfg.Events, "events", 2000, "events of the measured feed's calendar")
	fs.IntVar(&cfg.Changes, "webhooks", 5000, "changes written to one subscription for the delivered-webhooks figure")
	fs.IntVar(&cfg.FanoutSubscriptions, "hooks", scaleFeedHooks, "iCal Hooks registered on the feed of the fan-out figure")
	fs.IntVar(&cfg.HistoryCalendars, "history", 0, fmt.Sprintf("calendars of %d events in the history feed's account (0: by -size, %d at full)",
		historyEvents, historyCalendars))
}

// dataTarget is one database the scenario measures, empty and loaded.
type dataTarget struct {
	name string // "sqlite" or "pg"
	// open makes a fresh database and returns what calhook's --db takes
	// and a function that drops it.
	open func(ctx context.Context, dir string) (db string, drop func() error, err error)
	// size returns the database's bytes on disk.
	size func(ctx context.Context, db string) (int64, error)
	// settle does after a load what a deployment's database does by
	// itself after bulk writes (nil: nothing).
	settle func(ctx context.Context, db string) error
}

func runScale(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	size, err := parseScaleSize(cfg.ScaleSize)
	if err != nil {
		return nil, err
	}
	if cfg.HistoryCalendars > 0 {
		size.History = cfg.HistoryCalendars
	}
	if cfg.Samples < 1 {
		return nil, fmt.Errorf("samples %d: must be at least 1", cfg.Samples)
	}
	if cfg.SkipSQLite && cfg.Postgres == "" {
		return nil, errors.New("-skip-sqlite needs -postgres")
	}
	dir, bin, cleanup, err := scaleBinary(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var targets []dataTarget
	if !cfg.SkipSQLite {
		targets = append(targets, sqliteTarget())
	}
	if cfg.Postgres != "" {
		targets = append(targets, pgTarget(cfg.Postgres))
	}
	// A round's figures are returned with a later round's error: at full
	// size a round takes up to an hour.
	var results []Result
	for _, tg := range targets {
		for _, loaded := range []bool{false, true} {
			label := tg.name + "_empty"
			if loaded {
				label = tg.name + "_loaded"
			}
			cfg.Logger.Info("scale: measuring", "target", label, "size", fmt.Sprintf("%+v", size))
			rs, err := scaleRound(ctx, cfg, tg, bin, filepath.Join(dir, label), label, size, loaded)
			if err != nil {
				return results, fmt.Errorf("%s: %w", label, err)
			}
			results = append(results, rs...)
		}
	}
	return append(results, hostResult(scaleName)), nil
}

// scaleBinary returns the scenario's directory and the calhook binary.
func scaleBinary(ctx context.Context, cfg Config) (dir, bin string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "calhookbench-scale-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() {
		if !cfg.Keep {
			os.RemoveAll(dir)
		}
	}
	bin = cfg.Bin
	if bin == "" {
		mod := cfg.ModuleDir
		if mod == "" {
			if mod, err = moduleDir(ctx); err != nil {
				cleanup()
				return "", "", nil, err
			}
		}
		bin = filepath.Join(dir, "calhook")
		if err := buildCalhook(ctx, mod, bin); err != nil {
			cleanup()
			return "", "", nil, err
		}
	}
	return dir, bin, cleanup, nil
}

func sqliteTarget() dataTarget {
	return dataTarget{
		name: "sqlite",
		open: func(_ context.Context, dir string) (string, func() error, error) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", nil, err
			}
			return filepath.Join(dir, "calhook.db"), func() error { return nil }, nil
		},
		size: func(_ context.Context, db string) (int64, error) {
			var n int64
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if fi, err := os.Stat(db + suffix); err == nil {
					n += fi.Size()
				}
			}
			return n, nil
		},
	}
}

func pgTarget(url string) dataTarget {
	schemas := map[string]string{}
	return dataTarget{
		name: "pg",
		open: func(ctx context.Context, dir string) (string, func() error, error) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", nil, err
			}
			s, err := createPGSchema(ctx, url)
			if err != nil {
				return "", nil, err
			}
			schemas[s.URL] = s.name
			return s.URL, s.drop, nil
		},
		size: func(ctx context.Context, db string) (int64, error) {
			var n int64
			err := pgQueryRow(ctx, url, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
				JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1 AND c.relkind = 'r'`,
				[]any{schemas[db]}, &n)
			return n, err
		},
		// Autovacuum analyzes tables that grew; the test server may run
		// without it (this machine's does), and a planner without
		// statistics judges the loaded tables empty.
		settle: func(ctx context.Context, db string) error {
			return pgExec(ctx, db, `DO $$ DECLARE t record; BEGIN
				FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
					EXECUTE format('ANALYZE %I', t.tablename);
				END LOOP; END $$`)
		},
	}
}

// scaleRound makes a database, loads it unless empty, starts calhook on
// it and measures: the API and feed latencies, delivered webhooks, the
// iCal Hooks fan-out of one feed and imports through calhook, then RSS;
// then, calhook stopped, the database's size and a prune of it.
func scaleRound(ctx context.Context, cfg Config, tg dataTarget, bin, dir, label string, size scaleSize, loaded bool) ([]Result, error) {
	db, drop, err := tg.open(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := drop(); err != nil {
			cfg.Logger.Warn("scale: drop database", "error", err)
		}
	}()
	info := map[string]any{"size": cfg.ScaleSize}
	if loaded {
		start := time.Now()
		st, phases, err := loadScale(ctx, db, size)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if tg.settle != nil {
			if err := tg.settle(ctx, db); err != nil {
				return nil, fmt.Errorf("settle after load: %w", err)
			}
		}
		d := time.Since(start)
		info["loaded"] = st
		info["load_phase_seconds"] = phases
		info["load_seconds"] = round2(d.Seconds())
		cfg.Logger.Info("scale: loaded", "target", label, "in", d.Round(time.Millisecond), "rows", st)
	}
	rcv, err := newHookReceiver(50)
	if err != nil {
		return nil, err
	}
	defer rcv.Close()
	pings, err := newPingReceiver()
	if err != nil {
		return nil, err
	}
	defer pings.Close()
	up, err := newMixUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()
	interval := scaleImportInterval(size.Imports)

	start := time.Now()
	srv, err := startNode(ctx, bin, dir, db, randomHex(32), scaleServeArgs(cfg.FanoutSubscriptions, interval)...)
	if err != nil {
		return nil, err
	}
	startup := time.Since(start)
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		return srv.Stop()
	}
	defer func() {
		if err := stop(); err != nil {
			cfg.Logger.Warn("scale: stop calhook", "error", err)
		}
	}()
	m, err := measureScale(ctx, cfg, srv)
	if err != nil {
		return nil, err
	}
	dl, err := measureDeliveries(ctx, cfg, srv, rcv, scaleDeliveryRuns)
	if err != nil {
		return nil, fmt.Errorf("delivered webhooks: %w", err)
	}
	fanout, err := measureHookFanout(ctx, srv, pings, cfg.FanoutSubscriptions)
	if err != nil {
		return nil, fmt.Errorf("icalhooks fan-out: %w", err)
	}
	imp, err := measureImports(ctx, srv, up, size.Imports, interval)
	if err != nil {
		return nil, fmt.Errorf("imports: %w", err)
	}
	rss, err := procRSS(srv.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	// Last, as it leaves its account's events in the database and may
	// leave calhook bigger.
	hist, err := measureHistoryFeed(ctx, srv, size.History)
	if err != nil {
		return nil, fmt.Errorf("history feed: %w", err)
	}
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stop calhook: %w", err)
	}
	dbBytes, err := tg.size(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("database size: %w", err)
	}
	// The empty round prunes what its measurements wrote; the loaded one
	// the history older than scalePruneAge (most of it).
	cut := time.Now()
	if loaded {
		cut = cut.Add(-scalePruneAge)
	}
	pr, err := measurePrune(ctx, db, cut)
	if err != nil {
		return nil, err
	}
	r := func(metric, unit string, v float64, extra map[string]any) Result {
		in := info
		if extra != nil {
			in = maps.Clone(info)
			maps.Copy(in, extra)
		}
		return Result{Scenario: scaleName, Metric: label + "_" + metric, Value: round2(v), Unit: unit, Info: in}
	}
	pruneInfo := map[string]any{"cut_age_h": round1(time.Since(cut).Hours()), "attempts": pr.st.Attempts,
		"messages": pr.st.Messages, "changes": pr.st.Changes, "seconds": round3(pr.elapsed.Seconds())}
	histInfo := map[string]any{"calendars": size.History, "events": hist.events, "gets": historyGets,
		"rss_before_mb": round1(hist.rssBeforeMB)}
	results := []Result{
		r("startup_ms", "ms", ms(startup), nil),
		r("api_write_p50_ms", "ms", m.writeP50, nil), r("api_write_p99_ms", "ms", m.writeP99, nil),
		r("event_list_p99_ms", "ms", m.listP99, nil), r("changes_p99_ms", "ms", m.changesP99, nil),
		r("feed_cold_p50_ms", "ms", m.coldP50, nil), r("feed_warm_p50_ms", "ms", m.warmP50, nil),
		r("delivered_rps", "webhooks/s", dl.deliveredRPS, map[string]any{"changes": cfg.Changes, "writers": cfg.Writers,
			"api_write_rps": round1(dl.writeRPS), "duplicates": dl.duplicates, "runs": dl.runs}),
		r("hooks_fanout_ms", "ms", fanout, map[string]any{"hooks": cfg.FanoutSubscriptions}),
		r("import_cpu_ms_per_poll", "ms", imp.cpuMSPerPoll, imp.info),
		r("import_polls_per_s", "polls/s", imp.pollsPerSecond, imp.info),
		r("prune_rows_per_s", "rows/s", pr.rowsPerSecond(), pruneInfo),
		r("prune_keepup_x", "x", pr.keepUp(), map[string]any{"changes_per_s": scaleKeepUpRate}),
		r("rss_mb", "MB", float64(rss)/1e6, nil), r("db_mb", "MB", float64(dbBytes)/1e6, nil),
		r("history_feed_p50_ms", "ms", hist.getP50, histInfo), r("history_feed_mb", "MB", hist.feedMB, histInfo),
		r("history_feed_rss_peak_mb", "MB", hist.rssPeakMB, histInfo),
	}
	for _, res := range results {
		if !(res.Value > 0) {
			return nil, fmt.Errorf("figure %s was not produced (%v)", res.Metric, res.Value)
		}
	}
	return results, nil
}

// scaleFigures are one target's latencies.
type scaleFigures struct {
	writeP50, writeP99, listP99, changesP99, coldP50, warmP50 float64
}

// measureScale drives calhook through its API: an account with a calendar
// of cfg.Events events (the feed), writes to a second calendar, lists and
// change cursors.
func measureScale(ctx context.Context, cfg Config, srv *calhookServer) (scaleFigures, error) {
	var f scaleFigures
	api := newAPIClient(srv.baseURL, 16)
	acc, cal, err := api.createAccountCalendar(ctx, srv.adminToken, "scale-feed")
	if err != nil {
		return f, err
	}
	events, err := genEvents(cfg.Events, 23, time.Now().UTC().Truncate(24*time.Hour), cal.TimeZone)
	if err != nil {
		return f, err
	}
	if err := api.createEvents(ctx, acc.APIKey, cal.ID, events, 8); err != nil {
		return f, err
	}
	writes, err := api.createCalendar(ctx, acc.APIKey, "scale-writes", "UTC")
	if err != nil {
		return f, err
	}
	n := cfg.Samples
	timed := func(fn func(i int) error) ([]float64, error) {
		out := make([]float64, 0, n)
		for i := range n {
			t0 := time.Now()
			if err := fn(i); err != nil {
				return nil, err
			}
			out = append(out, ms(time.Since(t0)))
		}
		slices.Sort(out)
		return out, nil
	}
	// API writes, from 8 writers at once.
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ev := eventInput{Summary: fmt.Sprint("write ", i), Start: "2027-01-02T10:00:00Z", End: "2027-01-02T11:00:00Z"}
				t0 := time.Now()
				if err := api.do(ctx, http.MethodPost, "/v1/calendars/"+writes.ID+"/events", acc.APIKey, ev, nil, http.StatusCreated); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				lat = append(lat, ms(time.Since(t0)))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return f, err
	}
	slices.Sort(lat)
	f.writeP50, f.writeP99 = percentile(lat, 50), percentile(lat, 99)

	list, err := timed(func(int) error {
		return api.do(ctx, http.MethodGet, "/v1/calendars/"+cal.ID+"/events?limit=100", acc.APIKey, nil, nil, http.StatusOK)
	})
	if err != nil {
		return f, err
	}
	f.listP99 = percentile(list, 99)
	var first struct {
		NextCursor string `json:"nextCursor"`
	}
	if err := api.do(ctx, http.MethodGet, "/v1/calendars/"+writes.ID+"/changes?limit=10", acc.APIKey, nil, &first, http.StatusOK); err != nil {
		return f, err
	}
	changes, err := timed(func(int) error {
		return api.do(ctx, http.MethodGet, "/v1/calendars/"+writes.ID+"/changes?limit=100&since="+first.NextCursor, acc.APIKey, nil, nil, http.StatusOK)
	})
	if err != nil {
		return f, err
	}
	f.changesP99 = percentile(changes, 99)

	feedURL := "/feeds/" + acc.ID + "/" + cal.ID + ".ics?token=" + acc.FeedToken
	getFeed := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.baseURL+feedURL, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := api.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := readAllDiscard(resp)
		if err == nil && (resp.StatusCode != http.StatusOK || b < int64(cfg.Events)*100) {
			err = fmt.Errorf("feed: status %d with %d bytes", resp.StatusCode, b)
		}
		return err
	}
	// Cold: a write to the calendar drops its render; only the GET is timed.
	cold := make([]float64, 0, n/4+1)
	for i := range n/4 + 1 {
		ev := eventInput{Summary: fmt.Sprint("cold ", i), Start: "2027-02-02T10:00:00Z", End: "2027-02-02T11:00:00Z"}
		if err := api.do(ctx, http.MethodPost, "/v1/calendars/"+cal.ID+"/events", acc.APIKey, ev, nil, http.StatusCreated); err != nil {
			return f, err
		}
		t0 := time.Now()
		if err := getFeed(); err != nil {
			return f, err
		}
		cold = append(cold, ms(time.Since(t0)))
	}
	slices.Sort(cold)
	f.coldP50 = percentile(cold, 50)
	warm, err := timed(func(int) error { return getFeed() })
	if err != nil {
		return f, err
	}
	f.warmP50 = percentile(warm, 50)
	return f, nil
}

// readAllDiscard reads a response body to its end, returning its length.
func readAllDiscard(resp *http.Response) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// procRSS returns a process's resident set in bytes (Linux).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss: no VmRSS line")
}
