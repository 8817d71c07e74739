package holds_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// placeCounter is a holds.Store that counts the PlaceHolds calls in
// flight on each unit, and passes every call on to the real store.
type placeCounter struct {
	store.Store
	mu     sync.Mutex
	inside map[string]int
	most   int
}

func (c *placeCounter) PlaceHolds(ctx context.Context, ps []store.HoldPlacement) ([]error, error) {
	unit := ps[0].Hold.UnitID
	c.mu.Lock()
	c.inside[unit]++
	c.most = max(c.most, c.inside[unit])
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inside[unit]--
		c.mu.Unlock()
	}()
	return c.Store.PlaceHolds(ctx, ps)
}

// gatheringRefresher answers Refresh only once n calls are in it at once,
// or after a timeout, which it records: a Refresher that holds could only
// pass through one by one would never gather them.
type gatheringRefresher struct {
	n        int
	mu       sync.Mutex
	entered  int
	gathered chan struct{}
	timedOut atomic.Bool
}

func (r *gatheringRefresher) Refresh(ctx context.Context, _, _ string) (*importer.Result, error) {
	r.mu.Lock()
	if r.entered++; r.entered == r.n {
		close(r.gathered)
	}
	r.mu.Unlock()
	select {
	case <-r.gathered:
	case <-time.After(10 * time.Second):
		r.timedOut.Store(true)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &importer.Result{Status: importer.StatusNotModified}, nil
}

// TestRefreshBeforeTheUnitQueue places disjoint holds on one unit at once:
// their source refreshes run together (none waits for another hold), and
// then they reach the store one group at a time (the unit's queue), so
// that a node holds at most one database transaction per unit.
func TestRefreshBeforeTheUnitQueue(t *testing.T) {
	const holdsAtOnce = 12
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ref := &gatheringRefresher{n: holdsAtOnce, gathered: make(chan struct{})}
			e := newEnv(t, s, holds.Options{})
			ctx := context.Background()
			now := e.clock.Now()
			cal := &store.Calendar{ID: id.New("cal"), AccountID: e.account.ID, Name: "Channel", TimeZone: "UTC",
				Kind: store.KindImported, SourceURL: "http://127.0.0.1:9/feed.ics", CreatedAt: now, UpdatedAt: now,
				Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now.Add(time.Hour)}}
			if err := s.CreateCalendar(ctx, cal); err != nil {
				t.Fatalf("CreateCalendar: %v", err)
			}
			if _, err := s.SetCalendarUnit(ctx, e.account.ID, cal.ID, e.unit.ID, now); err != nil {
				t.Fatalf("SetCalendarUnit: %v", err)
			}
			counter := &placeCounter{Store: s, inside: map[string]int{}}
			svc := holds.NewService(counter, holds.Options{Now: e.clock.Now, Refresher: ref})
			var wg sync.WaitGroup
			for k := range holdsAtOnce {
				wg.Go(func() {
					p, err := svc.Place(ctx, e.account.ID, e.unit.ID, holds.PlaceInput{
						Start: ptr(day(2 * k)), End: ptr(day(2*k + 1)), MaxWaitMs: ptr(int64(20_000))})
					switch {
					case err != nil:
						t.Errorf("Place %d: %v", k, err)
					case len(p.Sources) != 1 || p.Sources[0].State != holds.Fresh:
						t.Errorf("Place %d: sources %+v; want one fresh", k, p.Sources)
					}
				})
			}
			wg.Wait()
			if ref.timedOut.Load() {
				t.Errorf("the refreshes of %d holds of one unit did not run at once", holdsAtOnce)
			}
			if counter.most != 1 {
				t.Errorf("%d PlaceHolds calls of one unit in flight at once; want 1", counter.most)
			}
			list, err := svc.List(ctx, store.ListHoldsParams{AccountID: e.account.ID, UnitID: e.unit.ID, Page: store.Page{Limit: 50}})
			if err != nil || len(list) != holdsAtOnce {
				t.Errorf("List = %d holds, %v; want %d", len(list), err, holdsAtOnce)
			}
		})
	}
}
