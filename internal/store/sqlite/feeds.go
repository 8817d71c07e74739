package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/calhook/calhook/internal/store"
)

// FeedVersion returns a feed's version and the account's feed token in one
// read.
func (db *DB) FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error) {
	st, err := feedState(ctx, db.read, accountID, calendarID)
	if err != nil {
		return nil, fmt.Errorf("feed version: %w", err)
	}
	return st, nil
}

func feedState(ctx context.Context, q queryer, accountID, calendarID string) (*store.FeedState, error) {
	var st store.FeedState
	var updated int64
	var err error
	if _, export := store.ExportFeedCalendar(calendarID); export {
		calendarID = "" // an export feed goes by its account's version
	}
	if calendarID == "" {
		err = q.QueryRowContext(ctx, `SELECT feed_token, feed_version, feed_updated_at, feeds_disabled FROM accounts WHERE id = ?`,
			accountID).Scan(&st.FeedToken, &st.Version, &updated, &st.AccountDisabled)
	} else {
		err = q.QueryRowContext(ctx, `SELECT a.feed_token, c.version, c.updated_at, a.feeds_disabled, c.feed_disabled FROM calendars c
			JOIN accounts a ON a.id = c.account_id WHERE c.id = ? AND c.account_id = ?`,
			calendarID, accountID).Scan(&st.FeedToken, &st.Version, &updated, &st.AccountDisabled, &st.CalendarDisabled)
	}
	if err != nil {
		return nil, notFound(err)
	}
	st.UpdatedAt = fromMicros(updated)
	return &st, nil
}

// FeedContent reads a feed's calendars and events in one read transaction,
// so the version matches the content.
func (db *DB) FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error) {
	return db.WindowFeedContent(ctx, accountID, calendarID, store.FeedWindow{})
}

// WindowFeedContent reads a feed's calendars and their events within
// their windows in one read transaction, so the version matches the
// content. Events are read calendar by calendar, each through an index
// range, so an account's feed costs its calendars' windows, not a scan.
func (db *DB) WindowFeedContent(ctx context.Context, accountID, calendarID string, w store.FeedWindow) (*store.FeedContent, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("feed content: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := feedState(ctx, tx, accountID, calendarID)
	if err != nil {
		return nil, fmt.Errorf("feed content: %w", err)
	}
	fc := &store.FeedContent{FeedState: *st}
	calWhere, arg := `WHERE account_id = ? ORDER BY seq`, accountID
	if calendarID != "" {
		calWhere, arg = `WHERE id = ?`, calendarID
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+calendarColumns+` FROM calendars `+calWhere, arg)
	if err != nil {
		return nil, fmt.Errorf("feed content: calendars: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCalendar(rows)
		if err != nil {
			return nil, fmt.Errorf("feed content: calendars: %w", err)
		}
		fc.Calendars = append(fc.Calendars, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feed content: calendars: %w", err)
	}
	for _, c := range fc.Calendars {
		events, err := feedEvents(ctx, tx, c, w, store.FeedBudget(w.MaxEvents, len(fc.Events)))
		if errors.Is(err, store.ErrFeedTooBig) {
			fc.Events, fc.TooBig = nil, true
			return fc, nil
		}
		if err != nil {
			return nil, fmt.Errorf("feed content: %w", err)
		}
		fc.Events = append(fc.Events, events...)
	}
	return fc, nil
}

// feedEventsSQL selects cols of a calendar's feed events in UID order:
// all of them, or (windowed) two index ranges: what ends in the window,
// and the series and overrides that ended before it (events_recurring,
// named: the planner otherwise reads every past event along
// events_calendar_end).
func feedEventsSQL(cols string, windowed bool) string {
	if !windowed {
		return `SELECT ` + cols + ` FROM events WHERE calendar_id = ?1 ORDER BY uid, recurrence_id`
	}
	return `SELECT ` + cols + ` FROM events WHERE calendar_id = ?1 AND end_at >= ?2
		UNION ALL SELECT ` + cols + ` FROM events INDEXED BY events_recurring
		WHERE calendar_id = ?1 AND end_at < ?2 AND (rrule <> '' OR recurrence_id <> '')
		ORDER BY uid, recurrence_id`
}

// stampColumns are what a feed read with known events reads of every
// event: enough to tell a known one and to keep the feed's order.
const stampColumns = `id, updated_at, uid, recurrence_id`

// feedEvents reads c's events within w, or store.ErrFeedTooBig when there
// are more than budget (unless it is negative). With known events it
// reads every event's stamp first and then only the rows it does not
// know.
func feedEvents(ctx context.Context, q queryer, c *store.Calendar, w store.FeedWindow, budget int) ([]*store.Event, error) {
	args := []any{c.ID}
	cut := w.Cutoff(c)
	if !cut.IsZero() {
		args = append(args, micros(cut))
	}
	limit := ""
	if budget >= 0 {
		limit = " LIMIT " + strconv.Itoa(budget+1)
	}
	if len(w.Known) == 0 {
		events, err := queryEventRows(ctx, q, feedEventsSQL(eventColumns, !cut.IsZero())+limit, args...)
		if err == nil && budget >= 0 && len(events) > budget {
			return nil, store.ErrFeedTooBig
		}
		return events, err
	}
	rows, err := q.QueryContext(ctx, feedEventsSQL(stampColumns, !cut.IsZero())+limit, args...)
	if err != nil {
		return nil, fmt.Errorf("read event stamps: %w", err)
	}
	defer rows.Close()
	kr := store.NewKnownRead(c.ID, w.Known)
	// Raw bytes, reused from row to row: a known event's stamp costs no
	// allocation.
	var id, uid, rid sql.RawBytes
	var updated int64
	for rows.Next() {
		if err := rows.Scan(&id, &updated, &uid, &rid); err != nil {
			return nil, fmt.Errorf("read event stamps: %w", err)
		}
		kr.Stamp(id, fromMicros(updated))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read event stamps: %w", err)
	}
	if budget >= 0 && kr.Len() > budget {
		return nil, store.ErrFeedTooBig
	}
	var fresh []*store.Event
	if missing := kr.Missing(); len(missing) > 0 {
		if fresh, err = queryEvents(ctx, q, `WHERE id IN (SELECT value FROM json_each(?))`, jsonList(missing)); err != nil {
			return nil, err
		}
	}
	return kr.Events(fresh)
}

// FeedEvents reads a page of c's feed events after pos, each kind through
// an index range that starts where the last page ended (see
// store.FeedPos).
func (db *DB) FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error) {
	cut := w.Cutoff(c)
	var where string
	var args []any
	switch {
	case cut.IsZero():
		where = `WHERE calendar_id = ? AND seq > ? ORDER BY seq LIMIT ?`
		args = []any{c.ID, pos.Seq, limit}
	case !pos.Window:
		where = `INDEXED BY events_recurring WHERE calendar_id = ? AND end_at < ?
			AND (rrule <> '' OR recurrence_id <> '') AND seq > ? ORDER BY seq LIMIT ?`
		args = []any{c.ID, micros(cut), pos.Seq, limit}
	default:
		where = `INDEXED BY events_calendar_end WHERE calendar_id = ?1 AND end_at >= ?2
			AND (end_at > ?2 OR seq > ?3) ORDER BY end_at, seq LIMIT ?4`
		args = []any{c.ID, micros(pos.End), pos.Seq, limit}
	}
	page, err := queryEvents(ctx, db.read, where, args...)
	if err != nil {
		return nil, pos, fmt.Errorf("feed events of %s: %w", c.ID, err)
	}
	return page, pos.Next(page, limit, cut), nil
}

// ListChanges returns the changes of a calendar after a position, oldest
// first. Writes commit one at a time, drawing their change ids as they
// do, so id order is commit order and positions are ids alone.
func (db *DB) ListChanges(ctx context.Context, p store.ListChangesParams) ([]*store.Change, error) {
	changes, err := queryChanges(ctx, db.read, `WHERE calendar_id = ? AND account_id = ? AND id > ? ORDER BY id LIMIT ?`,
		p.CalendarID, p.AccountID, p.After.ID, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	return changes, nil
}

func queryChanges(ctx context.Context, q queryer, where string, args ...any) ([]*store.Change, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace
		FROM changes `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Change
	for rows.Next() {
		var ch store.Change
		var snap []byte
		var at int64
		if err := rows.Scan(&ch.ID, &ch.AccountID, &ch.CalendarID, &ch.EventID, &ch.EventUID, &ch.Type, &snap, &at, &ch.Trace); err != nil {
			return nil, err
		}
		ch.OccurredAt = fromMicros(at)
		if ch.CalendarID != "" && store.IsEventChange(ch.Type) {
			if ch.Event, err = store.UnmarshalSnapshot(snap, ch.AccountID, ch.CalendarID); err != nil {
				return nil, fmt.Errorf("change %d: %w", ch.ID, err)
			}
		}
		if store.HasConflictRecord(ch.Type, snap) {
			if ch.Conflict, err = store.UnmarshalConflict(snap, ch.AccountID); err != nil {
				return nil, fmt.Errorf("change %d: %w", ch.ID, err)
			}
		}
		out = append(out, &ch)
	}
	return out, rows.Err()
}

// ChangeCursor returns the position of the newest change of the account,
// from which "changes since now" start.
func (db *DB) ChangeCursor(ctx context.Context, accountID string) (store.ChangePos, error) {
	var id sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT max(id) FROM changes WHERE account_id = ?`, accountID).Scan(&id); err != nil {
		return store.ChangePos{}, fmt.Errorf("change cursor: %w", err)
	}
	return store.ChangePos{ID: id.Int64}, nil
}
