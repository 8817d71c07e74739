package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/store"
)

// Stats reads the operator's figures in one round trip, each with a query
// that reads an index of only the rows it counts (messages_due,
// messages_undeliverable, subscriptions_disabled, icalhooks_feed,
// calendars_next_poll, changes_xid, conflicts_open_b).
func (db *DB) Stats(ctx context.Context, p store.StatsParams) (*store.Stats, error) {
	var st store.Stats
	var oldest, unfanned pgtype.Timestamptz
	b := &pgx.Batch{}
	b.Queue(`SELECT
			count(*) FILTER (WHERE status = 'delivering'),
			count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= $1),
			count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > $1 AND next_attempt_at < $2 AND NOT slot_reserved),
			count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > $1 AND next_attempt_at < $2 AND slot_reserved),
			count(*) FILTER (WHERE next_attempt_at >= $2),
			min(created_at) FILTER (WHERE next_attempt_at < $2)
		FROM messages WHERE status IN ('pending', 'delivering')`, p.Now, parked).QueryRow(func(row pgx.Row) error {
		return row.Scan(&st.Queue.InFlight, &st.Queue.Due, &st.Queue.Retrying, &st.Queue.RateLimited, &st.Queue.Parked, &oldest)
	})
	b.Queue(`SELECT
			(SELECT count(*) FROM messages WHERE status = 'undeliverable'),
			(SELECT count(*) FROM subscriptions WHERE disabled),
			(SELECT count(*) FROM icalhooks WHERE armed),
			(SELECT count(*) FROM calendars WHERE kind = 'imported' AND next_poll_at < $1),
			(SELECT ch.occurred_at FROM cursors c, LATERAL (
				SELECT occurred_at FROM changes x WHERE (x.xid, x.id) > (c.xid, c.position) ORDER BY x.xid, x.id LIMIT 1) ch
			WHERE c.name = $2),
			(SELECT count(*) FROM conflicts WHERE state = 'open' AND overlap_end > $3)`,
		p.Now.Add(-p.OverdueAfter), store.FanOutCursor, p.Now).QueryRow(func(row pgx.Row) error {
		return row.Scan(&st.Queue.Undeliverable, &st.SubscriptionsDisabled, &st.HooksArmed, &st.ImportsOverdue, &unfanned,
			&st.ConflictsOpen)
	})
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("stats: %w", classify(err))
	}
	st.OldestUndelivered, st.OldestUnfanned = fromOpt(oldest), fromOpt(unfanned)
	return &st, nil
}

// PoolStats returns the figures of the connection pool.
func (db *DB) PoolStats() []store.PoolStats {
	s := db.pool.Stat()
	return []store.PoolStats{{
		Name: "pool", Max: int(s.MaxConns()), Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()),
		Waits: s.EmptyAcquireCount(), WaitTime: s.EmptyAcquireWaitTime(),
	}}
}
