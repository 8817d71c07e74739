package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// Event writes (the API's creates, updates and deletes) are group-committed:
// every write that arrives while a group runs joins the next group, and a
// group is one transaction of two round trips however many writes it
// holds; a group of creates only takes one (see runCreates).
//
// A group first writes the events themselves, one statement per write, all
// sent at once; each statement reports whether it took effect (a duplicate
// UID, or an event or calendar that is not the account's, is an outcome of
// that write alone, not an error of the group). Then, for the writes that
// took effect, it takes KEY SHARE locks on the calendars and accounts they
// touched, adds the number of writes to one version slot of each (see
// migration 0008), appends the change records, and commits, with the
// notifications for the other nodes riding in the transaction when the
// node's window for them is over (see notifier).
//
// The KEY SHARE locks do not conflict with each other, so groups of
// several nodes writing one calendar overlap; they hold off what must see
// a feed's version with no write in flight, an iCal Hooks registration or
// an import, which lock the row FOR UPDATE (see RegisterHook). A group
// adds to a slot picked at random, so two groups rarely wait on one slot
// row; the slot rows of a group are written calendars first, then
// accounts, each in id order, so groups that do share a slot queue rather
// than deadlock.
//
// A group that fails as a whole (a calendar deleted meanwhile, a UID taken
// by a write that committed after the group's check) runs again one write
// per group, so that the failure reaches only its own write.

// maxGroup bounds how many event writes share one transaction.
const maxGroup = 128

// groupTimeout bounds one group's transaction; its writers wait for it
// whatever their own contexts say, so that none reports failure for a
// write that committed.
const groupTimeout = time.Minute

// errClosed is returned for writes submitted after Close.
var errClosed = errors.New("postgres: store closed")

// eventWrite is one event write waiting for the group committer.
type eventWrite struct {
	ctx context.Context
	// kind is the change type: store.ChangeCreated, ChangeUpdated or
	// ChangeDeleted.
	kind  string
	event *store.Event // the new state; for a delete, set from the deleted row
	// accountID, calendarID and eventID name the event; at is the write's
	// time.
	accountID, calendarID, eventID string
	at                             time.Time

	// The outcome: change is set when the write took effect, err when it
	// did not.
	change *store.Change
	err    error
	done   chan struct{}
}

// writeEvent hands w to the group committer and waits for its outcome.
// Once the committer took it, w runs to its end even if ctx ends.
func (db *DB) writeEvent(ctx context.Context, w *eventWrite) (*store.Change, error) {
	w.ctx, w.done = ctx, make(chan struct{})
	select {
	case db.writes <- w:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-db.closing:
		return nil, errClosed
	}
	<-w.done
	return w.change, w.err
}

// commitLoop runs the groups until Close.
//
// A group takes every write waiting when it starts. After a group of
// several writes, it first lingers, up to maxLinger, until it holds one
// more: its writers are busy clients whose next writes are on their way,
// and a group costs the database nearly as much whatever its size, so a
// few hundred microseconds buy fewer, fuller transactions. This matters
// most when writes are spread over several nodes, each of which sees only
// a few writers: it raised 3 nodes' throughput by about a sixth in
// pg-throughput. A lone writer (the previous group held one write) never
// waits.
func (db *DB) commitLoop() {
	defer close(db.committed)
	group := make([]*eventWrite, 0, maxGroup)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	last := 0 // the previous group's size
	for {
		select {
		case <-db.closing:
			return
		case w := <-db.writes:
			group = append(group[:0], w)
		}
		group = db.drain(group)
		if aim := lingerAim(last, len(group)); aim > 0 {
			linger.Reset(maxLinger)
			group = db.await(group, aim, linger.C)
			linger.Stop()
		}
		last = len(group)
		db.commitGroup(group)
	}
}

// maxLinger bounds how long a group waits for more writes (see
// commitLoop).
const maxLinger = time.Millisecond

// lingerAim returns the size a group of have writes lingers for, after
// one of last, or 0 if it does not linger: one more than last, so that
// while writes keep coming groups grow until maxLinger bounds them.
func lingerAim(last, have int) int {
	if last < 2 || have > last || have >= maxGroup {
		return 0
	}
	return min(last+1, maxGroup)
}

// drain adds the writes waiting now to group, up to maxGroup.
func (db *DB) drain(group []*eventWrite) []*eventWrite {
	for len(group) < maxGroup {
		select {
		case w := <-db.writes:
			group = append(group, w)
		default:
			return group
		}
	}
	return group
}

// await adds writes to group as they come, until it holds n (or
// maxGroup), deadline fires or the store closes.
func (db *DB) await(group []*eventWrite, n int, deadline <-chan time.Time) []*eventWrite {
	for len(group) < min(n, maxGroup) {
		select {
		case w := <-db.writes:
			group = append(group, w)
		case <-deadline:
			return group
		case <-db.closing:
			return group
		}
	}
	return group
}

// commitGroup runs one group and reports each write's outcome.
func (db *DB) commitGroup(group []*eventWrite) {
	live := group[:0:0]
	for _, w := range group {
		if err := w.ctx.Err(); err != nil {
			w.finish(nil, err) // its caller gave up before the group began
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	slot := db.versionSlot()
	err := db.pipe(ctx, func(tx *pipeTx) error { return runGroup(ctx, tx, live, slot) })
	cancel()
	switch {
	case err == nil:
		for _, w := range live {
			w.finish(w.change, w.err)
		}
	case len(live) == 1:
		live[0].finish(nil, writeError(err))
	default:
		for _, w := range live {
			db.commitGroup([]*eventWrite{w})
		}
	}
}

// writeError maps a failed write's database error to the store's errors.
func writeError(err error) error {
	switch {
	case isForeignKey(err):
		return fmt.Errorf("calendar: %w", store.ErrNotFound) // deleted meanwhile
	case isUnique(err):
		return fmt.Errorf("uid: %w", store.ErrConflict)
	}
	return err
}

// record is the change record of w, which took effect, without its id.
func (w *eventWrite) record() *store.Change {
	return &store.Change{
		AccountID: w.accountID, CalendarID: w.calendarID, EventID: w.event.ID, EventUID: w.event.UID,
		Type: w.kind, Event: w.event, OccurredAt: w.at, Trace: store.TraceFrom(w.ctx),
	}
}

// created sets the outcome of a create from its statement's answer: the
// new row's seq (nil when its (UID, RECURRENCE-ID) was taken) and whether
// its calendar is the account's.
func (w *eventWrite) created(seq *int64, owned bool) {
	switch e := w.event; {
	case !owned:
		w.err = fmt.Errorf("calendar %s: %w", e.CalendarID, store.ErrNotFound)
	case seq == nil:
		w.err = fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
	default:
		e.Seq = *seq
	}
}

func (w *eventWrite) finish(ch *store.Change, err error) {
	w.change, w.err = ch, err
	if err != nil {
		w.change = nil
	}
	close(w.done)
}

// runGroup writes the group's events, version slots (slot) and changes
// inside tx, in two round trips, or one when the group only creates events
// (see runCreates). It may run more than once (db.pipe retries deadlocks),
// so it sets every write's outcome afresh.
func runGroup(ctx context.Context, tx *pipeTx, group []*eventWrite, slot int16) error {
	if onlyCreates(group) {
		return runCreates(ctx, tx, group, slot)
	}
	batch := &pgx.Batch{}
	for _, w := range group {
		w.change, w.err = nil, nil
		if err := queueEventWrite(batch, w); err != nil {
			w.err = err
		}
	}
	if err := tx.send(ctx, batch); err != nil {
		return err
	}

	var done []*eventWrite
	calendars, accounts := map[string]*bump{}, map[string]*bump{}
	for _, w := range group {
		if w.err != nil {
			continue
		}
		done = append(done, w)
		calendars[w.calendarID] = calendars[w.calendarID].add(w.at)
		accounts[w.accountID] = accounts[w.accountID].add(w.at)
	}
	batch = &pgx.Batch{}
	if len(done) == 0 {
		return tx.commit(ctx, batch)
	}
	queueBumps(batch, "calendars", "calendar_versions", "calendar_id", calendars, slot)
	queueBumps(batch, "accounts", "account_versions", "account_id", accounts, slot)
	for _, w := range done {
		snap, err := store.MarshalSnapshot(w.event)
		if err != nil {
			return err
		}
		ch := w.record()
		batch.Queue(insertChangeSQL, ch.AccountID, ch.CalendarID, ch.EventID, ch.EventUID, ch.Type, string(snap), ch.OccurredAt,
			ch.Trace).
			QueryRow(func(row pgx.Row) error {
				w.change = ch
				return row.Scan(&ch.ID, &ch.TxID)
			})
		tx.notifyChange(Change{AccountID: w.accountID, CalendarID: w.calendarID})
	}
	return tx.commit(ctx, batch)
}

// bump is what a group does to one version slot: n writes, the latest at
// at. A version counts the writes, as if each had committed alone.
type bump struct {
	n  int64
	at time.Time
}

func (b *bump) add(at time.Time) *bump {
	if b == nil {
		b = &bump{}
	}
	b.n++
	if at.After(b.at) {
		b.at = at
	}
	return b
}

// queueBumps takes KEY SHARE locks on the rows of owners (calendars or
// accounts) with the given ids and adds each bump to the owner's version
// slot in slots (whose owner column is column), in id order.
func queueBumps(batch *pgx.Batch, owners, slots, column string, bumps map[string]*bump, slot int16) {
	ids := make([]string, 0, len(bumps))
	for id := range bumps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ns, at := make([]int64, len(ids)), make([]time.Time, len(ids))
	for i, id := range ids {
		ns[i], at[i] = bumps[id].n, bumps[id].at
	}
	batch.Queue(`SELECT 1 FROM `+owners+` WHERE id = ANY($1) FOR KEY SHARE`, ids)
	batch.Queue(`INSERT INTO `+slots+` (`+column+`, slot, n, updated_at)
		SELECT u.id, $4, u.n, u.at FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(id, n, at) ORDER BY u.id
		ON CONFLICT (`+column+`, slot) DO UPDATE SET n = `+slots+`.n + excluded.n,
			updated_at = greatest(`+slots+`.updated_at, excluded.updated_at)`, ids, ns, at, slot)
}

// randomSlot picks the version slot a group adds to.
func randomSlot() int16 { return int16(rand.IntN(versionSlots)) }

// Statements of the first step of a group, one per write. Each reports
// its outcome as a row rather than as an error, which would abort the
// whole group.
const (
	// createEventSQL inserts an event if its calendar is the account's and
	// its (UID, RECURRENCE-ID) is free; it returns the new row's seq (NULL
	// when nothing was inserted) and whether the calendar is the
	// account's.
	createEventSQL = `WITH cal AS (SELECT 1 FROM calendars WHERE id = $2 AND account_id = $3),
		ins AS (INSERT INTO events
			(id, calendar_id, account_id, uid, recurrence_id, summary, description, location, start_at, end_at,
			 all_day, time_zone, status, rrule, exdates, sequence, metadata, extra, created_at, updated_at)
			SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::timestamptz,
				$10::timestamptz, $11::boolean, $12::text, $13::text, $14::text, $15::timestamptz[], $16::integer,
				$17::jsonb, $18::jsonb, $19::timestamptz, $20::timestamptz
			FROM cal
			ON CONFLICT DO NOTHING RETURNING seq)
		SELECT (SELECT seq FROM ins), EXISTS (SELECT 1 FROM cal)`

	// updateEventSQL stores an event's fields unless another event of the
	// calendar has its new (UID, RECURRENCE-ID); it returns whether it
	// stored them and whether another event has them.
	updateEventSQL = `WITH dup AS (SELECT 1 FROM events
			WHERE calendar_id = $18 AND uid = $1 AND recurrence_id = $2 AND id <> $17),
		upd AS (UPDATE events SET
			uid = $1, recurrence_id = $2, summary = $3, description = $4, location = $5, start_at = $6, end_at = $7,
			all_day = $8, time_zone = $9, status = $10, rrule = $11, exdates = $12, sequence = $13, metadata = $14,
			extra = $15, updated_at = $16
			WHERE id = $17 AND calendar_id = $18 AND account_id = $19 AND NOT EXISTS (SELECT 1 FROM dup)
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM upd), EXISTS (SELECT 1 FROM dup)`
)

// queueEventWrite adds w's statement to batch, with a callback that sets
// w's outcome.
func queueEventWrite(batch *pgx.Batch, w *eventWrite) error {
	switch w.kind {
	case store.ChangeDeleted:
		batch.Queue(`DELETE FROM events WHERE id = $1 AND calendar_id = $2 AND account_id = $3 RETURNING `+eventColumns,
			w.eventID, w.calendarID, w.accountID).QueryRow(func(row pgx.Row) error {
			e, err := scanEvent(row)
			if errors.Is(err, store.ErrNotFound) {
				w.event, w.err = nil, fmt.Errorf("event %s: %w", w.eventID, store.ErrNotFound)
				return nil
			}
			w.event = e
			return err
		})
		return nil
	case store.ChangeCreated, store.ChangeUpdated:
	default:
		return fmt.Errorf("event write of kind %q", w.kind)
	}
	e := w.event
	a, err := encodeEvent(e)
	if err != nil {
		return fmt.Errorf("event %s: %w", e.ID, err)
	}
	if w.kind == store.ChangeCreated {
		batch.Queue(createEventSQL,
			e.ID, e.CalendarID, e.AccountID, e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location,
			e.Start, e.End, e.AllDay, e.TimeZone, e.Status, e.RRule, a.exdates, e.Sequence,
			a.metadata, a.extra, e.CreatedAt, e.UpdatedAt).QueryRow(func(row pgx.Row) error {
			var seq *int64
			var owned bool
			if err := row.Scan(&seq, &owned); err != nil {
				return err
			}
			w.created(seq, owned)
			return nil
		})
		return nil
	}
	batch.Queue(updateEventSQL,
		e.UID, e.RecurrenceID, e.Summary, e.Description, e.Location, e.Start, e.End,
		e.AllDay, e.TimeZone, e.Status, e.RRule, a.exdates, e.Sequence, a.metadata, a.extra, e.UpdatedAt,
		e.ID, e.CalendarID, e.AccountID).QueryRow(func(row pgx.Row) error {
		var updated, dup bool
		if err := row.Scan(&updated, &dup); err != nil {
			return err
		}
		switch {
		case dup:
			w.err = fmt.Errorf("uid %q: %w", e.UID, store.ErrConflict)
		case !updated:
			w.err = fmt.Errorf("event %s: %w", e.ID, store.ErrNotFound)
		}
		return nil
	})
	return nil
}
