package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Settings and targets of the holds scenario.
const (
	holdsName = "holds"
	// DefaultHoldSamples is how many paced holds are measured, at
	// DefaultHoldRate a second.
	DefaultHoldSamples = 500
	DefaultHoldRate    = 50
	// holdSources is how many imported calendars the unit has, and
	// overlappingHolds how many holds race for one interval.
	holdSources        = 3
	overlappingHolds   = 100
	holdP50TargetMS    = 10
	holdP99TargetMS    = 50
	overlapTargetMS    = 1000
	holdSourceETag     = `"v1"`
	holdSourceCalendar = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calhookbench//holds//EN\r\nEND:VCALENDAR\r\n"
)

func holdsFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Changes, "samples", DefaultHoldSamples, "paced holds measured per round")
	fs.Float64Var(&cfg.Rate, "rate", DefaultHoldRate, "holds per second of the paced part")
	fs.StringVar(&cfg.Postgres, "postgres", "",
		"run calhook on a fresh schema of this postgres:// `URL` each round instead of SQLite")
}

// runHolds is the holds scenario, on the real binary over HTTP: each round
// starts a calhook with a fresh database (SQLite, or a fresh schema of
// --postgres) and a unit with three imported calendars whose loopback
// sources, served by the bench, answer 304. hold_p50_ms and hold_p99_ms
// are the time of one POST /v1/units/{id}/holds (the refresh of the three
// sources included) at --rate holds a second on disjoint times, each
// answered 201 with every source fresh; overlap_slowest_ms is the slowest
// answer of 100 holds of one interval sent at once, of which exactly one
// must be 201 and the others 409. Each metric is the median of its rounds.
func runHolds(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.Changes = cmpOrInt(cfg.Changes, DefaultHoldSamples)
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultHoldRate
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, holdsName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	src, err := newHoldSource()
	if err != nil {
		return nil, err
	}
	defer src.srv.Close()
	backend := "sqlite"
	if cfg.Postgres != "" {
		backend = "postgres"
	}
	var p50s, p99s, slowests []float64
	var fetches []int64
	for round := 1; round <= cfg.Runs; round++ {
		r, err := env.holdsRound(ctx, src, round)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		p50s, p99s = append(p50s, round2(percentile(r.lat, 50))), append(p99s, round2(percentile(r.lat, 99)))
		slowests = append(slowests, round2(ms(r.slowest)))
		fetches = append(fetches, r.fetches)
		env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "backend", backend,
			"hold_p50_ms", p50s[len(p50s)-1], "hold_p99_ms", p99s[len(p99s)-1], "overlap_slowest_ms", slowests[len(slowests)-1],
			"source_fetches", r.fetches, "paced_s", round2(r.paced.Seconds()), "outcomes", r.outcomes)
	}
	info := map[string]any{"backend": backend, "samples": cfg.Changes, "rate": cfg.Rate, "sources": holdSources,
		"source_fetches": fetches}
	return []Result{
		{Scenario: holdsName, Metric: "hold_p50_ms", Value: median(p50s), Runs: p50s, Unit: "ms", Target: targetOf(holdP50TargetMS), Info: info},
		{Scenario: holdsName, Metric: "hold_p99_ms", Value: median(p99s), Runs: p99s, Unit: "ms", Target: targetOf(holdP99TargetMS), Info: info},
		{Scenario: holdsName, Metric: "overlap_slowest_ms", Value: median(slowests), Runs: slowests, Unit: "ms",
			Target: targetOf(overlapTargetMS), Info: map[string]any{"backend": backend, "holds": overlappingHolds, "winners": 1}},
		hostResult(holdsName),
	}, nil
}

// holdSource serves the imported calendars: an empty calendar with an
// ETag, 304 to a request that has it. It counts the requests.
type holdSource struct {
	srv  *http.Server
	url  string
	hits atomic.Int64
}

func newHoldSource() (*holdSource, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("holds source: %w", err)
	}
	s := &holdSource{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Header.Get("If-None-Match") == holdSourceETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", holdSourceETag)
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(holdSourceCalendar))
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// holdsRound is what one round measured.
type holdsRound struct {
	// lat is the paced holds' latencies in ms, sorted.
	lat     []float64
	paced   time.Duration
	slowest time.Duration
	// fetches is how many requests the sources had during the paced part.
	fetches int64
	// outcomes counts the paced holds' source outcomes (recent,
	// not_modified, …).
	outcomes map[string]int
}

// holdAnswer is the part of a hold's answer the bench checks.
type holdAnswer struct {
	Hold *struct {
		ID string `json:"id"`
	} `json:"hold"`
	Sources []struct {
		CalendarID string `json:"calendarId"`
		State      string `json:"state"`
		Outcome    string `json:"outcome"`
		Error      string `json:"error"`
	} `json:"sources"`
}

// holdsRound starts a calhook, builds the unit and measures both parts.
func (env *webhookEnv) holdsRound(ctx context.Context, src *holdSource, round int) (holdsRound, error) {
	var r holdsRound
	cfg := env.cfg
	dir := filepath.Join(env.dir, fmt.Sprintf("round%d", round))
	args := []string{"--log-level", "warn", "--allow-http-feeds", "--allow-private-cidr", "127.0.0.1/32"}
	var srv *calhookServer
	var err error
	if cfg.Postgres == "" {
		srv, err = startCalhook(ctx, env.bin, dir, args...)
	} else {
		var schema *pgSchema
		if schema, err = createPGSchema(ctx, cfg.Postgres); err != nil {
			return r, err
		}
		defer func() {
			if err := schema.drop(); err != nil {
				env.log.Warn("drop schema", "error", err)
			}
		}()
		srv, err = startNode(ctx, env.bin, dir, schema.URL, randomHex(32), args...)
	}
	if err != nil {
		return r, err
	}
	defer env.stopCalhook(srv)

	api := newAPIClient(srv.baseURL, overlappingHolds)
	acc, err := api.createAccount(ctx, srv.adminToken, "calhookbench")
	if err != nil {
		return r, err
	}
	var unit struct{ ID string }
	if err := api.do(ctx, http.MethodPost, "/v1/units", acc.APIKey, map[string]any{"name": "Bench unit", "timeZone": "UTC"},
		&unit, http.StatusCreated); err != nil {
		return r, err
	}
	for k := range holdSources {
		cal, err := api.createImported(ctx, acc.APIKey, fmt.Sprintf("Channel %d", k), fmt.Sprintf("%s/channel%d.ics", src.url, k), time.Hour)
		if err != nil {
			return r, err
		}
		if err := api.do(ctx, http.MethodPatch, "/v1/calendars/"+cal.ID, acc.APIKey, map[string]any{"unitId": unit.ID}, nil, http.StatusOK); err != nil {
			return r, err
		}
		if err := waitFirstImport(ctx, api, acc.APIKey, cal.ID); err != nil {
			return r, fmt.Errorf("%w; calhook log: %s", err, srv.logTail(20))
		}
	}
	path := "/v1/units/" + unit.ID + "/holds"
	hold := func(start, end string) (int, *holdAnswer, time.Duration, error) {
		body, err := json.Marshal(map[string]string{"start": start, "end": end})
		if err != nil {
			return 0, nil, 0, err
		}
		t0 := time.Now()
		status, b, err := postHold(ctx, api.http, srv.baseURL+path, acc.APIKey, body)
		d := time.Since(t0)
		if err != nil {
			return 0, nil, d, err
		}
		var a holdAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			return status, nil, d, fmt.Errorf("hold answer %d %q: %w", status, truncate(b, 200), err)
		}
		return status, &a, d, nil
	}

	// Paced holds on disjoint times, each answered 201 with every source
	// fresh.
	fetches0 := src.hits.Load()
	r.lat = make([]float64, 0, cfg.Changes)
	r.outcomes = map[string]int{}
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed error
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	for i := range cfg.Changes {
		<-tick.C
		wg.Go(func() {
			start := base.Add(time.Duration(i) * time.Hour)
			status, a, d, err := hold(start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))
			mu.Lock()
			defer mu.Unlock()
			r.lat = append(r.lat, ms(d))
			switch {
			case err != nil:
				failed = err
			case status != http.StatusCreated:
				failed = fmt.Errorf("paced hold answered %d; want 201", status)
			case len(a.Sources) != holdSources:
				failed = fmt.Errorf("hold checked %d sources; want %d", len(a.Sources), holdSources)
			default:
				for _, s := range a.Sources {
					r.outcomes[s.Outcome]++
					if s.State != "fresh" {
						failed = fmt.Errorf("source %s stale (%s): %s", s.CalendarID, s.Outcome, s.Error)
					}
				}
			}
		})
	}
	wg.Wait()
	r.paced = time.Since(began)
	r.fetches = src.hits.Load() - fetches0
	if failed != nil {
		return r, fmt.Errorf("paced holds: %w", failed)
	}
	slices.Sort(r.lat)

	// 100 overlapping holds at once: one 201, 99 409.
	day := base.AddDate(1, 0, 0)
	start, end := day.Format(time.DateOnly), day.AddDate(0, 0, 2).Format(time.DateOnly)
	won, refused := 0, 0
	gate := make(chan struct{})
	for range overlappingHolds {
		wg.Go(func() {
			<-gate
			status, _, d, err := hold(start, end)
			mu.Lock()
			defer mu.Unlock()
			r.slowest = max(r.slowest, d)
			switch {
			case err != nil:
				failed = err
			case status == http.StatusCreated:
				won++
			case status == http.StatusConflict:
				refused++
			default:
				failed = fmt.Errorf("overlapping hold answered %d; want 201 or 409", status)
			}
		})
	}
	close(gate)
	wg.Wait()
	if failed != nil {
		return r, fmt.Errorf("overlapping holds: %w", failed)
	}
	if won != 1 || refused != overlappingHolds-1 {
		return r, fmt.Errorf("%d of %d overlapping holds won and %d were refused; want exactly 1 and %d",
			won, overlappingHolds, refused, overlappingHolds-1)
	}
	return r, nil
}

// waitFirstImport waits until the imported calendar's first poll
// succeeded.
func waitFirstImport(ctx context.Context, api *apiClient, apiKey, calID string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cal importedCalendar
		if err := api.do(ctx, http.MethodGet, "/v1/calendars/"+calID, apiKey, nil, &cal, http.StatusOK); err != nil {
			return err
		}
		if cal.LastSuccessAt != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("first import of %s: no success within 30 s (last error %v)", calID, cal.LastError)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// postHold posts a hold and returns the status and body.
func postHold(ctx context.Context, client *http.Client, url, bearer string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("POST %s: read body: %w", url, err)
	}
	return resp.StatusCode, b, nil
}
