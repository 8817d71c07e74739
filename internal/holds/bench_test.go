package holds_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// BenchmarkPlaceThreeSources places holds on disjoint dates of a unit with
// three imported calendars whose sources answer 304 on loopback, one after
// another, and reports the p50 and p99 of a hold (refresh included), on
// each backend.
func BenchmarkPlaceThreeSources(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) { benchPlace(b, be.Open(b), 3) })
	}
}

// BenchmarkPlace is BenchmarkPlaceThreeSources on a unit without imported
// calendars: the check and the write alone.
func BenchmarkPlace(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) { benchPlace(b, be.Open(b), 0) })
	}
}

func benchPlace(b *testing.B, db store.Store, sources int) {
	ctx := context.Background()
	svc, acct, unit := benchUnit(b, db, sources)
	lat := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		t0 := time.Now()
		p, err := svc.Place(ctx, acct.ID, unit.ID, holds.PlaceInput{Start: ptr(start.Format(time.RFC3339)), End: ptr(start.Add(time.Hour).Format(time.RFC3339))})
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range p.Sources {
			if s.State != holds.Fresh || s.Outcome != importer.StatusNotModified && s.Outcome != importer.StatusRecent {
				b.Fatalf("source %+v; want fresh, not_modified or recent", s)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50_ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99_ms")
}

// BenchmarkOverlappingHolds places 100 overlapping holds at once per
// iteration on the unit of BenchmarkPlaceThreeSources: exactly one must
// win; it reports the slowest answer, on each backend.
func BenchmarkOverlappingHolds(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) { benchOverlapping(b, be.Open(b)) })
	}
}

func benchOverlapping(b *testing.B, db store.Store) {
	ctx := context.Background()
	svc, acct, unit := benchUnit(b, db, 3)
	var slowest time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 2*i)
		in := holds.PlaceInput{Start: ptr(start.Format(time.DateOnly)), End: ptr(start.AddDate(0, 0, 1).Format(time.DateOnly))}
		var wg sync.WaitGroup
		var won atomic.Int32
		var mu sync.Mutex
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				_, err := svc.Place(ctx, acct.ID, unit.ID, in)
				d := time.Since(t0)
				var ce *holds.ConflictError
				switch {
				case err == nil:
					won.Add(1)
				case !errors.As(err, &ce):
					b.Error(err)
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			b.Fatalf("%d of 100 overlapping holds won; want 1", won.Load())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest_ms")
}

// benchUnit returns a Service on db and a unit with the given number of
// imported calendars whose loopback sources answer 304, polled once.
func benchUnit(b *testing.B, db store.Store, sources int) (*holds.Service, *store.Account, *store.Unit) {
	ctx := context.Background()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//b//b//EN\r\nEND:VCALENDAR\r\n"))
	}))
	b.Cleanup(up.Close)
	imp := importer.New(importer.Config{Store: db, Client: outbound.NewClient(outbound.Options{
		Policy:    outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		UserAgent: "calhook-bench", Timeout: 5 * time.Second,
	})})
	ictx, cancel := context.WithCancel(ctx)
	if err := imp.Start(ictx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); imp.Stop(context.Background()) })
	now := time.Now().UTC()
	acct := &store.Account{ID: id.New("acc"), Name: "b", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(), CreatedAt: now, UpdatedAt: now}
	unit := &store.Unit{ID: id.New("unit"), AccountID: acct.ID, Name: "Flat", TimeZone: "UTC", SameDayTurnover: true, ExportSummary: "x", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAccount(ctx, acct); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateUnit(ctx, unit); err != nil {
		b.Fatal(err)
	}
	for k := range sources {
		c := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: "Channel", TimeZone: "UTC", Kind: store.KindImported,
			SourceURL: up.URL + "/" + string(rune('a'+k)) + ".ics", CreatedAt: now, UpdatedAt: now,
			Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now.Add(time.Hour)}}
		if err := db.CreateCalendar(ctx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SetCalendarUnit(ctx, acct.ID, c.ID, unit.ID, now); err != nil {
			b.Fatal(err)
		}
		if _, err := imp.Refresh(ctx, acct.ID, c.ID); err != nil {
			b.Fatal(err)
		}
	}
	return holds.NewService(db, holds.Options{Refresher: imp}), acct, unit
}
