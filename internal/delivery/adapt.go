package delivery

import (
	"context"
	"math"
	"sync"
	"time"
)

// adaptive is the concurrency limit of one target key (a subscription, or
// a host for pings), adapted to how the receiver answers, AIMD-like: it
// grows by about one per round trip while the limit is in use and the
// answers come back fast, and shrinks by half on a timeout, a 429 or 503
// or a failed connection, and in proportion when latency rises well above
// the fastest seen lately (by half at most) — at most once per round
// trip, so the answers of one slow round do not cut it again and again.
// Latency alone never takes it below its start (initialLimit): on a busy
// machine a loopback answer can take tens of milliseconds for reasons that
// are not the receiver's, and a limit of 1 would then let a backlog grow;
// only the receiver's own signals take it lower. It never leaves
// [1, ceiling]. A fast receiver thus gets many deliveries
// in flight, and one that slows down gets fewer, rather than more
// requests that time out; once its new latency has become the normal
// (base forgets), the limit grows again to what the receiver takes.
type adaptive struct {
	mu      sync.Mutex
	limit   float64
	ceiling int
	inUse   int
	waiters []chan struct{}
	// base is the fastest answer seen lately; it forgets slowly, so a
	// receiver that stays slower becomes the new normal.
	base    time.Duration
	lastCut time.Time
}

// Tuning of adaptive.
const (
	// initialLimit is where a new key's limit starts.
	initialLimit = 4
	// slowFactor and slowSlack define rising latency: an answer slower
	// than slowFactor × base + slowSlack.
	slowFactor = 4
	slowSlack  = 50 * time.Millisecond
	// baseForget is how much of the gap to a slower answer base moves by
	// per answer.
	baseForget = 1.0 / 256
)

// newAdaptive returns the limit of a subscription, which starts at
// initialLimit and grows while the receiver answers fast.
func newAdaptive(ceiling int) *adaptive {
	return &adaptive{limit: float64(min(initialLimit, ceiling)), ceiling: ceiling}
}

// newPingLimit returns the limit of a host that iCal Hooks pings go to: it
// starts at the ceiling, as the per-host limit did before limits adapted.
// A ping is a bodiless HEAD, and the host's ping rate
// (--icalhooks-host-rate) already bounds them; starting at initialLimit
// made a 10,000-hook fan-out claim 8 pings at a time and take 1.7 times
// as long. The receiver's own signals still halve it.
func newPingLimit(ceiling int) *adaptive {
	return &adaptive{limit: float64(ceiling), ceiling: ceiling}
}

// current is the whole number of deliveries the limit allows now.
func (a *adaptive) current() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.currentLocked()
}

func (a *adaptive) currentLocked() int { return max(1, int(math.Floor(a.limit))) }

// acquire waits until the limit has room for one more delivery, or ctx
// ends (false).
func (a *adaptive) acquire(ctx context.Context) bool {
	a.mu.Lock()
	if a.inUse < a.currentLocked() && len(a.waiters) == 0 {
		a.inUse++
		a.mu.Unlock()
		return true
	}
	ch := make(chan struct{}, 1)
	a.waiters = append(a.waiters, ch)
	a.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, w := range a.waiters {
			if w == ch {
				a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
				return false
			}
		}
		// Granted meanwhile: give it back.
		a.inUse--
		a.wakeLocked()
		return false
	}
}

// release frees what acquire took.
func (a *adaptive) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inUse--
	a.wakeLocked()
}

// wakeLocked hands free room to waiters, oldest first.
func (a *adaptive) wakeLocked() {
	for len(a.waiters) > 0 && a.inUse < a.currentLocked() {
		a.inUse++
		a.waiters[0] <- struct{}{}
		a.waiters = a.waiters[1:]
	}
}

// observe adapts the limit to one answer: its latency, and whether it
// said the receiver is overloaded (a timeout, 429, 503, a failed
// connection).
func (a *adaptive) observe(latency time.Duration, overloaded bool, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !overloaded {
		switch {
		case a.base == 0 || latency < a.base:
			a.base = latency
		default:
			a.base += time.Duration(float64(latency-a.base) * baseForget)
		}
	}
	threshold := slowFactor*a.base + slowSlack
	slow := latency > threshold
	switch {
	case overloaded || slow:
		// Once per round trip: the answers sent before the cut would
		// otherwise cut again for the same congestion.
		if now.Sub(a.lastCut) < latency {
			return
		}
		a.lastCut = now
		if overloaded {
			a.limit = max(1, a.limit/2)
			return
		}
		factor := min(0.9, max(0.5, float64(threshold)/float64(latency)))
		a.limit = max(min(initialLimit, float64(a.ceiling)), min(a.limit, a.limit*factor))
	case a.inUse >= a.currentLocked()-1:
		// The limit is in use and the answer was fast: one more per
		// round trip's worth of answers.
		a.limit = min(float64(a.ceiling), a.limit+1/a.limit)
		a.wakeLocked()
	}
}

// DefaultPerSubscription is the default ceiling of the deliveries in
// flight to one subscription (DispatcherConfig.PerSubscription).
const DefaultPerSubscription = 64
