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
	p := newPipeline(t, pipelineOpts{timeout: 5 * time.Second, realTime: true, workers: 64, perSub: 16})
	// arrival is one request as the receiver saw it come in: when, and
	// how many were in flight with it.
	type arrival struct {
		at       time.Time
		inFlight int
	}
	var (
		mu       sync.Mutex
		latency  = time.Millisecond
		inFlight int
		arrivals []arrival
		seen     = map[string]int{}
	)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		arrivals = append(arrivals, arrival{time.Now(), inFlight})
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
	// their webhooks and returns the phase's arrivals.
	total := 0
	phase := func(name string, d time.Duration, n int) []arrival {
		mu.Lock()
		latency = d
		from := len(arrivals)
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
		for range n {
			rc.wait(t, 30*time.Second)
		}
		total += n
		mu.Lock()
		defer mu.Unlock()
		return append([]arrival(nil), arrivals[from:]...)
	}
	// peak is the most in flight at any of arrivals.
	peak := func(arrivals []arrival) int {
		n := 0
		for _, a := range arrivals {
			n = max(n, a.inFlight)
		}
		return n
	}
	// 1,000 messages (a batch's most): under -race on a loaded machine
	// "1 ms" answers take several ms, and the limit needs time to grow.
	// Its last quarter comes when the limit has had time to grow.
	fastArrivals := phase("fast", time.Millisecond, 1000)
	fast := peak(fastArrivals[3*len(fastArrivals)/4:])
	// 400 ms, not 200: on a loaded 2-core CI machine loopback answers of
	// the fast phase take tens of milliseconds, the limit's base latency
	// drifts there, and 200 ms is then barely "well above" it (the limit
	// is cut by 15 % per round trip instead of half). The limit is cut
	// at most once a round trip, and a cut can miss its round by a hair,
	// so the arrivals that count come after four round trips. 40
	// messages: few enough that the slow answers do not yet become the
	// new normal (the limit would grow again after about 50).
	slowArrivals := phase("slow", 400*time.Millisecond, 40)
	var late []arrival
	for _, a := range slowArrivals {
		if a.at.Sub(slowArrivals[0].at) > 4*400*time.Millisecond+100*time.Millisecond {
			late = append(late, a)
		}
	}
	if len(late) == 0 {
		t.Fatalf("at 400 ms, all %d webhooks arrived within four round trips; want the limit to have fallen", len(slowArrivals))
	}
	slow := peak(late)
	// As many as the first fast phase: the limit has as far to grow
	// again.
	againArrivals := phase("fast again", time.Millisecond, 1000)
	again := peak(againArrivals[3*len(againArrivals)/4:])
	t.Logf("deliveries in flight at most: %d at 1 ms (last quarter), %d at 400 ms (after four round trips), %d at 1 ms again (last quarter)", fast, slow, again)
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
