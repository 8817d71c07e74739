package holds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// gate is a Store whose first PlaceHolds call waits for release, and
// which records the size of every call's group.
type gate struct {
	Store
	release chan struct{}
	mu      sync.Mutex
	groups  []int
}

func (g *gate) PlaceHolds(ctx context.Context, ps []store.HoldPlacement) ([]error, error) {
	g.mu.Lock()
	first := len(g.groups) == 0
	g.groups = append(g.groups, len(ps))
	g.mu.Unlock()
	if first {
		<-g.release
	}
	return g.Store.PlaceHolds(ctx, ps)
}

// waiting returns how many holds of the unit are queued.
func (q *unitQueues) waiting(accountID, unitID string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u := q.units[unitKey{accountID, unitID}]; u != nil {
		return len(u.waiting)
	}
	return 0
}

// TestUnitQueuesGroup: holds that arrive while a unit's group is placed
// queue, and the next group places them all in one call, each checked
// against those before it (of two overlapping holds in it, the first
// wins); one whose context ends while it waits gives up and is not
// placed; the queue is gone once it is empty.
func TestUnitQueuesGroup(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			acc := &store.Account{ID: id.New("acc"), Name: "Test", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
				CreatedAt: now, UpdatedAt: now}
			if err := s.CreateAccount(ctx, acc); err != nil {
				t.Fatal(err)
			}
			unit := &store.Unit{ID: id.New("unit"), AccountID: acc.ID, Name: "Flat", TimeZone: "UTC", CreatedAt: now, UpdatedAt: now}
			if err := s.CreateUnit(ctx, unit); err != nil {
				t.Fatal(err)
			}
			g := &gate{Store: s, release: make(chan struct{})}
			svc := NewService(g, Options{})
			place := func(ctx context.Context, day int) error {
				start := time.Date(2030, 1, day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
				end := time.Date(2030, 1, day+1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
				_, err := svc.Place(ctx, acc.ID, unit.ID, PlaceInput{Start: &start, End: &end})
				return err
			}

			// The first hold's group is held at the gate; 10 more queue:
			// every other night, the 9th twice (the first of them queued
			// wins), and one that gives up.
			first := make(chan error, 1)
			go func() { first <- place(ctx, 1) }()
			waitFor(t, func() bool { return svc.units.busy() == 1 })
			days := []int{3, 5, 7, 9, 9, 11, 13, 15, 17, 19}
			errs := make([]error, len(days))
			var wg sync.WaitGroup
			for i, d := range days {
				waitFor(t, func() bool { return svc.units.waiting(acc.ID, unit.ID) == i })
				wg.Go(func() { errs[i] = place(ctx, d) })
			}
			waitFor(t, func() bool { return svc.units.waiting(acc.ID, unit.ID) == len(days) })
			gaveUp, cancel := context.WithCancel(ctx)
			cancelled := make(chan error, 1)
			go func() { cancelled <- place(gaveUp, 25) }()
			waitFor(t, func() bool { return svc.units.waiting(acc.ID, unit.ID) == len(days)+1 })
			cancel()
			if err := <-cancelled; !errors.Is(err, context.Canceled) {
				t.Errorf("the hold that gave up = %v; want context.Canceled", err)
			}
			close(g.release)
			if err := <-first; err != nil {
				t.Fatalf("first hold: %v", err)
			}
			wg.Wait()
			for i, err := range errs {
				var ce *ConflictError
				if i == 4 {
					if !errors.As(err, &ce) {
						t.Errorf("the second hold of day 9 = %v; want a conflict", err)
					}
				} else if err != nil {
					t.Errorf("hold of day %d: %v", days[i], err)
				}
			}
			if len(g.groups) != 2 || g.groups[0] != 1 || g.groups[1] != len(days) {
				t.Errorf("groups placed: %v; want [1 %d]", g.groups, len(days))
			}
			list, err := s.ListHolds(ctx, store.ListHoldsParams{AccountID: acc.ID, UnitID: unit.ID, Page: store.Page{Limit: 50}})
			if err != nil || len(list) != len(days) { // the first, and the queued but one
				t.Errorf("ListHolds = %d holds, %v; want %d", len(list), err, len(days))
			}
			if n := svc.units.busy(); n != 0 {
				t.Errorf("%d unit queues left; want 0", n)
			}
		})
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}
