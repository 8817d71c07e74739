package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ratioTarget is the throughput calhook aims for relative to nginx serving
// the same bytes from a file.
const ratioTarget = 0.7

// createWorkers is how many clients create events at once.
const createWorkers = 4

// eventSeed and eventBase make every run's events the same.
var (
	eventSeed uint64 = 20261201
	eventBase        = time.Date(2026, time.September, 1, 0, 0, 0, 0, time.UTC)
)

// safeID matches the ids that may become nginx file names.
var safeID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// feedFlags registers the flags of the feed scenario.
func feedFlags(fs *flag.FlagSet, cfg *Config) {
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "measured length of each load run")
	cfg.Warmup = DefaultWarmup
	fs.Var((*warmupValue)(&cfg.Warmup), "warmup", "unmeasured load before each run (0 for none)")
	fs.IntVar(&cfg.Connections, "connections", DefaultConnections, "concurrent keep-alive connections")
	fs.IntVar(&cfg.Events, "events", DefaultEvents, "events to create in the calendar")
	fs.StringVar(&cfg.LoadGen, "loadgen", LoadGenAuto, "load generator: auto (wrk if installed), wrk or go (exact status counts, but slower than wrk)")
	fs.StringVar(&cfg.Nginx, "nginx", "", "nginx `binary` (default: PATH, then /usr/sbin/nginx)")
}

// warmupValue is the --warmup flag: Config reads a zero Warmup as "the
// default", so an explicit 0 is stored as -1, meaning none.
type warmupValue time.Duration

func (v *warmupValue) String() string {
	if v == nil || *v < 0 {
		return "0s"
	}
	return time.Duration(*v).String()
}

func (v *warmupValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d == 0 {
		d = -1
	}
	*v = warmupValue(d)
	return nil
}

// runFeed is the "feed" scenario: it fills a calendar through the API,
// then loads its feed on calhook and the same bytes on nginx, with and
// without a matching If-None-Match, in interleaved rounds.
func runFeed(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("scenario", "feed")

	lg, err := pickLoadGen(cfg.LoadGen)
	if err != nil {
		return nil, err
	}
	nginxBin, err := findNginx(cfg.Nginx)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}

	dir, err := os.MkdirTemp("", "calhookbench-feed-*")
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	if cfg.Keep {
		log.Info("keeping temporary directory", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// nginx's workers drop root for nobody and must still reach the
	// document root under this directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}

	bin := cfg.Bin
	if bin == "" {
		modDir := cfg.ModuleDir
		if modDir == "" {
			if modDir, err = moduleDir(ctx); err != nil {
				return nil, err
			}
		}
		bin = filepath.Join(dir, "calhook")
		log.Info("building calhook", "module", modDir)
		if err := buildCalhook(ctx, modDir, bin); err != nil {
			return nil, err
		}
	}

	log.Info("starting calhook", "bin", bin)
	srv, err := startCalhook(ctx, bin, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			log.Warn("calhook did not stop cleanly", "error", err, "log", srv.logTail(10))
		}
	}()

	snap, err := populate(ctx, log, cfg, srv)
	if err != nil {
		return nil, err
	}

	// The same bytes at the same path on nginx.
	www := filepath.Join(dir, "www")
	file := filepath.Join(www, "feeds", snap.accountID, snap.calendarID+".ics")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	if err := os.WriteFile(file, snap.calhook.body, 0o644); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	// The compressed pair: calhook's gzip bytes, which nginx serves with
	// gzip_static from the file beside the plain one.
	gz, err := probeFeedEncoded(ctx, srv.baseURL+snap.path, "gzip", 0)
	if err != nil {
		return nil, fmt.Errorf("calhook gzip: %w", err)
	}
	if !bytes.Equal(gz.plain, snap.calhook.body) {
		return nil, errors.New("calhook: the gzip feed decompresses to other bytes than the plain one")
	}
	if err := os.WriteFile(file+".gz", gz.body, 0o644); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	ngPort, err := freePort()
	if err != nil {
		return nil, err
	}
	log.Info("starting nginx", "bin", nginxBin, "port", ngPort)
	ng, err := startNginx(ctx, nginxBin, nginxParams{
		Dir: filepath.Join(dir, "nginx"), Root: www, Port: ngPort, Workers: runtime.NumCPU(),
	}, snap.path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := ng.Stop(); err != nil {
			log.Warn("nginx did not stop cleanly", "error", err)
		}
	}()
	ngResp, err := probeFeed(ctx, ng.baseURL+snap.path, len(snap.calhook.body))
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if !bytes.Equal(ngResp.body, snap.calhook.body) {
		return nil, errors.New("nginx: served bytes differ from calhook's feed")
	}
	for _, n := range ngResp.notes {
		log.Warn("nginx feed check", "note", n)
	}
	ngGz, err := probeFeedEncoded(ctx, ng.baseURL+snap.path, "gzip", len(gz.body))
	if err != nil {
		return nil, fmt.Errorf("nginx gzip: %w", err)
	}
	if !bytes.Equal(ngGz.body, gz.body) {
		return nil, errors.New("nginx: served gzip bytes differ from calhook's")
	}
	gzSize := int64(len(gz.body))
	log.Info("compressed feed", "bytes", gzSize, "plain_bytes", len(snap.calhook.body),
		"compression", round3(ratio(float64(gzSize), float64(len(snap.calhook.body)))))

	bodySize := int64(len(snap.calhook.body))
	// Within a round each calhook run has its nginx twin right after it,
	// so that drift in the machine's load hits both alike.
	type feedTarget struct {
		target
		server *proc
	}
	targets := []feedTarget{
		{target{Name: "calhook_200", URL: srv.baseURL + snap.path, Status: 200, BodySize: bodySize, HeaderSize: snap.calhook.header200}, srv.proc},
		{target{Name: "nginx_200", URL: ng.baseURL + snap.path, Status: 200, BodySize: bodySize, HeaderSize: ngResp.header200}, ng.proc},
		{target{Name: "calhook_304", URL: srv.baseURL + snap.path, IfNoneMatch: snap.calhook.etag, Status: 304, BodySize: bodySize, HeaderSize: snap.calhook.header304}, srv.proc},
		{target{Name: "nginx_304", URL: ng.baseURL + snap.path, IfNoneMatch: ngResp.etag, Status: 304, BodySize: bodySize, HeaderSize: ngResp.header304}, ng.proc},
		{target{Name: "calhook_gzip_200", URL: srv.baseURL + snap.path, AcceptEncoding: "gzip", Status: 200, BodySize: gzSize, HeaderSize: gz.header200}, srv.proc},
		{target{Name: "nginx_gzip_200", URL: ng.baseURL + snap.path, AcceptEncoding: "gzip", Status: 200, BodySize: gzSize, HeaderSize: ngGz.header200}, ng.proc},
		{target{Name: "calhook_gzip_304", URL: srv.baseURL + snap.path, AcceptEncoding: "gzip", IfNoneMatch: gz.etag, Status: 304, BodySize: gzSize, HeaderSize: gz.header304}, srv.proc},
		{target{Name: "nginx_gzip_304", URL: ng.baseURL + snap.path, AcceptEncoding: "gzip", IfNoneMatch: ngGz.etag, Status: 304, BodySize: gzSize, HeaderSize: ngGz.header304}, ng.proc},
	}

	log.Info("load", "loadgen", lg.Name(), "connections", cfg.Connections,
		"duration", cfg.Duration, "warmup", cfg.Warmup, "runs", cfg.Runs)
	switch lg.(type) {
	case wrkLoadGen:
		if cfg.Duration%time.Second != 0 || cfg.Warmup%time.Second != 0 {
			log.Info("wrk takes whole seconds; rounding duration and warm-up up")
		}
	case goLoadGen:
		if cfg.LoadGen == LoadGenAuto {
			log.Warn("wrk not installed (Debian: apt-get install wrk); the built-in generator may cap the 304 figures")
		}
	}
	rps := make(map[string][]float64, len(targets))
	errs := make(map[string]int64, len(targets))
	for round := 1; round <= cfg.Runs; round++ {
		for _, t := range targets {
			select {
			case <-t.server.Exited():
				return nil, fmt.Errorf("%s exited during the run (%v); log:\n%s", t.server.name, t.server.waitErr, t.server.logTail(20))
			default:
			}
			st, err := lg.Run(ctx, t.target, cfg.Connections, cfg.Warmup, cfg.Duration)
			if err != nil {
				return nil, err
			}
			rps[t.Name] = append(rps[t.Name], st.RPS())
			errs[t.Name] += st.Errors
			attrs := []any{"round", fmt.Sprintf("%d/%d", round, cfg.Runs), "target", t.Name,
				"rps", round1(st.RPS()), "ok", st.OK, "errors", st.Errors}
			if st.Errors > 0 {
				log.Warn("run had errors", append(attrs, "detail", st.Detail)...)
			} else {
				log.Info("run", attrs...)
			}
		}
	}

	machine := machineResult(ctx, "feed", lg, nginxBin)
	machine.Info["connections"] = cfg.Connections
	machine.Info["duration_s"] = cfg.Duration.Seconds()
	machine.Info["warmup_s"] = cfg.Warmup.Seconds()
	machine.Info["runs"] = cfg.Runs
	results := []Result{machine, {
		Scenario: "feed", Metric: "feed_bytes", Value: float64(bodySize), Unit: "bytes",
		Info: map[string]any{
			"events":       cfg.Events,
			"vevents":      snap.calhook.vevents,
			"calhook_etag": snap.calhook.etag,
			"nginx_etag":   ngResp.etag,
			"notes":        snap.calhook.notes,
		},
	}, {
		Scenario: "feed", Metric: "feed_gzip_bytes", Value: float64(gzSize), Unit: "bytes",
		Info: map[string]any{
			"compression":       round3(ratio(float64(gzSize), float64(bodySize))),
			"calhook_gzip_etag": gz.etag,
			"nginx_gzip_etag":   ngGz.etag,
		},
	}}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	results = append(results, throughputResults(names, rps, errs)...)
	var total int64
	for _, e := range errs {
		total += e
	}
	if total > 0 {
		log.Warn("some responses were errors; see the errors field of each *_rps line", "errors", total)
	}
	return results, nil
}

// throughputResults returns the median rate of each target and the
// calhook/nginx ratio of each pair (200, 304, gzip_200, gzip_304).
func throughputResults(names []string, rps map[string][]float64, errs map[string]int64) []Result {
	var results []Result
	for _, name := range names {
		e := errs[name]
		results = append(results, Result{
			Scenario: "feed", Metric: name + "_rps", Value: round1(median(rps[name])), Unit: "req/s",
			Runs: roundAll(rps[name], round1), Errors: &e,
		})
	}
	// A ratio for each calhook target with its nginx twin: 200, 304 and
	// the compressed pair.
	for _, name := range names {
		status, ok := strings.CutPrefix(name, "calhook_")
		if !ok || !slices.Contains(names, "nginx_"+status) {
			continue
		}
		c, n := rps["calhook_"+status], rps["nginx_"+status]
		perRound := make([]float64, min(len(c), len(n)))
		for i := range perRound {
			perRound[i] = ratio(c[i], n[i])
		}
		tgt := ratioTarget
		results = append(results, Result{
			Scenario: "feed", Metric: "ratio_" + status, Value: round3(ratio(median(c), median(n))), Unit: "ratio",
			Target: &tgt, Runs: roundAll(perRound, round3),
		})
	}
	return results
}

// feedSnapshot is the populated calendar and its feed as calhook serves it.
type feedSnapshot struct {
	accountID, calendarID string
	// path is the feed's path and query, the same on calhook and nginx.
	path    string
	calhook *feedResponse
}

// populate creates an account, a calendar and cfg.Events events, then
// fetches the feed.
func populate(ctx context.Context, log *slog.Logger, cfg Config, srv *calhookServer) (*feedSnapshot, error) {
	api := newAPIClient(srv.baseURL, createWorkers)
	acc, cal, err := api.createAccountCalendar(ctx, srv.adminToken, "Bench – Büro Berlin")
	if err != nil {
		return nil, err
	}
	if !safeID.MatchString(acc.ID) || !safeID.MatchString(cal.ID) {
		return nil, fmt.Errorf("unexpected id shapes %q, %q", acc.ID, cal.ID)
	}
	events, err := genEvents(cfg.Events, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := api.createEvents(ctx, acc.APIKey, cal.ID, events, createWorkers); err != nil {
		return nil, err
	}
	took := time.Since(start)
	log.Info("created events", "events", len(events), "took", took.Round(time.Millisecond),
		"per_second", round1(float64(len(events))/took.Seconds()))

	snap := &feedSnapshot{
		accountID:  acc.ID,
		calendarID: cal.ID,
		path:       "/feeds/" + acc.ID + "/" + cal.ID + ".ics?token=" + url.QueryEscape(acc.FeedToken),
	}
	start = time.Now()
	snap.calhook, err = probeFeed(ctx, srv.baseURL+snap.path, 0)
	if err != nil {
		return nil, fmt.Errorf("calhook: %w", err)
	}
	log.Info("fetched feed", "bytes", len(snap.calhook.body), "vevents", snap.calhook.vevents,
		"etag", snap.calhook.etag, "took", time.Since(start).Round(time.Millisecond))
	// A feed may leave cancelled events out or keep them with
	// STATUS:CANCELLED; anything else lost or added events.
	live := 0
	for _, e := range events {
		if e.Status != "cancelled" {
			live++
		}
	}
	if v := snap.calhook.vevents; v != live && v != len(events) {
		snap.calhook.notes = append(snap.calhook.notes, fmt.Sprintf(
			"feed has %d VEVENTs for %d events created, %d of them not cancelled", v, len(events), live))
	}
	for _, n := range snap.calhook.notes {
		log.Warn("calhook feed check", "note", n)
	}
	return snap, nil
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// round1 rounds to one decimal, enough for requests per second.
func round1(x float64) float64 { return math.Round(x*10) / 10 }

// round3 rounds to three decimals, enough for ratios.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// roundAll returns xs rounded by f.
func roundAll(xs []float64, f func(float64) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
