package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/calhook/calhook/internal/store"
)

// Stats reads the operator's figures, each with a query that reads an
// index of only the rows it counts (messages_due, messages_undeliverable,
// subscriptions_disabled, icalhooks_feed, calendars_next_poll, the change
// log's primary key, conflicts_open_b).
func (db *DB) Stats(ctx context.Context, p store.StatsParams) (*store.Stats, error) {
	var st store.Stats
	now := micros(p.Now)
	var oldest sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT
			coalesce(sum(status = 'delivering'), 0),
			coalesce(sum(status = 'pending' AND next_attempt_at <= ?1), 0),
			coalesce(sum(status = 'pending' AND next_attempt_at > ?1 AND next_attempt_at < ?2 AND slot_reserved = 0), 0),
			coalesce(sum(status = 'pending' AND next_attempt_at > ?1 AND next_attempt_at < ?2 AND slot_reserved = 1), 0),
			coalesce(sum(next_attempt_at >= ?2), 0),
			min(CASE WHEN next_attempt_at < ?2 THEN created_at END)
		FROM messages WHERE status IN ('pending', 'delivering')`, now, parked).Scan(
		&st.Queue.InFlight, &st.Queue.Due, &st.Queue.Retrying, &st.Queue.RateLimited, &st.Queue.Parked, &oldest)
	if err != nil {
		return nil, fmt.Errorf("stats: queue: %w", err)
	}
	if oldest.Valid {
		st.OldestUndelivered = fromMicros(oldest.Int64)
	}
	var unfanned sql.NullInt64
	err = db.read.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM messages WHERE status = 'undeliverable'),
			(SELECT count(*) FROM subscriptions WHERE disabled = 1),
			(SELECT count(*) FROM icalhooks WHERE armed = 1),
			(SELECT count(*) FROM calendars WHERE kind = 'imported' AND next_poll_at < ?1),
			(SELECT occurred_at FROM changes
				WHERE id > coalesce((SELECT position FROM cursors WHERE name = ?2), 0) ORDER BY id LIMIT 1),
			(SELECT count(*) FROM conflicts WHERE state = 'open' AND overlap_end > ?3)`,
		micros(p.Now.Add(-p.OverdueAfter)), store.FanOutCursor, micros(p.Now)).Scan(
		&st.Queue.Undeliverable, &st.SubscriptionsDisabled, &st.HooksArmed, &st.ImportsOverdue, &unfanned, &st.ConflictsOpen)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if unfanned.Valid {
		st.OldestUnfanned = fromMicros(unfanned.Int64)
	}
	return &st, nil
}

// PoolStats returns the figures of the reader pool and of the single
// writer connection.
func (db *DB) PoolStats() []store.PoolStats {
	conv := func(name string, s sql.DBStats) store.PoolStats {
		return store.PoolStats{Name: name, Max: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse,
			Waits: s.WaitCount, WaitTime: s.WaitDuration}
	}
	return []store.PoolStats{conv("read", db.read.Stats()), conv("write", db.write.Stats())}
}
