package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// ClaimPolls leases due imported calendars in one UPDATE … RETURNING: the
// claim moves next_poll_at to the end of the lease, so an abandoned claim
// comes due again by itself, and consumes any pending poll request (this
// poll serves it).
func (db *DB) ClaimPolls(ctx context.Context, p store.ClaimPollsParams) ([]*store.Calendar, error) {
	now, until := micros(p.Now), micros(p.Now.Add(p.Lease))
	where, args := `kind = 'imported' AND next_poll_at <= ?`, []any{now}
	if len(p.ExcludeHosts) > 0 {
		where += ` AND source_host NOT IN (` + placeholders(len(p.ExcludeHosts)) + `)`
		args = append(args, anys(p.ExcludeHosts)...)
	}
	if len(p.ExcludeAccounts) > 0 {
		where += ` AND account_id NOT IN (` + placeholders(len(p.ExcludeAccounts)) + `)`
		args = append(args, anys(p.ExcludeAccounts)...)
	}
	var out []*store.Calendar
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE calendars SET next_poll_at = ?, lease_until = ?, requested_poll_at = 0
			WHERE id IN (SELECT id FROM calendars WHERE `+where+` ORDER BY next_poll_at LIMIT ?)
			RETURNING `+calendarColumns,
			append(append([]any{until, until}, args...), p.Limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanCalendar(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim polls: %w", err)
	}
	return out, nil
}

// NextPollAt returns the earliest next_poll_at of the imported calendars;
// leased ones sit at the end of their lease.
func (db *DB) NextPollAt(ctx context.Context) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT min(next_poll_at) FROM calendars WHERE kind = 'imported'`).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("next poll: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(at.Int64), true, nil
}

// RequestPoll records a poll request. An idle calendar becomes due at at
// (unless it already was); a leased one keeps its lease and the request
// waits in requested_poll_at for ApplyImport. (A leased calendar's
// next_poll_at is its lease end, so comparing the lease with at, rather
// than with the clock, needs no clock: a lease ending before at leaves
// next_poll_at at min(lease end, at) = lease end as well.)
func (db *DB) RequestPoll(ctx context.Context, accountID, calendarID string, at time.Time) error {
	res, err := db.exec(ctx, `UPDATE calendars SET
			requested_poll_at = CASE WHEN requested_poll_at = 0 OR requested_poll_at > ?1 THEN ?1 ELSE requested_poll_at END,
			next_poll_at = CASE WHEN lease_until > ?1 THEN next_poll_at ELSE min(next_poll_at, ?1) END
		WHERE id = ?2 AND account_id = ?3 AND kind = 'imported'`,
		micros(at), calendarID, accountID)
	if err != nil {
		return fmt.Errorf("request poll of %s: %w", calendarID, err)
	}
	return mustAffect(res, "request poll of "+calendarID)
}

// CalendarByHookToken returns the imported calendar with the given hook
// token.
func (db *DB) CalendarByHookToken(ctx context.Context, token string) (*store.Calendar, error) {
	if token == "" {
		return nil, fmt.Errorf("calendar by hook token: %w", store.ErrNotFound)
	}
	c, err := scanCalendar(db.read.QueryRowContext(ctx,
		`SELECT `+calendarColumns+` FROM calendars WHERE hook_token = ? AND kind = 'imported'`, token))
	if err != nil {
		return nil, fmt.Errorf("calendar by hook token: %w", err)
	}
	return c, nil
}

// ApplyImport writes a poll's outcome in one transaction; one that writes
// events is a bulk write (see bulkTx), so other writers go first.
func (db *DB) ApplyImport(ctx context.Context, p *store.ApplyImportParams) ([]*store.Change, error) {
	var changes []*store.Change
	writes := len(p.Create)+len(p.Update)+len(p.Delete) > 0
	run := db.tx
	if writes {
		run = db.bulkTx
	}
	err := run(ctx, func(ctx context.Context, tx *wtx) error {
		changes = changes[:0]
		if writes {
			var version int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM calendars WHERE id = ? AND account_id = ?`,
				p.CalendarID, p.AccountID).Scan(&version)
			if err != nil {
				return notFound(err)
			}
			if version != p.Version {
				return fmt.Errorf("calendar is at version %d, not %d: %w", version, p.Version, store.ErrConflict)
			}
			chs, err := applyEvents(ctx, tx, p)
			if err != nil {
				return err
			}
			changes = append(changes, chs...)
			if err := bumpCalendar(ctx, tx, p.AccountID, p.CalendarID, p.Now); err != nil {
				return err
			}
		}
		if p.Partial {
			// Forget the validators, so the poll after a crash fetches
			// the whole body and repairs a half-written import even if
			// the upstream went back to what it was.
			// A lease extension moves the poll's due time with it, as a
			// claim sets both.
			_, err := tx.ExecContext(ctx, `UPDATE calendars SET sync_etag = '', sync_last_modified = '', sync_body_hash = '',
					lease_until = CASE WHEN ?3 > 0 THEN ?3 ELSE lease_until END,
					next_poll_at = CASE WHEN ?3 > 0 THEN ?3 ELSE next_poll_at END
				WHERE id = ?1 AND account_id = ?2`, p.CalendarID, p.AccountID, optToMicros(p.LeaseUntil))
			return err
		}
		for _, typ := range p.SyncChanges() {
			ch := &store.Change{
				AccountID: p.AccountID, CalendarID: p.CalendarID, Type: typ, OccurredAt: p.Now, Trace: store.TraceFrom(ctx),
			}
			// The change has no event: its snapshot is the BLOB '{}'.
			err := tx.QueryRowContext(ctx, `INSERT INTO changes
				(account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
				VALUES (?, ?, '', '', ?, X'7B7D', ?, ?) RETURNING id`,
				ch.AccountID, ch.CalendarID, ch.Type, micros(p.Now), ch.Trace).Scan(&ch.ID)
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
			count = `(SELECT count(*) FROM events WHERE calendar_id = ?9)`
		}
		// A poll request that arrived during this poll brings the next one
		// forward; requested_poll_at stays set until a claim serves it.
		res, err := tx.ExecContext(ctx, `UPDATE calendars SET
				sync_etag = ?1, sync_last_modified = ?2, sync_body_hash = ?3, last_sync_at = ?4, last_success_at = ?5,
				last_change_at = ?6, last_error = ?7, sync_failures = ?8, event_count = `+count+`,
				next_poll_at = CASE WHEN requested_poll_at <> 0 THEN min(requested_poll_at, ?11) ELSE ?11 END,
				lease_until = 0, sync_skipped = ?12, sync_held = ?13
			WHERE id = ?9 AND account_id = ?10 AND kind = 'imported'`,
			st.ETag, st.LastModified, st.BodyHash, optToMicros(st.LastSyncAt), optToMicros(st.LastSuccessAt),
			optToMicros(st.LastChangeAt), st.LastError, st.Failures, p.CalendarID, p.AccountID, micros(st.NextPollAt),
			skipped, held)
		if err != nil {
			return err
		}
		return mustAffect(res, "imported calendar "+p.CalendarID)
	})
	if err != nil {
		return nil, fmt.Errorf("apply import to %s: %w", p.CalendarID, err)
	}
	return changes, nil
}

// applyEvents writes the events of an import inside tx, each with its
// change record, in the order deletes, updates, creates (so an event that
// moved from one (UID, RECURRENCE-ID) key to another never collides with
// itself). Each step is a few multi-row statements (see inChunks): the
// single writer's cost of a big import is per statement far more than per
// row.
func applyEvents(ctx context.Context, tx *wtx, p *store.ApplyImportParams) ([]*store.Change, error) {
	changes := make([]*store.Change, 0, len(p.Delete)+len(p.Update)+len(p.Create))
	err := inChunks(p.Delete, func(es []*store.Event) error {
		args := make([]any, 0, 2+len(es))
		args = append(args, p.CalendarID, p.AccountID)
		for _, e := range es {
			args = append(args, e.ID)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE calendar_id = ? AND account_id = ? AND id IN (`+
			placeholders(len(es))+`)`, args...)
		if err != nil {
			return fmt.Errorf("delete %d events: %w", len(es), err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(es)) {
			return fmt.Errorf("delete %d events: %d deleted (%v): %w", len(es), n, err, store.ErrNotFound)
		}
		chs, err := insertChanges(ctx, tx, es, store.ChangeDeleted, p.Now)
		changes = append(changes, chs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = inChunks(p.Update, func(es []*store.Event) error {
		args := make([]any, 0, 17*len(es)+2)
		for _, e := range es {
			exdates, metadata, extra, err := encodeEventJSON(e)
			if err != nil {
				return fmt.Errorf("update event %s: %w", e.ID, err)
			}
			args = append(args, e.ID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location, micros(e.Start),
				micros(e.End), e.AllDay, e.TimeZone, e.Status, e.RRule, exdates, e.Sequence, metadata, extra,
				micros(e.UpdatedAt))
		}
		args = append(args, p.CalendarID, p.AccountID)
		res, err := tx.ExecContext(ctx, `UPDATE events SET
			uid = v.column2, recurrence_id = v.column3, summary = v.column4, description = v.column5,
			location = v.column6, start_at = v.column7, end_at = v.column8, all_day = v.column9,
			time_zone = v.column10, status = v.column11, rrule = v.column12, exdates = v.column13,
			sequence = v.column14, metadata = v.column15, extra = v.column16, updated_at = v.column17
			FROM (VALUES `+valueRows(len(es), 17)+`) AS v
			WHERE events.id = v.column1 AND events.calendar_id = ? AND events.account_id = ?`, args...)
		if isUnique(err) {
			return fmt.Errorf("update %d events: a uid is taken: %w", len(es), store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update %d events: %w", len(es), err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(es)) {
			return fmt.Errorf("update %d events: %d updated (%v): %w", len(es), n, err, store.ErrNotFound)
		}
		chs, err := insertChanges(ctx, tx, es, store.ChangeUpdated, p.Now)
		changes = append(changes, chs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = inChunks(p.Create, func(es []*store.Event) error {
		if err := insertEvents(ctx, tx, p.CalendarID, p.AccountID, es); err != nil {
			return err
		}
		chs, err := insertChanges(ctx, tx, es, store.ChangeCreated, p.Now)
		changes = append(changes, chs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// insertEvents inserts events of one calendar in one statement, setting
// each one's Seq; a taken (UID, RECURRENCE-ID) is store.ErrConflict.
func insertEvents(ctx context.Context, tx *wtx, calendarID, accountID string, es []*store.Event) error {
	const cols = 20
	args := make([]any, 0, cols*len(es))
	byID := make(map[string]*store.Event, len(es))
	for _, e := range es {
		exdates, metadata, extra, err := encodeEventJSON(e)
		if err != nil {
			return fmt.Errorf("create event %s: %w", e.ID, err)
		}
		args = append(args, e.ID, calendarID, accountID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location,
			micros(e.Start), micros(e.End), e.AllDay, e.TimeZone, e.Status, e.RRule, exdates, e.Sequence,
			metadata, extra, micros(e.CreatedAt), micros(e.UpdatedAt))
		byID[e.ID] = e
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO events
		(id, calendar_id, account_id, uid, recurrence_id, summary, description, location, start_at, end_at,
		 all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at)
		VALUES `+valueRows(len(es), cols)+` RETURNING id, seq`, args...)
	if isUnique(err) {
		return fmt.Errorf("create %d events: a uid is taken: %w", len(es), store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create %d events: %w", len(es), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return fmt.Errorf("create %d events: %w", len(es), err)
		}
		if e := byID[id]; e != nil {
			e.Seq = seq
		}
	}
	// A constraint that fails on a later row surfaces only here.
	if err := rows.Err(); isUnique(err) {
		return fmt.Errorf("create %d events: a uid is taken: %w", len(es), store.ErrConflict)
	} else if err != nil {
		return fmt.Errorf("create %d events: %w", len(es), err)
	}
	return nil
}

// insertChanges appends a change record of type typ for each of es, which
// belong to one calendar and are distinct, in one statement.
func insertChanges(ctx context.Context, tx *wtx, es []*store.Event, typ string, at time.Time) ([]*store.Change, error) {
	const cols = 8
	trace := store.TraceFrom(ctx)
	args := make([]any, 0, cols*len(es))
	out := make([]*store.Change, len(es))
	byEvent := make(map[string]*store.Change, len(es))
	for k, e := range es {
		snap, err := store.MarshalSnapshot(e)
		if err != nil {
			return nil, err
		}
		ch := &store.Change{
			AccountID: e.AccountID, CalendarID: e.CalendarID, EventID: e.ID, EventUID: e.UID,
			Type: typ, Event: e, OccurredAt: at, Trace: trace,
		}
		out[k], byEvent[e.ID] = ch, ch
		args = append(args, ch.AccountID, ch.CalendarID, ch.EventID, ch.EventUID, ch.Type, snap, micros(at), trace)
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO changes
		(account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
		VALUES `+valueRows(len(es), cols)+` RETURNING event_id, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("insert %d changes: %w", len(es), err)
	}
	defer rows.Close()
	for rows.Next() {
		var eventID string
		var id int64
		if err := rows.Scan(&eventID, &id); err != nil {
			return nil, fmt.Errorf("insert %d changes: %w", len(es), err)
		}
		if ch := byEvent[eventID]; ch != nil {
			ch.ID = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert %d changes: %w", len(es), err)
	}
	return out, nil
}
