package store

import "time"

// RateState is the rate limiter state of one key (a subscription, or the
// host of iCal Hooks pings), kept in the database so that every node of a
// cluster paces against the same sends.
//
// Two instants make the limiter. TAT is GCRA's theoretical arrival time:
// the slot after the last one handed out, so that messages over the rate
// each get their own slot (their due time) in one pass, instead of all
// waking at once and being pushed back again. Next is the earliest time the
// next message may actually go out: the last send plus the interval. A
// message whose slot came due while its dispatcher was late would go out
// together with the slots after it; Next spaces them again, so the rate
// holds at the receiver too, not only on average.
//
// Spacing is enforced to within PaceWindow: a claim sends every message
// whose turn comes within the window (or a tenth of the interval, if that
// is longer), so a high rate is not capped at one message per claim. A rate
// of 100,000 a second thus goes out in bursts of up to 500 per claim, and
// never faster than the rate over any span longer than the window.
type RateState struct {
	TAT  time.Time
	Next time.Time

	// queue is the latest time this claim gave a late reserved message;
	// it spaces several late ones apart and is not stored.
	queue time.Time
}

// PaceWindow is how far ahead of its turn a rate-limited message may go
// out. It must cover the time between two claims of a dispatcher that is
// held back by a limit (a millisecond or more), or each claim would send a
// single message of the key and a high rate would fall to the claim rate.
const PaceWindow = 5 * time.Millisecond

// Pace decides when a due message of the key may go out, at most perSecond
// a second, and updates s: it goes out now (send), or it is due again at
// the returned time, holding a reserved slot. reserved says the message got
// its slot from an earlier Pace; a reserved message does not take a new
// slot, it only waits for the spacing of actual sends.
func (s *RateState) Pace(now time.Time, perSecond int, reserved bool) (send bool, at time.Time) {
	interval := time.Second / time.Duration(perSecond)
	// Nodes read the clock at slightly different moments around a claim,
	// and claims come a millisecond or more apart: a message this close to
	// its turn goes now rather than a full interval or a claim later.
	// Spacing does not drift: Next moves on from itself.
	early := now.Add(max(interval/10, PaceWindow))
	if reserved {
		if !early.Before(s.Next) {
			s.sent(now, interval)
			return true, now
		}
		at = later(s.Next, s.queue.Add(interval))
		s.queue = at
		return false, at
	}
	slot := later(later(s.TAT, s.Next), now)
	s.TAT = slot.Add(interval)
	if !early.Before(slot) {
		s.sent(now, interval)
		return true, now
	}
	return false, slot
}

// sent records a send at now.
func (s *RateState) sent(now time.Time, interval time.Duration) {
	s.Next = later(s.Next, now).Add(interval)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Limit is one rate limiter a due message counts against: its key and
// its rate in messages per second.
type Limit struct {
	Key  string
	Rate int
}

// Limiter keys. A subscription's key is its id (the adapters store its
// state with the subscription or under their own prefix); a host's keys
// tell pings and webhooks apart, so each has its own rate.
const (
	pingHostPrefix    = "host:"
	webhookHostPrefix = "webhook:"
)

// WebhookHostKey is the limiter key of webhook deliveries to host.
func WebhookHostKey(host string) string { return webhookHostPrefix + host }

// MessageLimits returns the limiters a due message counts against, with a
// rate above zero: a ping its hook's host (at p.HostRate); a webhook its
// subscription (at subRate, keyed subKey) and the host of the
// subscription's URL (at p.WebhookHostRate).
func MessageLimits(p ClaimParams, subKey string, subRate int, subURL, hookHost string) []Limit {
	var out []Limit
	if hookHost != "" {
		if p.HostRate > 0 {
			out = append(out, Limit{Key: pingHostPrefix + hookHost, Rate: p.HostRate})
		}
		return out
	}
	if subRate > 0 {
		out = append(out, Limit{Key: subKey, Rate: subRate})
	}
	if p.WebhookHostRate > 0 {
		if host := SourceHost(subURL); host != "" {
			out = append(out, Limit{Key: WebhookHostKey(host), Rate: p.WebhookHostRate})
		}
	}
	return out
}

// PaceAll paces a due message against each of its limiters (their states
// by key, all present): it goes out now only if every limiter lets it,
// otherwise it is due again when the latest of them allows. A limiter
// that let it go has counted a send; the message then waits for that
// limiter's spacing once more when it comes back, a delay, never a loss.
func PaceAll(states map[string]*RateState, limits []Limit, now time.Time, reserved bool) (send bool, at time.Time) {
	send = true
	for _, l := range limits {
		ok, t := states[l.Key].Pace(now, l.Rate, reserved)
		if !ok {
			send, at = false, later(at, t)
		}
	}
	return send, at
}
