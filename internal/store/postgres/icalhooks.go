package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

const hookColumns = `seq, id, account_id, calendar_id, url, host, token_hash, client_ip, user_agent, armed, verified,
	served_version, first_registered_at, last_registered_at, last_ping_at, last_ping_status, last_ping_error, failures,
	armed_xid, armed_id, armed_running`

func scanHook(row pgx.Row) (*store.Hook, error) {
	var h store.Hook
	var ping pgtype.Timestamptz
	if err := row.Scan(&h.Seq, &h.ID, &h.AccountID, &h.CalendarID, &h.URL, &h.Host, &h.TokenHash, &h.ClientIP, &h.UserAgent,
		&h.Armed, &h.Verified, &h.ServedVersion, &h.FirstRegisteredAt, &h.LastRegisteredAt, &ping, &h.LastPingStatus,
		&h.LastPingError, &h.Failures, &h.ArmedAt.TxID, &h.ArmedAt.ID, &h.ArmedRunning); err != nil {
		return nil, notFound(err)
	}
	h.FirstRegisteredAt, h.LastRegisteredAt, h.LastPingAt = utc(h.FirstRegisteredAt), utc(h.LastRegisteredAt), fromOpt(ping)
	return &h, nil
}

func queryHooks(ctx context.Context, q querier, where string, args ...any) ([]*store.Hook, error) {
	rows, err := q.Query(ctx, `SELECT `+hookColumns+` FROM icalhooks `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Hook, error) { return scanHook(row) })
}

// RegisterHook creates or re-arms a hook in one transaction.
//
// It reads the feed's version under an exclusive lock of the row that
// holds it, which every event write of the feed holds a KEY SHARE lock on
// until it commits: a feed write either commits first (and this
// registration sees the new version and pings at once) or waits for this
// registration to commit (and its fan-out finds the hook armed): no change
// falls between the two.
// New hooks take advisory locks on their cap keys, so registrations racing
// on other nodes cannot overshoot a cap.
func (db *DB) RegisterHook(ctx context.Context, p store.RegisterHookParams) (*store.HookRegistration, error) {
	var reg *store.HookRegistration
	err := db.tx(ctx, func(tx *txn) error {
		st, err := feedState(ctx, tx, p.AccountID, p.CalendarID, true)
		if err != nil {
			return err
		}
		// Every change of a transaction that this statement's snapshot,
		// taken after the lock, sees is in the version just read: those of
		// transactions before its xmax and not running.
		var armedAt store.ChangePos
		var running []uint64
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmax(s), ARRAY(SELECT pg_snapshot_xip(s))
			FROM pg_current_snapshot() s`).Scan(&armedAt.TxID, &running); err != nil {
			return err
		}
		reg = &store.HookRegistration{}
		h, err := scanHook(tx.QueryRow(ctx, `SELECT `+hookColumns+` FROM icalhooks
			WHERE account_id = $1 AND calendar_id = $2 AND url = $3 FOR UPDATE`, p.AccountID, p.CalendarID, p.URL))
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := db.checkCaps(ctx, tx, p); err != nil {
				return err
			}
			hook := p.Hook
			h = &hook
			h.ID = id.New("hook")
			h.Verified = !p.Verify
			h.Armed = h.Verified
			h.FirstRegisteredAt, h.LastRegisteredAt, h.ArmedAt, h.ArmedRunning = p.Now, p.Now, armedAt, running
			err = tx.QueryRow(ctx, `INSERT INTO icalhooks
				(id, account_id, calendar_id, url, host, token_hash, client_ip, user_agent, armed, verified, served_version,
				 first_registered_at, last_registered_at, armed_xid, armed_id, armed_running)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15)
				ON CONFLICT (account_id, calendar_id, url) DO NOTHING RETURNING seq`,
				h.ID, h.AccountID, h.CalendarID, h.URL, h.Host, h.TokenHash, h.ClientIP, h.UserAgent, h.Armed, h.Verified,
				h.ServedVersion, p.Now, armedAt.TxID, armedAt.ID, running).Scan(&h.Seq)
			if errors.Is(err, pgx.ErrNoRows) {
				return errRetry // registered by another node meanwhile: re-arm it instead
			}
			if err != nil {
				return err
			}
			reg.Created = true
		case err != nil:
			return err
		default:
			h.TokenHash, h.ClientIP, h.UserAgent = p.TokenHash, p.ClientIP, p.UserAgent
			h.ServedVersion, h.LastRegisteredAt, h.Armed = p.ServedVersion, p.Now, h.Verified
			h.ArmedAt, h.ArmedRunning = armedAt, running
			if _, err := tx.Exec(ctx, `UPDATE icalhooks SET token_hash = $1, client_ip = $2, user_agent = $3,
				served_version = $4, last_registered_at = $5, armed = verified, armed_xid = $6, armed_id = $7,
				armed_running = $8 WHERE id = $9`,
				h.TokenHash, h.ClientIP, h.UserAgent, h.ServedVersion, p.Now, armedAt.TxID, armedAt.ID, running, h.ID); err != nil {
				return err
			}
		}
		reg.Hook = h
		// The feed moved on between the render and this registration:
		// the consumer's copy is already stale, so ping at once.
		if h.Armed && st.Version > p.ServedVersion {
			cursor, err := accountChangeCursor(ctx, tx, p.AccountID)
			if err != nil {
				return err
			}
			var st stored
			batch := &pgx.Batch{}
			queueMessages(batch, []*store.Message{p.Ping(h, cursor)}, nil, &st)
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
			h.Armed, reg.Pinged = false, true
			if st.pending > 0 {
				tx.notifyMessages()
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("register hook: %w", err)
	}
	return reg, nil
}

// checkCaps counts the hooks of p.Count and lets p.Admit refuse a new
// hook. It first locks the counted sets' keys (in a fixed order), so
// counting and inserting are atomic with respect to other registrations.
func (db *DB) checkCaps(ctx context.Context, tx pgx.Tx, p store.RegisterHookParams) error {
	type count struct {
		key   int64
		query string
		args  []any
	}
	counts := make([]count, len(p.Count))
	keys := make([]int64, len(p.Count))
	for i, scope := range p.Count {
		switch scope {
		case store.HooksOfFeed:
			counts[i] = count{lockKey("hookcap", db.schema, "feed", p.AccountID, p.CalendarID),
				`SELECT count(*) FROM icalhooks WHERE account_id = $1 AND calendar_id = $2`, []any{p.AccountID, p.CalendarID}}
		case store.HooksOfToken:
			counts[i] = count{lockKey("hookcap", db.schema, "token", p.TokenHash),
				`SELECT count(*) FROM icalhooks WHERE token_hash = $1`, []any{p.TokenHash}}
		case store.HooksOfHost:
			counts[i] = count{lockKey("hookcap", db.schema, "host", p.Host),
				`SELECT count(*) FROM icalhooks WHERE host = $1`, []any{p.Host}}
		default:
			return fmt.Errorf("unknown hook scope %d", scope)
		}
		keys[i] = counts[i].key
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, k); err != nil {
			return err
		}
	}
	n := make([]int, len(counts))
	for i, c := range counts {
		if err := tx.QueryRow(ctx, c.query, c.args...).Scan(&n[i]); err != nil {
			return err
		}
	}
	if p.Admit == nil {
		return nil
	}
	return p.Admit(n)
}

// VerifyHook arms a hook whose challenge was answered, or deletes it.
func (db *DB) VerifyHook(ctx context.Context, id string, ok bool) error {
	query := `UPDATE icalhooks SET verified = true, armed = true WHERE id = $1`
	if !ok {
		query = `DELETE FROM icalhooks WHERE id = $1`
	}
	tag, err := db.exec(ctx, query, id)
	if err != nil {
		return fmt.Errorf("verify hook %s: %w", id, err)
	}
	return mustAffect(tag, "verify hook "+id)
}

// ListHooks returns a page of an account's hooks in registration order.
func (db *DB) ListHooks(ctx context.Context, p store.ListHooksParams) ([]*store.Hook, error) {
	hooks, err := queryHooks(ctx, db.pool, `WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	return hooks, nil
}

// DeleteHook removes one hook of an account.
func (db *DB) DeleteHook(ctx context.Context, accountID, id string) error {
	tag, err := db.exec(ctx, `DELETE FROM icalhooks WHERE id = $1 AND account_id = $2`, id, accountID)
	if err != nil {
		return fmt.Errorf("delete hook %s: %w", id, err)
	}
	return mustAffect(tag, "delete hook "+id)
}

// ArmedHooks returns the armed, verified hooks of the feeds.
func (db *DB) ArmedHooks(ctx context.Context, feeds []store.FeedKey) ([]*store.Hook, error) {
	if len(feeds) == 0 {
		return nil, nil
	}
	accounts, calendars := make([]string, len(feeds)), make([]string, len(feeds))
	for i, f := range feeds {
		accounts[i], calendars[i] = f.AccountID, f.CalendarID
	}
	hooks, err := queryHooks(ctx, db.pool, `WHERE armed AND verified
		AND (account_id, calendar_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
		ORDER BY seq`, accounts, calendars)
	if err != nil {
		return nil, fmt.Errorf("armed hooks: %w", err)
	}
	return hooks, nil
}

// ExpireHooks deletes hooks not registered since before.
func (db *DB) ExpireHooks(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.exec(ctx, pruneHooks, before)
	if err != nil {
		return 0, fmt.Errorf("expire hooks: %w", err)
	}
	return tag.RowsAffected(), nil
}
