package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

const holdColumns = `seq, id, account_id, unit_id, calendar_id, event_id, start_at, end_at, all_day, summary,
	external_ref, state, expires_at, created_at, ended_at`

func scanHold(row pgx.Row) (*store.Hold, error) {
	var h store.Hold
	var ended *time.Time
	if err := row.Scan(&h.Seq, &h.ID, &h.AccountID, &h.UnitID, &h.CalendarID, &h.EventID, &h.Start, &h.End, &h.AllDay,
		&h.Summary, &h.ExternalRef, &h.State, &h.ExpiresAt, &h.CreatedAt, &ended); err != nil {
		return nil, notFound(err)
	}
	h.Start, h.End, h.ExpiresAt, h.CreatedAt = h.Start.UTC(), h.End.UTC(), h.ExpiresAt.UTC(), h.CreatedAt.UTC()
	if ended != nil {
		h.EndedAt = ended.UTC()
	}
	return &h, nil
}

func queryHolds(ctx context.Context, q querier, where string, args ...any) ([]*store.Hold, error) {
	rows, err := q.Query(ctx, `SELECT `+holdColumns+` FROM holds `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// PlaceHold checks and stores a hold in one transaction that first locks
// the unit's row (SELECT … FOR UPDATE): placements on one unit, from any
// node, take turns from the check to the commit, and each statement after
// the lock sees what the one before it committed (read committed).
func (db *DB) PlaceHold(ctx context.Context, p store.PlaceHoldParams, check store.HoldCheckFunc) error {
	h, e := p.Hold, p.Event
	err := db.tx(ctx, func(tx *txn) error {
		unit, err := scanUnit(tx.QueryRow(ctx, `SELECT `+unitColumns+` FROM units WHERE id = $1 AND account_id = $2 FOR UPDATE`,
			h.UnitID, h.AccountID))
		if err != nil {
			return fmt.Errorf("unit %s: %w", h.UnitID, err)
		}
		rows, err := tx.Query(ctx, `SELECT m.calendar_id, c.kind FROM unit_calendars m
			JOIN calendars c ON c.id = m.calendar_id WHERE m.unit_id = $1 ORDER BY c.seq`, h.UnitID)
		if err != nil {
			return err
		}
		var ids []string
		native := ""
		for rows.Next() {
			var id, kind string
			if err := rows.Scan(&id, &kind); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			if native == "" && kind == store.KindNative {
				native = id
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		events, err := blockingEvents(ctx, tx, store.BlockingEventsParams{AccountID: h.AccountID, CalendarIDs: ids, From: p.From, To: p.To})
		if err != nil {
			return err
		}
		holds, err := queryHolds(ctx, tx, `WHERE unit_id = $1 AND state = $2 AND start_at < $3 AND end_at > $4 ORDER BY seq`,
			h.UnitID, store.HoldHeld, p.To, p.From)
		if err != nil {
			return err
		}
		if err := check(ctx, unit, events, holds); err != nil {
			return err
		}
		if native == "" {
			if err := createUnitCalendar(ctx, tx, p.NewCalendar, h.UnitID); err != nil {
				return err
			}
			native = p.NewCalendar.ID
		}
		h.CalendarID, e.CalendarID, h.EventID = native, native, e.ID
		if err := bumpCalendar(ctx, tx, h.AccountID, native, e.UpdatedAt); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, e); err != nil {
			return err
		}
		if _, err := insertChange(ctx, tx, e, store.ChangeCreated, e.UpdatedAt); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: h.AccountID, CalendarID: native})
		return tx.QueryRow(ctx, `INSERT INTO holds (id, account_id, unit_id, calendar_id, event_id, start_at, end_at,
			all_day, summary, external_ref, state, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq`,
			h.ID, h.AccountID, h.UnitID, h.CalendarID, h.EventID, h.Start, h.End, h.AllDay,
			h.Summary, h.ExternalRef, h.State, h.ExpiresAt, h.CreatedAt).Scan(&h.Seq)
	})
	if err != nil {
		return fmt.Errorf("place hold: %w", err)
	}
	return nil
}

// createUnitCalendar stores a native calendar in a unit inside tx.
func createUnitCalendar(ctx context.Context, tx *txn, c *store.Calendar, unitID string) error {
	if c.Version == 0 {
		c.Version = 1
	}
	if err := tx.QueryRow(ctx, `INSERT INTO calendars (id, account_id, name, time_zone, kind, source_url,
		poll_interval_seconds, version, created_at, updated_at, source_host, hook_token)
		VALUES ($1, $2, $3, $4, $5, '', 0, $6, $7, $8, '', '') RETURNING seq`,
		c.ID, c.AccountID, c.Name, c.TimeZone, store.KindNative, c.Version, c.CreatedAt, c.UpdatedAt).Scan(&c.Seq); err != nil {
		return fmt.Errorf("create calendar: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO unit_calendars (calendar_id, unit_id, account_id) VALUES ($1, $2, $3)`,
		c.ID, unitID, c.AccountID); err != nil {
		return fmt.Errorf("attach calendar: %w", err)
	}
	tx.notifyChange(Change{AccountID: c.AccountID, CalendarID: c.ID, Calendar: true})
	return appendUnitChange(ctx, tx, c.AccountID, unitID, store.ChangeUnitChanged, c.CreatedAt)
}

// Hold returns one hold of an account.
func (db *DB) Hold(ctx context.Context, accountID, id string) (*store.Hold, error) {
	h, err := scanHold(db.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND account_id = $2`,
		id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get hold %s: %w", id, err)
	}
	return h, nil
}

// ListHolds returns a page of a unit's holds, oldest first.
func (db *DB) ListHolds(ctx context.Context, p store.ListHoldsParams) ([]*store.Hold, error) {
	out, err := queryHolds(ctx, db.pool, `WHERE unit_id = $1 AND account_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		p.UnitID, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return out, nil
}

// lockHold reads a hold of the account inside tx, locking its row.
func lockHold(ctx context.Context, tx *txn, accountID, id string) (*store.Hold, error) {
	return scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND account_id = $2 FOR UPDATE`,
		id, accountID))
}

// ConfirmHold turns a live hold into a confirmed booking.
func (db *DB) ConfirmHold(ctx context.Context, accountID, id string, now time.Time) (*store.Hold, error) {
	var out *store.Hold
	err := db.tx(ctx, func(tx *txn) error {
		h, err := lockHold(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		out = h
		if h.State != store.HoldHeld || !now.Before(h.ExpiresAt) {
			return store.ErrHoldState
		}
		e, err := scanEvent(tx.QueryRow(ctx, `UPDATE events SET status = $1, sequence = sequence + 1, updated_at = $2
			WHERE id = $3 AND calendar_id = $4 AND account_id = $5 RETURNING `+eventColumns,
			store.StatusConfirmed, now, h.EventID, h.CalendarID, accountID))
		if err != nil {
			return fmt.Errorf("event %s: %w", h.EventID, err)
		}
		if err := bumpCalendar(ctx, tx, accountID, h.CalendarID, now); err != nil {
			return err
		}
		if _, err := insertChange(ctx, tx, e, store.ChangeUpdated, now); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: accountID, CalendarID: h.CalendarID})
		h.State, h.EndedAt = store.HoldConfirmed, now
		_, err = tx.Exec(ctx, `UPDATE holds SET state = $1, ended_at = $2 WHERE id = $3`, h.State, now, h.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrHoldState) {
		return nil, fmt.Errorf("confirm hold %s: %w", id, err)
	}
	return out, err
}

// EndHold releases or expires a held hold and deletes its event.
func (db *DB) EndHold(ctx context.Context, accountID, id, state string, now time.Time) (*store.Hold, error) {
	var out *store.Hold
	err := db.tx(ctx, func(tx *txn) error {
		h, err := lockHold(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		out = h
		if h.State != store.HoldHeld {
			return store.ErrHoldState
		}
		e, err := scanEvent(tx.QueryRow(ctx, `DELETE FROM events WHERE id = $1 AND calendar_id = $2 AND account_id = $3
			RETURNING `+eventColumns, h.EventID, h.CalendarID, accountID))
		switch {
		case errors.Is(err, store.ErrNotFound): // deleted through the events API
		case err != nil:
			return fmt.Errorf("event %s: %w", h.EventID, err)
		default:
			if err := bumpCalendar(ctx, tx, accountID, h.CalendarID, now); err != nil {
				return err
			}
			if _, err := insertChange(ctx, tx, e, store.ChangeDeleted, now); err != nil {
				return err
			}
			tx.notifyChange(Change{AccountID: accountID, CalendarID: h.CalendarID})
		}
		h.State, h.EndedAt = state, now
		_, err = tx.Exec(ctx, `UPDATE holds SET state = $1, ended_at = $2 WHERE id = $3`, h.State, now, h.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrHoldState) {
		return nil, fmt.Errorf("end hold %s: %w", id, err)
	}
	return out, err
}

// ExpiredHolds returns held holds whose expiry has passed.
func (db *DB) ExpiredHolds(ctx context.Context, now time.Time, limit int) ([]*store.Hold, error) {
	out, err := queryHolds(ctx, db.pool, `WHERE state = $1 AND expires_at <= $2 ORDER BY expires_at LIMIT $3`,
		store.HoldHeld, now, limit)
	if err != nil {
		return nil, fmt.Errorf("expired holds: %w", err)
	}
	return out, nil
}

// BeginIdempotent reserves an idempotency key, or returns its record. The
// row lock makes concurrent requests with one key take turns.
func (db *DB) BeginIdempotent(ctx context.Context, r *store.IdempotentRequest, now, staleBefore time.Time) (*store.IdempotentRequest, bool, error) {
	var kept *store.IdempotentRequest
	err := db.tx(ctx, func(tx *txn) error {
		kept = nil
		tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (account_id, key, fingerprint, status, body, created_at, expires_at)
			VALUES ($1, $2, $3, 0, '', $4, $5) ON CONFLICT (account_id, key) DO NOTHING`,
			r.AccountID, r.Key, r.Fingerprint, r.CreatedAt, r.ExpiresAt)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var k store.IdempotentRequest
		if err := tx.QueryRow(ctx, `SELECT account_id, key, fingerprint, status, body, created_at, expires_at
			FROM idempotency_keys WHERE account_id = $1 AND key = $2 FOR UPDATE`, r.AccountID, r.Key).Scan(
			&k.AccountID, &k.Key, &k.Fingerprint, &k.Status, &k.Body, &k.CreatedAt, &k.ExpiresAt); err != nil {
			return err
		}
		if k.ExpiresAt.After(now) && (k.Status != 0 || k.CreatedAt.After(staleBefore)) {
			k.CreatedAt, k.ExpiresAt = k.CreatedAt.UTC(), k.ExpiresAt.UTC()
			kept = &k
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET fingerprint = $3, status = 0, body = '', created_at = $4, expires_at = $5
			WHERE account_id = $1 AND key = $2`, r.AccountID, r.Key, r.Fingerprint, r.CreatedAt, r.ExpiresAt)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("begin idempotent request: %w", err)
	}
	if kept != nil {
		return kept, false, nil
	}
	return r, true, nil
}

// FinishIdempotent stores the answer of a pending key.
func (db *DB) FinishIdempotent(ctx context.Context, accountID, key string, status int, body []byte) error {
	if _, err := db.pool.Exec(ctx, `UPDATE idempotency_keys SET status = $1, body = $2 WHERE account_id = $3 AND key = $4 AND status = 0`,
		status, body, accountID, key); err != nil {
		return fmt.Errorf("finish idempotent request: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a pending key.
func (db *DB) AbandonIdempotent(ctx context.Context, accountID, key string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND status = 0`,
		accountID, key); err != nil {
		return fmt.Errorf("abandon idempotent request: %w", err)
	}
	return nil
}
