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

// PlaceHold checks and stores a hold: PlaceHolds of one.
func (db *DB) PlaceHold(ctx context.Context, p store.PlaceHoldParams, check store.HoldCheckFunc) error {
	errs, err := db.PlaceHolds(ctx, []store.HoldPlacement{{PlaceHoldParams: p, Check: check}})
	if err != nil {
		return err
	}
	return errs[0]
}

// errNonePlaced rolls back a PlaceHolds transaction whose checks all
// refused.
var errNonePlaced = errors.New("no hold placed")

// PlaceHolds checks and stores holds of one unit in one transaction that
// first locks the unit's row (SELECT … FOR UPDATE): placements on one
// unit, from any node, take turns from the check to the commit, and each
// statement after the lock sees what the one before it committed (read
// committed).
//
// The transaction is two pipelined batches, so two round trips (see
// pipeTx), however many holds it places, and the row lock is held for one
// of them and the checks: the first batch begins, locks the row and reads
// the unit's native calendar, the events that may block the window and
// the unit's held holds; the second writes the holds placed (and the
// unit's native calendar if it has none yet) and commits. When every
// check refused, it rolls back instead.
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
	err := db.pipe(ctx, func(tx *pipeTx) error {
		clear(errs)
		var unit *store.Unit
		var events []*store.Event
		var holds []*store.Hold
		native := ""
		b := &pgx.Batch{}
		b.Queue(`SELECT `+unitColumns+` FROM units WHERE id = $1 AND account_id = $2 FOR UPDATE`, unitID, accountID).
			QueryRow(func(row pgx.Row) error {
				var err error
				if unit, err = scanUnit(row); err != nil {
					return fmt.Errorf("unit %s: %w", unitID, err)
				}
				return nil
			})
		b.Queue(`SELECT c.id FROM unit_calendars m JOIN calendars c ON c.id = m.calendar_id
			WHERE m.unit_id = $1 AND c.kind = $2 ORDER BY c.seq LIMIT 1`, unitID, store.KindNative).
			Query(func(rows pgx.Rows) error {
				ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if len(ids) > 0 {
					native = ids[0]
				}
				return err
			})
		b.Queue(`SELECT `+eventColumns+` FROM events `+
			blockingEventsWhere(`ARRAY(SELECT calendar_id FROM unit_calendars WHERE unit_id = $1)`),
			unitID, accountID, to, from, from.Add(-store.LongEvent)).
			Query(func(rows pgx.Rows) error {
				var err error
				events, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) { return scanEvent(row) })
				if err != nil {
					return fmt.Errorf("read blocking events: %w", err)
				}
				return nil
			})
		b.Queue(`SELECT `+holdColumns+` FROM holds WHERE unit_id = $1 AND state = $2 AND start_at < $3 AND end_at > $4 ORDER BY seq`,
			unitID, store.HoldHeld, to, from).
			Query(func(rows pgx.Rows) error {
				var err error
				holds, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Hold, error) { return scanHold(row) })
				if err != nil {
					return fmt.Errorf("read holds: %w", err)
				}
				return nil
			})
		if err := tx.send(ctx, b); err != nil {
			return err
		}

		b = &pgx.Batch{}
		var placed *bump
		for i, p := range ps {
			if errs[i] = p.Check(ctx, unit, events, holds); errs[i] != nil {
				continue
			}
			h, e := p.Hold, p.Event
			if native == "" {
				queueUnitCalendar(ctx, b, tx, p.NewCalendar, unitID)
				native = p.NewCalendar.ID
			}
			h.CalendarID, e.CalendarID, h.EventID = native, native, e.ID
			trace := p.Trace
			if trace == "" {
				trace = store.TraceFrom(ctx)
			}
			if err := queueHold(b, h, e, trace); err != nil {
				return err
			}
			placed = placed.add(e.UpdatedAt)
			events, holds = append(events, e), append(holds, h)
		}
		if placed == nil {
			return errNonePlaced
		}
		// The holds' events count in a version slot, as the event writes
		// of the API do (see commitGroup).
		slot := db.versionSlot()
		queueBumps(b, "calendars", "calendar_versions", "calendar_id", map[string]*bump{native: placed}, slot)
		queueBumps(b, "accounts", "account_versions", "account_id", map[string]*bump{accountID: placed}, slot)
		tx.notifyChange(Change{AccountID: accountID, CalendarID: native})
		return tx.commit(ctx, b)
	})
	if errors.Is(err, errNonePlaced) {
		return errs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("place holds: %w", err)
	}
	return errs, nil
}

// queueHold adds to b the statements that store the hold h and its event
// e, with the event's created change (of the trace).
func queueHold(b *pgx.Batch, h *store.Hold, e *store.Event, trace string) error {
	a, err := encodeEvent(e)
	if err != nil {
		return fmt.Errorf("event %s: %w", e.ID, err)
	}
	b.Queue(insertEventSQL, e.ID, e.CalendarID, e.AccountID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location,
		e.Start, e.End, e.AllDay, e.TimeZone, e.Status, e.RRule, a.exdates, e.Sequence,
		a.metadata, a.extra, e.CreatedAt, e.UpdatedAt).QueryRow(func(row pgx.Row) error { return row.Scan(&e.Seq) })
	snap, err := store.MarshalSnapshot(e)
	if err != nil {
		return err
	}
	queueChange(b, &store.Change{AccountID: e.AccountID, CalendarID: e.CalendarID, EventID: e.ID, EventUID: e.UID,
		Type: store.ChangeCreated, Event: e, OccurredAt: e.UpdatedAt, Trace: trace}, snap)
	b.Queue(`INSERT INTO holds (id, account_id, unit_id, calendar_id, event_id, start_at, end_at,
		all_day, summary, external_ref, state, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq`,
		h.ID, h.AccountID, h.UnitID, h.CalendarID, h.EventID, h.Start, h.End, h.AllDay,
		h.Summary, h.ExternalRef, h.State, h.ExpiresAt, h.CreatedAt).QueryRow(func(row pgx.Row) error { return row.Scan(&h.Seq) })
	return nil
}

// queueUnitCalendar adds to b the statements that store the native
// calendar c in the unit, with the unit's change.
func queueUnitCalendar(ctx context.Context, b *pgx.Batch, tx *pipeTx, c *store.Calendar, unitID string) {
	if c.Version == 0 {
		c.Version = 1
	}
	b.Queue(`INSERT INTO calendars (id, account_id, name, time_zone, kind, source_url,
		poll_interval_seconds, version, created_at, updated_at, source_host, hook_token)
		VALUES ($1, $2, $3, $4, $5, '', 0, $6, $7, $8, '', '') RETURNING seq`,
		c.ID, c.AccountID, c.Name, c.TimeZone, store.KindNative, c.Version, c.CreatedAt, c.UpdatedAt).
		QueryRow(func(row pgx.Row) error { return row.Scan(&c.Seq) })
	b.Queue(`INSERT INTO unit_calendars (calendar_id, unit_id, account_id) VALUES ($1, $2, $3)`, c.ID, unitID, c.AccountID)
	queueChange(b, &store.Change{AccountID: c.AccountID, EventID: unitID, Type: store.ChangeUnitChanged,
		OccurredAt: c.CreatedAt, Trace: store.TraceFrom(ctx)}, nil)
	tx.notifyChange(Change{AccountID: c.AccountID, CalendarID: c.ID, Calendar: true})
}

// queueChange adds to b the append of ch (with the event snapshot snap,
// or none) to the change log, setting its ID and TxID (see appendChange).
func queueChange(b *pgx.Batch, ch *store.Change, snap []byte) {
	if snap == nil {
		snap = []byte(`{}`)
	}
	b.Queue(insertChangeSQL, ch.AccountID, ch.CalendarID, ch.EventID, ch.EventUID, ch.Type, string(snap), ch.OccurredAt, ch.Trace).
		QueryRow(func(row pgx.Row) error { return row.Scan(&ch.ID, &ch.TxID) })
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
