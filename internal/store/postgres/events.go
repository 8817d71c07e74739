package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

const eventColumns = `seq, id, calendar_id, account_id, uid, recurrence_id, summary, description, location,
	start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at`

func scanEvent(row pgx.Row) (*store.Event, error) {
	var e store.Event
	var metadata, extra []byte
	if err := row.Scan(&e.Seq, &e.ID, &e.CalendarID, &e.AccountID, &e.UID, &e.RecurrenceID, &e.Summary,
		&e.Description, &e.Location, &e.Start, &e.End, &e.AllDay, &e.TimeZone, &e.Status, &e.RRule, &e.ExDates,
		&e.Sequence, &metadata, &extra, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	utcTimes(&e)
	if err := decodeMap(metadata, &e.Metadata); err != nil {
		return nil, fmt.Errorf("event %s: decode metadata: %w", e.ID, err)
	}
	if err := decodeMap(extra, &e.Extra); err != nil {
		return nil, fmt.Errorf("event %s: decode extra: %w", e.ID, err)
	}
	return &e, nil
}

// utcTimes gives a scanned event's times in UTC, as the SQLite adapter
// does, and no EXDATE list when it is empty.
func utcTimes(e *store.Event) {
	e.Start, e.End = utc(e.Start), utc(e.End)
	e.CreatedAt, e.UpdatedAt = utc(e.CreatedAt), utc(e.UpdatedAt)
	if len(e.ExDates) == 0 {
		e.ExDates = nil
	}
	for i, t := range e.ExDates {
		e.ExDates[i] = utc(t)
	}
}

// decodeMap decodes a jsonb object; the empty object leaves m nil, as the
// SQLite adapter does.
func decodeMap(b []byte, m *map[string]string) error {
	var v map[string]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if len(v) > 0 {
		*m = v
	}
	return nil
}

// eventArgs are the values of an event's columns that need encoding.
type eventArgs struct {
	exdates         []time.Time
	metadata, extra string
}

func encodeEvent(e *store.Event) (eventArgs, error) {
	a := eventArgs{exdates: e.ExDates, metadata: "{}", extra: "{}"}
	if a.exdates == nil {
		a.exdates = []time.Time{}
	}
	if len(e.Metadata) > 0 {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return a, fmt.Errorf("encode metadata: %w", err)
		}
		a.metadata = string(b)
	}
	if len(e.Extra) > 0 {
		b, err := json.Marshal(e.Extra)
		if err != nil {
			return a, fmt.Errorf("encode extra: %w", err)
		}
		a.extra = string(b)
	}
	return a, nil
}

func queryEvents(ctx context.Context, q querier, where string, args ...any) ([]*store.Event, error) {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM events `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) { return scanEvent(row) })
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return events, nil
}

const insertEventSQL = `INSERT INTO events
	(id, calendar_id, account_id, uid, recurrence_id, summary, description, location, start_at, end_at,
	 all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING seq`

// insertEvent stores e in its calendar inside tx and sets its Seq.
func insertEvent(ctx context.Context, tx pgx.Tx, e *store.Event) error {
	a, err := encodeEvent(e)
	if err != nil {
		return fmt.Errorf("create event %s: %w", e.ID, err)
	}
	err = tx.QueryRow(ctx, insertEventSQL,
		e.ID, e.CalendarID, e.AccountID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location,
		e.Start, e.End, e.AllDay, e.TimeZone, e.Status, e.RRule, a.exdates, e.Sequence,
		a.metadata, a.extra, e.CreatedAt, e.UpdatedAt).Scan(&e.Seq)
	if isUnique(err) {
		return fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create event %s: %w", e.ID, err)
	}
	return nil
}

// updateEvent stores e's fields inside tx; an event that is not in the
// calendar is store.ErrNotFound.
func updateEvent(ctx context.Context, tx pgx.Tx, e *store.Event) error {
	a, err := encodeEvent(e)
	if err != nil {
		return fmt.Errorf("update event %s: %w", e.ID, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE events SET
		uid = $1, recurrence_id = $2, summary = $3, description = $4, location = $5, start_at = $6, end_at = $7,
		all_day = $8, time_zone = $9, status = $10, rrule = $11, exdates = $12, sequence = $13, metadata = $14,
		extra = $15, updated_at = $16
		WHERE id = $17 AND calendar_id = $18 AND account_id = $19`,
		e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location, e.Start, e.End,
		e.AllDay, e.TimeZone, e.Status, e.RRule, a.exdates, e.Sequence, a.metadata, a.extra, e.UpdatedAt,
		e.ID, e.CalendarID, e.AccountID)
	if isUnique(err) {
		return fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update event %s: %w", e.ID, err)
	}
	return mustAffect(tag, "event "+e.ID)
}

// insertChange appends a change record for e inside tx.
func insertChange(ctx context.Context, tx pgx.Tx, e *store.Event, typ string, at time.Time) (*store.Change, error) {
	snap, err := store.MarshalSnapshot(e)
	if err != nil {
		return nil, err
	}
	return appendChange(ctx, tx, &store.Change{
		AccountID: e.AccountID, CalendarID: e.CalendarID, EventID: e.ID, EventUID: e.UID,
		Type: typ, Event: e, OccurredAt: at,
	}, snap)
}

// appendChange appends ch (with the event snapshot snap, or none) to the
// change log inside tx and sets its ID and TxID.
func appendChange(ctx context.Context, tx pgx.Tx, ch *store.Change, snap []byte) (*store.Change, error) {
	if snap == nil {
		snap = []byte(`{}`)
	}
	if ch.Trace == "" {
		ch.Trace = store.TraceFrom(ctx)
	}
	err := tx.QueryRow(ctx, insertChangeSQL,
		ch.AccountID, ch.CalendarID, ch.EventID, ch.EventUID, ch.Type, string(snap), ch.OccurredAt, ch.Trace).Scan(&ch.ID, &ch.TxID)
	if err != nil {
		return nil, fmt.Errorf("insert change: %w", err)
	}
	return ch, nil
}

const insertChangeSQL = `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
	VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING id, xid`

// CreateEvent stores a new event with its change record in one transaction
// (group-committed; see commitGroup).
func (db *DB) CreateEvent(ctx context.Context, e *store.Event) (*store.Change, error) {
	ch, err := db.writeEvent(ctx, &eventWrite{kind: store.ChangeCreated, event: e,
		accountID: e.AccountID, calendarID: e.CalendarID, eventID: e.ID, at: e.UpdatedAt})
	if err != nil {
		return nil, fmt.Errorf("create event: %w", err)
	}
	return ch, nil
}

// Event returns one event of an account's calendar.
func (db *DB) Event(ctx context.Context, accountID, calendarID, id string) (*store.Event, error) {
	e, err := scanEvent(db.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events
		WHERE id = $1 AND calendar_id = $2 AND account_id = $3`, id, calendarID, accountID))
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
	where := `WHERE calendar_id = $1 AND account_id = $2 AND seq > $3`
	args := []any{p.CalendarID, p.AccountID, p.After}
	if !p.To.IsZero() {
		args = append(args, p.To)
		where += fmt.Sprintf(` AND start_at < $%d`, len(args))
	}
	if !p.From.IsZero() {
		args = append(args, p.From)
		where += fmt.Sprintf(` AND (end_at > $%d OR rrule <> '')`, len(args))
	}
	args = append(args, p.Limit)
	events, err := queryEvents(ctx, db.pool, where+fmt.Sprintf(` ORDER BY seq LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", p.CalendarID, err)
	}
	return events, nil
}

// UpdateEvent stores an event's new fields with its change record in one
// transaction (group-committed).
func (db *DB) UpdateEvent(ctx context.Context, e *store.Event) (*store.Change, error) {
	ch, err := db.writeEvent(ctx, &eventWrite{kind: store.ChangeUpdated, event: e,
		accountID: e.AccountID, calendarID: e.CalendarID, eventID: e.ID, at: e.UpdatedAt})
	if err != nil {
		return nil, fmt.Errorf("update event: %w", err)
	}
	return ch, nil
}

// DeleteEvent removes an event with its change record in one transaction
// (group-committed).
func (db *DB) DeleteEvent(ctx context.Context, accountID, calendarID, id string, now time.Time) (*store.Change, error) {
	ch, err := db.writeEvent(ctx, &eventWrite{kind: store.ChangeDeleted,
		accountID: accountID, calendarID: calendarID, eventID: id, at: now})
	if err != nil {
		return nil, fmt.Errorf("delete event %s: %w", id, err)
	}
	return ch, nil
}
