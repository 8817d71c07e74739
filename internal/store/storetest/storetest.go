// Package storetest is the conformance suite every store.Store
// implementation must pass. Adapters call Run from their own tests.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// Opener returns a fresh, empty, migrated store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"AccountIsolation", testAccountIsolation},
		{"Calendars", testCalendars},
		{"CalendarPaging", testCalendarPaging},
		{"Events", testEvents},
		{"EventConflict", testEventConflict},
		{"EventFilters", testEventFilters},
		{"DeleteCalendarRecordsDeletions", testDeleteCalendar},
		{"DeleteAccountCascades", testDeleteAccount},
		{"FeedVersions", testFeedVersions},
		{"FeedSwitch", testFeedSwitch},
		{"ConcurrentWrites", testConcurrentWrites},
		{"ConcurrentMixedWrites", testConcurrentMixedWrites},
		{"ServerSecretIsKept", testServerSecret},
	}
	for _, tt := range append(append(append(append(append(append(append(append(append(tests, feedWindowTests...), webhookTests...), importTests...), consoleTests...), unitTests...), statsTests...), hookTests...), holdTests...), batchTests...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// base is a fixed instant; stores keep microseconds, so test times are
// truncated to them.
var base = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)

func newAccount(t *testing.T, s store.Store) *store.Account {
	t.Helper()
	a := &store.Account{
		ID: id.New("acc"), Name: "Test", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func newCalendar(t *testing.T, s store.Store, accountID string) *store.Calendar {
	t.Helper()
	c := &store.Calendar{
		ID: id.New("cal"), AccountID: accountID, Name: "Cal", TimeZone: "Europe/Berlin", Kind: store.KindNative,
		CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateCalendar(context.Background(), c); err != nil {
		t.Fatalf("CreateCalendar: %v", err)
	}
	return c
}

func newEvent(c *store.Calendar, uid string, start time.Time) *store.Event {
	return &store.Event{
		ID: id.New("evt"), AccountID: c.AccountID, CalendarID: c.ID, UID: uid, Summary: "Booking " + uid,
		Start: start, End: start.Add(2 * time.Hour), TimeZone: "Europe/Berlin", Status: store.StatusConfirmed,
		CreatedAt: base, UpdatedAt: base,
	}
}

func mustCreateEvent(t *testing.T, s store.Store, e *store.Event) *store.Change {
	t.Helper()
	ch, err := s.CreateEvent(context.Background(), e)
	if err != nil {
		t.Fatalf("CreateEvent(%s): %v", e.UID, err)
	}
	return ch
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v; want ErrNotFound", what, err)
	}
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	got, err := s.Account(ctx, a.ID)
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if got.Name != a.Name || got.FeedToken != a.FeedToken || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Account = %+v; want %+v", got, a)
	}
	byKey, err := s.AccountByKeyHash(ctx, a.APIKeyHash)
	if err != nil || byKey.ID != a.ID {
		t.Errorf("AccountByKeyHash = %v, %v; want %s", byKey, err, a.ID)
	}
	_, err = s.AccountByKeyHash(ctx, id.HashKey("nope"))
	wantNotFound(t, "AccountByKeyHash(unknown)", err)
	_, err = s.Account(ctx, "acc_missing")
	wantNotFound(t, "Account(missing)", err)

	dup := *a
	dup.ID = id.New("acc")
	if err := s.CreateAccount(ctx, &dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateAccount(same key hash) = %v; want ErrConflict", err)
	}

	if err := s.SetFeedToken(ctx, a.ID, "new-token", base.Add(time.Minute)); err != nil {
		t.Fatalf("SetFeedToken: %v", err)
	}
	if got, _ := s.Account(ctx, a.ID); got.FeedToken != "new-token" {
		t.Errorf("FeedToken after SetFeedToken = %q; want new-token", got.FeedToken)
	}
	wantNotFound(t, "SetFeedToken(missing)", s.SetFeedToken(ctx, "acc_missing", "x", base))
}

// testAccountIsolation checks that no method lets one account reach
// another's objects.
func testAccountIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	ca := newCalendar(t, s, a.ID)
	e := newEvent(ca, "u1", base)
	mustCreateEvent(t, s, e)

	_, err := s.Calendar(ctx, b.ID, ca.ID)
	wantNotFound(t, "Calendar(other account)", err)
	_, err = s.Event(ctx, b.ID, ca.ID, e.ID)
	wantNotFound(t, "Event(other account)", err)
	_, err = s.ListEvents(ctx, store.ListEventsParams{AccountID: b.ID, CalendarID: ca.ID, Page: store.Page{Limit: 10}})
	wantNotFound(t, "ListEvents(other account)", err)
	foreign := *ca
	foreign.AccountID, foreign.Name = b.ID, "stolen"
	wantNotFound(t, "UpdateCalendar(other account)", s.UpdateCalendar(ctx, &foreign))
	fe := *e
	fe.AccountID = b.ID
	_, err = s.UpdateEvent(ctx, &fe)
	wantNotFound(t, "UpdateEvent(other account)", err)
	ne := newEvent(ca, "u2", base)
	ne.AccountID = b.ID
	_, err = s.CreateEvent(ctx, ne)
	wantNotFound(t, "CreateEvent(other account's calendar)", err)
	_, err = s.DeleteEvent(ctx, b.ID, ca.ID, e.ID, base)
	wantNotFound(t, "DeleteEvent(other account)", err)
	wantNotFound(t, "DeleteCalendar(other account)", s.DeleteCalendar(ctx, b.ID, ca.ID, base))
	_, err = s.FeedVersion(ctx, b.ID, ca.ID)
	wantNotFound(t, "FeedVersion(other account)", err)
	_, err = s.FeedContent(ctx, b.ID, ca.ID)
	wantNotFound(t, "FeedContent(other account)", err)
	changes, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: b.ID, CalendarID: ca.ID, Limit: 10})
	if err != nil || len(changes) != 0 {
		t.Errorf("ListChanges(other account) = %d changes, %v; want none", len(changes), err)
	}
	if got, _ := s.Event(ctx, a.ID, ca.ID, e.ID); got == nil || got.Summary != e.Summary {
		t.Errorf("event changed by another account's calls: %+v", got)
	}
}

func testCalendars(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	if c.Seq == 0 || c.Version != 1 {
		t.Errorf("created calendar Seq = %d, Version = %d; want Seq > 0, Version 1", c.Seq, c.Version)
	}
	c.Name, c.TimeZone, c.UpdatedAt = "Renamed", "America/New_York", base.Add(time.Hour)
	if err := s.UpdateCalendar(ctx, c); err != nil {
		t.Fatalf("UpdateCalendar: %v", err)
	}
	got, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatalf("Calendar: %v", err)
	}
	if got.Name != "Renamed" || got.TimeZone != "America/New_York" || got.Version != 2 || got.Version != c.Version {
		t.Errorf("after update: name %q zone %q version %d (returned %d); want Renamed, America/New_York, 2",
			got.Name, got.TimeZone, got.Version, c.Version)
	}
	if err := s.DeleteCalendar(ctx, a.ID, c.ID, base); err != nil {
		t.Fatalf("DeleteCalendar: %v", err)
	}
	_, err = s.Calendar(ctx, a.ID, c.ID)
	wantNotFound(t, "Calendar after delete", err)
	wantNotFound(t, "DeleteCalendar twice", s.DeleteCalendar(ctx, a.ID, c.ID, base))
}

func testCalendarPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	newCalendar(t, s, newAccount(t, s).ID) // another account's calendar in between
	var want []string
	for range 7 {
		want = append(want, newCalendar(t, s, a.ID).ID)
	}
	var got []string
	p := store.Page{Limit: 3}
	for {
		cals, err := s.ListCalendars(ctx, store.ListCalendarsParams{AccountID: a.ID, Page: p})
		if err != nil {
			t.Fatalf("ListCalendars: %v", err)
		}
		for _, c := range cals {
			got = append(got, c.ID)
		}
		if len(cals) < p.Limit {
			break
		}
		p.After = cals[len(cals)-1].Seq
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged calendars = %v; want %v", got, want)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	e := newEvent(c, "booking-1@example.com", base)
	e.Description, e.Location = "Line 1\nLine 2; with, punctuation", "Strandweg 1"
	e.RRule = "FREQ=WEEKLY;COUNT=4"
	e.ExDates = []time.Time{base.AddDate(0, 0, 7)}
	e.Metadata = map[string]string{"booking": "42"}
	e.Extra = map[string]string{"X-AIRBNB-ID": "HM123"}
	ch := mustCreateEvent(t, s, e)
	if ch.ID == 0 || ch.Type != store.ChangeCreated || ch.EventID != e.ID || ch.EventUID != e.UID {
		t.Errorf("create change = %+v; want created change of %s", ch, e.ID)
	}
	got, err := s.Event(ctx, a.ID, c.ID, e.ID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("Event = %+v;\nwant %+v", got, e)
	}

	e.Summary, e.Sequence, e.UpdatedAt = "Moved", 1, base.Add(time.Minute)
	e.Start, e.End = e.Start.Add(24*time.Hour), e.End.Add(24*time.Hour)
	ch2, err := s.UpdateEvent(ctx, e)
	if err != nil {
		t.Fatalf("UpdateEvent: %v", err)
	}
	if ch2.ID <= ch.ID || ch2.Type != store.ChangeUpdated {
		t.Errorf("update change = %+v; want updated change after %d", ch2, ch.ID)
	}
	if got, _ := s.Event(ctx, a.ID, c.ID, e.ID); got.Summary != "Moved" || got.Sequence != 1 || !got.Start.Equal(e.Start) {
		t.Errorf("after update: %+v", got)
	}

	ch3, err := s.DeleteEvent(ctx, a.ID, c.ID, e.ID, base.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("DeleteEvent: %v", err)
	}
	if ch3.Type != store.ChangeDeleted || ch3.Event == nil || ch3.Event.Summary != "Moved" {
		t.Errorf("delete change = %+v; want deleted change with the last state", ch3)
	}
	_, err = s.Event(ctx, a.ID, c.ID, e.ID)
	wantNotFound(t, "Event after delete", err)
	_, err = s.DeleteEvent(ctx, a.ID, c.ID, e.ID, base)
	wantNotFound(t, "DeleteEvent twice", err)

	changes, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 10})
	if err != nil {
		t.Fatalf("ListChanges: %v", err)
	}
	var types []string
	for _, ch := range changes {
		types = append(types, ch.Type)
	}
	wantTypes := []string{store.ChangeCreated, store.ChangeUpdated, store.ChangeDeleted}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("change types = %v; want %v", types, wantTypes)
	}
	if changes[0].Event.Summary != "Booking booking-1@example.com" || !changes[1].Event.Start.Equal(e.Start) {
		t.Errorf("change snapshots = %+v, %+v", changes[0].Event, changes[1].Event)
	}
	for i, ch := range []*store.Change{ch, ch2, ch3} {
		if ch.Pos() != changes[i].Pos() {
			t.Errorf("write %d made change at %+v; ListChanges has it at %+v", i, ch.Pos(), changes[i].Pos())
		}
	}
	after, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, After: changes[0].Pos(), Limit: 1})
	if err != nil || len(after) != 1 || after[0].ID != changes[1].ID {
		t.Errorf("ListChanges after first = %v, %v; want the second change", after, err)
	}

	// From ChangeCursor on, ListChanges has the changes written since,
	// after none or some of those committed before (PostgreSQL's cursor
	// is before every transaction still running, on the whole server).
	cursor, err := s.ChangeCursor(ctx, a.ID)
	if err != nil {
		t.Fatalf("ChangeCursor: %v", err)
	}
	ch4, err := s.CreateEvent(ctx, newEvent(c, "later@example.com", base))
	if err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	since, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, After: cursor, Limit: 10})
	if err != nil || len(since) == 0 || since[len(since)-1].ID != ch4.ID {
		t.Fatalf("ListChanges from ChangeCursor after a write = %v, %v; want its change %d last", since, err, ch4.ID)
	}
	for _, ch := range since[:len(since)-1] {
		if !slices.ContainsFunc(changes, func(old *store.Change) bool { return old.ID == ch.ID }) {
			t.Errorf("ListChanges from ChangeCursor has change %d, neither the new one nor one before the cursor", ch.ID)
		}
	}
}

func testEventConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c1, c2 := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	mustCreateEvent(t, s, newEvent(c1, "same", base))
	before, _ := s.Calendar(ctx, a.ID, c1.ID)
	if _, err := s.CreateEvent(ctx, newEvent(c1, "same", base)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateEvent(duplicate uid) = %v; want ErrConflict", err)
	}
	after, _ := s.Calendar(ctx, a.ID, c1.ID)
	if after.Version != before.Version {
		t.Errorf("failed create bumped the version from %d to %d; the transaction must roll back", before.Version, after.Version)
	}
	changes, _ := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c1.ID, Limit: 10})
	if len(changes) != 1 {
		t.Errorf("failed create left %d changes; want 1", len(changes))
	}
	// The same UID in another calendar is fine, and so is an override.
	mustCreateEvent(t, s, newEvent(c2, "same", base))
	o := newEvent(c1, "same", base)
	o.RecurrenceID = "20261129T150000Z"
	mustCreateEvent(t, s, o)
	// Renaming an event onto an existing UID conflicts.
	other := newEvent(c1, "other", base)
	mustCreateEvent(t, s, other)
	other.UID = "same"
	if _, err := s.UpdateEvent(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateEvent(onto existing uid) = %v; want ErrConflict", err)
	}
}

func testEventFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	early := newEvent(c, "early", base)
	late := newEvent(c, "late", base.AddDate(0, 1, 0))
	rec := newEvent(c, "recurring", base.AddDate(0, -6, 0))
	rec.RRule = "FREQ=DAILY"
	for _, e := range []*store.Event{early, late, rec} {
		mustCreateEvent(t, s, e)
	}
	events, err := s.ListEvents(ctx, store.ListEventsParams{
		AccountID: a.ID, CalendarID: c.ID, From: base.AddDate(0, 0, 7), To: base.AddDate(0, 2, 0), Page: store.Page{Limit: 10},
	})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	var uids []string
	for _, e := range events {
		uids = append(uids, e.UID)
	}
	if want := []string{"late", "recurring"}; !reflect.DeepEqual(uids, want) {
		t.Errorf("ListEvents(from, to) = %v; want %v", uids, want)
	}
}

func testDeleteCalendar(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	for i := range 3 {
		mustCreateEvent(t, s, newEvent(c, fmt.Sprintf("e%d", i), base))
	}
	if err := s.DeleteCalendar(ctx, a.ID, c.ID, base.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteCalendar: %v", err)
	}
	changes, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 10})
	if err != nil {
		t.Fatalf("ListChanges: %v", err)
	}
	deleted := 0
	for _, ch := range changes {
		if ch.Type == store.ChangeDeleted {
			deleted++
		}
	}
	if deleted != 3 {
		t.Errorf("deletion changes after DeleteCalendar = %d; want 3", deleted)
	}
}

func testDeleteAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	e := newEvent(c, "x", base)
	mustCreateEvent(t, s, e)
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err := s.Account(ctx, a.ID)
	wantNotFound(t, "Account after delete", err)
	_, err = s.Calendar(ctx, a.ID, c.ID)
	wantNotFound(t, "Calendar after account delete", err)
	_, err = s.Event(ctx, a.ID, c.ID, e.ID)
	wantNotFound(t, "Event after account delete", err)
	wantNotFound(t, "DeleteAccount twice", s.DeleteAccount(ctx, a.ID))
}

func testFeedVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c1, c2 := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	version := func(calID string) int64 {
		t.Helper()
		st, err := s.FeedVersion(ctx, a.ID, calID)
		if err != nil {
			t.Fatalf("FeedVersion(%q): %v", calID, err)
		}
		if st.FeedToken != a.FeedToken {
			t.Errorf("FeedVersion token = %q; want %q", st.FeedToken, a.FeedToken)
		}
		return st.Version
	}
	all0, c10, c20 := version(""), version(c1.ID), version(c2.ID)
	e := newEvent(c1, "v", base)
	mustCreateEvent(t, s, e)
	if version("") <= all0 || version(c1.ID) <= c10 {
		t.Errorf("an event write must bump the calendar's and the account's feed version")
	}
	if version(c2.ID) != c20 {
		t.Errorf("an event write to c1 changed c2's version")
	}
	cancelled := newEvent(c1, "c", base)
	cancelled.Status = store.StatusCancelled
	mustCreateEvent(t, s, cancelled)
	mustCreateEvent(t, s, newEvent(c2, "w", base))

	fc, err := s.FeedContent(ctx, a.ID, c1.ID)
	if err != nil {
		t.Fatalf("FeedContent: %v", err)
	}
	if fc.Version != version(c1.ID) || len(fc.Calendars) != 1 || len(fc.Events) != 2 {
		t.Errorf("FeedContent(c1): version %d, %d calendars, %d events; want %d, 1, 2",
			fc.Version, len(fc.Calendars), len(fc.Events), version(c1.ID))
	}
	all, err := s.FeedContent(ctx, a.ID, "")
	if err != nil {
		t.Fatalf("FeedContent(all): %v", err)
	}
	if all.Version != version("") || len(all.Calendars) != 2 || len(all.Events) != 3 {
		t.Errorf("FeedContent(all): version %d, %d calendars, %d events; want %d, 2, 3",
			all.Version, len(all.Calendars), len(all.Events), version(""))
	}
	_, err = s.FeedContent(ctx, a.ID, "cal_missing")
	wantNotFound(t, "FeedContent(missing calendar)", err)
	_, err = s.FeedVersion(ctx, "acc_missing", "")
	wantNotFound(t, "FeedVersion(missing account)", err)
}

// testConcurrentWrites checks that writers in parallel neither fail with
// busy errors nor lose version increments, and that a failing write among
// them (a duplicate UID) fails alone.
func testConcurrentWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateEvent(ctx, newEvent(c, fmt.Sprintf("p%d", i%(n/2)), base))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	conflicts := 0
	for err := range errs {
		switch {
		case errors.Is(err, store.ErrConflict):
			conflicts++
		case err != nil:
			t.Errorf("concurrent CreateEvent: %v", err)
		}
	}
	if conflicts != n/2 {
		t.Errorf("%d writes conflicted; want %d (each UID written twice)", conflicts, n/2)
	}
	got, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatalf("Calendar: %v", err)
	}
	if got.Version != 1+n/2 {
		t.Errorf("calendar version after %d successful writes = %d; want %d", n/2, got.Version, 1+n/2)
	}
	events, _ := s.ListEvents(ctx, store.ListEventsParams{AccountID: a.ID, CalendarID: c.ID, Page: store.Page{Limit: 100}})
	changes, _ := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 100})
	if len(events) != n/2 || len(changes) != n/2 {
		t.Errorf("%d events and %d changes stored; want %d of each", len(events), len(changes), n/2)
	}
}

// testConcurrentMixedWrites runs writes at once that succeed and fail in
// every way, over two calendars of two accounts: each gets its own
// outcome (a store that commits writes in groups must not let one write's
// failure touch another), and versions and changes count exactly the
// writes that took effect.
func testConcurrentMixedWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	ca, cb := newCalendar(t, s, a.ID), newCalendar(t, s, b.ID)
	existing := []*store.Event{newEvent(ca, "keep-0", base), newEvent(ca, "keep-1", base), newEvent(cb, "keep-b", base)}
	for _, e := range existing {
		mustCreateEvent(t, s, e)
	}
	startA, _ := s.Calendar(ctx, a.ID, ca.ID)
	startB, _ := s.Calendar(ctx, b.ID, cb.ID)
	accA, _ := s.Account(ctx, a.ID)

	type write struct {
		name string
		do   func() error
		want error // nil, store.ErrConflict or store.ErrNotFound
		cal  *store.Calendar
	}
	var writes []write
	for i := range 10 {
		writes = append(writes,
			write{fmt.Sprintf("create new %d", i), func() error {
				_, err := s.CreateEvent(ctx, newEvent(ca, fmt.Sprintf("new-%d", i), base))
				return err
			}, nil, ca},
			write{fmt.Sprintf("create duplicate %d", i), func() error {
				_, err := s.CreateEvent(ctx, newEvent(ca, "keep-0", base))
				return err
			}, store.ErrConflict, ca},
			write{fmt.Sprintf("delete unknown %d", i), func() error {
				_, err := s.DeleteEvent(ctx, a.ID, ca.ID, id.New("evt"), base)
				return err
			}, store.ErrNotFound, ca},
			write{fmt.Sprintf("create in another account's calendar %d", i), func() error {
				e := newEvent(cb, fmt.Sprintf("intruder-%d", i), base)
				e.AccountID = a.ID
				_, err := s.CreateEvent(ctx, e)
				return err
			}, store.ErrNotFound, cb},
			write{fmt.Sprintf("create in the other account %d", i), func() error {
				_, err := s.CreateEvent(ctx, newEvent(cb, fmt.Sprintf("b-%d", i), base))
				return err
			}, nil, cb},
		)
	}
	moved := *existing[1]
	moved.UID, moved.Sequence, moved.UpdatedAt = "keep-0", 1, base.Add(time.Minute) // taken by existing[0]
	writes = append(writes, write{"update to a taken UID", func() error {
		_, err := s.UpdateEvent(ctx, &moved)
		return err
	}, store.ErrConflict, ca})
	renamed := *existing[0]
	renamed.Summary, renamed.Sequence, renamed.UpdatedAt = "renamed", 1, base.Add(time.Minute)
	writes = append(writes, write{"update", func() error {
		_, err := s.UpdateEvent(ctx, &renamed)
		return err
	}, nil, ca})

	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w.do() })
	}
	wg.Wait()
	tookEffect := map[string]int{}
	for i, w := range writes {
		switch {
		case w.want == nil && errs[i] != nil:
			t.Errorf("%s: %v; want success", w.name, errs[i])
		case w.want != nil && !errors.Is(errs[i], w.want):
			t.Errorf("%s: %v; want %v", w.name, errs[i], w.want)
		case w.want == nil:
			tookEffect[w.cal.ID]++
		}
	}
	for _, c := range []struct {
		acct  string
		cal   *store.Calendar
		start int64
	}{{a.ID, ca, startA.Version}, {b.ID, cb, startB.Version}} {
		got, err := s.Calendar(ctx, c.acct, c.cal.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.start + int64(tookEffect[c.cal.ID]); got.Version != want {
			t.Errorf("calendar %s version = %d; want %d (%d writes took effect)", c.cal.Name, got.Version, want, tookEffect[c.cal.ID])
		}
		changes, _ := s.ListChanges(ctx, store.ListChangesParams{AccountID: c.acct, CalendarID: c.cal.ID, Limit: 1000})
		if want := len(existingIn(existing, c.cal)) + tookEffect[c.cal.ID]; len(changes) != want {
			t.Errorf("calendar %s has %d changes; want %d", c.cal.Name, len(changes), want)
		}
	}
	if got, _ := s.Account(ctx, a.ID); got.FeedVersion != accA.FeedVersion+int64(tookEffect[ca.ID]) {
		t.Errorf("account feed version = %d; want %d", got.FeedVersion, accA.FeedVersion+int64(tookEffect[ca.ID]))
	}
	if e, err := s.Event(ctx, a.ID, ca.ID, existing[0].ID); err != nil || e.Summary != "renamed" {
		t.Errorf("updated event = %+v, %v", e, err)
	}
	if e, err := s.Event(ctx, a.ID, ca.ID, existing[1].ID); err != nil || e.UID != "keep-1" {
		t.Errorf("event whose update conflicted = %+v, %v; want it unchanged", e, err)
	}
}

func existingIn(events []*store.Event, c *store.Calendar) []*store.Event {
	var out []*store.Event
	for _, e := range events {
		if e.CalendarID == c.ID {
			out = append(out, e)
		}
	}
	return out
}

// testServerSecret: the first value stored under a name is the one every
// later caller gets, whatever value it offers, even when many ask at once.
func testServerSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	name := "test-" + id.New("sec")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			v, err := s.ServerSecret(ctx, name, []byte{byte(i), 1, 2, 3})
			if err != nil {
				t.Errorf("ServerSecret: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i, v := range got {
		if !bytes.Equal(v, got[0]) || len(v) != 4 {
			t.Errorf("caller %d got %v; want what caller 0 got, %v", i, v, got[0])
		}
	}
	if v, err := s.ServerSecret(ctx, name, []byte("later")); err != nil || !bytes.Equal(v, got[0]) {
		t.Errorf("ServerSecret later = %v, %v; want the first value %v", v, err, got[0])
	}
	if v, err := s.ServerSecret(ctx, name+"-other", []byte("other")); err != nil || string(v) != "other" {
		t.Errorf("another name = %q, %v; want its own value", v, err)
	}
}
