package importer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// concurrency tracks requests in flight, per server and in all.
type concurrency struct {
	mu              sync.Mutex
	now, max        int
	hostNow, hostMx map[string]int
}

func (c *concurrency) enter(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now++
	c.max = max(c.max, c.now)
	c.hostNow[host]++
	c.hostMx[host] = max(c.hostMx[host], c.hostNow[host])
}

func (c *concurrency) leave(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now--
	c.hostNow[host]--
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSchedulerLimits runs the scheduler against three hosts and checks
// the global and per-host limits on polls in flight.
func TestSchedulerLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{realClock: true, conc: 4, perHost: 2, perAccount: 4})
	cc := &concurrency{hostNow: map[string]int{}, hostMx: map[string]int{}}
	body := feed(stamp(1, evA))
	var cals []*store.Calendar
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"} {
		up := newUpstream(t, addr)
		host := up.Listener.Addr().String()
		up.set(func(w http.ResponseWriter, r *http.Request) {
			cc.enter(host)
			defer cc.leave(host)
			time.Sleep(40 * time.Millisecond)
			w.Write([]byte(body))
		})
		for range 6 {
			cals = append(cals, h.calendar(up.URL+"/cal.ics", time.Hour))
		}
	}
	if err := h.imp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	waitFor(t, "every calendar to be polled", 20*time.Second, func() bool {
		for _, c := range cals {
			if h.get(c).Import.LastSuccessAt.IsZero() {
				return false
			}
		}
		return true
	})
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.max > 4 || cc.max < 3 {
		t.Errorf("polls in flight at most %d; want 3 or 4 (limit 4, spread over 3 hosts)", cc.max)
	}
	for host, n := range cc.hostMx {
		if n > 2 {
			t.Errorf("polls in flight to %s at most %d; want <= 2", host, n)
		}
	}
}

func TestSyncWait(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{realClock: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The first fetch blocks until released, so a sync requested during
	// it must be answered by a later poll that sees the new content.
	release := make(chan struct{})
	fetching := make(chan struct{}, 10)
	var mu sync.Mutex
	body := feed(stamp(1, evA))
	up.set(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := body // what the feed is when the request arrives
		mu.Unlock()
		fetching <- struct{}{}
		<-release
		w.Write([]byte(b))
	})
	cal := h.calendar(up.URL+"/cal.ics", time.Hour)
	if err := h.imp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	<-fetching // the scheduler's first poll is under way
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := h.imp.SyncWait(ctx, cal.AccountID, cal.ID)
		done <- outcome{res, err}
	}()
	waitFor(t, "the waiter to register", 5*time.Second, func() bool {
		h.imp.mu.Lock()
		defer h.imp.mu.Unlock()
		return len(h.imp.waiters[cal.ID]) == 1
	})
	mu.Lock()
	body = feed(stamp(2, evA), stamp(2, evC)) // the change the booking flow must see
	mu.Unlock()
	close(release)
	o := <-done
	if o.err != nil {
		t.Fatalf("SyncWait: %v", o.err)
	}
	if o.res.Status != StatusChanged || o.res.Created != 1 {
		t.Errorf("SyncWait = %s with %d created; want the poll after the request, which creates c", o.res.Status, o.res.Created)
	}
	if got := len(h.events(cal)); got != 2 {
		t.Errorf("events after the sync = %d; want 2", got)
	}
	res, err := h.imp.SyncWait(ctx, cal.AccountID, cal.ID)
	if err != nil || res.Status != StatusUnchanged {
		t.Errorf("second SyncWait = %v, %v; want unchanged", res, err)
	}

	native := &store.Calendar{ID: id.New("cal"), AccountID: h.account.ID, Name: "N", TimeZone: "UTC", Kind: store.KindNative,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := h.store.CreateCalendar(ctx, native); err != nil {
		t.Fatal(err)
	}
	if _, err := h.imp.SyncWait(ctx, native.AccountID, native.ID); !errors.Is(err, ErrNotImported) {
		t.Errorf("SyncWait(native) = %v; want ErrNotImported", err)
	}
	if err := h.imp.Sync(ctx, native.AccountID, native.ID); !errors.Is(err, ErrNotImported) {
		t.Errorf("Sync(native) = %v; want ErrNotImported", err)
	}
	if _, err := h.imp.SyncWait(ctx, native.AccountID, "cal_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SyncWait(missing) = %v; want ErrNotFound", err)
	}
}

// TestSyncCoalesced repeats the sync call, with and without wait, and
// counts the upstream's fetches: the calls within one SyncWindow share one
// poll, and every waiting caller still gets a poll that started after its
// request. The clock stands still until the test moves it past the
// window, so the count does not depend on the machine's speed.
func TestSyncCoalesced(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	up.serveFeed(feed(stamp(1, evA)), "", "")
	h := newHarness(t, harnessOpts{})
	h.imp.cfg.SyncRate = 100 // the account's rate is TestSyncRate's
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cal := h.calendar(up.URL+"/cal.ics", time.Hour)
	if err := h.imp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	waitFor(t, "the first poll to be recorded", 10*time.Second, func() bool {
		return !h.get(cal).Import.LastSyncAt.IsZero()
	})
	base := up.hits.Load()

	const waiting, queued = 30, 10
	errs := make(chan error, waiting)
	var returned atomic.Int64
	for range waiting {
		go func() {
			res, err := h.imp.SyncWait(ctx, cal.AccountID, cal.ID)
			if err == nil && res.Status == StatusError {
				err = res.Err
			}
			returned.Add(1)
			errs <- err
		}()
	}
	for range queued {
		if err := h.imp.Sync(ctx, cal.AccountID, cal.ID); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	// Every waiting caller is either answered by the first poll or
	// waits for the one at the end of the window.
	waitFor(t, "the waiting callers to register", 10*time.Second, func() bool {
		h.imp.mu.Lock()
		defer h.imp.mu.Unlock()
		return int(returned.Load())+len(h.imp.waiters[cal.ID]) == waiting
	})
	h.clock.Advance(DefaultSyncWindow)
	h.imp.Notify()
	for range waiting {
		if err := <-errs; err != nil {
			t.Errorf("SyncWait: %v", err)
		}
	}
	if got := up.hits.Load() - base; got < 1 || got > 2 {
		t.Errorf("%d sync calls in one window made %d fetches; want 1 or 2 (one now, one at the end of the window)", waiting+queued, got)
	}
}

// TestSlotsSharedBetweenAccounts gives one account eight calendars whose
// hosts (eight names, so the per-host limit does not apply) accept the
// connection and never answer, then creates another account's calendar:
// it must be polled while the hanging fetches still hold their slots.
func TestSlotsSharedBetweenAccounts(t *testing.T) {
	t.Parallel()
	// The hanging fetches outlast the test's wait, so the other
	// account's poll can only come from a free slot, not a timeout.
	h := newHarness(t, harnessOpts{realClock: true, conc: 8, perHost: 2, timeout: time.Minute})
	release := make(chan struct{})
	var hanging atomic.Int64
	var hostile []*store.Calendar
	for k := range 8 {
		up := newUpstream(t, fmt.Sprintf("127.0.0.%d:0", k+2))
		up.set(func(w http.ResponseWriter, r *http.Request) {
			hanging.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		hostile = append(hostile, h.calendar(up.URL+"/cal.ics", time.Hour))
	}
	// Unblock the handlers before the servers close (cleanups run last
	// in, first out).
	t.Cleanup(func() { close(release) })
	if err := h.imp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	want := int64(h.imp.cfg.PerAccount)
	waitFor(t, "the first account's fetches to hang", 10*time.Second, func() bool { return hanging.Load() >= want })

	good := newUpstream(t, "127.0.0.10:0")
	good.serveFeed(feed(stamp(1, evA)), "", "")
	other := &store.Account{
		ID: id.New("acc"), Name: "Other", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
	if err := h.store.CreateAccount(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cal := &store.Calendar{
		ID: id.New("cal"), AccountID: other.ID, Name: "Good", TimeZone: "UTC", Kind: store.KindImported,
		SourceURL: good.URL + "/cal.ics", PollInterval: time.Hour, CreatedAt: now, UpdatedAt: now,
		Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now},
	}
	if err := h.store.CreateCalendar(context.Background(), cal); err != nil {
		t.Fatal(err)
	}
	h.imp.Notify()
	waitFor(t, "the other account's first poll", 30*time.Second, func() bool {
		return !h.get(cal).Import.LastSuccessAt.IsZero()
	})
	if got := hanging.Load(); got != want {
		t.Errorf("fetches of the first account in flight = %d; want its share, %d", got, want)
	}
	for _, c := range hostile {
		if !h.get(c).Import.LastSyncAt.IsZero() {
			t.Errorf("calendar %s of the first account finished a poll; want every fetch still hanging", c.ID)
		}
	}
}

// TestSyncRate asks for syncs of one account on a clock that stands still:
// the burst is accepted, the next one is refused with the time to wait,
// another account is not affected, and after the wait one more is
// accepted.
func TestSyncRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	cal := h.calendar("http://127.0.0.1:9/cal.ics", time.Hour)
	burst := 2 * DefaultSyncRate
	for k := range burst {
		if err := h.imp.Sync(ctx, cal.AccountID, cal.ID); err != nil {
			t.Fatalf("Sync %d of the burst of %d: %v", k+1, burst, err)
		}
	}
	err := h.imp.Sync(ctx, cal.AccountID, cal.ID)
	rle := fault.As(err)
	if rle == nil || rle.Code != fault.RateLimited || rle.RetryAfter <= 0 || rle.RetryAfter > time.Second/DefaultSyncRate {
		t.Fatalf("Sync past the burst = %v; want a RateLimited fault with a wait within (0, %s]", err, time.Second/DefaultSyncRate)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.imp.SyncWait(wctx, cal.AccountID, cal.ID); fault.CodeOf(err) != fault.RateLimited {
		t.Errorf("SyncWait past the burst = %v; want a RateLimited fault at once", err)
	}
	other := &store.Account{
		ID: id.New("acc"), Name: "Other", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now(),
	}
	if err := h.store.CreateAccount(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := h.imp.Sync(ctx, other.ID, cal.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Sync by another account = %v; want its own answer (not found), not the first account's limit", err)
	}
	h.clock.Advance(rle.RetryAfter)
	if err := h.imp.Sync(ctx, cal.AccountID, cal.ID); err != nil {
		t.Errorf("Sync after the wait = %v; want it accepted", err)
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.imp.Stop(context.Background())
	h.imp.Stop(context.Background())
}

// TestRefresh applies the rule of manual syncs to Refresh, on a clock that
// moves only when told: a calendar fetched successfully less than
// SyncWindow ago is fresh without a fetch; after the window one refresh
// fetches and those that come while it is fetching join it; Refresh is
// outside the account's sync rate.
func TestRefresh(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	var fetches atomic.Int32
	gate := make(chan struct{})
	var gated atomic.Bool
	up.set(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if gated.Load() {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Write([]byte(feed(stamp(1, evA))))
	})
	h := newHarness(t, harnessOpts{})
	h.imp.cfg.SyncRate = 1
	cal := h.calendar(up.URL+"/cal.ics", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.imp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	waitFor(t, "the first poll", 10*time.Second, func() bool { return !h.get(cal).Import.LastSuccessAt.IsZero() })

	refresh := func(n int) []*Result {
		t.Helper()
		out := make([]*Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() { out[k], errs[k] = h.imp.Refresh(ctx, cal.AccountID, cal.ID) })
		}
		wg.Wait()
		for k, err := range errs {
			if err != nil {
				t.Fatalf("Refresh %d: %v", k, err)
			}
		}
		return out
	}
	// Within the window of the last success: fresh as it is, however
	// many, and past the sync rate (1/s, bursts of 2).
	for k, res := range refresh(20) {
		if res.Status != StatusRecent || res.Calendar == nil || res.Calendar.Import.LastSuccessAt.IsZero() {
			t.Errorf("Refresh %d within the window = %+v; want %s with the calendar", k, res, StatusRecent)
		}
	}
	if got := fetches.Load(); got != 1 {
		t.Errorf("fetches after 20 refreshes within the window = %d; want 1 (the first poll)", got)
	}

	// Past the window: one fetch, which the refreshes arriving while it
	// fetches join.
	h.clock.Advance(h.imp.cfg.SyncWindow)
	gated.Store(true)
	first := make(chan *Result, 1)
	go func() {
		res, err := h.imp.Refresh(ctx, cal.AccountID, cal.ID)
		if err != nil {
			t.Errorf("first Refresh past the window: %v", err)
		}
		first <- res
	}()
	waitFor(t, "the refresh's fetch", 10*time.Second, func() bool { return fetches.Load() == 2 })
	joined := make(chan []*Result, 1)
	go func() { joined <- refresh(10) }()
	waitFor(t, "the refreshes to join the poll", 10*time.Second, func() bool {
		h.imp.mu.Lock()
		defer h.imp.mu.Unlock()
		// The first refresh's waiter, taken when the poll started, and
		// the ten that joined.
		return h.imp.fetching[cal.ID] != nil && len(h.imp.fetching[cal.ID].waiters) == 11
	})
	close(gate)
	for k, res := range append([]*Result{<-first}, <-joined...) {
		if res == nil || res.Status != StatusUnchanged {
			t.Errorf("Refresh %d past the window = %+v; want the poll's outcome, %s", k, res, StatusUnchanged)
		}
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches = %d; want 2 (one for the 11 refreshes past the window)", got)
	}
	if _, err := h.imp.Refresh(ctx, h.account.ID, "cal_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Refresh of a missing calendar = %v; want not found", err)
	}
}
