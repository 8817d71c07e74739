package postgres

import (
	"context"
	"fmt"

	"github.com/calhook/calhook/internal/store"
)

// FindEvents returns the events of a calendar with the given ids or UIDs.
func (db *DB) FindEvents(ctx context.Context, p store.FindEventsParams) ([]*store.Event, error) {
	events, err := queryEvents(ctx, db.pool, `WHERE calendar_id = $1 AND account_id = $2 AND id = ANY ($3::text[])
		UNION ALL SELECT `+eventColumns+` FROM events
		WHERE calendar_id = $1 AND account_id = $2 AND uid = ANY ($4::text[]) AND NOT id = ANY ($3::text[])`,
		p.CalendarID, p.AccountID, nonNil(p.IDs), nonNil(p.UIDs))
	if err != nil {
		return nil, fmt.Errorf("find events of %s: %w", p.CalendarID, err)
	}
	return events, nil
}

// lockCalendar locks an account's calendar (lockFeed) and returns its
// version and kind, so that a version check and the writes after it are
// atomic.
func lockCalendar(ctx context.Context, tx *txn, accountID, calendarID string) (version int64, kind string, err error) {
	if err := lockFeed(ctx, tx, accountID, calendarID); err != nil {
		return 0, "", err
	}
	err = tx.QueryRow(ctx, `SELECT `+calendarVersion+`, kind FROM calendars WHERE id = $1`, calendarID).Scan(&version, &kind)
	return version, kind, err
}

// nonNil returns xs, or an empty slice for nil: a nil slice binds as NULL,
// and "= ANY (NULL)" is never true but neither is "NOT = ANY (NULL)".
func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// WriteEvents writes a batch to a native calendar in one transaction. It
// first locks the calendar (lockFeed), then reads the version, so the
// version check and the writes are atomic.
func (db *DB) WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error) {
	var changes []*store.Change
	err := db.tx(ctx, func(tx *txn) error {
		changes = nil
		version, kind, err := lockCalendar(ctx, tx, p.AccountID, p.CalendarID)
		if err != nil {
			return err
		}
		if kind != store.KindNative {
			return fmt.Errorf("native calendar %s: %w", p.CalendarID, store.ErrNotFound)
		}
		if version != p.Version {
			return fmt.Errorf("calendar is at version %d, not %d: %w", version, p.Version, store.ErrConflict)
		}
		if len(p.Create)+len(p.Update)+len(p.Delete) == 0 {
			return nil
		}
		if err := bumpCalendar(ctx, tx, p.AccountID, p.CalendarID, p.Now); err != nil {
			return err
		}
		changes, err = db.applyEvents(ctx, tx, &store.ApplyImportParams{
			AccountID: p.AccountID, CalendarID: p.CalendarID, Create: p.Create, Update: p.Update, Delete: p.Delete, Now: p.Now,
		})
		if err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: p.AccountID, CalendarID: p.CalendarID})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write events to %s: %w", p.CalendarID, err)
	}
	return changes, nil
}
