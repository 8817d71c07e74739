package delivery

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// DefaultSchedule is the wait before each retry: the first attempt is
// immediate, then +1 min, +5 min, +1 h, +12 h and +24 h.
var DefaultSchedule = []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 12 * time.Hour, 24 * time.Hour}

// RetryPolicy decides when a failed attempt is tried again.
type RetryPolicy struct {
	// Schedule is the wait before each retry; its length is the number of
	// retries, so a message gets len(Schedule)+1 attempts.
	Schedule []time.Duration
	// Jitter spreads each wait by up to this fraction either way, so
	// retries of many messages do not arrive at once.
	Jitter float64
	// MaxRetryAfter caps how long a Retry-After header may delay a retry.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is the policy of PRODUCT.md with 10% jitter.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Schedule: DefaultSchedule, Jitter: 0.1, MaxRetryAfter: 24 * time.Hour}
}

// Next returns the wait before the next attempt after attempts attempts of
// the current cycle have failed, or false when the message is
// undeliverable. retryAfter, when positive, is the server's Retry-After and
// replaces the scheduled wait.
func (p RetryPolicy) Next(attempts int, retryAfter time.Duration, rnd *rand.Rand) (time.Duration, bool) {
	if attempts < 1 || attempts > len(p.Schedule) {
		return 0, false
	}
	if retryAfter > 0 {
		return min(retryAfter, p.MaxRetryAfter), true
	}
	wait := p.Schedule[attempts-1]
	if p.Jitter > 0 && rnd != nil {
		spread := float64(wait) * p.Jitter
		wait += time.Duration((rnd.Float64()*2 - 1) * spread)
	}
	return wait, true
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) of a 429
// or 503 response; other responses have none.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
