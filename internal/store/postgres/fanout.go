package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// FanOut runs one fan-out step in two round trips and no open transaction:
// it reads the cursor and the changes after it in one statement, lets build
// make the messages, and stores them while it moves the cursor, in one
// statement that does nothing unless the cursor is still where the step
// read it (compare-and-set). Two nodes that run a step at once may both
// read and build, but only one stores: the other's update finds the cursor
// moved, and its step is Busy. Nothing is held while build runs, so a node
// that dies mid-step leaves nothing to clean up.
//
// Changes are read in (xid, id) order, and only those of transactions
// older than the oldest transaction still running (the xmin of the
// statement's snapshot): those are final, and no transaction that commits
// later can add a change before them. Changes of newer transactions that
// have committed already wait for the older ones to end; the step then
// reports Unsettled so the caller comes back shortly (the older one may be
// a transaction that notifies nobody, such as a claim).
func (db *DB) FanOut(ctx context.Context, cursor string, limit int, build store.FanOutFunc) (store.FanOutResult, error) {
	from, to, changes, unsettled, err := db.readSettled(ctx, cursor, limit)
	if err != nil {
		return store.FanOutResult{}, fmt.Errorf("fan out: %w", err)
	}
	res := store.FanOutResult{Unsettled: unsettled}
	if len(changes) == 0 {
		return res, nil
	}
	msgs, err := build(ctx, changes)
	if err != nil {
		return res, err
	}
	var st stored
	err = db.batch(ctx, func() *pgx.Batch {
		b := &pgx.Batch{}
		queueMessages(b, msgs, &cursorMove{name: cursor, from: from, to: to}, &st)
		return b
	})
	if err != nil {
		return store.FanOutResult{}, fmt.Errorf("fan out: store messages: %w", err)
	}
	if !st.moved {
		return store.FanOutResult{Busy: true}, nil
	}
	// Messages stored claimed are their maker's to deliver: only pending
	// ones are news for the other nodes.
	if st.pending > 0 {
		db.notifier.send(note{messagesChannel, ""})
	}
	res.Changes, res.Messages, res.Leased = len(changes), st.pending+len(st.leased), st.leased
	return res, nil
}

// readSettled reads, in one statement, the named cursor's position and up
// to limit changes after it of transactions that are over, the position of
// the last of them, and whether committed changes after them wait for
// older transactions to end. A missing cursor is made at the start of the
// log.
func (db *DB) readSettled(ctx context.Context, cursor string, limit int) (from, to store.ChangePos, changes []*store.Change, unsettled bool, err error) {
	return db.readSettledAfter(ctx, cursor, nil, limit)
}

// readSettledAfter is readSettled after the position after instead of the
// cursor's when after is set.
func (db *DB) readSettledAfter(ctx context.Context, cursor string, after *store.ChangePos, limit int) (from, to store.ChangePos, changes []*store.Change, unsettled bool, err error) {
	// One row more than limit tells what follows the last one.
	source, args := `cursors c`, []any{cursor, limit + 1}
	if after != nil {
		source, args = `(SELECT $3::xid8 AS xid, $4::bigint AS position, $1::text AS name) c`, append(args, after.TxID, after.ID)
	}
	rows, err := db.query(ctx, `SELECT c.xid, c.position, ch.settled, `+qualified("ch", changeColumns)+`
		FROM `+source+` LEFT JOIN LATERAL (
			SELECT x.*, x.xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled FROM changes x
			WHERE (x.xid, x.id) > (c.xid, c.position) ORDER BY x.xid, x.id LIMIT $2) ch ON true
		WHERE c.name = $1`, args...)
	if err != nil {
		return from, to, nil, false, fmt.Errorf("read changes: %w", err)
	}
	found := false
	for rows.Next() {
		var settled *bool
		var ch nullChange
		if err := rows.Scan(append([]any{&from.TxID, &from.ID, &settled}, ch.dest()...)...); err != nil {
			rows.Close()
			return from, to, nil, false, fmt.Errorf("read changes: %w", err)
		}
		if !found {
			found, to = true, from
		}
		switch {
		case settled == nil: // no change after the cursor
		case !*settled:
			unsettled = true
		case len(changes) < limit && !unsettled:
			c, err := ch.change()
			if err != nil {
				rows.Close()
				return from, to, nil, false, err
			}
			changes, to = append(changes, c), c.Pos()
		}
	}
	if err := rows.Err(); err != nil {
		return from, to, nil, false, fmt.Errorf("read changes: %w", err)
	}
	if !found {
		if _, err := db.exec(ctx, `INSERT INTO cursors (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, cursor); err != nil {
			return from, to, nil, false, fmt.Errorf("make cursor %s: %w", cursor, err)
		}
		return db.readSettled(ctx, cursor, limit)
	}
	return from, to, changes, unsettled, nil
}

// cursorMove is a compare-and-set of a cursor: from where a fan-out step
// read it to past what it read.
type cursorMove struct {
	name     string
	from, to store.ChangePos
}

// stored is what queueMessages' statement stored.
type stored struct {
	// moved reports that the cursor moved (always true without a move).
	moved bool
	// pending counts the messages stored pending; leased lists those
	// stored claimed.
	pending int
	leased  []store.StoredMessage
}

// queueMessages adds to b the statement that stores msgs, skipping
// (change, target) pairs that exist, and sets *st once b runs. A ping is
// stored only if it disarms its hook, in the same statement: a hook gets
// one ping per arming. With a move, the statement moves the cursor too,
// and stores nothing unless the cursor was still at move.from.
func queueMessages(b *pgx.Batch, msgs []*store.Message, move *cursorMove, st *stored) {
	n := len(msgs)
	var (
		ids, accounts, subs, hooks, types, statuses = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		changes                                     = make([]int64, 0, n)
		payloads                                    = make([][]byte, 0, n)
		due, created, changedAt                     = make([]time.Time, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n)
		traces                                      = make([]string, 0, n)
		pinged                                      = map[string]bool{}
		pings                                       = []string{}
	)
	for _, m := range msgs {
		if m.HookID != "" {
			if pinged[m.HookID] {
				continue // one ping per arming, even within a batch
			}
			pinged[m.HookID] = true
			pings = append(pings, m.HookID)
		}
		status := m.Status
		if status == "" {
			status = store.MessagePending
		}
		ids, accounts, subs, hooks = append(ids, m.ID), append(accounts, m.AccountID), append(subs, m.SubscriptionID), append(hooks, m.HookID)
		changes, types, payloads, statuses = append(changes, m.ChangeID), append(types, m.EventType), append(payloads, m.Payload), append(statuses, status)
		due, created = append(due, m.NextAttemptAt), append(created, m.CreatedAt)
		changedAt, traces = append(changedAt, m.ChangedAt), append(traces, m.Trace)
	}
	args := []any{pings, ids, accounts, subs, hooks, changes, types, payloads, statuses, due, created}
	moved, guard := `SELECT 1`, `true`
	if move != nil {
		moved = `UPDATE cursors SET xid = $12, position = $13 WHERE name = $14 AND xid = $15 AND position = $16 RETURNING 1`
		guard = `EXISTS (SELECT 1 FROM moved)`
		args = append(args, move.to.TxID, move.to.ID, move.name, move.from.TxID, move.from.ID)
	}
	args = append(args, changedAt, traces)
	changedArg, traceArg := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
	b.Queue(`WITH moved AS (`+moved+`),
		disarmed AS (
			UPDATE icalhooks SET armed = false WHERE id = ANY($1) AND armed AND verified AND `+guard+` RETURNING id),
		stored AS (
			INSERT INTO messages (id, account_id, subscription_id, hook_id, change_id, event_type, payload, status,
				next_attempt_at, created_at, updated_at, changed_at, trace)
			SELECT u.id, u.account_id, nullif(u.sub, ''), nullif(u.hook, ''), u.change_id, u.event_type, u.payload, u.status,
				u.due, u.created, u.created, u.changed, u.trace
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bytea[], $9::text[],
				$10::timestamptz[], $11::timestamptz[], `+changedArg+`::timestamptz[], `+traceArg+`::text[])
				AS u(id, account_id, sub, hook, change_id, event_type, payload, status, due, created, changed, trace)
			WHERE `+guard+` AND (u.hook = '' OR u.hook IN (SELECT id FROM disarmed))
			ON CONFLICT DO NOTHING RETURNING seq, id, status)
		SELECT EXISTS (SELECT 1 FROM moved), (SELECT count(*) FROM stored WHERE status = 'pending'),
			array(SELECT id FROM stored WHERE status = 'delivering' ORDER BY seq),
			array(SELECT seq FROM stored WHERE status = 'delivering' ORDER BY seq)`, args...).QueryRow(func(row pgx.Row) error {
		*st = stored{}
		var ids []string
		var seqs []int64
		if err := row.Scan(&st.moved, &st.pending, &ids, &seqs); err != nil {
			return err
		}
		if len(ids) != len(seqs) {
			return fmt.Errorf("store messages: %d leased ids, %d seqs", len(ids), len(seqs))
		}
		for i, id := range ids {
			st.leased = append(st.leased, store.StoredMessage{ID: id, Seq: seqs[i]})
		}
		return nil
	})
}
