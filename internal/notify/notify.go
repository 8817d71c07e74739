// Package notify is calhook's in-process notification seam: every "this
// changed" or "work is due" signal goes through one Bus, on typed topics.
// Writers publish (services after a commit, the fan-out after enqueueing,
// the PostgreSQL adapter for other nodes' writes); workers and caches
// subscribe. A subscriber never knows which node wrote.
//
// Publishing is synchronous and never blocks: it calls each subscriber on
// the publisher's goroutine, so a subscriber must return at once (a
// non-blocking channel send, a cache deletion). A wake-up thus costs no
// goroutine hop.
package notify

import (
	"sync"
	"sync/atomic"
)

// Topic is one kind of signal, carrying values of type T.
type Topic[T any] struct {
	mu   sync.Mutex // serializes Subscribe
	subs atomic.Pointer[[]func(T)]
}

// Subscribe adds fn to the functions Publish calls. fn must return
// quickly and must not block. Subscribe is safe for concurrent use, but
// is meant for wiring, before the publishers start.
func (t *Topic[T]) Subscribe(fn func(T)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var subs []func(T)
	if p := t.subs.Load(); p != nil {
		subs = append(subs, *p...)
	}
	subs = append(subs, fn)
	t.subs.Store(&subs)
}

// Publish calls every subscriber with v, in the order they subscribed.
// It takes no lock.
func (t *Topic[T]) Publish(v T) {
	p := t.subs.Load()
	if p == nil {
		return
	}
	for _, fn := range *p {
		fn(v)
	}
}

// Bus is the set of topics. Its zero value is ready to use; a nil *Bus
// is not, so components given none make their own (see Or).
type Bus struct {
	// FeedsChanged: a write changed feeds (events, a calendar, or an
	// account's feed token or existence).
	FeedsChanged Topic[FeedChange]
	// MessagesDue: messages (webhooks, pings) may be due for delivery.
	MessagesDue Topic[Due]
	// PollsDue: a poll of an imported calendar may be due.
	PollsDue Topic[Due]
	// HooksDropped: an account's iCal Hooks were deleted.
	HooksDropped Topic[HooksDrop]
}

// Or returns b, or a new Bus of its own when b is nil, for components
// used without any wiring (tests, one-off commands).
func Or(b *Bus) *Bus {
	if b == nil {
		return &Bus{}
	}
	return b
}

// Due is the payload of the topics that only say "look again".
type Due struct{}

// FeedChange says which feeds a write changed. Every change also changes
// its account's all-calendars feed.
type FeedChange struct {
	// AccountID is the account written to; empty means "anything may have
	// changed" (another node's notes may have been missed).
	AccountID string
	// CalendarID is the calendar written to; empty means the account
	// itself: its feed token changed, or it was deleted.
	CalendarID string
	// Calendar reports that the calendar itself changed (it was created,
	// renamed, moved to another zone or deleted), not only its events.
	Calendar bool
}

// All reports whether c means "anything may have changed".
func (c FeedChange) All() bool { return c.AccountID == "" }

// HooksDrop names the account whose iCal Hooks were deleted.
type HooksDrop struct{ AccountID string }
