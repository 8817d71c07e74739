package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

const hookColumns = `seq, id, account_id, calendar_id, url, host, token_hash, client_ip, user_agent, armed, verified,
	served_version, first_registered_at, last_registered_at, last_ping_at, last_ping_status, last_ping_error, failures,
	armed_at`

func scanHook(row interface{ Scan(...any) error }) (*store.Hook, error) {
	var h store.Hook
	var first, last, ping int64
	if err := row.Scan(&h.Seq, &h.ID, &h.AccountID, &h.CalendarID, &h.URL, &h.Host, &h.TokenHash, &h.ClientIP, &h.UserAgent,
		&h.Armed, &h.Verified, &h.ServedVersion, &first, &last, &ping, &h.LastPingStatus, &h.LastPingError, &h.Failures,
		&h.ArmedAt.ID); err != nil {
		return nil, notFound(err)
	}
	h.FirstRegisteredAt, h.LastRegisteredAt, h.LastPingAt = fromMicros(first), fromMicros(last), optMicros(ping)
	return &h, nil
}

func queryHooks(ctx context.Context, q queryer, where string, args ...any) ([]*store.Hook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+hookColumns+` FROM icalhooks `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// RegisterHook creates or re-arms a hook in one transaction.
func (db *DB) RegisterHook(ctx context.Context, p store.RegisterHookParams) (*store.HookRegistration, error) {
	var reg *store.HookRegistration
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		st, err := feedState(ctx, tx, p.AccountID, p.CalendarID)
		if err != nil {
			return err
		}
		// Writes commit one at a time, drawing change ids in order: every
		// change up to the newest is in the version just read.
		var armedAt store.ChangePos
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM changes`).Scan(&armedAt.ID); err != nil {
			return err
		}
		reg = &store.HookRegistration{}
		h, err := scanHook(tx.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM icalhooks
			WHERE account_id = ? AND calendar_id = ? AND url = ?`, p.AccountID, p.CalendarID, p.URL))
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := checkCaps(ctx, tx, p); err != nil {
				return err
			}
			h = &p.Hook
			h.ID = id.New("hook")
			h.Verified = !p.Verify
			h.Armed = h.Verified
			h.FirstRegisteredAt, h.LastRegisteredAt, h.ArmedAt = p.Now, p.Now, armedAt
			err = tx.QueryRowContext(ctx, `INSERT INTO icalhooks
				(id, account_id, calendar_id, url, host, token_hash, client_ip, user_agent, armed, verified, served_version,
				 first_registered_at, last_registered_at, armed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
				h.ID, h.AccountID, h.CalendarID, h.URL, h.Host, h.TokenHash, h.ClientIP, h.UserAgent, h.Armed, h.Verified,
				h.ServedVersion, micros(p.Now), micros(p.Now), armedAt.ID).Scan(&h.Seq)
			if err != nil {
				return err
			}
			reg.Created = true
		case err != nil:
			return err
		default:
			h.TokenHash, h.ClientIP, h.UserAgent = p.TokenHash, p.ClientIP, p.UserAgent
			h.ServedVersion, h.LastRegisteredAt, h.Armed, h.ArmedAt = p.ServedVersion, p.Now, h.Verified, armedAt
			if _, err := tx.ExecContext(ctx, `UPDATE icalhooks SET token_hash = ?, client_ip = ?, user_agent = ?,
				served_version = ?, last_registered_at = ?, armed = verified, armed_at = ? WHERE id = ?`,
				h.TokenHash, h.ClientIP, h.UserAgent, h.ServedVersion, micros(p.Now), armedAt.ID, h.ID); err != nil {
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
			_, _, err = insertMessages(ctx, tx, []*store.Message{p.Ping(h, cursor)})
			if err != nil {
				return err
			}
			h.Armed, reg.Pinged = false, true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("register hook: %w", err)
	}
	return reg, nil
}

func accountChangeCursor(ctx context.Context, q queryer, accountID string) (int64, error) {
	var cursor sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT max(id) FROM changes WHERE account_id = ?`, accountID).Scan(&cursor)
	return cursor.Int64, err
}

// checkCaps counts the hooks of p.Count and lets p.Admit refuse a new
// hook; the single writer makes the count and the insert atomic.
func checkCaps(ctx context.Context, tx *wtx, p store.RegisterHookParams) error {
	counts := make([]int, len(p.Count))
	for i, scope := range p.Count {
		var query string
		var args []any
		switch scope {
		case store.HooksOfFeed:
			query, args = `SELECT count(*) FROM icalhooks WHERE account_id = ? AND calendar_id = ?`, []any{p.AccountID, p.CalendarID}
		case store.HooksOfToken:
			query, args = `SELECT count(*) FROM icalhooks WHERE token_hash = ?`, []any{p.TokenHash}
		case store.HooksOfHost:
			query, args = `SELECT count(*) FROM icalhooks WHERE host = ?`, []any{p.Host}
		default:
			return fmt.Errorf("unknown hook scope %d", scope)
		}
		if err := tx.QueryRowContext(ctx, query, args...).Scan(&counts[i]); err != nil {
			return err
		}
	}
	if p.Admit == nil {
		return nil
	}
	return p.Admit(counts)
}

// VerifyHook arms a hook whose challenge was answered, or deletes it.
func (db *DB) VerifyHook(ctx context.Context, id string, ok bool) error {
	query := `UPDATE icalhooks SET verified = 1, armed = 1 WHERE id = ?`
	if !ok {
		query = `DELETE FROM icalhooks WHERE id = ?`
	}
	res, err := db.exec(ctx, query, id)
	if err != nil {
		return fmt.Errorf("verify hook %s: %w", id, err)
	}
	return mustAffect(res, "verify hook "+id)
}

// ListHooks returns a page of an account's hooks in registration order.
func (db *DB) ListHooks(ctx context.Context, p store.ListHooksParams) ([]*store.Hook, error) {
	hooks, err := queryHooks(ctx, db.read, `WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?`, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	return hooks, nil
}

// DeleteHook removes one hook of an account.
func (db *DB) DeleteHook(ctx context.Context, accountID, id string) error {
	res, err := db.exec(ctx, `DELETE FROM icalhooks WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return fmt.Errorf("delete hook %s: %w", id, err)
	}
	return mustAffect(res, "delete hook "+id)
}

// ArmedHooks returns the armed, verified hooks of the feeds.
func (db *DB) ArmedHooks(ctx context.Context, feeds []store.FeedKey) ([]*store.Hook, error) {
	if len(feeds) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, len(feeds))
	for i, f := range feeds {
		pairs[i] = [2]string{f.AccountID, f.CalendarID}
	}
	b, _ := json.Marshal(pairs) // strings always encode
	// One text for any number of feeds, so it is prepared once (readCache).
	hooks, err := queryHooks(ctx, db.reads, `WHERE armed = 1 AND verified = 1
		AND (account_id, calendar_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)) ORDER BY seq`, string(b))
	if err != nil {
		return nil, fmt.Errorf("armed hooks: %w", err)
	}
	return hooks, nil
}

// ExpireHooks deletes hooks not registered since before.
func (db *DB) ExpireHooks(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.exec(ctx, pruneHooks, micros(before))
	if err != nil {
		return 0, fmt.Errorf("expire hooks: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
