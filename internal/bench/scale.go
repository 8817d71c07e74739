package bench

// The scale scenario: the same figures on an empty database and on one
// loaded with a realistic history, on SQLite and on PostgreSQL.

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
)

const scaleName = "scale"

// scaleFull is the full-size dataset of issue 23. Updates are the change
// rows beyond each event's "created" one.
var scaleFull = scaleSize{Accounts: 2000, Calendars: 50000, Events: 2000000, Updates: 8000000}

// scaleSize shapes the loaded dataset.
type scaleSize struct {
	Accounts, Calendars, Events, Updates int
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
		Events: scale(scaleFull.Events), Updates: scale(scaleFull.Updates)}, nil
}

// scaleFlags registers the flags of the scale scenario.
func scaleFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.ScaleSize, "size", "check", "dataset size: check, medium (1/10), full, or a fraction of full")
	fs.StringVar(&cfg.Postgres, "postgres", os.Getenv(PostgresEnv), "postgres:// URL to measure PostgreSQL too (env "+PostgresEnv+")")
	fs.IntVar(&cfg.Samples, "samples", 200, "requests per latency figure")
	fs.IntVar(&cfg.Events, "events", 2000, "events of the measured feed's calendar")
}

// dataTarget is one database the scenario measures, empty and loaded.
type dataTarget struct {
	name string // "sqlite" or "pg"
	// open makes a fresh database and returns what calhook's --db takes
	// and a function that drops it.
	open func(ctx context.Context, dir string) (db string, drop func() error, err error)
	// size returns the database's bytes on disk.
	size func(ctx context.Context, db string) (int64, error)
}

func runScale(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	size, err := parseScaleSize(cfg.ScaleSize)
	if err != nil {
		return nil, err
	}
	if cfg.Samples < 1 {
		return nil, fmt.Errorf("samples %d: must be at least 1", cfg.Samples)
	}
	dir, bin, cleanup, err := scaleBinary(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	targets := []dataTarget{sqliteTarget()}
	if cfg.Postgres != "" {
		targets = append(targets, pgTarget(cfg.Postgres))
	}
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
	}
}

// scaleRound makes a database, loads it unless empty, starts calhook on
// it and measures.
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
		st, err := loadScale(ctx, db, size)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		d := time.Since(start)
		info["loaded"] = st
		info["load_seconds"] = round2(d.Seconds())
		cfg.Logger.Info("scale: loaded", "target", label, "in", d.Round(time.Millisecond), "rows", st)
	}
	start := time.Now()
	srv, err := startNode(ctx, bin, dir, db, randomHex(32), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	startup := time.Since(start)
	defer func() {
		if err := srv.Stop(); err != nil {
			cfg.Logger.Warn("scale: stop calhook", "error", err)
		}
	}()
	m, err := measureScale(ctx, cfg, srv)
	if err != nil {
		return nil, err
	}
	rss, err := procRSS(srv.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	dbBytes, err := tg.size(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("database size: %w", err)
	}
	r := func(metric, unit string, v float64) Result {
		return Result{Scenario: scaleName, Metric: label + "_" + metric, Value: round2(v), Unit: unit, Info: info}
	}
	results := []Result{
		r("startup_ms", "ms", ms(startup)),
		r("api_write_p50_ms", "ms", m.writeP50), r("api_write_p99_ms", "ms", m.writeP99),
		r("event_list_p99_ms", "ms", m.listP99), r("changes_p99_ms", "ms", m.changesP99),
		r("feed_cold_p50_ms", "ms", m.coldP50), r("feed_warm_p50_ms", "ms", m.warmP50),
		r("rss_mb", "MB", float64(rss)/1e6), r("db_mb", "MB", float64(dbBytes)/1e6),
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

// scaleStore is what the loader writes through: the store adapters'
// own write methods, so every row is what the API would have written
// (events and their change rows through the batch route's WriteEvents,
// feed versions).
type scaleStore interface {
	CreateAccount(ctx context.Context, a *store.Account) error
	CreateCalendar(ctx context.Context, c *store.Calendar) error
	WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error)
	Close() error
}

// scaleBatch is how many events one write of the loader carries, as a
// request of the batch route may.
const scaleBatch = 1000

// loadScale fills the database at db with size's accounts, calendars,
// events (5 % recurring, spread over two years back and one ahead) and
// updates, through the store adapters' batch writes (calendar by
// calendar, a batch-route request's worth at a time, several calendars at
// once), then moves the change-log consumers' cursors to the end, as on a
// server that had processed it. Event i belongs to calendar i mod
// calendars; update u changes event u mod events.
func loadScale(ctx context.Context, db string, size scaleSize) (map[string]int, error) {
	var s scaleStore
	var err error
	pg := strings.HasPrefix(db, "postgres")
	if pg {
		var p *postgres.DB
		if p, err = postgres.Open(ctx, db, nil); err == nil {
			err = p.Migrate(ctx)
		}
		s = p
	} else {
		var q *sqlite.DB
		if q, err = sqlite.Open(ctx, db); err == nil {
			err = q.Migrate(ctx)
		}
		s = q
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	now := time.Now().UTC()
	accounts := make([]string, size.Accounts)
	for i := range accounts {
		a := &store.Account{ID: id.New("acc"), Name: fmt.Sprint("tenant ", i), APIKeyHash: id.HashKey(id.APIKey()),
			FeedToken: id.FeedToken(), CreatedAt: now, UpdatedAt: now}
		if err := s.CreateAccount(ctx, a); err != nil {
			return nil, err
		}
		accounts[i] = a.ID
	}
	cals := make([]*store.Calendar, size.Calendars)
	for i := range cals {
		c := &store.Calendar{ID: id.New("cal"), AccountID: accounts[i%len(accounts)], Name: fmt.Sprint("unit ", i),
			TimeZone: "Europe/Berlin", Kind: store.KindNative, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateCalendar(ctx, c); err != nil {
			return nil, err
		}
		cals[i] = c
	}
	// SQLite's single writer commits the workers' batches in groups;
	// PostgreSQL takes them side by side.
	workers := 4
	if pg {
		workers = 8
	}
	if err := parallel(ctx, workers, len(cals), func(k int) error {
		return loadCalendar(ctx, s, cals[k], size, now)
	}); err != nil {
		return nil, err
	}
	if err := endCursors(ctx, db, pg); err != nil {
		return nil, fmt.Errorf("cursors: %w", err)
	}
	// Nothing lost: every event and change row is there.
	got, err := countRows(ctx, db, pg)
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	if got[0] != size.Events || got[1] != size.Events+size.Updates {
		return nil, fmt.Errorf("loaded %d events and %d changes; want %d and %d", got[0], got[1], size.Events, size.Events+size.Updates)
	}
	return map[string]int{"accounts": size.Accounts, "calendars": size.Calendars, "events": size.Events,
		"changes": size.Events + size.Updates}, nil
}

// loadCalendar writes the events of calendar c (event i for every i ≡ k
// mod calendars, k its index) and then their updates, round by round (an
// event is updated once per round that reaches it), in batches.
func loadCalendar(ctx context.Context, s scaleStore, c *store.Calendar, size scaleSize, now time.Time) error {
	var k int
	if _, err := fmt.Sscanf(c.Name, "unit %d", &k); err != nil {
		return fmt.Errorf("calendar %q: %w", c.Name, err)
	}
	version := c.Version
	write := func(p *store.WriteEventsParams) error {
		p.AccountID, p.CalendarID, p.Version, p.Now = c.AccountID, c.ID, version, time.Now().UTC()
		if _, err := s.WriteEvents(ctx, p); err != nil {
			return err
		}
		version++
		return nil
	}
	var events []*store.Event
	var batch []*store.Event
	for i := k; i < size.Events; i += size.Calendars {
		rng := rand.New(rand.NewPCG(uint64(i), 23))
		start := now.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour)))).Add(-2 * 365 * 24 * time.Hour).Truncate(time.Hour)
		e := &store.Event{ID: id.New("evt"), AccountID: c.AccountID, CalendarID: c.ID, UID: id.New("uid") + "@scale",
			Summary: fmt.Sprint("Booking ", i), Description: "Guest: scale test", Start: start,
			End: start.Add(time.Duration(1+rng.IntN(7*24)) * time.Hour), TimeZone: c.TimeZone, Status: store.StatusConfirmed,
			CreatedAt: now, UpdatedAt: now}
		if i%20 == 0 {
			e.RRule = "FREQ=WEEKLY;COUNT=52"
			e.End = e.Start.Add(2 * time.Hour)
		}
		events = append(events, e)
		if batch = append(batch, e); len(batch) == scaleBatch {
			if err := write(&store.WriteEventsParams{Create: batch}); err != nil {
				return err
			}
			batch = nil
		}
	}
	if len(batch) > 0 {
		if err := write(&store.WriteEventsParams{Create: batch}); err != nil {
			return err
		}
	}
	// Event i (the j-th of this calendar) takes updates u = i + r·events
	// below size.Updates, round r = 0, 1, …
	for r := 0; ; r++ {
		batch = batch[:0]
		n := 0
		for j, i := 0, k; j < len(events); j, i = j+1, i+size.Calendars {
			if i+r*size.Events >= size.Updates {
				break
			}
			n++
			e := *events[j]
			e.Summary = fmt.Sprint("Booking ", i, " v", r+1)
			e.UpdatedAt = time.Now().UTC()
			batch = append(batch, &e)
			if len(batch) == scaleBatch {
				if err := write(&store.WriteEventsParams{Update: batch}); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if n == 0 {
			return nil
		}
		if len(batch) > 0 {
			if err := write(&store.WriteEventsParams{Update: batch}); err != nil {
				return err
			}
		}
	}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines, worker w
// taking i ≡ w (mod workers), and returns the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil; i += workers {
				if err := fn(i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// countRows returns the rows of the events and changes tables.
func countRows(ctx context.Context, db string, pg bool) ([2]int, error) {
	var n [2]int
	const q = `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM changes)`
	if pg {
		return n, pgQueryRow(ctx, db, q, nil, &n[0], &n[1])
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		return n, err
	}
	defer conn.Close()
	return n, conn.QueryRowContext(ctx, q).Scan(&n[0], &n[1])
}

// endCursors moves the change-log consumers (fan-out, conflict detector,
// export pings) to the end of the loaded log: a server that wrote it
// would have processed it as it went.
func endCursors(ctx context.Context, db string, pg bool) error {
	names := []string{store.FanOutCursor, "availability", "exportpings"}
	if pg {
		for _, n := range names {
			if err := pgExec(ctx, db, `INSERT INTO cursors (name, position, xid)
				SELECT '`+n+`', coalesce(max(id), 0), pg_current_xact_id() FROM changes
				ON CONFLICT (name) DO UPDATE SET position = excluded.position, xid = excluded.xid`); err != nil {
				return err
			}
		}
		return nil
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, n := range names {
		if _, err := conn.ExecContext(ctx, `INSERT INTO cursors (name, position) SELECT ?, coalesce(max(id), 0) FROM changes WHERE true
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, n); err != nil {
			return err
		}
	}
	return nil
}
