package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const eventColumns = `seq, id, calendar_id, account_id, uid, recurrence_id, summary, description, location,
	start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at`

func scanEvent(row interface{ Scan(...any) error }) (*store.Event, error) {
	var e store.Event
	var start, end, created, updated int64
	var exdates, metadata, extra string
	if err := row.Scan(&e.Seq, &e.ID, &e.CalendarID, &e.AccountID, &e.UID, &e.RecurrenceID, &e.Summary,
		&e.Description, &e.Location, &start, &end, &e.AllDay, &e.TimeZone, &e.Status, &e.RRule, &exdates,
		&e.Sequence, &metadata, &extra, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	e.Start, e.End = fromMicros(start), fromMicros(end)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := decodeEventJSON(&e, exdates, metadata, extra); err != nil {
		return nil, err
	}
	return &e, nil
}

func decodeEventJSON(e *store.Event, exdates, metadata, extra string) error {
	if exdates != "[]" {
		if err := json.Unmarshal([]byte(exdates), &e.ExDates); err != nil {
			return fmt.Errorf("event %s: decode exdates: %w", e.ID, err)
		}
	}
	if metadata != "{}" {
		if err := json.Unmarshal([]byte(metadata), &e.Metadata); err != nil {
			return fmt.Errorf("event %s: decode metadata: %w", e.ID, err)
		}
	}
	if extra != "{}" {
		if err := json.Unmarshal([]byte(extra), &e.Extra); err != nil {
			return fmt.Errorf("event %s: decode extra: %w", e.ID, err)
		}
	}
	return nil
}

// encodeEventJSON returns the JSON columns of e.
func encodeEventJSON(e *store.Event) (exdates, metadata, extra string, err error) {
	marshal := func(v any, empty string, isEmpty bool) (string, error) {
		if isEmpty {
			return empty, nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	if exdates, err = marshal(e.ExDates, "[]", len(e.ExDates) == 0); err != nil {
		return "", "", "", err
	}
	if metadata, err = marshal(e.Metadata, "{}", len(e.Metadata) == 0); err != nil {
		return "", "", "", err
	}
	if extra, err = marshal(e.Extra, "{}", len(e.Extra) == 0); err != nil {
		return "", "", "", err
	}
	return exdates, metadata, extra, nil
}

func queryEvents(ctx context.Context, q queryer, where string, args ...any) ([]*store.Event, error) {
	return queryEventRows(ctx, q, `SELECT `+eventColumns+` FROM events `+where, args...)
}

// queryEventRows runs query, which selects eventColumns, and scans its rows.
func queryEventRows(ctx context.Context, q queryer, query string, args ...any) ([]*store.Event, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []*store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

// The statements of insertChange, without and with a trace context.
const (
	insertChangeSQL = `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`
	insertTracedChangeSQL = `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
)

// insertChange appends a change record for e inside tx.
func insertChange(ctx context.Context, tx *wtx, e *store.Event, typ string, at time.Time) (*store.Change, error) {
	snap, err := store.MarshalSnapshot(e)
	if err != nil {
		return nil, err
	}
	ch := &store.Change{
		AccountID: e.AccountID, CalendarID: e.CalendarID, EventID: e.ID, EventUID: e.UID,
		Type: typ, Event: e, OccurredAt: at, Trace: store.TraceFrom(ctx),
	}
	args := []any{ch.AccountID, ch.CalendarID, ch.EventID, ch.EventUID, ch.Type, snap, micros(at)}
	query := insertChangeSQL
	if ch.Trace != "" { // with tracing off, the column keeps its default: no extra parameter to bind
		query, args = insertTracedChangeSQL, append(args, ch.Trace)
	}
	err = tx.QueryRowContext(ctx, query, args...).Scan(&ch.ID)
	if err != nil {
		return nil, fmt.Errorf("insert change: %w", err)
	}
	return ch, nil
}

// CreateEvent stores a new event with its change record in one transaction.
func (db *DB) CreateEvent(ctx context.Context, e *store.Event) (*store.Change, error) {
	var ch *store.Change
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if err := bumpCalendar(ctx, tx, e.AccountID, e.CalendarID, e.UpdatedAt); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, e); err != nil {
			return err
		}
		var err error
		ch, err = insertChange(ctx, tx, e, store.ChangeCreated, e.UpdatedAt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create event: %w", err)
	}
	return ch, nil
}

// insertEvent stores e in its calendar inside tx and sets its Seq.
func insertEvent(ctx context.Context, tx *wtx, e *store.Event) error {
	exdates, metadata, extra, err := encodeEventJSON(e)
	if err != nil {
		return fmt.Errorf("create event %s: %w", e.ID, err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO events
		(id, calendar_id, account_id, uid, recurrence_id, summary, description, location, start_at, end_at,
		 all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		e.ID, e.CalendarID, e.AccountID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location,
		micros(e.Start), micros(e.End), e.AllDay, e.TimeZone, e.Status, e.RRule, exdates, e.Sequence,
		metadata, extra, micros(e.CreatedAt), micros(e.UpdatedAt)).Scan(&e.Seq)
	if isUnique(err) {
		return fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
	}
	return err
}

// Event returns one event of an account's calendar.
func (db *DB) Event(ctx context.Context, accountID, calendarID, id string) (*store.Event, error) {
	e, err := scanEvent(db.reads.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE id = ? AND calendar_id = ? AND account_id = ?`, id, calendarID, accountID))
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// ListEvents returns a page of a calendar's events in creation order. It
// answers store.ErrNotFound when the calendar is not the account's.
func (db *DB) ListEvents(ctx context.Context, p store.ListEventsParams) ([]*store.Event, error) {
	if _, err := db.Calendar(ctx, p.AccountID, p.CalendarID); err != nil {
		return nil, err
	}
	where := `WHERE calendar_id = ? AND account_id = ? AND seq > ?`
	args := []any{p.CalendarID, p.AccountID, p.After}
	if !p.To.IsZero() {
		where += ` AND start_at < ?`
		args = append(args, micros(p.To))
	}
	if !p.From.IsZero() {
		where += ` AND (end_at > ? OR rrule <> '')`
		args = append(args, micros(p.From))
	}
	events, err := queryEvents(ctx, db.read, where+` ORDER BY seq LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", p.CalendarID, err)
	}
	return events, nil
}

// UpdateEvent stores an event's new fields with its change record in one
// transaction.
func (db *DB) UpdateEvent(ctx context.Context, e *store.Event) (*store.Change, error) {
	exdates, metadata, extra, err := encodeEventJSON(e)
	if err != nil {
		return nil, fmt.Errorf("update event %s: %w", e.ID, err)
	}
	var ch *store.Change
	err = db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if err := bumpCalendar(ctx, tx, e.AccountID, e.CalendarID, e.UpdatedAt); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE events SET
			uid = ?, recurrence_id = ?, summary = ?, description = ?, location = ?, start_at = ?, end_at = ?,
			all_day = ?, time_zone = ?, status = ?, rrule = ?, exdates = ?, sequence = ?, metadata = ?, extra = ?,
			updated_at = ?
			WHERE id = ? AND calendar_id = ? AND account_id = ?`,
			e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location, micros(e.Start), micros(e.End),
			e.AllDay, e.TimeZone, e.Status, e.RRule, exdates, e.Sequence, metadata, extra, micros(e.UpdatedAt),
			e.ID, e.CalendarID, e.AccountID)
		if isUnique(err) {
			return fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := mustAffect(res, "event "+e.ID); err != nil {
			return err
		}
		ch, err = insertChange(ctx, tx, e, store.ChangeUpdated, e.UpdatedAt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update event: %w", err)
	}
	return ch, nil
}

// DeleteEvent removes an event with its change record in one transaction.
func (db *DB) DeleteEvent(ctx context.Context, accountID, calendarID, id string, now time.Time) (*store.Change, error) {
	var ch *store.Change
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		e, err := scanEvent(tx.QueryRowContext(ctx, `DELETE FROM events
			WHERE id = ? AND calendar_id = ? AND account_id = ? RETURNING `+eventColumns, id, calendarID, accountID))
		if err != nil {
			return err
		}
		if err := bumpCalendar(ctx, tx, accountID, calendarID, now); err != nil {
			return err
		}
		ch, err = insertChange(ctx, tx, e, store.ChangeDeleted, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete event %s: %w", id, err)
	}
	return ch, nil
}
