package sqlite

import (
	"context"
	"fmt"

	"github.com/calhook/calhook/internal/store"
)

// FindEvents returns the events of a calendar with the given ids or UIDs.
func (db *DB) FindEvents(ctx context.Context, p store.FindEventsParams) ([]*store.Event, error) {
	var out []*store.Event
	seen := make(map[string]bool, len(p.IDs))
	for _, by := range []struct {
		col  string
		vals []string
	}{{"id", p.IDs}, {"uid", p.UIDs}} {
		err := inChunks(by.vals, func(vals []string) error {
			events, err := queryEvents(ctx, db.read, `WHERE calendar_id = ? AND account_id = ? AND `+by.col+
				` IN (`+placeholders(len(vals))+`)`, append([]any{p.CalendarID, p.AccountID}, anys(vals)...)...)
			for _, e := range events {
				if !seen[e.ID] { // found by its id and by its UID
					seen[e.ID] = true
					out = append(out, e)
				}
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("find events of %s: %w", p.CalendarID, err)
		}
	}
	return out, nil
}

// WriteEvents writes a batch to a native calendar in one transaction,
// after checking its version.
func (db *DB) WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error) {
	var changes []*store.Change
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var version int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM calendars WHERE id = ? AND account_id = ? AND kind = 'native'`,
			p.CalendarID, p.AccountID).Scan(&version)
		if err != nil {
			return notFound(err)
		}
		if version != p.Version {
			return fmt.Errorf("calendar is at version %d, not %d: %w", version, p.Version, store.ErrConflict)
		}
		if len(p.Create)+len(p.Update)+len(p.Delete) == 0 {
			return nil
		}
		changes, err = applyEvents(ctx, tx, &store.ApplyImportParams{
			AccountID: p.AccountID, CalendarID: p.CalendarID, Create: p.Create, Update: p.Update, Delete: p.Delete, Now: p.Now,
		})
		if err != nil {
			return err
		}
		return bumpCalendar(ctx, tx, p.AccountID, p.CalendarID, p.Now)
	})
	if err != nil {
		return nil, fmt.Errorf("write events to %s: %w", p.CalendarID, err)
	}
	return changes, nil
}
