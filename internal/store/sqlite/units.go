package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/store"
)

const unitColumns = `seq, id, account_id, name, time_zone, same_day_turnover, export_summary, created_at, updated_at`

func scanUnit(row interface{ Scan(...any) error }) (*store.Unit, error) {
	var u store.Unit
	var created, updated int64
	if err := row.Scan(&u.Seq, &u.ID, &u.AccountID, &u.Name, &u.TimeZone, &u.SameDayTurnover, &u.ExportSummary,
		&created, &updated); err != nil {
		return nil, notFound(err)
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func queryUnits(ctx context.Context, q queryer, where string, args ...any) ([]*store.Unit, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+unitColumns+` FROM units `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Unit
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateUnit stores a new unit.
func (db *DB) CreateUnit(ctx context.Context, u *store.Unit) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO units
			(id, account_id, name, time_zone, same_day_turnover, export_summary, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			u.ID, u.AccountID, u.Name, u.TimeZone, u.SameDayTurnover, u.ExportSummary,
			micros(u.CreatedAt), micros(u.UpdatedAt)).Scan(&u.Seq)
	})
	if isUnique(err) {
		return fmt.Errorf("create unit %s: %w", u.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create unit %s: %w", u.ID, err)
	}
	return nil
}

// Unit returns one unit of an account.
func (db *DB) Unit(ctx context.Context, accountID, id string) (*store.Unit, error) {
	u, err := scanUnit(db.reads.QueryRowContext(ctx, `SELECT `+unitColumns+` FROM units WHERE id = ? AND account_id = ?`,
		id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get unit %s: %w", id, err)
	}
	return u, nil
}

// ListUnits returns a page of an account's units in creation order.
func (db *DB) ListUnits(ctx context.Context, p store.ListUnitsParams) ([]*store.Unit, error) {
	out, err := queryUnits(ctx, db.reads, `WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
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
	// The unary + keeps SQLite off units_account_seq, which it would
	// walk for the ORDER BY: every unit of the account for a few ids.
	out, err := queryUnits(ctx, db.reads, `WHERE +account_id = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY seq`,
		accountID, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("read units: %w", err)
	}
	return out, nil
}

// UpdateUnit stores a unit's fields and asks the detector to look at it
// again.
func (db *DB) UpdateUnit(ctx context.Context, u *store.Unit) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE units SET name = ?, time_zone = ?, same_day_turnover = ?,
			export_summary = ?, updated_at = ? WHERE id = ? AND account_id = ?`,
			u.Name, u.TimeZone, u.SameDayTurnover, u.ExportSummary, micros(u.UpdatedAt), u.ID, u.AccountID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "unit "+u.ID); err != nil {
			return err
		}
		// The export feeds of the unit change (their version is the
		// account's feed version).
		if err := bumpAccount(ctx, tx, u.AccountID, u.UpdatedAt); err != nil {
			return err
		}
		return insertUnitChange(ctx, tx, u.AccountID, u.ID, store.ChangeUnitChanged, u.UpdatedAt)
	})
	if err != nil {
		return fmt.Errorf("update unit %s: %w", u.ID, err)
	}
	return nil
}

// DeleteUnit resolves a unit's open conflicts and removes it; its
// membership rows and conflicts cascade.
func (db *DB) DeleteUnit(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		open, err := queryConflicts(ctx, tx, `WHERE unit_id = ? AND account_id = ? AND state = 'open' ORDER BY seq`, id, accountID)
		if err != nil {
			return err
		}
		for _, c := range open {
			rec, err := store.ResolveWithUnit(c, now)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at)
				VALUES (?, '', ?, '', ?, ?, ?)`, accountID, c.ID, store.ChangeConflictResolved, rec, micros(now)); err != nil {
				return fmt.Errorf("insert change: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM units WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return err
		}
		return mustAffect(res, "unit "+id)
	})
	if err != nil {
		return fmt.Errorf("delete unit %s: %w", id, err)
	}
	return nil
}

// insertUnitChange appends a change that is about a unit or a conflict
// (no calendar, no event snapshot) inside tx; subject is the unit's or
// conflict's id.
func insertUnitChange(ctx context.Context, tx *wtx, accountID, subject, typ string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at)
		VALUES (?, '', ?, '', ?, CAST('{}' AS BLOB), ?)`, accountID, subject, typ, micros(at))
	if err != nil {
		return fmt.Errorf("insert change: %w", err)
	}
	return nil
}

// SetCalendarUnit moves a calendar into a unit, or out of its unit.
func (db *DB) SetCalendarUnit(ctx context.Context, accountID, calendarID, unitID string, now time.Time) (string, error) {
	var old string
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		old = ""
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM calendars WHERE id = ? AND account_id = ?`,
			calendarID, accountID).Scan(&one); err != nil {
			return notFound(err)
		}
		if unitID != "" {
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM units WHERE id = ? AND account_id = ?`,
				unitID, accountID).Scan(&one); err != nil {
				return fmt.Errorf("unit %s: %w", unitID, notFound(err))
			}
		}
		err := tx.QueryRowContext(ctx, `SELECT unit_id FROM unit_calendars WHERE calendar_id = ?`, calendarID).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if old == unitID {
			return nil
		}
		if unitID == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM unit_calendars WHERE calendar_id = ?`, calendarID)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO unit_calendars (calendar_id, unit_id, account_id) VALUES (?, ?, ?)
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
			if err := insertUnitChange(ctx, tx, accountID, u, store.ChangeUnitChanged, now); err != nil {
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
	rows, err := db.reads.QueryContext(ctx, `SELECT calendar_id, unit_id FROM unit_calendars
		WHERE account_id = ? AND calendar_id IN (SELECT value FROM json_each(?))`, accountID, jsonList(calendarIDs))
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

// unitCalendarsSQL is the statement of UnitCalendars.
var unitCalendarsSQL = `SELECT m.unit_id, ` + qualifiedColumns("c", calendarColumns) + `
	FROM unit_calendars m JOIN calendars c ON c.id = m.calendar_id
	WHERE m.account_id = ? AND m.unit_id IN (SELECT value FROM json_each(?)) ORDER BY c.seq`

// UnitCalendars returns the calendars of the given units.
func (db *DB) UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*store.UnitCalendar, error) {
	if len(unitIDs) == 0 {
		return nil, nil
	}
	rows, err := db.reads.QueryContext(ctx, unitCalendarsSQL, accountID, jsonList(unitIDs))
	if err != nil {
		return nil, fmt.Errorf("read unit calendars: %w", err)
	}
	defer rows.Close()
	var out []*store.UnitCalendar
	for rows.Next() {
		var unitID string
		c, err := scanCalendar(prefixScanner{rows, &unitID})
		if err != nil {
			return nil, fmt.Errorf("read unit calendars: %w", err)
		}
		out = append(out, &store.UnitCalendar{UnitID: unitID, Calendar: c})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unit calendars: %w", err)
	}
	return out, nil
}

// CalendarMembership returns the units of the given calendars, each with
// all of its calendars, in one statement: a unit's columns come again on
// each of its calendars' rows. As in UnitsByID, the unary + keeps SQLite
// from walking every unit of the account.
func (db *DB) CalendarMembership(ctx context.Context, accountID string, calendarIDs []string) (*store.Membership, error) {
	m := &store.Membership{}
	if len(calendarIDs) == 0 {
		return m, nil
	}
	rows, err := db.reads.QueryContext(ctx, membershipSQL, accountID, jsonList(calendarIDs))
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

// membershipSQL is the statement of CalendarMembership.
var membershipSQL = `SELECT ` + qualifiedColumns("u", unitColumns) + `, ` + qualifiedColumns("c", memberColumns) + `
	FROM units u JOIN unit_calendars m ON m.unit_id = u.id JOIN calendars c ON c.id = m.calendar_id
	WHERE +u.account_id = ?1 AND u.id IN (SELECT unit_id FROM unit_calendars
		WHERE account_id = ?1 AND calendar_id IN (SELECT value FROM json_each(?2)))
	ORDER BY u.seq, c.seq`

// scanFunc is a Scan method of its own: it lets a row that holds a
// record and more be read by the record's scan function.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// BlockingEvents returns the events that may block time in [From, To). It
// reads in three parts, each along an index: single events that start in
// [From - store.LongEvent, To) (events_calendar_start), longer ones still
// running at From (events_long), and recurring series and overrides
// (events_recurring); so a window costs the events near it, not every
// event before it. The long part names its index: without statistics
// SQLite would rather scan events_calendar_start up to the window.
func (db *DB) BlockingEvents(ctx context.Context, p store.BlockingEventsParams) ([]*store.Event, error) {
	return blockingEvents(ctx, db.reads, p)
}

// blockingEventsSQL is the statement of BlockingEvents. Each part reads
// whole rows along its index (the partial ones named: once
// events_calendar_end existed, the planner read every event of a calendar
// through it for the recurring part, 4 ms of a 10,000-event unit's
// 4-ms detection step), and the parts are sorted in Go: selecting
// ids first and the rows by id (with ORDER BY over the union) looked up
// every row twice and sorted it in a temporary b-tree, the most of a
// 500-unit query's time.
var blockingEventsSQL = func() string {
	in := `calendar_id IN (SELECT value FROM json_each(?1)) AND account_id = ?2`
	sel := `SELECT ` + blockingColumns + ` FROM events `
	return sel + `WHERE ` + in + ` AND rrule = '' AND recurrence_id = '' AND status <> 'cancelled'
			AND start_at >= ?3 AND start_at < ?4 AND end_at > ?5
		UNION ALL
		` + sel + `INDEXED BY events_long WHERE ` + in + ` AND ` + longEvent + ` AND rrule = '' AND recurrence_id = ''
			AND status <> 'cancelled' AND start_at < ?3 AND end_at > ?5
		UNION ALL
		` + sel + `INDEXED BY events_recurring WHERE ` + in + ` AND (rrule <> '' OR recurrence_id <> '')
			AND (recurrence_id <> '' OR status <> 'cancelled' AND start_at < ?4)`
}()

// blockingEvents is BlockingEvents on q (the reader, or a write
// transaction).
func blockingEvents(ctx context.Context, q queryer, p store.BlockingEventsParams) (out []*store.Event, err error) {
	if len(p.CalendarIDs) == 0 {
		return nil, nil
	}
	// The ids travel as one JSON array: a unit query may name a thousand
	// calendars, and a placeholder each makes SQLite's IN list slow.
	rows, err := q.QueryContext(ctx, blockingEventsSQL, jsonList(p.CalendarIDs), p.AccountID,
		micros(p.From.Add(-store.LongEvent)), micros(p.To), micros(p.From))
	if err != nil {
		return nil, fmt.Errorf("read blocking events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanBlockingEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read blocking events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read blocking events: %w", err)
	}
	slices.SortFunc(out, func(a, b *store.Event) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// blockingColumns are the columns of BlockingEvents: an event's time,
// status and identity, without its description, location, metadata and
// extra properties, which no reader of busy time needs (and which make
// most of a row's bytes: a 500-unit availability query reads 5,000 rows).
const blockingColumns = `seq, id, calendar_id, account_id, uid, recurrence_id, summary,
	start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, created_at, updated_at`

// scanBlockingEvent scans a row of blockingColumns.
func scanBlockingEvent(row interface{ Scan(...any) error }) (*store.Event, error) {
	var e store.Event
	var start, end, created, updated int64
	var exdates string
	if err := row.Scan(&e.Seq, &e.ID, &e.CalendarID, &e.AccountID, &e.UID, &e.RecurrenceID, &e.Summary,
		&start, &end, &e.AllDay, &e.TimeZone, &e.Status, &e.RRule, &exdates, &e.Sequence, &created, &updated); err != nil {
		return nil, err
	}
	e.Start, e.End = fromMicros(start), fromMicros(end)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := decodeEventJSON(&e, exdates, "{}", "{}"); err != nil {
		return nil, err
	}
	return &e, nil
}

// longEvent is the condition of the events_long index: events longer than
// store.LongEvent (in microseconds; a literal, so the index applies).
var longEvent = fmt.Sprintf("end_at - start_at > %d", store.LongEvent.Microseconds())

// jsonList encodes ids as a JSON array, for `IN (SELECT value FROM
// json_each(?))`: one parameter however many ids.
func jsonList(ids []string) string {
	b, _ := json.Marshal(ids) // a []string always encodes
	return string(b)
}

// prefixScanner scans one leading column into dst, then the rest.
type prefixScanner struct {
	row interface{ Scan(...any) error }
	dst any
}

func (p prefixScanner) Scan(dest ...any) error { return p.row.Scan(append([]any{p.dst}, dest...)...) }

// qualifiedColumns prefixes each of a comma-separated column list with
// alias.
func qualifiedColumns(alias, columns string) string {
	var out []byte
	for i, c := range splitColumns(columns) {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, alias+"."+c...)
	}
	return string(out)
}

func splitColumns(columns string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(columns); i++ {
		if i == len(columns) || columns[i] == ',' {
			c := columns[start:i]
			for len(c) > 0 && (c[0] == ' ' || c[0] == '\n' || c[0] == '\t') {
				c = c[1:]
			}
			if c != "" {
				out = append(out, c)
			}
			start = i + 1
		}
	}
	return out
}

const conflictColumns = `seq, id, account_id, unit_id, state, sides, overlap_start, overlap_end, detected_at, resolved_at`

// conflictSides is the stored form of a conflict's two sides.
type conflictSides struct {
	A store.ConflictSide `json:"a"`
	B store.ConflictSide `json:"b"`
}

func scanConflict(row interface{ Scan(...any) error }) (*store.Conflict, error) {
	var c store.Conflict
	var sides string
	var start, end, detected, resolved int64
	if err := row.Scan(&c.Seq, &c.ID, &c.AccountID, &c.UnitID, &c.State, &sides, &start, &end, &detected, &resolved); err != nil {
		return nil, notFound(err)
	}
	var s conflictSides
	if err := json.Unmarshal([]byte(sides), &s); err != nil {
		return nil, fmt.Errorf("conflict %s: decode sides: %w", c.ID, err)
	}
	c.A, c.B = s.A, s.B
	c.OverlapStart, c.OverlapEnd = fromMicros(start), fromMicros(end)
	c.DetectedAt, c.ResolvedAt = fromMicros(detected), optMicros(resolved)
	return &c, nil
}

func queryConflicts(ctx context.Context, q queryer, where string, args ...any) ([]*store.Conflict, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+conflictColumns+` FROM conflicts `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Conflict
	for rows.Next() {
		c, err := scanConflict(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Conflict returns one conflict of an account.
func (db *DB) Conflict(ctx context.Context, accountID, id string) (*store.Conflict, error) {
	c, err := scanConflict(db.reads.QueryRowContext(ctx, `SELECT `+conflictColumns+` FROM conflicts
		WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get conflict %s: %w", id, err)
	}
	return c, nil
}

// ListConflicts returns a page of a unit's conflicts, oldest first.
func (db *DB) ListConflicts(ctx context.Context, p store.ListConflictsParams) ([]*store.Conflict, error) {
	out, err := queryConflicts(ctx, db.reads, `WHERE account_id = ? AND unit_id = ? AND (? = '' OR state = ?) AND seq > ?
		ORDER BY seq LIMIT ?`, p.AccountID, p.UnitID, p.State, p.State, p.After, p.Limit)
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
		out, err = queryConflicts(ctx, db.reads, `WHERE unit_id = ? AND state = 'open' ORDER BY seq`, p.UnitID)
	case len(p.EventIDs) > 0:
		// One SELECT per side, each along its index: with an OR, SQLite
		// scans the table.
		out, err = queryConflicts(ctx, db.reads, `WHERE seq IN (
			SELECT seq FROM conflicts WHERE state = 'open' AND event_a IN (SELECT value FROM json_each(?1))
			UNION
			SELECT seq FROM conflicts WHERE state = 'open' AND event_b IN (SELECT value FROM json_each(?1)))
			ORDER BY seq`, jsonList(p.EventIDs))
	}
	if err != nil {
		return nil, fmt.Errorf("read open conflicts: %w", err)
	}
	return out, nil
}

// DetectConflicts runs one step of the conflict detector. As in FanOut,
// the changes are read and detect runs outside the write transaction; the
// outcome is stored with a compare-and-set of the cursor. A resumed step
// with nothing to store leaves the single writer alone.
func (db *DB) DetectConflicts(ctx context.Context, p store.DetectParams, detect store.DetectFunc) (store.DetectResult, error) {
	var read, stored int64
	if p.Resume != nil {
		read, stored = p.Resume.Read.ID, p.Resume.Stored.ID
	} else {
		pos, err := cursorPosition(ctx, db.reads, store.AvailabilityCursor)
		if err != nil {
			return store.DetectResult{}, fmt.Errorf("read cursor: %w", err)
		}
		read, stored = pos, pos
	}
	changes, err := queryChanges(ctx, db.reads, `WHERE id > ? ORDER BY id LIMIT ?`, read, p.Limit)
	if err != nil {
		return store.DetectResult{}, fmt.Errorf("read changes: %w", err)
	}
	var up *store.ConflictUpdate
	if len(changes) > 0 {
		if up, err = detect(ctx, changes); err != nil {
			return store.DetectResult{}, err
		}
		read = changes[len(changes)-1].ID
	}
	res := store.DetectResult{Changes: len(changes), Resume: &store.DetectResume{
		Read: store.ChangePos{ID: read}, Stored: store.ChangePos{ID: stored}}}
	if len(changes) == 0 && (!p.Save || read == stored) || !p.Stores(up) {
		return res, nil
	}
	err = db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res.Detected, res.Resolved, res.Pings = 0, 0, 0
		now, err := cursorPosition(ctx, tx, store.AvailabilityCursor)
		if err != nil {
			return err
		}
		if now != stored {
			return errOvertaken
		}
		if up != nil {
			if res.Resolved, err = resolveConflicts(ctx, tx, up.Resolved); err != nil {
				return err
			}
			if res.Detected, err = insertConflicts(ctx, tx, up.Detected); err != nil {
				return err
			}
			if res.Pings, _, err = insertMessages(ctx, tx, up.Pings); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cursors (name, position) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, store.AvailabilityCursor, read)
		return err
	})
	if errors.Is(err, errOvertaken) {
		return store.DetectResult{Busy: true}, nil
	}
	if err != nil {
		return store.DetectResult{}, fmt.Errorf("store conflicts: %w", err)
	}
	res.Resume.Stored = res.Resume.Read
	return res, nil
}

// resolveConflicts ends the open conflicts among cs and records a change
// for each it ended.
func resolveConflicts(ctx context.Context, tx *wtx, cs []*store.Conflict) (int, error) {
	n := 0
	for _, c := range cs {
		res, err := tx.ExecContext(ctx, `UPDATE conflicts SET state = 'resolved', resolved_at = ?
			WHERE id = ? AND state = 'open'`, micros(c.ResolvedAt), c.ID)
		if err != nil {
			return 0, fmt.Errorf("resolve conflict %s: %w", c.ID, err)
		}
		if k, err := res.RowsAffected(); err != nil || k == 0 {
			continue
		}
		if err := insertUnitChange(ctx, tx, c.AccountID, c.ID, store.ChangeConflictResolved, c.ResolvedAt); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// insertConflicts stores the conflicts among cs whose pair has no open
// conflict and records a change for each it stored.
func insertConflicts(ctx context.Context, tx *wtx, cs []*store.Conflict) (int, error) {
	n := 0
	for _, c := range cs {
		sides, err := json.Marshal(conflictSides{A: c.A, B: c.B})
		if err != nil {
			return 0, fmt.Errorf("encode conflict: %w", err)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO conflicts
			(id, account_id, unit_id, event_a, event_b, state, sides, overlap_start, overlap_end, detected_at)
			SELECT ?, ?, ?, ?, ?, 'open', ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM units WHERE id = ?)
			ON CONFLICT DO NOTHING RETURNING seq`,
			c.ID, c.AccountID, c.UnitID, c.A.EventID, c.B.EventID, string(sides),
			micros(c.OverlapStart), micros(c.OverlapEnd), micros(c.DetectedAt), c.UnitID).Scan(&c.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the pair is open already, or the unit is gone
		}
		if err != nil {
			return 0, fmt.Errorf("store conflict %s: %w", c.ID, err)
		}
		if err := insertUnitChange(ctx, tx, c.AccountID, c.ID, store.ChangeConflictDetected, c.DetectedAt); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
