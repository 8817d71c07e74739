package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/store"
)

// calendarColumns are the columns scanCalendar reads from the calendars
// table (unaliased, as the version's subquery names it).
const calendarColumns = `seq, id, account_id, name, time_zone, kind, source_url, poll_interval_seconds,
	` + calendarVersion + `, created_at, ` + calendarUpdated + `,
	hook_token, sync_etag, sync_last_modified, sync_body_hash, last_sync_at, last_success_at, last_change_at, last_error,
	sync_failures, next_poll_at, event_count, sync_skipped, sync_held, feed_window_days, feed_disabled`

func scanCalendar(row pgx.Row) (*store.Calendar, error) {
	var c store.Calendar
	var poll int64
	var lastSync, lastSuccess, lastChange pgtype.Timestamptz
	var nextPoll time.Time
	im := &c.Import
	var skipped, held string
	if err := row.Scan(&c.Seq, &c.ID, &c.AccountID, &c.Name, &c.TimeZone, &c.Kind, &c.SourceURL, &poll,
		&c.Version, &c.CreatedAt, &c.UpdatedAt,
		&im.HookToken, &im.ETag, &im.LastModified, &im.BodyHash, &lastSync, &lastSuccess, &lastChange, &im.LastError,
		&im.Failures, &nextPoll, &im.EventCount, &skipped, &held, &c.FeedWindowDays, &c.FeedDisabled); err != nil {
		return nil, notFound(err)
	}
	if err := store.UnmarshalImportNotes(skipped, held, im); err != nil {
		return nil, fmt.Errorf("calendar %s: %w", c.ID, err)
	}
	c.PollInterval = time.Duration(poll) * time.Second
	im.LastSyncAt, im.LastSuccessAt, im.LastChangeAt = fromOpt(lastSync), fromOpt(lastSuccess), fromOpt(lastChange)
	im.NextPollAt = fromPollTime(nextPoll)
	c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
	return &c, nil
}

func queryCalendars(ctx context.Context, q querier, query string, args ...any) ([]*store.Calendar, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Calendar, error) { return scanCalendar(row) })
}

// CreateCalendar stores a new calendar and bumps the account's feed version
// (the all-calendars feed now has one more X-WR-CALNAME source). An
// imported calendar enters the poll index at c.Import.NextPollAt.
func (db *DB) CreateCalendar(ctx context.Context, c *store.Calendar) error {
	if c.Version == 0 {
		c.Version = 1
	}
	err := db.tx(ctx, func(tx *txn) error {
		if err := bumpAccount(ctx, tx, c.AccountID, c.CreatedAt); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO calendars
			(id, account_id, name, time_zone, kind, source_url, poll_interval_seconds, version, created_at, updated_at,
			 source_host, hook_token, next_poll_at, feed_window_days, feed_disabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq`,
			c.ID, c.AccountID, c.Name, c.TimeZone, c.Kind, c.SourceURL, int64(c.PollInterval/time.Second),
			c.Version, c.CreatedAt, c.UpdatedAt,
			store.SourceHost(c.SourceURL), c.Import.HookToken, pollTime(c.Import.NextPollAt), c.FeedWindowDays, c.FeedDisabled).Scan(&c.Seq)
		if err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: c.AccountID, CalendarID: c.ID, Calendar: true})
		return nil
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
	c, err := scanCalendar(db.pool.QueryRow(ctx,
		`SELECT `+calendarColumns+` FROM calendars WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get calendar %s: %w", id, err)
	}
	return c, nil
}

// ListCalendars returns a page of an account's calendars in creation order.
func (db *DB) ListCalendars(ctx context.Context, p store.ListCalendarsParams) ([]*store.Calendar, error) {
	cals, err := queryCalendars(ctx, db.pool, `SELECT `+calendarColumns+` FROM calendars
		WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, p.AccountID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list calendars: %w", err)
	}
	return cals, nil
}

// UpdateCalendar stores a calendar's name, zone, source and feed window,
// and bumps its
// version and the account's feed version.
func (db *DB) UpdateCalendar(ctx context.Context, c *store.Calendar) error {
	err := db.tx(ctx, func(tx *txn) error {
		err := tx.QueryRow(ctx, `UPDATE calendars
			SET name = $1, time_zone = $2, source_url = $3, poll_interval_seconds = $4, version = version + 1, updated_at = $5,
			    feed_window_days = $8, feed_disabled = $9
			WHERE id = $6 AND account_id = $7 RETURNING `+calendarVersion,
			c.Name, c.TimeZone, c.SourceURL, int64(c.PollInterval/time.Second), c.UpdatedAt,
			c.ID, c.AccountID, c.FeedWindowDays, c.FeedDisabled).Scan(&c.Version)
		if err != nil {
			return notFound(err)
		}
		if err := bumpAccount(ctx, tx, c.AccountID, c.UpdatedAt); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: c.AccountID, CalendarID: c.ID, Calendar: true})
		return nil
	})
	if err != nil {
		return fmt.Errorf("update calendar %s: %w", c.ID, err)
	}
	return nil
}

// DeleteCalendar records a deletion change for each of the calendar's events
// and removes the calendar with its events, in one transaction.
func (db *DB) DeleteCalendar(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(tx *txn) error {
		if err := lockFeed(ctx, tx, accountID, id); err != nil {
			return err
		}
		if err := bumpAccount(ctx, tx, accountID, now); err != nil {
			return err
		}
		events, err := queryEvents(ctx, tx, `WHERE calendar_id = $1 ORDER BY seq`, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM calendars WHERE id = $1`, id); err != nil {
			return err
		}
		for _, e := range events {
			if _, err := insertChange(ctx, tx, e, store.ChangeDeleted, now); err != nil {
				return err
			}
		}
		tx.notifyChange(Change{AccountID: accountID, CalendarID: id, Calendar: true})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete calendar %s: %w", id, err)
	}
	return nil
}

// A version is its row's own count plus its slots' (see migration 0008):
// event writes count in slots, every other write of a calendar or account
// in its row.
const (
	calendarVersion = `calendars.version + coalesce((SELECT sum(v.n) FROM calendar_versions v
		WHERE v.calendar_id = calendars.id), 0)::bigint`
	calendarUpdated = `greatest(calendars.updated_at, (SELECT max(v.updated_at) FROM calendar_versions v
		WHERE v.calendar_id = calendars.id))`
	accountVersion = `accounts.feed_version + coalesce((SELECT sum(v.n) FROM account_versions v
		WHERE v.account_id = accounts.id), 0)::bigint`
	accountUpdated = `greatest(accounts.feed_updated_at, (SELECT max(v.updated_at) FROM account_versions v
		WHERE v.account_id = accounts.id))`
)

// versionSlots is how many slot rows a calendar's or an account's event
// writes spread over.
const versionSlots = 16

// bumpAccount increases the account's feed version inside tx.
func bumpAccount(ctx context.Context, tx pgx.Tx, accountID string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE accounts SET feed_version = feed_version + 1, feed_updated_at = $1 WHERE id = $2`,
		now, accountID)
	if err != nil {
		return fmt.Errorf("bump feed version: %w", err)
	}
	return mustAffect(tag, "bump feed version of "+accountID)
}

// bumpCalendar increases a calendar's version inside tx, checking that it
// belongs to the account, then the account's.
func bumpCalendar(ctx context.Context, tx pgx.Tx, accountID, calendarID string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE calendars SET version = version + 1, updated_at = $1 WHERE id = $2 AND account_id = $3`,
		now, calendarID, accountID)
	if err != nil {
		return fmt.Errorf("bump calendar version: %w", err)
	}
	if err := mustAffect(tag, "calendar "+calendarID); err != nil {
		return err
	}
	return bumpAccount(ctx, tx, accountID, now)
}
