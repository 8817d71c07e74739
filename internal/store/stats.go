package store

import (
	"context"
	"time"
)

// StatsStore reports what an operator watches: how the delivery queue,
// the fan-out and the imports are doing. Metrics read it when they are
// scraped, so each figure is one cheap query on an index, never a scan of
// a table that grows with the traffic.
type StatsStore interface {
	// Stats returns the figures at p.Now.
	Stats(ctx context.Context, p StatsParams) (*Stats, error)
	// PoolStats returns the connection pools' figures; it reads no table.
	PoolStats() []PoolStats
}

// StatsParams says how Stats reads the figures.
type StatsParams struct {
	Now time.Time
	// OverdueAfter is how long past its due time a poll counts as overdue.
	OverdueAfter time.Duration
}

// Stats are the queue, fan-out, subscription, hook, import and conflict
// figures.
type Stats struct {
	// Queue counts the messages of the delivery queue by state.
	Queue QueueStats
	// OldestUndelivered is when the oldest message still to be delivered
	// (due, in flight, waiting to retry or rate-limited, not parked) was
	// made; zero when there is none.
	OldestUndelivered time.Time
	// OldestUnfanned is when the oldest change the fan-out has not read
	// yet occurred; zero when it is up to date.
	OldestUnfanned time.Time
	// SubscriptionsDisabled counts disabled subscriptions.
	SubscriptionsDisabled int64
	// HooksArmed counts iCal Hooks waiting for their feed's next change.
	HooksArmed int64
	// ImportsOverdue counts imported calendars due for a poll for longer
	// than StatsParams.OverdueAfter that no poller holds.
	ImportsOverdue int64
	// ConflictsOpen counts open availability conflicts whose overlap has
	// not ended at StatsParams.Now: double bookings still to be sorted
	// out. (A conflict whose overlap is past stays open but is history.)
	ConflictsOpen int64
}

// QueueStats counts messages by state.
type QueueStats struct {
	// Due: pending and due now.
	Due int64
	// InFlight: claimed by a dispatcher.
	InFlight int64
	// Retrying: an attempt failed; the next is scheduled.
	Retrying int64
	// RateLimited: given a later slot by the subscription's or host's rate.
	RateLimited int64
	// Parked: held while the subscription is disabled.
	Parked int64
	// Undeliverable: retries exhausted, kept until pruned.
	Undeliverable int64
}

// PoolStats are the figures of one connection pool.
type PoolStats struct {
	// Name tells the pools of a store apart (e.g. "read", "write").
	Name string
	// Max is the most connections the pool opens.
	Max int
	// Open is the connections open, InUse those serving a query.
	Open, InUse int
	// Waits counts the times a caller waited for a connection, and
	// WaitTime is how long they waited in all.
	Waits    int64
	WaitTime time.Duration
}
