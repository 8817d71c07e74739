package holds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestUnitLocks: callers of one key take turns, callers of other keys do
// not wait for them, a waiter whose context ends gives up, and the map
// forgets a key once nobody holds or waits for it.
func TestUnitLocks(t *testing.T) {
	t.Parallel()
	var l unitLocks
	ctx := context.Background()

	// 20 callers of each of two keys: at most one of a key inside at a
	// time, and both keys inside at once (each key's first caller waits
	// for the other key's).
	var mu sync.Mutex
	var inside, most [2]int
	both := make(chan struct{})
	var bothOnce sync.Once
	var firsts sync.WaitGroup
	firsts.Add(2)
	var wg sync.WaitGroup
	for i := range 40 {
		k := i % 2
		first := i < 2
		wg.Go(func() {
			unlock, err := l.lock(ctx, []string{"unit_a", "unit_b"}[k])
			if err != nil {
				t.Errorf("lock: %v", err)
				return
			}
			mu.Lock()
			inside[k]++
			most[k] = max(most[k], inside[k])
			mu.Unlock()
			if first {
				firsts.Done()
				firsts.Wait()
				bothOnce.Do(func() { close(both) })
			}
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[k]--
			mu.Unlock()
			unlock()
		})
	}
	select {
	case <-both:
	case <-time.After(10 * time.Second):
		t.Fatal("the first callers of two keys did not hold their locks at once")
	}
	wg.Wait()
	for k := range most {
		if m := most[k]; m != 1 {
			t.Errorf("key %d: %d callers inside at once; want 1", k, m)
		}
	}
	if n := l.held(); n != 0 {
		t.Errorf("%d keys left in the map after every caller unlocked; want 0", n)
	}

	// A waiter whose context ends gives up with its error, and the
	// holder's unlock then leaves nothing behind.
	unlock, err := l.lock(ctx, "unit_a")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(wctx, "unit_a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock of a held key with a context that ends = %v; want context.DeadlineExceeded", err)
	}
	if n := l.held(); n != 1 {
		t.Errorf("%d keys in the map while one is held; want 1", n)
	}
	unlock()
	if n := l.held(); n != 0 {
		t.Errorf("%d keys left in the map; want 0", n)
	}
}
