package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
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
	fs.IntVar(&cfg.Changes, "samples", DefaultHoldSamples, "paced holds measured")
	fs.Float64Var(&cfg.Rate, "rate", DefaultHoldRate, "holds per second of the paced part")
}

// runHolds is the holds scenario, in process on a SQLite file, with the
// importer and holds service of calhook: a unit with three imported
// calendars whose loopback sources answer 304. hold_p50_ms and
// hold_p99_ms are the time of one hold (refresh of the three sources
// included) at --rate holds a second on disjoint dates;
// overlap_slowest_ms is the slowest answer of 100 holds of one interval
// sent at once, of which exactly one must win.
func runHolds(ctx context.Context, cfg Config) ([]Result, error) {
	samples := cmpOrInt(cfg.Changes, DefaultHoldSamples)
	rate := cfg.Rate
	if rate <= 0 {
		rate = DefaultHoldRate
	}
	dir, err := os.MkdirTemp("", "calhookbench-holds-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "holds.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == holdSourceETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", holdSourceETag)
		_, _ = w.Write([]byte(holdSourceCalendar))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	imp := importer.New(importer.Config{Store: db, Client: outbound.NewClient(outbound.Options{
		Policy:    outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		UserAgent: "calhookbench", Timeout: 5 * time.Second,
	})})
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := imp.Start(ictx); err != nil {
		return nil, err
	}
	defer imp.Stop(ctx)
	acct, unit, err := holdsUnit(ctx, db, imp, "http://"+ln.Addr().String())
	if err != nil {
		return nil, err
	}
	svc := holds.NewService(db, holds.Options{Refresher: imp})

	// Paced holds on disjoint dates.
	lat := make([]float64, 0, samples)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed error
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range samples {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := base.Add(time.Duration(i) * time.Hour)
			t0 := time.Now()
			p, err := svc.Place(ctx, acct.ID, unit.ID, holds.PlaceInput{
				Start: ptrTo(start.Format(time.RFC3339)), End: ptrTo(start.Add(time.Hour).Format(time.RFC3339))})
			d := float64(time.Since(t0).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed = err
			case len(p.Sources) != holdSources:
				failed = fmt.Errorf("hold checked %d sources; want %d", len(p.Sources), holdSources)
			default:
				for _, s := range p.Sources {
					if s.State != holds.Fresh {
						failed = fmt.Errorf("source %s stale: %s", s.CalendarID, s.Error)
					}
				}
			}
			lat = append(lat, d)
		}()
	}
	wg.Wait()
	if failed != nil {
		return nil, fmt.Errorf("paced holds: %w", failed)
	}
	slices.Sort(lat)

	// 100 overlapping holds at once.
	day := base.AddDate(1, 0, 0)
	in := holds.PlaceInput{Start: ptrTo(day.Format(time.DateOnly)), End: ptrTo(day.AddDate(0, 0, 2).Format(time.DateOnly))}
	var slowest time.Duration
	won := 0
	for range overlappingHolds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, err := svc.Place(ctx, acct.ID, unit.ID, in)
			d := time.Since(t0)
			var ce *holds.ConflictError
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, d)
			switch {
			case err == nil:
				won++
			case !errors.As(err, &ce):
				failed = err
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		return nil, fmt.Errorf("overlapping holds: %w", failed)
	}
	if won != 1 {
		return nil, fmt.Errorf("%d of %d overlapping holds won; want exactly 1", won, overlappingHolds)
	}
	info := map[string]any{"samples": samples, "rate": rate, "sources": holdSources}
	return []Result{
		{Scenario: holdsName, Metric: "hold_p50_ms", Value: round2(percentile(lat, 50)), Unit: "ms", Target: targetOf(holdP50TargetMS), Info: info},
		{Scenario: holdsName, Metric: "hold_p99_ms", Value: round2(percentile(lat, 99)), Unit: "ms", Target: targetOf(holdP99TargetMS), Info: info},
		{Scenario: holdsName, Metric: "overlap_slowest_ms", Value: round2(float64(slowest.Microseconds()) / 1000), Unit: "ms",
			Target: targetOf(overlapTargetMS), Info: map[string]any{"holds": overlappingHolds, "winners": won}},
		hostResult(holdsName),
	}, nil
}

// holdsUnit makes an account and a unit with holdSources imported
// calendars of the source at url, each polled once.
func holdsUnit(ctx context.Context, db store.Store, imp *importer.Importer, url string) (*store.Account, *store.Unit, error) {
	now := time.Now().UTC()
	acct := &store.Account{ID: id.New("acc"), Name: "bench", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAccount(ctx, acct); err != nil {
		return nil, nil, err
	}
	unit := &store.Unit{ID: id.New("unit"), AccountID: acct.ID, Name: "Flat", TimeZone: "UTC", SameDayTurnover: true,
		ExportSummary: "Not available", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateUnit(ctx, unit); err != nil {
		return nil, nil, err
	}
	for k := range holdSources {
		c := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: "Channel", TimeZone: "UTC", Kind: store.KindImported,
			SourceURL: fmt.Sprintf("%s/channel%d.ics", url, k), CreatedAt: now, UpdatedAt: now,
			Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now.Add(time.Hour)}}
		if err := db.CreateCalendar(ctx, c); err != nil {
			return nil, nil, err
		}
		if _, err := db.SetCalendarUnit(ctx, acct.ID, c.ID, unit.ID, now); err != nil {
			return nil, nil, err
		}
		if res, err := imp.Refresh(ctx, acct.ID, c.ID); err != nil || res.Status == importer.StatusError {
			return nil, nil, fmt.Errorf("first poll of %s: %v %v", c.SourceURL, res, err)
		}
	}
	return acct, unit, nil
}

func ptrTo[T any](v T) *T { return &v }
