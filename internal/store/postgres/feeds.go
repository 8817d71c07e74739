package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// FeedVersion returns a feed's version and the account's feed token in one
// read.
func (db *DB) FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error) {
	st, err := feedState(ctx, db.pool, accountID, calendarID, false)
	if err != nil {
		return nil, fmt.Errorf("feed version: %w", err)
	}
	return st, nil
}

// feedState reads a feed's state. With lock, it first locks the feed
// (lockFeed), so the state is read with a snapshot taken after every
// write of the feed in flight committed.
func feedState(ctx context.Context, q querier, accountID, calendarID string, lock bool) (*store.FeedState, error) {
	var st store.FeedState
	if _, export := store.ExportFeedCalendar(calendarID); export {
		calendarID = "" // an export feed goes by its account's version
	}
	if lock {
		if err := lockFeed(ctx, q, accountID, calendarID); err != nil {
			return nil, err
		}
	}
	var err error
	if calendarID == "" {
		err = q.QueryRow(ctx, `SELECT feed_token, `+accountVersion+`, `+accountUpdated+`, feeds_disabled FROM accounts WHERE id = $1`,
			accountID).Scan(&st.FeedToken, &st.Version, &st.UpdatedAt, &st.AccountDisabled)
	} else {
		err = q.QueryRow(ctx, `SELECT a.feed_token, `+calendarVersion+`, `+calendarUpdated+`, a.feeds_disabled, calendars.feed_disabled
			FROM calendars JOIN accounts a ON a.id = calendars.account_id WHERE calendars.id = $1 AND calendars.account_id = $2`,
			calendarID, accountID).Scan(&st.FeedToken, &st.Version, &st.UpdatedAt, &st.AccountDisabled, &st.CalendarDisabled)
	}
	if err != nil {
		return nil, notFound(err)
	}
	st.UpdatedAt = utc(st.UpdatedAt)
	return &st, nil
}

// lockFeed locks the row that holds a feed's version, the calendar's (of
// the account) or, when calendarID is empty, the account's, FOR UPDATE:
// that waits for the feed's event writes in flight, which hold KEY SHARE
// locks on it, and holds off new ones until the transaction ends.
func lockFeed(ctx context.Context, q querier, accountID, calendarID string) error {
	query, args := `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, []any{accountID}
	if calendarID != "" {
		query, args = `SELECT 1 FROM calendars WHERE id = $1 AND account_id = $2 FOR UPDATE`, []any{calendarID, accountID}
	}
	var one int
	return notFound(q.QueryRow(ctx, query, args...).Scan(&one))
}

// FeedContent reads a feed's calendars and events in one repeatable-read
// transaction, so the version matches the content.
func (db *DB) FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error) {
	return db.WindowFeedContent(ctx, accountID, calendarID, store.FeedWindow{})
}

// WindowFeedContent reads a feed's calendars and their events within
// their windows in one repeatable-read transaction, so the version
// matches the content. Events are read calendar by calendar, each through
// an index range, so an account's feed costs its calendars' windows.
func (db *DB) WindowFeedContent(ctx context.Context, accountID, calendarID string, w store.FeedWindow) (*store.FeedContent, error) {
	var fc *store.FeedContent
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		st, err := feedState(ctx, tx, accountID, calendarID, false)
		if err != nil {
			return err
		}
		fc = &store.FeedContent{FeedState: *st}
		calWhere, arg := `WHERE account_id = $1 ORDER BY seq`, accountID
		if calendarID != "" {
			calWhere, arg = `WHERE id = $1`, calendarID
		}
		if fc.Calendars, err = queryCalendars(ctx, tx, `SELECT `+calendarColumns+` FROM calendars `+calWhere, arg); err != nil {
			return fmt.Errorf("calendars: %w", err)
		}
		for _, c := range fc.Calendars {
			events, err := feedEvents(ctx, tx, c, w, store.FeedBudget(w.MaxEvents, len(fc.Events)))
			if errors.Is(err, store.ErrFeedTooBig) {
				fc.Events, fc.TooBig = nil, true
				return nil
			}
			if err != nil {
				return err
			}
			fc.Events = append(fc.Events, events...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feed content: %w", err)
	}
	return fc, nil
}

// feedEventsSQL selects cols of a calendar's feed events in UID order:
// all of them, or (windowed) two index ranges: what ends in the window,
// and the series and overrides that ended before it (events_recurring).
func feedEventsSQL(cols string, windowed bool) string {
	if !windowed {
		return `SELECT ` + cols + ` FROM events WHERE calendar_id = $1 ORDER BY uid, recurrence_id`
	}
	return `SELECT ` + cols + ` FROM events WHERE calendar_id = $1 AND end_at >= $2
		UNION ALL SELECT ` + cols + ` FROM events
		WHERE calendar_id = $1 AND end_at < $2 AND (rrule <> '' OR recurrence_id <> '')
		ORDER BY uid, recurrence_id`
}

// stampColumns are what a feed read with known events reads of every
// event: enough to tell a known one and to keep the feed's order.
const stampColumns = `id, updated_at, uid, recurrence_id`

// feedEvents reads c's events within w, or store.ErrFeedTooBig when there
// are more than budget (unless it is negative). With known events it
// reads every event's stamp first and then only the rows it does not
// know.
func feedEvents(ctx context.Context, q querier, c *store.Calendar, w store.FeedWindow, budget int) ([]*store.Event, error) {
	args := []any{c.ID}
	cut := w.Cutoff(c)
	if !cut.IsZero() {
		args = append(args, cut)
	}
	limit := ""
	if budget >= 0 {
		limit = " LIMIT " + strconv.Itoa(budget+1)
	}
	if len(w.Known) == 0 {
		rows, err := q.Query(ctx, feedEventsSQL(eventColumns, !cut.IsZero())+limit, args...)
		if err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) { return scanEvent(row) })
		if err == nil && budget >= 0 && len(events) > budget {
			return nil, store.ErrFeedTooBig
		}
		return events, err
	}
	rows, err := q.Query(ctx, feedEventsSQL(stampColumns, !cut.IsZero())+limit, args...)
	if err != nil {
		return nil, fmt.Errorf("read event stamps: %w", err)
	}
	kr := store.NewKnownRead(c.ID, w.Known)
	var id, uid, rid []byte
	var updated time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &updated, &uid, &rid}, func() error {
		kr.Stamp(id, updated)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read event stamps: %w", err)
	}
	if budget >= 0 && kr.Len() > budget {
		return nil, store.ErrFeedTooBig
	}
	var fresh []*store.Event
	if missing := kr.Missing(); len(missing) > 0 {
		if fresh, err = queryEvents(ctx, q, `WHERE id = ANY($1)`, missing); err != nil {
			return nil, err
		}
	}
	return kr.Events(fresh)
}

// FeedEvents reads a page of c's feed events after pos, each kind through
// an index range that starts where the last page ended (see
// store.FeedPos). It names no account: on a table without statistics
// (a new database, autovacuum off) the planner joined the account's
// index to the calendar's, 15-20 ms a page instead of 0.1-1.
func (db *DB) FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error) {
	cut := w.Cutoff(c)
	var where string
	var args []any
	switch {
	case cut.IsZero():
		where = `WHERE calendar_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
		args = []any{c.ID, pos.Seq, limit}
	case !pos.Window:
		where = `WHERE calendar_id = $1 AND end_at < $2
			AND (rrule <> '' OR recurrence_id <> '') AND seq > $3 ORDER BY seq LIMIT $4`
		args = []any{c.ID, cut, pos.Seq, limit}
	default:
		where = `WHERE calendar_id = $1 AND end_at >= $2
			AND (end_at > $2 OR seq > $3) ORDER BY end_at, seq LIMIT $4`
		args = []any{c.ID, pos.End, pos.Seq, limit}
	}
	page, err := queryEvents(ctx, db.pool, where, args...)
	if err != nil {
		return nil, pos, fmt.Errorf("feed events of %s: %w", c.ID, err)
	}
	return page, pos.Next(page, limit, cut), nil
}

// ListChanges returns the changes of a calendar after a position, oldest
// first, in the change log's (xid, id) order, as the fan-out reads it (see
// FanOut): only changes of transactions older than any still running are
// listed, since a transaction still running could yet commit a change
// whose id is below one already listed.
//
// When committed changes wait behind such a transaction, ListChanges
// waits for it, up to settleWait, so that a client sees a write that was
// acknowledged to it; after that it returns what is settled, and the rest
// follows on the next call.
func (db *DB) ListChanges(ctx context.Context, p store.ListChangesParams) ([]*store.Change, error) {
	backoff := unsettledMin
	deadline := time.Now().Add(db.settleWait)
	for {
		changes, unsettled, err := db.listSettled(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list changes: %w", err)
		}
		if !unsettled || time.Now().Add(backoff).After(deadline) {
			return changes, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list changes: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, unsettledMax)
	}
}

// How long ListChanges waits by default for the changes it holds back
// (DB.settleWait), and how often it looks again.
const (
	settleWait   = time.Second
	unsettledMin = time.Millisecond
	unsettledMax = 50 * time.Millisecond
)

// listSettled reads up to p.Limit settled changes after p.After, and
// whether a committed change among the first p.Limit is held back.
func (db *DB) listSettled(ctx context.Context, p store.ListChangesParams) ([]*store.Change, bool, error) {
	rows, err := db.query(ctx, `SELECT xid < pg_snapshot_xmin(pg_current_snapshot()), `+changeColumns+`
		FROM changes WHERE calendar_id = $1 AND account_id = $2 AND (xid, id) > ($3, $4)
		ORDER BY xid, id LIMIT $5`, p.CalendarID, p.AccountID, p.After.TxID, p.After.ID, p.Limit)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var changes []*store.Change
	for rows.Next() {
		var settled bool
		var ch nullChange
		if err := rows.Scan(append([]any{&settled}, ch.dest()...)...); err != nil {
			return nil, false, err
		}
		if !settled {
			return changes, true, nil
		}
		c, err := ch.change()
		if err != nil {
			return nil, false, err
		}
		changes = append(changes, c)
	}
	return changes, false, rows.Err()
}

// changeColumns are the columns of a change that nullChange reads.
const changeColumns = `id, xid, account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace`

// nullChange scans changeColumns from an outer join, where they may be
// NULL.
type nullChange struct {
	id                                        *int64
	xid                                       *uint64
	account, calendar, eventID, eventUID, typ *string
	trace                                     *string
	snap                                      []byte
	occurred                                  *time.Time
}

func (n *nullChange) dest() []any {
	return []any{&n.id, &n.xid, &n.account, &n.calendar, &n.eventID, &n.eventUID, &n.typ, &n.snap, &n.occurred, &n.trace}
}

// change returns the scanned change; the columns must not be NULL.
func (n *nullChange) change() (*store.Change, error) {
	return decodeChange(&store.Change{ID: *n.id, TxID: *n.xid, AccountID: *n.account, CalendarID: *n.calendar,
		EventID: *n.eventID, EventUID: *n.eventUID, Type: *n.typ, OccurredAt: *n.occurred, Trace: *n.trace}, n.snap)
}

// decodeChange completes a scanned change: UTC times, and the event of an
// event change from its snapshot.
func decodeChange(ch *store.Change, snap []byte) (*store.Change, error) {
	ch.OccurredAt = utc(ch.OccurredAt)
	if ch.CalendarID != "" && store.IsEventChange(ch.Type) {
		var err error
		if ch.Event, err = store.UnmarshalSnapshot(snap, ch.AccountID, ch.CalendarID); err != nil {
			return nil, fmt.Errorf("change %d: %w", ch.ID, err)
		}
	}
	if store.HasConflictRecord(ch.Type, snap) {
		var err error
		if ch.Conflict, err = store.UnmarshalConflict(snap, ch.AccountID); err != nil {
			return nil, fmt.Errorf("change %d: %w", ch.ID, err)
		}
	}
	return ch, nil
}

// qualified prefixes each of the comma-separated columns that is a bare
// name with alias; expressions (which name their tables themselves) are
// left as they are, and commas inside their parentheses split nothing.
func qualified(alias, columns string) string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i <= len(columns); i++ {
		switch {
		case i < len(columns) && columns[i] == '(':
			depth++
		case i < len(columns) && columns[i] == ')':
			depth--
		case i == len(columns) || columns[i] == ',' && depth == 0:
			c := strings.TrimSpace(columns[start:i])
			if !strings.ContainsAny(c, "(). ") {
				c = alias + "." + c
			}
			parts = append(parts, c)
			start = i + 1
		}
	}
	return strings.Join(parts, ", ")
}

// ChangeCursor returns the position from which "changes since now" start:
// before every transaction still running, and so before every change not
// yet committed (see ListChanges).
func (db *DB) ChangeCursor(ctx context.Context, accountID string) (store.ChangePos, error) {
	var pos store.ChangePos
	if err := db.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())`).Scan(&pos.TxID); err != nil {
		return pos, fmt.Errorf("change cursor: %w", err)
	}
	return pos, nil
}

// accountChangeCursor returns the id of the account's newest change, for
// a message that needs a change to refer to.
func accountChangeCursor(ctx context.Context, q querier, accountID string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM changes WHERE account_id = $1`, accountID).Scan(&id)
	return id, err
}
