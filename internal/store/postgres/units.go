package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/store"
)

const unitColumns = `seq, id, account_id, name, time_zone, same_day_turnover, export_summary, created_at, updated_at`

func scanUnit(row pgx.Row) (*store.Unit, error) {
	var u store.Unit
	if err := row.Scan(&u.Seq, &u.ID, &u.AccountID, &u.Name, &u.TimeZone, &u.SameDayTurnover, &u.ExportSummary,
		&u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return &u, nil
}

func queryUnits(ctx context.Context, q querier, where string, args ...any) ([]*store.Unit, error) {
	rows, err := q.Query(ctx, `SELECT `+unitColumns+` FROM units `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Unit, error) { return scanUnit(row) })
}

// CreateUnit stores a new unit.
func (db *DB) CreateUnit(ctx context.Context, u *store.Unit) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO units
		(id, account_id, name, time_zone, same_day_turnover, export_summary, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
		u.ID, u.AccountID, u.Name, u.TimeZone, u.SameDayTurnover, u.ExportSummary, u.CreatedAt, u.UpdatedAt).Scan(&u.Seq)
	if isUnique(err) {
		return fmt.Errorf("create unit %s: %w", u.ID, store.ErrConflict)
	}
	if isForeignKey(err) {
		return fmt.Errorf("create unit %s: account %s: %w", u.ID, u.AccountID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create unit %s: %w", u.ID, err)
	}
	return nil
}

// Unit returns one unit of an account.
func (db *DB) Unit(ctx context.Context, accountID, id string) (*store.Unit, error) {
	u, err := scanUnit(db.pool.QueryRow(ctx, `SELECT `+unitColumns+` FROM units WHERE id = $1 AND account_id = $2`,
		id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get unit %s: %w", id, err)
	}
	return u, nil
}

// ListUnits returns a page of an account's units in creation order.
func (db *DB) ListUnits(ctx context.Context, p store.ListUnitsParams) ([]*store.Unit, error) {
	out, err := queryUnits(ctx, db.pool, `WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	return out, nil
}

// UnitsByID returns the account's units among ids.
func (db *DB) UnitsByID(ctx context.Context, accountID string, ids []string) ([]*store.Unit, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := queryUnits(ctx, db.pool, `WHERE account_id = $1 AND id = ANY($2) ORDER BY seq`, accountID, ids)
	if err != nil {
		return nil, fmt.Errorf("read units: %w", err)
	}
	return out, nil
}

// UpdateUnit stores a unit's fields and asks the detector to look at it
// again.
func (db *DB) UpdateUnit(ctx context.Context, u *store.Unit) error {
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `UPDATE units SET name = $1, time_zone = $2, same_day_turnover = $3,
			export_summary = $4, updated_at = $5 WHERE id = $6 AND account_id = $7`,
			u.Name, u.TimeZone, u.SameDayTurnover, u.ExportSummary, u.UpdatedAt, u.ID, u.AccountID)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "unit "+u.ID); err != nil {
			return err
		}
		// The export feeds of the unit change (their version is the
		// account's feed version).
		if err := bumpAccount(ctx, tx, u.AccountID, u.UpdatedAt); err != nil {
			return err
		}
		return appendUnitChange(ctx, tx, u.AccountID, u.ID, store.ChangeUnitChanged, u.UpdatedAt)
	})
	if err != nil {
		return fmt.Errorf("update unit %s: %w", u.ID, err)
	}
	return nil
}

// DeleteUnit removes a unit; its membership rows and conflicts cascade.
func (db *DB) DeleteUnit(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(tx *txn) error {
		// The unit's row is locked first: a detection step that stores a
		// conflict of the unit waits, then finds no unit and stores nothing.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM units WHERE id = $1 AND account_id = $2 FOR UPDATE`, id, accountID).Scan(&one); err != nil {
			return fmt.Errorf("unit %s: %w", id, notFound(err))
		}
		open, err := queryConflicts(ctx, tx, `WHERE unit_id = $1 AND account_id = $2 AND state = 'open' ORDER BY seq FOR UPDATE`, id, accountID)
		if err != nil {
			return err
		}
		for _, c := range open {
			rec, err := store.ResolveWithUnit(c, now)
			if err != nil {
				return err
			}
			if _, err := appendChange(ctx, tx, &store.Change{AccountID: accountID, EventID: c.ID,
				Type: store.ChangeConflictResolved, OccurredAt: now}, rec); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM units WHERE id = $1 AND account_id = $2`, id, accountID)
		if err != nil {
			return err
		}
		return mustAffect(tag, "unit "+id)
	})
	if err != nil {
		return fmt.Errorf("delete unit %s: %w", id, err)
	}
	return nil
}

// appendUnitChange appends a change that is about a unit or a conflict (no
// calendar, no event snapshot) inside tx; subject is the unit's or
// conflict's id.
func appendUnitChange(ctx context.Context, tx pgx.Tx, accountID, subject, typ string, at time.Time) error {
	_, err := appendChange(ctx, tx, &store.Change{AccountID: accountID, EventID: subject, Type: typ, OccurredAt: at}, nil)
	return err
}

// SetCalendarUnit moves a calendar into a unit, or out of its unit. The
// calendar's row is locked first, so concurrent moves of one calendar
// take turns.
func (db *DB) SetCalendarUnit(ctx context.Context, accountID, calendarID, unitID string, now time.Time) (string, error) {
	var old string
	err := db.tx(ctx, func(tx *txn) error {
		old = ""
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM calendars WHERE id = $1 AND account_id = $2 FOR UPDATE`,
			calendarID, accountID).Scan(&one); err != nil {
			return notFound(err)
		}
		if unitID != "" {
			if err := tx.QueryRow(ctx, `SELECT 1 FROM units WHERE id = $1 AND account_id = $2 FOR SHARE`,
				unitID, accountID).Scan(&one); err != nil {
				return fmt.Errorf("unit %s: %w", unitID, notFound(err))
			}
		}
		err := tx.QueryRow(ctx, `SELECT unit_id FROM unit_calendars WHERE calendar_id = $1`, calendarID).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if old == unitID {
			return nil
		}
		if unitID == "" {
			_, err = tx.Exec(ctx, `DELETE FROM unit_calendars WHERE calendar_id = $1`, calendarID)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO unit_calendars (calendar_id, unit_id, account_id) VALUES ($1, $2, $3)
				ON CONFLICT (calendar_id) DO UPDATE SET unit_id = excluded.unit_id`, calendarID, unitID, accountID)
		}
		if err != nil {
			return err
		}
		if err := bumpAccount(ctx, tx, accountID, now); err != nil {
			return err
		}
		for _, u := range []string{old, unitID} {
			if u == "" {
				continue
			}
			if err := appendUnitChange(ctx, tx, accountID, u, store.ChangeUnitChanged, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("set unit of calendar %s: %w", calendarID, err)
	}
	return old, nil
}

// CalendarUnits returns the unit of each given calendar that has one.
func (db *DB) CalendarUnits(ctx context.Context, accountID string, calendarIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(calendarIDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT calendar_id, unit_id FROM unit_calendars
		WHERE account_id = $1 AND calendar_id = ANY($2)`, accountID, calendarIDs)
	if err != nil {
		return nil, fmt.Errorf("read calendar units: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, u string
		if err := rows.Scan(&c, &u); err != nil {
			return nil, fmt.Errorf("read calendar units: %w", err)
		}
		out[c] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read calendar units: %w", err)
	}
	return out, nil
}

// UnitCalendars returns the calendars of the given units.
func (db *DB) UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*store.UnitCalendar, error) {
	if len(unitIDs) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT (SELECT m.unit_id FROM unit_calendars m WHERE m.calendar_id = calendars.id),
		`+calendarColumns+` FROM calendars
		WHERE id IN (SELECT calendar_id FROM unit_calendars WHERE account_id = $1 AND unit_id = ANY($2)) ORDER BY seq`,
		accountID, unitIDs)
	if err != nil {
		return nil, fmt.Errorf("read unit calendars: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.UnitCalendar, error) {
		var unitID string
		c, err := scanCalendar(prefixRow{row, &unitID})
		if err != nil {
			return nil, err
		}
		return &store.UnitCalendar{UnitID: unitID, Calendar: c}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read unit calendars: %w", err)
	}
	return out, nil
}

// CalendarMembership returns the units of the given calendars, each with
// all of its calendars, in one statement: a unit's columns come again on
// each of its calendars' rows.
func (db *DB) CalendarMembership(ctx context.Context, accountID string, calendarIDs []string) (*store.Membership, error) {
	m := &store.Membership{}
	if len(calendarIDs) == 0 {
		return m, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+qualified("u", unitColumns)+`, `+qualified("calendars", memberColumns)+`
		FROM units u JOIN unit_calendars m ON m.unit_id = u.id JOIN calendars ON calendars.id = m.calendar_id
		WHERE u.account_id = $1 AND u.id IN (SELECT unit_id FROM unit_calendars
			WHERE account_id = $1 AND calendar_id = ANY($2))
		ORDER BY u.seq, calendars.seq`, accountID, calendarIDs)
	if err != nil {
		return nil, fmt.Errorf("read calendar membership: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c *store.Calendar
		u, err := scanUnit(scanFunc(func(unitDest ...any) error {
			c = &store.Calendar{}
			return rows.Scan(append(unitDest, &c.Seq, &c.ID, &c.AccountID, &c.Name, &c.Kind, &c.SourceURL, &c.FeedDisabled)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("read calendar membership: %w", err)
		}
		m.Add(u, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read calendar membership: %w", err)
	}
	return m, nil
}

// memberColumns are the columns of a calendar that CalendarMembership
// reads: a row of a unit's calendar costs a column read each.
const memberColumns = `seq, id, account_id, name, kind, source_url, feed_disabled`

// scanFunc is a Scan method of its own: it lets a row that holds a
// record and more be read by the record's scan function.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// prefixRow scans one leading column into dst, then the rest.
type prefixRow struct {
	row pgx.Row
	dst any
}

func (p prefixRow) Scan(dest ...any) error { return p.row.Scan(append([]any{p.dst}, dest...)...) }

// BlockingEvents returns the events that may block time in [From, To). It
// reads in three parts, each along an index: single events that start in
// [From - store.LongEvent, To) (events_calendar_start), longer ones still
// running at From (events_long), and recurring series and overrides
// (events_recurring); so a window costs the events near it, not every
// event before it.
func (db *DB) BlockingEvents(ctx context.Context, p store.BlockingEventsParams) ([]*store.Event, error) {
	return blockingEvents(ctx, db.pool, p)
}

// blockingEvents is BlockingEvents on q (the pool, or a transaction).
func blockingEvents(ctx context.Context, q querier, p store.BlockingEventsParams) ([]*store.Event, error) {
	if len(p.CalendarIDs) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT `+blockingColumns+` FROM events `+blockingEventsWhere("$1"),
		p.CalendarIDs, p.AccountID, p.To, p.From, p.From.Add(-store.LongEvent))
	if err != nil {
		return nil, fmt.Errorf("read blocking events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) { return scanBlockingEvent(row) })
	if err != nil {
		return nil, fmt.Errorf("read blocking events: %w", err)
	}
	return out, nil
}

// blockingColumns are the columns of BlockingEvents: an event's time,
// status and identity, without its description, location, metadata and
// extra properties, which no reader of busy time needs.
const blockingColumns = `seq, id, calendar_id, account_id, uid, recurrence_id, summary,
	start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, created_at, updated_at`

// scanBlockingEvent scans a row of blockingColumns.
func scanBlockingEvent(row pgx.Row) (*store.Event, error) {
	var e store.Event
	if err := row.Scan(&e.Seq, &e.ID, &e.CalendarID, &e.AccountID, &e.UID, &e.RecurrenceID, &e.Summary,
		&e.Start, &e.End, &e.AllDay, &e.TimeZone, &e.Status, &e.RRule, &e.ExDates, &e.Sequence, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	utcTimes(&e)
	return &e, nil
}

// blockingEventsWhere is the WHERE clause of BlockingEvents for the
// calendars of the SQL array calendars, with the account $2, To $3, From
// $4 and From - store.LongEvent $5. PlaceHolds passes a subquery of the
// unit's calendars, so that it reads them and their events in one batch.
func blockingEventsWhere(calendars string) string {
	return `WHERE id IN (
		SELECT id FROM events WHERE calendar_id = ANY(` + calendars + `) AND account_id = $2 AND rrule = '' AND recurrence_id = ''
			AND status <> 'cancelled' AND start_at >= $5 AND start_at < $3 AND end_at > $4
		UNION ALL
		SELECT id FROM events WHERE calendar_id = ANY(` + calendars + `) AND account_id = $2 AND ` + longEvent + `
			AND rrule = '' AND recurrence_id = '' AND status <> 'cancelled' AND start_at < $5 AND end_at > $4
		UNION ALL
		SELECT id FROM events WHERE calendar_id = ANY(` + calendars + `) AND account_id = $2 AND (rrule <> '' OR recurrence_id <> '')
			AND (recurrence_id <> '' OR status <> 'cancelled' AND start_at < $3))
		ORDER BY start_at, id`
}

// longEvent is the condition of the events_long index: events longer than
// store.LongEvent (a literal, so the index applies).
var longEvent = fmt.Sprintf("end_at - start_at > interval '%d seconds'", int64(store.LongEvent/time.Second))

const conflictColumns = `seq, id, account_id, unit_id, state, sides, overlap_start, overlap_end, detected_at, resolved_at`

// conflictSides is the stored form of a conflict's two sides.
type conflictSides struct {
	A store.ConflictSide `json:"a"`
	B store.ConflictSide `json:"b"`
}

func scanConflict(row pgx.Row) (*store.Conflict, error) {
	var c store.Conflict
	var sides []byte
	var resolved pgtype.Timestamptz
	if err := row.Scan(&c.Seq, &c.ID, &c.AccountID, &c.UnitID, &c.State, &sides, &c.OverlapStart, &c.OverlapEnd,
		&c.DetectedAt, &resolved); err != nil {
		return nil, notFound(err)
	}
	var s conflictSides
	if err := json.Unmarshal(sides, &s); err != nil {
		return nil, fmt.Errorf("conflict %s: decode sides: %w", c.ID, err)
	}
	c.A, c.B = s.A, s.B
	c.OverlapStart, c.OverlapEnd, c.DetectedAt = utc(c.OverlapStart), utc(c.OverlapEnd), utc(c.DetectedAt)
	c.ResolvedAt = fromOpt(resolved)
	return &c, nil
}

func queryConflicts(ctx context.Context, q querier, where string, args ...any) ([]*store.Conflict, error) {
	rows, err := q.Query(ctx, `SELECT `+conflictColumns+` FROM conflicts `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Conflict, error) { return scanConflict(row) })
}

// Conflict returns one conflict of an account.
func (db *DB) Conflict(ctx context.Context, accountID, id string) (*store.Conflict, error) {
	c, err := scanConflict(db.pool.QueryRow(ctx, `SELECT `+conflictColumns+` FROM conflicts
		WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get conflict %s: %w", id, err)
	}
	return c, nil
}

// ListConflicts returns a page of a unit's conflicts, oldest first.
func (db *DB) ListConflicts(ctx context.Context, p store.ListConflictsParams) ([]*store.Conflict, error) {
	out, err := queryConflicts(ctx, db.pool, `WHERE account_id = $1 AND unit_id = $2 AND ($3 = '' OR state = $3)
		AND seq > $4 ORDER BY seq LIMIT $5`, p.AccountID, p.UnitID, p.State, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list conflicts: %w", err)
	}
	return out, nil
}

// OpenConflicts returns the open conflicts of a unit or of events.
func (db *DB) OpenConflicts(ctx context.Context, p store.OpenConflictsParams) ([]*store.Conflict, error) {
	var out []*store.Conflict
	var err error
	switch {
	case p.UnitID != "":
		out, err = queryConflicts(ctx, db.pool, `WHERE unit_id = $1 AND state = 'open' ORDER BY seq`, p.UnitID)
	case len(p.EventIDs) > 0:
		out, err = queryConflicts(ctx, db.pool, `WHERE state = 'open' AND (event_a = ANY($1) OR event_b = ANY($1))
			ORDER BY seq`, p.EventIDs)
	}
	if err != nil {
		return nil, fmt.Errorf("read open conflicts: %w", err)
	}
	return out, nil
}

// DetectConflicts runs one step of the conflict detector. As in FanOut, it
// reads the settled changes after the cursor (or after where the resumed
// worker read), runs detect with nothing held, and stores the outcome in a
// transaction that first moves the cursor from where the step knew it
// (compare-and-set): of two nodes that store at once, one stores and the
// other is Busy. A resumed step with nothing to store writes nothing.
func (db *DB) DetectConflicts(ctx context.Context, p store.DetectParams, detect store.DetectFunc) (store.DetectResult, error) {
	var after *store.ChangePos
	if p.Resume != nil {
		after = &p.Resume.Read
	}
	from, to, changes, unsettled, err := db.readSettledAfter(ctx, store.AvailabilityCursor, after, p.Limit)
	if err != nil {
		return store.DetectResult{}, fmt.Errorf("detect conflicts: %w", err)
	}
	base := from
	if p.Resume != nil {
		base = p.Resume.Stored
	}
	res := store.DetectResult{Unsettled: unsettled, Changes: len(changes), Resume: &store.DetectResume{Read: to, Stored: base}}
	var up *store.ConflictUpdate
	if len(changes) > 0 {
		if up, err = detect(ctx, changes); err != nil {
			return store.DetectResult{}, err
		}
	}
	if len(changes) == 0 && (!p.Save || to == base) || !p.Stores(up) {
		return res, nil
	}
	err = db.tx(ctx, func(tx *txn) error {
		res.Detected, res.Resolved, res.Pings, res.Busy = 0, 0, 0, false
		tag, err := tx.Exec(ctx, `UPDATE cursors SET xid = $1, position = $2 WHERE name = $3 AND xid = $4 AND position = $5`,
			to.TxID, to.ID, store.AvailabilityCursor, base.TxID, base.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			res.Busy = true
			return nil
		}
		if up == nil {
			return nil
		}
		if res.Resolved, err = resolveConflicts(ctx, tx, up.Resolved); err != nil {
			return err
		}
		if res.Detected, err = insertConflicts(ctx, tx, up.Detected); err != nil {
			return err
		}
		if len(up.Pings) == 0 {
			return nil
		}
		var st stored
		b := &pgx.Batch{}
		queueMessages(b, up.Pings, nil, &st)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store pings: %w", err)
		}
		if res.Pings = st.pending + len(st.leased); st.pending > 0 {
			tx.notifyMessages()
		}
		return nil
	})
	if err != nil {
		return store.DetectResult{}, fmt.Errorf("store conflicts: %w", err)
	}
	if res.Busy {
		return store.DetectResult{Busy: true}, nil
	}
	res.Resume.Stored = to
	return res, nil
}

// resolveConflicts ends the open conflicts among cs and records a change
// for each it ended.
func resolveConflicts(ctx context.Context, tx pgx.Tx, cs []*store.Conflict) (int, error) {
	n := 0
	for _, c := range cs {
		tag, err := tx.Exec(ctx, `UPDATE conflicts SET state = 'resolved', resolved_at = $1
			WHERE id = $2 AND state = 'open'`, c.ResolvedAt, c.ID)
		if err != nil {
			return 0, fmt.Errorf("resolve conflict %s: %w", c.ID, err)
		}
		if tag.RowsAffected() == 0 {
			continue
		}
		if err := appendUnitChange(ctx, tx, c.AccountID, c.ID, store.ChangeConflictResolved, c.ResolvedAt); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// insertConflicts stores the conflicts among cs whose pair has no open
// conflict and whose unit still exists, and records a change for each it
// stored.
func insertConflicts(ctx context.Context, tx pgx.Tx, cs []*store.Conflict) (int, error) {
	n := 0
	for _, c := range cs {
		sides, err := json.Marshal(conflictSides{A: c.A, B: c.B})
		if err != nil {
			return 0, fmt.Errorf("encode conflict: %w", err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO conflicts
			(id, account_id, unit_id, event_a, event_b, state, sides, overlap_start, overlap_end, detected_at)
			SELECT $1, $2, $3, $4, $5, 'open', $6::jsonb, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM units WHERE id = $3)
			ON CONFLICT DO NOTHING RETURNING seq`,
			c.ID, c.AccountID, c.UnitID, c.A.EventID, c.B.EventID, string(sides),
			c.OverlapStart, c.OverlapEnd, c.DetectedAt).Scan(&c.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // the pair is open already, or the unit is gone
		}
		if err != nil {
			return 0, fmt.Errorf("store conflict %s: %w", c.ID, err)
		}
		if err := appendUnitChange(ctx, tx, c.AccountID, c.ID, store.ChangeConflictDetected, c.DetectedAt); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
