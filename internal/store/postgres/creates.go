package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// A group that only creates events, the common case, runs as four
// statements between BEGIN and COMMIT, all sent at once: one round trip
// whatever the group's size.
//
// The first inserts the events whose calendar is their account's,
// skipping those whose (UID, RECURRENCE-ID) is taken (by a stored event or
// by an earlier write of the group), and returns each write's outcome. The
// next two add the events stored to their calendars' and then their
// accounts' version slots, and the last appends their change records. The
// foreign keys of the events and changes inserted hold the KEY SHARE locks
// on the calendar and account rows that every event write holds (see
// runGroup).

// insertEventsSQL is the first statement of a group of creates; its
// parameters are arrays of the events' columns, one element per write.
const insertEventsSQL = `WITH u AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::timestamptz[], $10::timestamptz[], $11::boolean[], $12::text[], $13::text[], $14::text[],
			$15::text[], $16::integer[], $17::text[], $18::text[], $19::timestamptz[], $20::timestamptz[])
			WITH ORDINALITY AS u(id, calendar_id, account_id, uid, recurrence_id, summary, description, location,
				start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at,
				updated_at, ord)),
	owned AS (
		SELECT u.ord FROM u JOIN calendars c
			ON c.id = u.calendar_id AND c.account_id = u.account_id AND c.id = ANY ($2::text[])),
	ins AS (
		INSERT INTO events (id, calendar_id, account_id, uid, recurrence_id, summary, description, location,
			start_at, end_at, all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at,
			updated_at)
		SELECT u.id, u.calendar_id, u.account_id, u.uid, u.recurrence_id, u.summary, u.description, u.location,
			u.start_at, u.end_at, u.all_day, u.time_zone, u.status, u.rrule, u.exdates::timestamptz[], u.sequence,
			u.metadata::jsonb, u.extra::jsonb, u.created_at, u.updated_at
		FROM u WHERE u.ord IN (SELECT ord FROM owned) ORDER BY u.ord
		ON CONFLICT DO NOTHING RETURNING id, seq)
	SELECT u.ord, ins.seq, u.ord IN (SELECT ord FROM owned),
		(SELECT set_config('calhook.created', array_to_string(ARRAY(SELECT id FROM ins), ','), true))
	FROM u LEFT JOIN ins ON ins.id = u.id
	ORDER BY u.ord`

// createdSQL selects the writes of a group of creates whose event the
// group's first statement stored, from arrays of their ids, calendars,
// accounts, UIDs, times and change snapshots (parameters $1 to $6, one
// element per write). The first statement leaves the ids of the events it
// stored in a setting of the transaction: reading them back from the
// events table instead would be at the mercy of a plan cached while the
// table was small (a scan of every event).
const createdSQL = `WITH done AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
			WITH ORDINALITY AS u(id, calendar_id, account_id, uid, updated_at, snapshot, ord)
		WHERE u.id = ANY (string_to_array(current_setting('calhook.created', true), ',')))`

// Statements of a group of creates after the first, on createdSQL's
// parameters: the bumps of the calendars' and the accounts' version slots
// ($7 is the slot), in id order, and the change records ($7 is their
// type), whose ids come back with the events'.
const (
	bumpCreatedCalendarsSQL = createdSQL + `
	INSERT INTO calendar_versions (calendar_id, slot, n, updated_at)
	SELECT calendar_id, $7, count(*), max(updated_at) FROM done GROUP BY calendar_id ORDER BY calendar_id
	ON CONFLICT (calendar_id, slot) DO UPDATE SET n = calendar_versions.n + excluded.n,
		updated_at = greatest(calendar_versions.updated_at, excluded.updated_at)`
	bumpCreatedAccountsSQL = createdSQL + `
	INSERT INTO account_versions (account_id, slot, n, updated_at)
	SELECT account_id, $7, count(*), max(updated_at) FROM done GROUP BY account_id ORDER BY account_id
	ON CONFLICT (account_id, slot) DO UPDATE SET n = account_versions.n + excluded.n,
		updated_at = greatest(account_versions.updated_at, excluded.updated_at)`
	logCreatesSQL = createdSQL + `
	INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
	SELECT account_id, calendar_id, id, uid, $7, snapshot::jsonb, updated_at, ($8::text[])[ord] FROM done ORDER BY ord
	RETURNING id, xid, event_id`
)

// onlyCreates reports whether every write of group creates an event.
func onlyCreates(group []*eventWrite) bool {
	for _, w := range group {
		if w.kind != store.ChangeCreated {
			return false
		}
	}
	return true
}

// runCreates runs a group of creates inside tx in one round trip, which
// also commits it.
func runCreates(ctx context.Context, tx *pipeTx, group []*eventWrite, slot int16) error {
	n := len(group)
	var (
		ids, calendars, accounts, uids, recurrences = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		summaries, descriptions, locations          = make([]string, n), make([]string, n), make([]string, n)
		zones, statuses, rrules, exdates            = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		metadata, extra, snapshots                  = make([]string, n), make([]string, n), make([]string, n)
		starts, ends, created, updated              = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		allDay                                      = make([]bool, n)
		sequences                                   = make([]int32, n)
	)
	seen := map[Change]bool{}
	for i, w := range group {
		w.change, w.err = nil, nil
		e := w.event
		a, err := encodeEvent(e)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		snap, err := store.MarshalSnapshot(e)
		if err != nil {
			return err
		}
		ids[i], calendars[i], accounts[i], uids[i], recurrences[i] = e.ID, e.CalendarID, e.AccountID, e.UID, e.RecurrenceID
		summaries[i], descriptions[i], locations[i] = e.Summary, e.Description, e.Location
		zones[i], statuses[i], rrules[i], exdates[i] = e.TimeZone, e.Status, e.RRule, timestampArray(a.exdates)
		metadata[i], extra[i], snapshots[i] = a.metadata, a.extra, string(snap)
		starts[i], ends[i], created[i], updated[i] = e.Start, e.End, e.CreatedAt, e.UpdatedAt
		allDay[i], sequences[i] = e.AllDay, int32(e.Sequence)
		// Every calendar of the group is announced, also when its write
		// fails: a needless notification costs a cache refill at worst.
		if c := (Change{AccountID: e.AccountID, CalendarID: e.CalendarID}); !seen[c] {
			seen[c] = true
			tx.notifyChange(c)
		}
	}
	batch := &pgx.Batch{}
	batch.Queue(insertEventsSQL, ids, calendars, accounts, uids, recurrences, summaries, descriptions, locations,
		starts, ends, allDay, zones, statuses, rrules, exdates, sequences, metadata, extra, created, updated).
		Query(func(rows pgx.Rows) error {
			var ord int64
			var seq *int64
			var owned bool
			var storedIDs string // the setting left for logCreatesSQL
			_, err := pgx.ForEachRow(rows, []any{&ord, &seq, &owned, &storedIDs}, func() error {
				if ord < 1 || ord > int64(n) {
					return fmt.Errorf("create events: outcome of write %d of %d", ord, n)
				}
				group[ord-1].created(seq, owned)
				return nil
			})
			return err
		})
	batch.Queue(bumpCreatedCalendarsSQL, ids, calendars, accounts, uids, updated, snapshots, slot)
	batch.Queue(bumpCreatedAccountsSQL, ids, calendars, accounts, uids, updated, snapshots, slot)
	byID := make(map[string]*eventWrite, n)
	for _, w := range group {
		byID[w.event.ID] = w
	}
	traces := make([]string, n)
	for i, w := range group {
		traces[i] = store.TraceFrom(w.ctx)
	}
	batch.Queue(logCreatesSQL, ids, calendars, accounts, uids, updated, snapshots, store.ChangeCreated, traces).Query(func(rows pgx.Rows) error {
		var changeID int64
		var xid uint64
		var eventID string
		_, err := pgx.ForEachRow(rows, []any{&changeID, &xid, &eventID}, func() error {
			w := byID[eventID]
			if w == nil || w.err != nil {
				return fmt.Errorf("create events: change %d for event %s, which was not stored", changeID, eventID)
			}
			w.change = w.record()
			w.change.ID, w.change.TxID = changeID, xid
			return nil
		})
		return err
	})
	if err := tx.commit(ctx, batch); err != nil {
		return err
	}
	// Committed: an error now would run the group again.
	for _, w := range group {
		if w.change == nil && w.err == nil {
			w.err = fmt.Errorf("create events: no outcome for event %s", w.event.ID)
		}
	}
	return nil
}

// timestampArray formats ts as a PostgreSQL array literal of timestamptz,
// to microseconds as the binary encoding sends them.
func timestampArray(ts []time.Time) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		t = t.UTC()
		b.WriteString(t.Truncate(time.Microsecond).Format("2006-01-02T15:04:05.999999Z"))
	}
	b.WriteByte('}')
	return b.String()
}
