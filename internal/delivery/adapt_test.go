package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/subscription"
)

// TestConcurrencyAdapts: a loopback receiver whose latency goes from 1 ms
// to 400 ms and back sees the deliveries in flight rise, fall and rise
// again, every message arriving exactly once and none timing out.
func TestConcurrencyAdapts(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, pipelineOpts{timeout: 5 * time.Second, realTime: true, workers: 64, perSub: 32})
	var (
		mu       sync.Mutex
		latency  = time.Millisecond
		inFlight int
		peak     int
		seen     = map[string]int{}
	)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		seen[r.Header.Get("webhook-id")]++
		d := latency
		mu.Unlock()
		time.Sleep(d)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	p.subscribe(rc.URL, subscription.Input{})
	// phase writes n events with the receiver answering in d, waits for
	// their webhooks and returns the most that were in flight at once in
	// the phase's last quarter, when the limit has had some round trips
	// to adapt.
	total := 0
	phase := func(name string, d time.Duration, n int) int {
		mu.Lock()
		latency = d
		mu.Unlock()
		// One batch, so that the messages queue up at once and the
		// limit, not the writes, decides how many are in flight.
		items := make([]calendar.BatchItem, n)
		for i := range items {
			items[i] = calendar.BatchItem{Op: calendar.OpCreate, Event: &calendar.EventInput{
				Summary: ptr(fmt.Sprintf("%s %d", name, i)), Start: ptr("2026-12-01T15:00:00"), End: ptr("2026-12-03T10:00:00"),
			}}
		}
		res, err := p.cals.WriteBatch(context.Background(), p.acct, p.cal, items)
		if err != nil {
			t.Fatalf("write batch: %v", err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("batch item: %v", r.Err)
			}
		}
		for i := range n {
			if i == 3*n/4 {
				mu.Lock()
				peak = inFlight
				mu.Unlock()
			}
			rc.wait(t, 30*time.Second)
		}
		total += n
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
	// 1,000 messages (a batch's most): under -race on a loaded machine
	// "1 ms" answers take several ms, and the limit needs time to grow.
	fast := phase("fast", time.Millisecond, 1000)
	// 400 ms, not 200: on a loaded 2-core CI machine loopback answers of
	// the fast phase take tens of milliseconds, the limit's base latency
	// drifts there, and 200 ms is then barely "well above" it (the limit
	// is cut by 15 % per round trip instead of half). 120 messages: the
	// last quarter comes after about five round trips.
	slow := phase("slow", 400*time.Millisecond, 120)
	// As many as the first fast phase: the limit has as far to grow
	// again (600 once left it at the slow phase's 12 in a CI run).
	again := phase("fast again", time.Millisecond, 1000)
	t.Logf("deliveries in flight at most, in each phase's last quarter: %d at 1 ms, %d at 400 ms, %d at 1 ms again", fast, slow, again)
	if fast <= 4 {
		t.Errorf("at 1 ms, %d deliveries in flight at most; want the limit grown above its start (4)", fast)
	}
	if 5*slow > 4*fast {
		t.Errorf("at 400 ms, %d deliveries in flight at most; want a fifth fewer than the %d at 1 ms, or more", slow, fast)
	}
	if again <= slow {
		t.Errorf("back at 1 ms, %d deliveries in flight at most; want more than the %d at 400 ms", again, slow)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Errorf("%d distinct webhooks arrived; want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("webhook %s arrived %d times; want once (nothing timed out, nothing retried)", id, n)
		}
	}
}
