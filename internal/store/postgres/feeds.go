package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// FeedVersion returns a feed's version and the account's feed token in one
// read.
func (db *DB) FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error) {
	st, err := feedState(ctx, db.pool, accountID, calendarID, "")
	if err != nil {
		return nil, fmt.Errorf("feed version: %w", err)
	}
	return st, nil
}

// feedState reads a feed's state; lock, if not empty, is a locking clause
// for the row that holds the version (the calendar's, or the account's).
func feedState(ctx context.Context, q querier, accountID, calendarID, lock string) (*store.FeedState, error) {
	var st store.FeedState
	var err error
	if calendarID == "" {
		err = q.QueryRow(ctx, `SELECT feed_token, feed_version, feed_updated_at FROM accounts WHERE id = $1 `+lock,
			accountID).Scan(&st.FeedToken, &st.Version, &st.UpdatedAt)
	} else {
		if lock != "" {
			lock += " OF c"
		}
		err = q.QueryRow(ctx, `SELECT a.feed_token, c.version, c.updated_at FROM calendars c
			JOIN accounts a ON a.id = c.account_id WHERE c.id = $1 AND c.account_id = $2 `+lock,
			calendarID, accountID).Scan(&st.FeedToken, &st.Version, &st.UpdatedAt)
	}
	if err != nil {
		return nil, notFound(err)
	}
	st.UpdatedAt = utc(st.UpdatedAt)
	return &st, nil
}

// FeedContent reads a feed's calendars and events in one repeatable-read
// transaction, so the version matches the content.
func (db *DB) FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error) {
	var fc *store.FeedContent
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		st, err := feedState(ctx, tx, accountID, calendarID, "")
		if err != nil {
			return err
		}
		fc = &store.FeedContent{FeedState: *st}
		calWhere, evWhere := `WHERE account_id = $1 ORDER BY seq`, `WHERE account_id = $1
			ORDER BY (SELECT seq FROM calendars WHERE calendars.id = events.calendar_id), uid, recurrence_id`
		arg := accountID
		if calendarID != "" {
			calWhere, evWhere = `WHERE id = $1`, `WHERE calendar_id = $1 ORDER BY uid, recurrence_id`
			arg = calendarID
		}
		if fc.Calendars, err = queryCalendars(ctx, tx, `SELECT `+calendarColumns+` FROM calendars `+calWhere, arg); err != nil {
			return fmt.Errorf("calendars: %w", err)
		}
		fc.Events, err = queryEvents(ctx, tx, evWhere, arg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feed content: %w", err)
	}
	return fc, nil
}

// ListChanges returns the changes of a calendar after a cursor, oldest
// first. The account's change ids follow commit order, so a client cursor
// never skips a change that commits later.
func (db *DB) ListChanges(ctx context.Context, p store.ListChangesParams) ([]*store.Change, error) {
	changes, err := queryChanges(ctx, db.pool, `WHERE calendar_id = $1 AND account_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
		p.CalendarID, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	return changes, nil
}

const changeColumns = `id, account_id, calendar_id, event_id, event_uid, type, event, occurred_at`

func queryChanges(ctx context.Context, q querier, where string, args ...any) ([]*store.Change, error) {
	rows, err := q.Query(ctx, `SELECT `+changeColumns+` FROM changes `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Change, error) { return scanChange(row) })
}

// scanChange scans changeColumns.
func scanChange(row pgx.Row) (*store.Change, error) {
	var ch store.Change
	var snap []byte
	if err := row.Scan(&ch.ID, &ch.AccountID, &ch.CalendarID, &ch.EventID, &ch.EventUID, &ch.Type, &snap, &ch.OccurredAt); err != nil {
		return nil, err
	}
	return decodeChange(&ch, snap)
}

// nullChange scans changeColumns from an outer join, where they may be
// NULL.
type nullChange struct {
	id                                        *int64
	account, calendar, eventID, eventUID, typ *string
	snap                                      []byte
	occurred                                  *time.Time
}

func (n *nullChange) dest() []any {
	return []any{&n.id, &n.account, &n.calendar, &n.eventID, &n.eventUID, &n.typ, &n.snap, &n.occurred}
}

// change returns the scanned change; the columns must not be NULL.
func (n *nullChange) change() (*store.Change, error) {
	return decodeChange(&store.Change{ID: *n.id, AccountID: *n.account, CalendarID: *n.calendar, EventID: *n.eventID,
		EventUID: *n.eventUID, Type: *n.typ, OccurredAt: *n.occurred}, n.snap)
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
	return ch, nil
}

// qualified prefixes each of the comma-separated columns with alias.
func qualified(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ChangeCursor returns the id of the newest change of the account, the
// cursor from which "changes since now" starts.
func (db *DB) ChangeCursor(ctx context.Context, accountID string) (int64, error) {
	id, err := accountChangeCursor(ctx, db.pool, accountID)
	if err != nil {
		return 0, fmt.Errorf("change cursor: %w", err)
	}
	return id, nil
}

func accountChangeCursor(ctx context.Context, q querier, accountID string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM changes WHERE account_id = $1`, accountID).Scan(&id)
	return id, err
}
