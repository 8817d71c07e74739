package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/store"
)

const calendarColumns = `seq, id, account_id, name, time_zone, kind, source_url, poll_interval_seconds, version, created_at, updated_at,
	hook_token, sync_etag, sync_last_modified, sync_body_hash, last_sync_at, last_success_at, last_change_at, last_error,
	sync_failures, next_poll_at, event_count, sync_skipped, sync_held, feed_window_days, feed_disabled`

func scanCalendar(row interface{ Scan(...any) error }) (*store.Calendar, error) {
	var c store.Calendar
	var poll, created, updated, lastSync, lastSuccess, lastChange, nextPoll int64
	im := &c.Import
	var skipped, held string
	if err := row.Scan(&c.Seq, &c.ID, &c.AccountID, &c.Name, &c.TimeZone, &c.Kind, &c.SourceURL, &poll,
		&c.Version, &created, &updated,
		&im.HookToken, &im.ETag, &im.LastModified, &im.BodyHash, &lastSync, &lastSuccess, &lastChange, &im.LastError,
		&im.Failures, &nextPoll, &im.EventCount, &skipped, &held, &c.FeedWindowDays, &c.FeedDisabled); err != nil {
		return nil, notFound(err)
	}
	if err := store.UnmarshalImportNotes(skipped, held, im); err != nil {
		return nil, fmt.Errorf("calendar %s: %w", c.ID, err)
	}
	c.PollInterval = time.Duration(poll) * time.Second
	im.LastSyncAt, im.LastSuccessAt, im.LastChangeAt = optMicros(lastSync), optMicros(lastSuccess), optMicros(lastChange)
	im.NextPollAt = optMicros(nextPoll)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

// CreateCalendar stores a new calendar and bumps the account's feed version
// (the all-calendars feed now has one more X-WR-CALNAME source). An
// imported calendar enters the poll index at c.Import.NextPollAt.
func (db *DB) CreateCalendar(ctx context.Context, c *store.Calendar) error {
	if c.Version == 0 {
		c.Version = 1
	}
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if err := bumpAccount(ctx, tx, c.AccountID, c.CreatedAt); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO calendars
			(id, account_id, name, time_zone, kind, source_url, poll_interval_seconds, version, created_at, updated_at,
			 source_host, hook_token, next_poll_at, feed_window_days, feed_disabled)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			c.ID, c.AccountID, c.Name, c.TimeZone, c.Kind, c.SourceURL, int64(c.PollInterval/time.Second),
			c.Version, micros(c.CreatedAt), micros(c.UpdatedAt),
			store.SourceHost(c.SourceURL), c.Import.HookToken, optToMicros(c.Import.NextPollAt), c.FeedWindowDays, c.FeedDisabled).Scan(&c.Seq)
	})
	if isUnique(err) {
		return fmt.Errorf("create calendar %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create calendar %s: %w", c.ID, err)
	}
	return nil
}

// Calendar returns one calendar of an account.
func (db *DB) Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error) {
	c, err := scanCalendar(db.read.QueryRowContext(ctx,
		`SELECT `+calendarColumns+` FROM calendars WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get calendar %s: %w", id, err)
	}
	return c, nil
}

// ListCalendars returns a page of an account's calendars in creation order.
func (db *DB) ListCalendars(ctx context.Context, p store.ListCalendarsParams) ([]*store.Calendar, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+calendarColumns+` FROM calendars
		WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?`, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list calendars: %w", err)
	}
	defer rows.Close()
	var out []*store.Calendar
	for rows.Next() {
		c, err := scanCalendar(rows)
		if err != nil {
			return nil, fmt.Errorf("list calendars: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list calendars: %w", err)
	}
	return out, nil
}

// UpdateCalendar stores a calendar's name, zone, source and feed window,
// and bumps its
// version and the account's feed version.
func (db *DB) UpdateCalendar(ctx context.Context, c *store.Calendar) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRowContext(ctx, `UPDATE calendars
			SET name = ?, time_zone = ?, source_url = ?, poll_interval_seconds = ?, feed_window_days = ?, feed_disabled = ?,
			    version = version + 1, updated_at = ?
			WHERE id = ? AND account_id = ? RETURNING version`,
			c.Name, c.TimeZone, c.SourceURL, int64(c.PollInterval/time.Second), c.FeedWindowDays, c.FeedDisabled, micros(c.UpdatedAt),
			c.ID, c.AccountID).Scan(&c.Version)
		if err != nil {
			return notFound(err)
		}
		return bumpAccount(ctx, tx, c.AccountID, c.UpdatedAt)
	})
	if err != nil {
		return fmt.Errorf("update calendar %s: %w", c.ID, err)
	}
	return nil
}

// DeleteCalendar records a deletion change for each of the calendar's events
// and removes the calendar with its events, in one transaction.
func (db *DB) DeleteCalendar(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM calendars WHERE id = ? AND account_id = ?`, id, accountID).Scan(&one); err != nil {
			return notFound(err)
		}
		events, err := queryEvents(ctx, tx, `WHERE calendar_id = ? ORDER BY seq`, id)
		if err != nil {
			return err
		}
		for _, e := range events {
			if _, err := insertChange(ctx, tx, e, store.ChangeDeleted, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM calendars WHERE id = ?`, id); err != nil {
			return err
		}
		return bumpAccount(ctx, tx, accountID, now)
	})
	if err != nil {
		return fmt.Errorf("delete calendar %s: %w", id, err)
	}
	return nil
}

// bumpAccount increases the account's feed version inside tx.
func bumpAccount(ctx context.Context, tx *wtx, accountID string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET feed_version = feed_version + 1, feed_updated_at = ? WHERE id = ?`,
		micros(now), accountID)
	if err != nil {
		return fmt.Errorf("bump feed version: %w", err)
	}
	return mustAffect(res, "bump feed version of "+accountID)
}

// bumpCalendar increases a calendar's version inside tx, checking that it
// belongs to the account.
func bumpCalendar(ctx context.Context, tx *wtx, accountID, calendarID string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE calendars SET version = version + 1, updated_at = ? WHERE id = ? AND account_id = ?`,
		micros(now), calendarID, accountID)
	if err != nil {
		return fmt.Errorf("bump calendar version: %w", err)
	}
	if err := mustAffect(res, "calendar "+calendarID); err != nil {
		return err
	}
	return bumpAccount(ctx, tx, accountID, now)
}
