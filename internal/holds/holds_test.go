package holds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/storetest"
)

// clock is a settable clock for the tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	store   store.Store
	account *store.Account
	unit    *store.Unit
	clock   *clock
	svc     *holds.Service
}

func newEnv(t *testing.T, s store.Store, opts holds.Options) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{store: s, clock: &clock{now: time.Now().UTC().Truncate(time.Microsecond)}}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	e.account = &store.Account{ID: id.New("acc"), Name: "Test", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if err := s.CreateAccount(ctx, e.account); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	e.unit = &store.Unit{ID: id.New("unit"), AccountID: e.account.ID, Name: "Flat", TimeZone: "Europe/Berlin",
		SameDayTurnover: true, ExportSummary: "Not available", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if err := s.CreateUnit(ctx, e.unit); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	e.svc = holds.NewService(s, opts)
	return e
}

func ptr[T any](v T) *T { return &v }

// day returns the date n days after 2030-01-01.
func day(n int) string {
	return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n).Format(time.DateOnly)
}

func TestPlaceAndConflict(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t), holds.Options{})
			ctx := context.Background()
			p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(10)), End: ptr(day(13)),
				ExternalRef: ptr("booking-1"), TTLSeconds: ptr(int64(60))})
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			h := p.Hold
			if h.State != store.HoldHeld || !h.AllDay || !h.ExpiresAt.Equal(e.clock.Now().Add(time.Minute)) || h.ExternalRef != "booking-1" {
				t.Errorf("hold = %+v", h)
			}
			ev, err := e.store.Event(ctx, e.account.ID, h.CalendarID, h.EventID)
			if err != nil || ev.Status != store.StatusTentative || ev.Metadata["externalRef"] != "booking-1" {
				t.Fatalf("hold event = %+v, %v; want a tentative event with the externalRef", ev, err)
			}
			// The same nights, or one of them, are refused; the night
			// after the checkout is free (same-day turnover).
			for _, in := range []struct{ start, end string }{{day(10), day(13)}, {day(12), day(14)}, {day(8), day(11)}} {
				_, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(in.start), End: ptr(in.end)})
				var ce *holds.ConflictError
				if !errors.As(err, &ce) || len(ce.Conflicts) != 1 || ce.Conflicts[0].HoldID != h.ID || ce.Conflicts[0].Kind != "hold" {
					t.Errorf("Place %s..%s = %v; want a conflict with hold %s", in.start, in.end, err, h.ID)
				}
			}
			if _, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(13)), End: ptr(day(15))}); err != nil {
				t.Errorf("Place on the checkout day: %v", err)
			}
			// A confirmed event of a calendar of the unit blocks too.
			if _, err := e.svc.Confirm(ctx, e.account.ID, h.ID); err != nil {
				t.Fatalf("Confirm: %v", err)
			}
			_, err = e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(11)), End: ptr(day(12))})
			var ce *holds.ConflictError
			if !errors.As(err, &ce) || ce.Conflicts[0].Kind != "event" || ce.Conflicts[0].EventID != h.EventID {
				t.Errorf("Place over a confirmed booking = %v; want a conflict with its event", err)
			}
		})
	}
}

func TestPlaceInvalid(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), holds.Options{})
	for _, tt := range []struct {
		name string
		in   holds.PlaceInput
	}{
		{"no start", holds.PlaceInput{End: ptr(day(2))}},
		{"no end", holds.PlaceInput{Start: ptr(day(2))}},
		{"end before start", holds.PlaceInput{Start: ptr(day(3)), End: ptr(day(2))}},
		{"mixed", holds.PlaceInput{Start: ptr(day(1)), End: ptr("2030-01-05T10:00:00Z")}},
		{"garbage", holds.PlaceInput{Start: ptr("tomorrow"), End: ptr(day(2))}},
		{"ttl", holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(2)), TTLSeconds: ptr(int64(0))}},
		{"long ttl", holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(2)), TTLSeconds: ptr(int64(90000))}},
		{"wait", holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(2)), MaxWaitMs: ptr(int64(-1))}},
		{"control chars", holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(2)), Summary: ptr("a\x00b")}},
		{"too long", holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(800))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Place(context.Background(), e.account.ID, e.unit.ID, tt.in)
			if fault.CodeOf(err) != fault.Invalid {
				t.Errorf("Place = %v; want an invalid-input error", err)
			}
		})
	}
}

// race places 50 holds at once through svcs (round robin): 5 sets of 10
// overlapping intervals, the sets disjoint, and checks that exactly one
// hold of each set wins.
func race(t *testing.T, e *env, svcs ...*holds.Service) {
	t.Helper()
	var wg sync.WaitGroup
	wins := make([]atomic.Int32, 5)
	start := make(chan struct{})
	for i := range 50 {
		set, k := i%5, i/5
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Set s covers days 10s..10s+4; each request a slightly
			// different stretch of it, all sharing day 10s+2.
			from := time.Date(2030, 3, 1+10*set, 0, 0, 0, 0, time.UTC).Add(time.Duration(k) * 3 * time.Hour)
			in := holds.PlaceInput{Start: ptr(from.Format(time.RFC3339)), End: ptr(from.Add(72 * time.Hour).Format(time.RFC3339))}
			<-start
			_, err := svcs[i%len(svcs)].Place(context.Background(), e.account.ID, e.unit.ID, in)
			var ce *holds.ConflictError
			switch {
			case err == nil:
				wins[set].Add(1)
			case !errors.As(err, &ce):
				t.Errorf("Place: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for s := range wins {
		if n := wins[s].Load(); n != 1 {
			t.Errorf("set %d: %d holds won; want exactly 1", s, n)
		}
	}
	list, err := e.svc.List(context.Background(), store.ListHoldsParams{AccountID: e.account.ID, UnitID: e.unit.ID, Page: store.Page{Limit: 100}})
	if err != nil || len(list) != 5 {
		t.Errorf("List = %d holds, %v; want 5", len(list), err)
	}
	cals, _ := e.store.UnitCalendars(context.Background(), e.account.ID, []string{e.unit.ID})
	if len(cals) != 1 {
		t.Errorf("unit has %d calendars; want one native calendar", len(cals))
	}
}

func TestConcurrentHolds(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t), holds.Options{})
			race(t, e, e.svc)
		})
	}
}

// TestConcurrentHoldsTwoNodes races holds through two PostgreSQL stores
// (two nodes) on one database.
func TestConcurrentHoldsTwoNodes(t *testing.T) {
	u := storetest.PostgresURL(t)
	dbURL := storetest.PostgresSchema(t, u)
	open := func() store.Store {
		db, err := postgres.Open(context.Background(), dbURL, nil)
		if err != nil {
			t.Fatalf("open PostgreSQL store: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	e := newEnv(t, a, holds.Options{})
	race(t, e, e.svc, holds.NewService(b, holds.Options{Now: e.clock.Now}))
}

func TestExpiry(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t), holds.Options{})
			ctx := context.Background()
			in := holds.PlaceInput{Start: ptr(day(20)), End: ptr(day(22)), TTLSeconds: ptr(int64(60))}
			p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, in)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			e.clock.Add(59 * time.Second)
			if n, err := e.svc.ExpireDue(ctx); err != nil || n != 0 {
				t.Fatalf("ExpireDue before the TTL = %d, %v; want 0", n, err)
			}
			e.clock.Add(time.Second)
			// Past its expiry a hold no longer blocks, even before the
			// sweep, and cannot be confirmed.
			if _, err := e.svc.Confirm(ctx, e.account.ID, p.Hold.ID); fault.As(err) == nil ||
				fault.As(err).Code != fault.Gone || fault.As(err).Reason != fault.HoldExpired {
				t.Errorf("Confirm after expiry = %v; want Gone, hold_expired", err)
			}
			second, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, in)
			if err != nil {
				t.Fatalf("Place over an expired hold: %v", err)
			}
			if n, err := e.svc.ExpireDue(ctx); err != nil || n != 1 {
				t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
			}
			h, err := e.svc.Hold(ctx, e.account.ID, p.Hold.ID)
			if err != nil || h.State != store.HoldExpired {
				t.Fatalf("expired hold = %+v, %v", h, err)
			}
			if _, err := e.store.Event(ctx, e.account.ID, h.CalendarID, h.EventID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("expired hold's event: %v; want it deleted", err)
			}
			if _, err := e.svc.Confirm(ctx, e.account.ID, p.Hold.ID); fault.As(err) == nil || fault.As(err).Reason != fault.HoldExpired {
				t.Errorf("Confirm of an expired hold = %v; want hold_expired", err)
			}
			// The second hold is released; releasing again is a no-op,
			// confirming it is refused.
			if _, err := e.svc.Release(ctx, e.account.ID, second.Hold.ID); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if _, err := e.svc.Release(ctx, e.account.ID, second.Hold.ID); err != nil {
				t.Errorf("second Release: %v", err)
			}
			if _, err := e.svc.Confirm(ctx, e.account.ID, second.Hold.ID); fault.As(err) == nil || fault.As(err).Reason != fault.HoldReleased {
				t.Errorf("Confirm of a released hold = %v; want hold_released", err)
			}
		})
	}
}

func TestIsolation(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), holds.Options{})
	other := newEnv(t, e.store, holds.Options{})
	ctx := context.Background()
	p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(1)), End: ptr(day(2))})
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if _, err := e.svc.Place(ctx, other.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(5)), End: ptr(day(6))}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Place on another account's unit = %v; want not found", err)
	}
	for name, f := range map[string]func() error{
		"Hold":    func() error { _, err := e.svc.Hold(ctx, other.account.ID, p.Hold.ID); return err },
		"Confirm": func() error { _, err := e.svc.Confirm(ctx, other.account.ID, p.Hold.ID); return err },
		"Release": func() error { _, err := e.svc.Release(ctx, other.account.ID, p.Hold.ID); return err },
		"List": func() error {
			_, err := e.svc.List(ctx, store.ListHoldsParams{AccountID: other.account.ID, UnitID: e.unit.ID, Page: store.Page{Limit: 5}})
			return err
		},
	} {
		if err := f(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s with another account = %v; want not found", name, err)
		}
	}
}

// upstream is a loopback feed whose body can change and which can hang.
type upstream struct {
	mu     sync.Mutex
	events []string // DTSTART dates of its bookings
	hang   chan struct{}
	hits   atomic.Int64
	srv    *httptest.Server
}

// fetches returns how many requests the upstream has had.
func (u *upstream) fetches() int { return int(u.hits.Load()) }

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		hang, events := u.hang, append([]string(nil), u.events...)
		u.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		var b strings.Builder
		b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//test//EN\r\n")
		for k, d := range events {
			fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:b%d@upstream\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\nSUMMARY:Booked\r\nEND:VEVENT\r\n",
				k, strings.ReplaceAll(d, "-", ""), strings.ReplaceAll(nextDay(d), "-", ""))
		}
		b.WriteString("END:VCALENDAR\r\n")
		etag := fmt.Sprintf(`"%d"`, len(events))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(func() {
		u.mu.Lock()
		if u.hang != nil {
			close(u.hang)
			u.hang = nil
		}
		u.mu.Unlock()
		u.srv.Close()
	})
	return u
}

func nextDay(d string) string {
	t, _ := time.Parse(time.DateOnly, d)
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// importing returns an env whose unit has an imported calendar of up,
// polled once, with a running importer on the env's clock.
func importing(t *testing.T, s store.Store, up *upstream) (*env, *store.Calendar) {
	t.Helper()
	e, cals := importingN(t, s, up, 1)
	return e, cals[0]
}

// importingN is importing with n imported calendars of up, each at its own
// path.
func importingN(t *testing.T, s store.Store, up *upstream, n int) (*env, []*store.Calendar) {
	t.Helper()
	clk := &clock{now: time.Now().UTC().Truncate(time.Microsecond)}
	imp := importer.New(importer.Config{
		Store: s, Timeout: 5 * time.Second, Now: clk.Now,
		Client: outbound.NewClient(outbound.Options{
			Policy:    outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			UserAgent: "calhook-test", Timeout: 5 * time.Second, MaxRedirects: 5,
		}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := imp.Start(ctx); err != nil {
		t.Fatalf("importer Start: %v", err)
	}
	t.Cleanup(func() { cancel(); imp.Stop(context.Background()) })
	e := newEnv(t, s, holds.Options{Refresher: imp, Now: clk.Now})
	e.clock = clk
	now := clk.Now()
	var cals []*store.Calendar
	for k := range n {
		c := &store.Calendar{ID: id.New("cal"), AccountID: e.account.ID, Name: "Channel", TimeZone: "UTC", Kind: store.KindImported,
			SourceURL: fmt.Sprintf("%s/feed%d.ics", up.srv.URL, k), CreatedAt: now, UpdatedAt: now,
			Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now.Add(time.Hour)}}
		if err := s.CreateCalendar(context.Background(), c); err != nil {
			t.Fatalf("CreateCalendar: %v", err)
		}
		if _, err := s.SetCalendarUnit(context.Background(), e.account.ID, c.ID, e.unit.ID, now); err != nil {
			t.Fatalf("SetCalendarUnit: %v", err)
		}
		if res, err := imp.SyncWait(context.Background(), e.account.ID, c.ID); err != nil || res.Status == importer.StatusError {
			t.Fatalf("first poll = %+v, %v", res, err)
		}
		cals = append(cals, c)
	}
	return e, cals
}

// TestManyHoldsOneFetch places many holds at once on a unit with three
// imported sources: within importer.DefaultSyncWindow of the last poll
// they fetch nothing; past it, all of them together fetch each source
// once (the first fetch; the rest join it or find it recent).
func TestManyHoldsOneFetch(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			up := newUpstream(t)
			e, cals := importingN(t, b.Open(t), up, 3)
			ctx := context.Background()
			place := func(round, n int, want string) {
				t.Helper()
				var wg sync.WaitGroup
				for k := range n {
					wg.Go(func() {
						// A long wait: the test counts fetches, and a
						// loaded machine must not turn a source stale.
						p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{
							Start: ptr(day(100*round + 2*k)), End: ptr(day(100*round + 2*k + 1)), MaxWaitMs: ptr(int64(30_000))})
						if err != nil {
							t.Errorf("Place %d: %v", k, err)
							return
						}
						for _, s := range p.Sources {
							if s.State != holds.Fresh || want != "" && s.Outcome != want {
								t.Errorf("Place %d: source %+v; want fresh, %s", k, s, want)
							}
						}
					})
				}
				wg.Wait()
			}
			before := up.fetches()
			place(1, 20, importer.StatusRecent)
			if got := up.fetches() - before; got != 0 {
				t.Errorf("20 holds within the window of the last poll fetched %d times; want 0", got)
			}
			e.clock.Add(importer.DefaultSyncWindow)
			place(2, 20, "")
			if got := up.fetches() - before; got != len(cals) {
				t.Errorf("20 holds past the window fetched %d times; want %d, once per source", got, len(cals))
			}
		})
	}
}

// TestSourceChangedUpstream books dates upstream after the last poll: a
// hold within the sync window of that poll takes the source as fresh
// (the documented spacing), and one after it refreshes the source first,
// sees the booking and refuses.
func TestSourceChangedUpstream(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			up := newUpstream(t)
			up.events = []string{day(1)}
			e, c := importing(t, b.Open(t), up)
			ctx := context.Background()
			up.mu.Lock()
			up.events = append(up.events, day(30))
			up.mu.Unlock()
			e.clock.Add(importer.DefaultSyncWindow - time.Millisecond)
			within := holds.PlaceInput{Start: ptr(day(31)), End: ptr(day(32))}
			p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, within)
			if err != nil || p.Sources[0].Outcome != importer.StatusRecent {
				t.Fatalf("Place within the sync window = %+v, %v; want it placed on the recent poll", p, err)
			}
			if _, err := e.svc.Release(ctx, e.account.ID, p.Hold.ID); err != nil {
				t.Fatalf("Release: %v", err)
			}
			e.clock.Add(time.Millisecond)
			_, err = e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(30)), End: ptr(day(32))})
			var ce *holds.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Place over a booking made upstream = %v; want a conflict", err)
			}
			if len(ce.Conflicts) != 1 || ce.Conflicts[0].CalendarID != c.ID || ce.Conflicts[0].UID != "b1@upstream" {
				t.Errorf("conflicts = %+v; want the upstream booking b1", ce.Conflicts)
			}
			if len(ce.Sources) != 1 || ce.Sources[0].State != holds.Fresh || ce.Sources[0].Outcome != importer.StatusChanged {
				t.Errorf("sources = %+v; want one fresh, changed source", ce.Sources)
			}
			// Free dates are held, the source answering 304 after the
			// window.
			e.clock.Add(importer.DefaultSyncWindow)
			p, err = e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(40)), End: ptr(day(42))})
			if err != nil {
				t.Fatalf("Place on free dates: %v", err)
			}
			if len(p.Sources) != 1 || p.Sources[0].State != holds.Fresh || p.Sources[0].Outcome != importer.StatusNotModified ||
				!p.Sources[0].LastSuccessAt.Equal(e.clock.Now()) {
				t.Errorf("sources = %+v; want one fresh source, not modified, successful now", p.Sources)
			}
		})
	}
}

// TestSourceHangs: a source that does not answer within maxWaitMs is
// reported stale with its last success, and refused with requireFresh.
func TestSourceHangs(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			up := newUpstream(t)
			e, c := importing(t, b.Open(t), up)
			ctx := context.Background()
			up.mu.Lock()
			up.hang = make(chan struct{})
			up.mu.Unlock()
			e.clock.Add(importer.DefaultSyncWindow)
			began := time.Now()
			p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(5)), End: ptr(day(6)), MaxWaitMs: ptr(int64(300))})
			if err != nil {
				t.Fatalf("Place with a hanging source: %v", err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("Place took %s with maxWaitMs 300", took)
			}
			if len(p.Sources) != 1 || p.Sources[0].CalendarID != c.ID || p.Sources[0].State != holds.Stale ||
				p.Sources[0].Outcome != "timeout" || p.Sources[0].LastSuccessAt.IsZero() {
				t.Errorf("sources = %+v; want one stale source with its last success", p.Sources)
			}
			_, err = e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(8)), End: ptr(day(9)),
				MaxWaitMs: ptr(int64(300)), RequireFresh: true})
			var se *holds.StaleError
			if !errors.As(err, &se) || se.Sources[0].State != holds.Stale {
				t.Errorf("Place with requireFresh = %v; want a StaleError", err)
			}
			list, _ := e.svc.List(ctx, store.ListHoldsParams{AccountID: e.account.ID, UnitID: e.unit.ID, Page: store.Page{Limit: 10}})
			if len(list) != 1 {
				t.Errorf("%d holds stored; want 1 (the refused one stores nothing)", len(list))
			}
		})
	}
}

// TestSweep: the background sweep ends holds past their expiry.
func TestSweep(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), holds.Options{SweepInterval: 5 * time.Millisecond})
	ctx := context.Background()
	p, err := e.svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{Start: ptr(day(3)), End: ptr(day(4)), TTLSeconds: ptr(int64(1))})
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if err := e.svc.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer e.svc.Stop(ctx)
	time.Sleep(20 * time.Millisecond)
	if h, _ := e.svc.Hold(ctx, e.account.ID, p.Hold.ID); h.State != store.HoldHeld {
		t.Fatalf("hold before its expiry = %s; want held", h.State)
	}
	e.clock.Add(time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h, err := e.svc.Hold(ctx, e.account.ID, p.Hold.ID)
		if err == nil && h.State == store.HoldExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold after its expiry = %+v, %v; want expired by the sweep", h, err)
		}
	}
}
