package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// ClaimPolls leases due imported calendars in one UPDATE … RETURNING: the
// claim moves next_poll_at to the end of the lease, so an abandoned claim
// comes due again by itself, and consumes any pending poll request (this
// poll serves it). Rows another transaction holds are skipped (SKIP
// LOCKED), so nodes claiming at once take disjoint sets.
func (db *DB) ClaimPolls(ctx context.Context, p store.ClaimPollsParams) ([]*store.Calendar, error) {
	until := p.Now.Add(p.Lease)
	where, args := `kind = 'imported' AND next_poll_at <= $2`, []any{until, p.Now}
	if len(p.ExcludeHosts) > 0 {
		args = append(args, p.ExcludeHosts)
		where += fmt.Sprintf(` AND source_host <> ALL($%d)`, len(args))
	}
	if len(p.ExcludeAccounts) > 0 {
		args = append(args, p.ExcludeAccounts)
		where += fmt.Sprintf(` AND account_id <> ALL($%d)`, len(args))
	}
	args = append(args, p.Limit)
	cals, err := queryCalendars(ctx, db.pool, `UPDATE calendars SET next_poll_at = $1, lease_until = $1, requested_poll_at = NULL
		WHERE id IN (SELECT id FROM calendars WHERE `+where+fmt.Sprintf(` ORDER BY next_poll_at LIMIT $%d FOR UPDATE SKIP LOCKED)`, len(args))+`
		RETURNING `+calendarColumns, args...)
	if err != nil {
		return nil, fmt.Errorf("claim polls: %w", err)
	}
	return cals, nil
}

// NextPollAt returns the earliest next_poll_at of the imported calendars;
// leased ones sit at the end of their lease.
func (db *DB) NextPollAt(ctx context.Context) (time.Time, bool, error) {
	var at *time.Time
	if err := db.pool.QueryRow(ctx, `SELECT min(next_poll_at) FROM calendars WHERE kind = 'imported'`).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("next poll: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}

// RequestPoll records a poll request. An idle calendar becomes due at at
// (unless it already was); a leased one keeps its lease and the request
// waits in requested_poll_at for ApplyImport. (A leased calendar's
// next_poll_at is its lease end, so comparing the lease with at, rather
// than with the clock, needs no clock: a lease ending before at leaves
// next_poll_at at least(lease end, at) = lease end as well.)
func (db *DB) RequestPoll(ctx context.Context, accountID, calendarID string, at time.Time) error {
	tag, err := db.exec(ctx, `UPDATE calendars SET
			requested_poll_at = least(requested_poll_at, $1),
			next_poll_at = CASE WHEN lease_until > $1 THEN next_poll_at ELSE least(next_poll_at, $1) END
		WHERE id = $2 AND account_id = $3 AND kind = 'imported'`,
		at, calendarID, accountID)
	if err != nil {
		return fmt.Errorf("request poll of %s: %w", calendarID, err)
	}
	return mustAffect(tag, "request poll of "+calendarID)
}

// CalendarByHookToken returns the imported calendar with the given hook
// token.
func (db *DB) CalendarByHookToken(ctx context.Context, token string) (*store.Calendar, error) {
	if token == "" {
		return nil, fmt.Errorf("calendar by hook token: %w", store.ErrNotFound)
	}
	c, err := scanCalendar(db.pool.QueryRow(ctx,
		`SELECT `+calendarColumns+` FROM calendars WHERE hook_token = $1 AND kind = 'imported'`, token))
	if err != nil {
		return nil, fmt.Errorf("calendar by hook token: %w", err)
	}
	return c, nil
}

// ApplyImport writes a poll's outcome in one transaction. It first locks
// the calendar (lockFeed), then reads the version, so the version check
// and the writes are atomic.
func (db *DB) ApplyImport(ctx context.Context, p *store.ApplyImportParams) ([]*store.Change, error) {
	var changes []*store.Change
	err := db.tx(ctx, func(tx *txn) error {
		changes = nil
		version, kind, err := lockCalendar(ctx, tx, p.AccountID, p.CalendarID)
		if err != nil {
			return err
		}
		writes := len(p.Create)+len(p.Update)+len(p.Delete) > 0
		if writes && version != p.Version {
			return fmt.Errorf("calendar is at version %d, not %d: %w", version, p.Version, store.ErrConflict)
		}
		if kind != store.KindImported {
			return fmt.Errorf("imported calendar %s: %w", p.CalendarID, store.ErrNotFound)
		}
		if writes {
			if err := bumpCalendar(ctx, tx, p.AccountID, p.CalendarID, p.Now); err != nil {
				return err
			}
			chs, err := db.applyEvents(ctx, tx, p)
			if err != nil {
				return err
			}
			changes = append(changes, chs...)
		}
		if p.Partial {
			// Forget the validators, so the poll after a crash fetches
			// the whole body and repairs a half-written import even if
			// the upstream went back to what it was.
			// A lease extension moves the poll's due time with it, as a
			// claim sets both.
			if _, err := tx.Exec(ctx, `UPDATE calendars SET sync_etag = '', sync_last_modified = '', sync_body_hash = '',
					lease_until = coalesce($2, lease_until), next_poll_at = coalesce($2, next_poll_at)
				WHERE id = $1`, p.CalendarID, opt(p.LeaseUntil)); err != nil {
				return err
			}
			if writes {
				tx.notifyChange(Change{AccountID: p.AccountID, CalendarID: p.CalendarID})
			}
			return nil
		}
		syncChanges := p.SyncChanges()
		for _, typ := range syncChanges {
			ch, err := appendChange(ctx, tx, &store.Change{
				AccountID: p.AccountID, CalendarID: p.CalendarID, Type: typ, OccurredAt: p.Now,
			}, nil)
			if err != nil {
				return fmt.Errorf("insert sync change: %w", err)
			}
			changes = append(changes, ch)
		}
		st := p.State
		skipped, held, err := store.MarshalImportNotes(&st)
		if err != nil {
			return err
		}
		count := `event_count`
		if writes {
			count = `(SELECT count(*) FROM events WHERE calendar_id = $9)`
		}
		// A poll request that arrived during this poll brings the next one
		// forward; requested_poll_at stays set until a claim serves it.
		_, err = tx.Exec(ctx, `UPDATE calendars SET
				sync_etag = $1, sync_last_modified = $2, sync_body_hash = $3, last_sync_at = $4, last_success_at = $5,
				last_change_at = $6, last_error = $7, sync_failures = $8, event_count = `+count+`,
				next_poll_at = least(requested_poll_at, $10), lease_until = NULL, sync_skipped = $11, sync_held = $12
			WHERE id = $9`,
			st.ETag, st.LastModified, st.BodyHash, opt(st.LastSyncAt), opt(st.LastSuccessAt),
			opt(st.LastChangeAt), st.LastError, st.Failures, p.CalendarID, pollTime(st.NextPollAt), skipped, held)
		if err != nil {
			return err
		}
		if writes || len(syncChanges) > 0 {
			tx.notifyChange(Change{AccountID: p.AccountID, CalendarID: p.CalendarID})
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply import to %s: %w", p.CalendarID, err)
	}
	return changes, nil
}

// applyEvents writes the events of an import inside tx, each with its
// change record, in the order deletes, updates, creates (so an event that
// moved from one (UID, RECURRENCE-ID) key to another never collides with
// itself).
func (db *DB) applyEvents(ctx context.Context, tx pgx.Tx, p *store.ApplyImportParams) ([]*store.Change, error) {
	var changes []*store.Change
	for _, e := range p.Delete {
		tag, err := tx.Exec(ctx, `DELETE FROM events WHERE id = $1 AND calendar_id = $2 AND account_id = $3`,
			e.ID, p.CalendarID, p.AccountID)
		if err != nil {
			return nil, fmt.Errorf("delete event %s: %w", e.ID, err)
		}
		if err := mustAffect(tag, "event "+e.ID); err != nil {
			return nil, err
		}
		ch, err := insertChange(ctx, tx, e, store.ChangeDeleted, p.Now)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	for _, e := range p.Update {
		u := *e
		u.CalendarID, u.AccountID = p.CalendarID, p.AccountID
		if err := updateEvent(ctx, tx, &u); err != nil {
			return nil, err
		}
		ch, err := insertChange(ctx, tx, e, store.ChangeUpdated, p.Now)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	for _, e := range p.Create {
		c := *e
		c.CalendarID, c.AccountID = p.CalendarID, p.AccountID
		if err := insertEvent(ctx, tx, &c); err != nil {
			return nil, err
		}
		e.Seq = c.Seq
		ch, err := insertChange(ctx, tx, e, store.ChangeCreated, p.Now)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}
