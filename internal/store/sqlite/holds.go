package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/store"
)

const holdColumns = `seq, id, account_id, unit_id, calendar_id, event_id, start_at, end_at, all_day, summary,
	external_ref, state, expires_at, created_at, ended_at`

func scanHold(row interface{ Scan(...any) error }) (*store.Hold, error) {
	var h store.Hold
	var start, end, expires, created int64
	var ended sql.NullInt64
	if err := row.Scan(&h.Seq, &h.ID, &h.AccountID, &h.UnitID, &h.CalendarID, &h.EventID, &start, &end, &h.AllDay,
		&h.Summary, &h.ExternalRef, &h.State, &expires, &created, &ended); err != nil {
		return nil, notFound(err)
	}
	h.Start, h.End, h.ExpiresAt, h.CreatedAt = fromMicros(start), fromMicros(end), fromMicros(expires), fromMicros(created)
	if ended.Valid {
		h.EndedAt = fromMicros(ended.Int64)
	}
	return &h, nil
}

func queryHolds(ctx context.Context, q queryer, where string, args ...any) ([]*store.Hold, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+holdColumns+` FROM holds `+where, args...)
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

// PlaceHold checks and stores a hold: PlaceHolds of one.
func (db *DB) PlaceHold(ctx context.Context, p store.PlaceHoldParams, check store.HoldCheckFunc) error {
	errs, err := db.PlaceHolds(ctx, []store.HoldPlacement{{PlaceHoldParams: p, Check: check}})
	if err != nil {
		return err
	}
	return errs[0]
}

// PlaceHolds checks and stores holds of one unit in one write
// transaction: SQLite has a single writer, so each check sees every hold
// placed before it and none can be placed between a check and its
// insert.
func (db *DB) PlaceHolds(ctx context.Context, ps []store.HoldPlacement) ([]error, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	accountID, unitID := ps[0].Hold.AccountID, ps[0].Hold.UnitID
	for _, p := range ps {
		if p.Hold.AccountID != accountID || p.Hold.UnitID != unitID {
			return nil, fmt.Errorf("place holds: holds of units %s and %s in one call", unitID, p.Hold.UnitID)
		}
	}
	from, to := store.HoldsWindow(ps)
	errs := make([]error, len(ps))
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		clear(errs)
		unit, err := scanUnit(tx.QueryRowContext(ctx, `SELECT `+unitColumns+` FROM units WHERE id = ? AND account_id = ?`,
			unitID, accountID))
		if err != nil {
			return fmt.Errorf("unit %s: %w", unitID, err)
		}
		ids, native, err := unitCalendarIDs(ctx, tx, unitID)
		if err != nil {
			return err
		}
		events, err := blockingEvents(ctx, tx, store.BlockingEventsParams{AccountID: accountID, CalendarIDs: ids, From: from, To: to})
		if err != nil {
			return err
		}
		holds, err := queryHolds(ctx, tx, `WHERE unit_id = ? AND state = ? AND start_at < ? AND end_at > ? ORDER BY seq`,
			unitID, store.HoldHeld, micros(to), micros(from))
		if err != nil {
			return err
		}
		for i, p := range ps {
			if errs[i] = p.Check(ctx, unit, events, holds); errs[i] != nil {
				continue
			}
			h, e := p.Hold, p.Event
			if native == "" {
				if err := createUnitCalendar(ctx, tx, p.NewCalendar, unitID); err != nil {
					return err
				}
				native = p.NewCalendar.ID
			}
			h.CalendarID, e.CalendarID, h.EventID = native, native, e.ID
			if err := insertHold(store.WithTrace(ctx, p.Trace), tx, h, e); err != nil {
				return err
			}
			events, holds = append(events, e), append(holds, h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("place holds: %w", err)
	}
	return errs, nil
}

// insertHold stores the hold h and its event e inside tx, with the
// event's created change, and moves the calendar's version on.
func insertHold(ctx context.Context, tx *wtx, h *store.Hold, e *store.Event) error {
	if err := bumpCalendar(ctx, tx, h.AccountID, h.CalendarID, e.UpdatedAt); err != nil {
		return err
	}
	if err := insertEvent(ctx, tx, e); err != nil {
		return err
	}
	if _, err := insertChange(ctx, tx, e, store.ChangeCreated, e.UpdatedAt); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `INSERT INTO holds (id, account_id, unit_id, calendar_id, event_id, start_at, end_at,
		all_day, summary, external_ref, state, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING seq`, h.ID, h.AccountID, h.UnitID, h.CalendarID, h.EventID, micros(h.Start), micros(h.End), h.AllDay,
		h.Summary, h.ExternalRef, h.State, micros(h.ExpiresAt), micros(h.CreatedAt)).Scan(&h.Seq)
}

// unitCalendarIDs returns the ids of a unit's calendars and of its first
// native calendar ("" for none).
func unitCalendarIDs(ctx context.Context, tx *wtx, unitID string) (ids []string, native string, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT m.calendar_id, c.kind FROM unit_calendars m
		JOIN calendars c ON c.id = m.calendar_id WHERE m.unit_id = ? ORDER BY c.seq`, unitID)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind string
		if err := rows.Scan(&id, &kind); err != nil {
			return nil, "", err
		}
		ids = append(ids, id)
		if native == "" && kind == store.KindNative {
			native = id
		}
	}
	return ids, native, rows.Err()
}

// createUnitCalendar stores a native calendar in a unit inside tx.
func createUnitCalendar(ctx context.Context, tx *wtx, c *store.Calendar, unitID string) error {
	if c.Version == 0 {
		c.Version = 1
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO calendars (id, account_id, name, time_zone, kind, source_url,
		poll_interval_seconds, version, created_at, updated_at, source_host, hook_token, next_poll_at)
		VALUES (?, ?, ?, ?, ?, '', 0, ?, ?, ?, '', '', 0) RETURNING seq`,
		c.ID, c.AccountID, c.Name, c.TimeZone, store.KindNative, c.Version, micros(c.CreatedAt), micros(c.UpdatedAt)).Scan(&c.Seq); err != nil {
		return fmt.Errorf("create calendar: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO unit_calendars (calendar_id, unit_id, account_id) VALUES (?, ?, ?)`,
		c.ID, unitID, c.AccountID); err != nil {
		return fmt.Errorf("attach calendar: %w", err)
	}
	return insertUnitChange(ctx, tx, c.AccountID, unitID, store.ChangeUnitChanged, c.CreatedAt)
}

// Hold returns one hold of an account.
func (db *DB) Hold(ctx context.Context, accountID, id string) (*store.Hold, error) {
	h, err := scanHold(db.read.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = ? AND account_id = ?`,
		id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get hold %s: %w", id, err)
	}
	return h, nil
}

// ListHolds returns a page of a unit's holds, oldest first.
func (db *DB) ListHolds(ctx context.Context, p store.ListHoldsParams) ([]*store.Hold, error) {
	out, err := queryHolds(ctx, db.read, `WHERE unit_id = ? AND account_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		p.UnitID, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return out, nil
}

// ConfirmHold turns a live hold into a confirmed booking.
func (db *DB) ConfirmHold(ctx context.Context, accountID, id string, now time.Time) (*store.Hold, error) {
	var out *store.Hold
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		h, err := scanHold(tx.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = ? AND account_id = ?`, id, accountID))
		if err != nil {
			return err
		}
		out = h
		if h.State != store.HoldHeld || !now.Before(h.ExpiresAt) {
			return store.ErrHoldState
		}
		e, err := scanEvent(tx.QueryRowContext(ctx, `UPDATE events SET status = ?, sequence = sequence + 1, updated_at = ?
			WHERE id = ? AND calendar_id = ? AND account_id = ? RETURNING `+eventColumns,
			store.StatusConfirmed, micros(now), h.EventID, h.CalendarID, accountID))
		if err != nil {
			return fmt.Errorf("event %s: %w", h.EventID, err)
		}
		if err := bumpCalendar(ctx, tx, accountID, h.CalendarID, now); err != nil {
			return err
		}
		if _, err := insertChange(ctx, tx, e, store.ChangeUpdated, now); err != nil {
			return err
		}
		h.State, h.EndedAt = store.HoldConfirmed, now
		_, err = tx.ExecContext(ctx, `UPDATE holds SET state = ?, ended_at = ? WHERE id = ?`, h.State, micros(now), h.ID)
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
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		h, err := scanHold(tx.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = ? AND account_id = ?`, id, accountID))
		if err != nil {
			return err
		}
		out = h
		if h.State != store.HoldHeld {
			return store.ErrHoldState
		}
		e, err := scanEvent(tx.QueryRowContext(ctx, `DELETE FROM events WHERE id = ? AND calendar_id = ? AND account_id = ?
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
		}
		h.State, h.EndedAt = state, now
		_, err = tx.ExecContext(ctx, `UPDATE holds SET state = ?, ended_at = ? WHERE id = ?`, h.State, micros(now), h.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrHoldState) {
		return nil, fmt.Errorf("end hold %s: %w", id, err)
	}
	return out, err
}

// ExpiredHolds returns held holds whose expiry has passed.
func (db *DB) ExpiredHolds(ctx context.Context, now time.Time, limit int) ([]*store.Hold, error) {
	out, err := queryHolds(ctx, db.read, `WHERE state = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
		store.HoldHeld, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("expired holds: %w", err)
	}
	return out, nil
}

// BeginIdempotent reserves an idempotency key, or returns its record.
func (db *DB) BeginIdempotent(ctx context.Context, r *store.IdempotentRequest, now, staleBefore time.Time) (*store.IdempotentRequest, bool, error) {
	var kept *store.IdempotentRequest
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		kept = nil
		var k store.IdempotentRequest
		var created, expires int64
		err := tx.QueryRowContext(ctx, `SELECT account_id, key, fingerprint, status, body, created_at, expires_at
			FROM idempotency_keys WHERE account_id = ? AND key = ?`, r.AccountID, r.Key).Scan(
			&k.AccountID, &k.Key, &k.Fingerprint, &k.Status, &k.Body, &created, &expires)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil {
			k.CreatedAt, k.ExpiresAt = fromMicros(created), fromMicros(expires)
			if k.ExpiresAt.After(now) && (k.Status != 0 || k.CreatedAt.After(staleBefore)) {
				kept = &k
				return nil
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency_keys (account_id, key, fingerprint, status, body, created_at, expires_at)
			VALUES (?, ?, ?, 0, x'', ?, ?) ON CONFLICT (account_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,
			status = 0, body = x'', created_at = excluded.created_at, expires_at = excluded.expires_at`,
			r.AccountID, r.Key, r.Fingerprint, micros(r.CreatedAt), micros(r.ExpiresAt))
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
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = ?, body = ? WHERE account_id = ? AND key = ? AND status = 0`,
			status, body, accountID, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish idempotent request: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a pending key.
func (db *DB) AbandonIdempotent(ctx context.Context, accountID, key string) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND status = 0`, accountID, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("abandon idempotent request: %w", err)
	}
	return nil
}
