package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// importTests are the conformance tests of the importer's store methods.
var importTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ImportedCalendarState", testImportedCalendar},
	{"ClaimPollsLeasesAndExpires", testClaimPolls},
	{"ClaimPollsExcludesHosts", testClaimPollsExcludesHosts},
	{"ClaimPollsExcludesAccounts", testClaimPollsExcludesAccounts},
	{"RequestPollDuringLease", testRequestPoll},
	{"ApplyImportWritesEventsAndChanges", testApplyImport},
	{"ApplyImportConflict", testApplyImportConflict},
	{"ApplyImportPartialChunk", testApplyImportPartial},
	{"SyncChangesHaveNoEvent", testSyncChanges},
	{"CalendarByHookToken", testHookToken},
	{"ImportNotesRoundTrip", testImportNotes},
}

// testImportNotes checks that the skipped events and the held deletion of
// an import state are stored with it, and cleared by a state without them.
func testImportNotes(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/notes.ics", base)
	st := store.ImportState{
		LastSyncAt: base, LastSuccessAt: base, NextPollAt: base.Add(2 * time.Minute),
		Skipped: &store.SkippedEvents{Count: 3, Events: []store.SkippedEvent{
			{UID: "far", Reason: "starts in year 10000"}, {UID: "r", RecurrenceID: "20261201", Reason: "x"},
		}},
		Held: &store.HeldDeletes{
			Events: []store.EventKey{{UID: "a"}, {UID: "b", RecurrenceID: "20261201T150000Z"}},
			Since:  base, Reason: "2 of 3 events missing",
		},
	}
	for _, want := range []store.ImportState{st, {LastSyncAt: base.Add(time.Minute), NextPollAt: base.Add(time.Hour)}} {
		if _, err := s.ApplyImport(ctx, &store.ApplyImportParams{AccountID: a.ID, CalendarID: c.ID, State: want, Now: want.LastSyncAt}); err != nil {
			t.Fatalf("ApplyImport: %v", err)
		}
		got, err := s.Calendar(ctx, a.ID, c.ID)
		if err != nil {
			t.Fatalf("Calendar: %v", err)
		}
		if !reflect.DeepEqual(got.Import.Skipped, want.Skipped) {
			t.Errorf("Skipped = %+v; want %+v", got.Import.Skipped, want.Skipped)
		}
		if h := got.Import.Held; (h == nil) != (want.Held == nil) ||
			h != nil && (!h.Since.Equal(want.Held.Since) || h.Reason != want.Held.Reason || !reflect.DeepEqual(h.Events, want.Held.Events)) {
			t.Errorf("Held = %+v; want %+v", h, want.Held)
		}
	}
}

func newImported(t *testing.T, s store.Store, accountID, url string, next time.Time) *store.Calendar {
	t.Helper()
	c := &store.Calendar{
		ID: id.New("cal"), AccountID: accountID, Name: "Imported", TimeZone: "UTC", Kind: store.KindImported,
		SourceURL: url, PollInterval: 10 * time.Minute, CreatedAt: base, UpdatedAt: base,
		Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: next},
	}
	if err := s.CreateCalendar(context.Background(), c); err != nil {
		t.Fatalf("CreateCalendar(imported): %v", err)
	}
	return c
}

func claimIDs(t *testing.T, s store.Store, p store.ClaimPollsParams) []string {
	t.Helper()
	cals, err := s.ClaimPolls(context.Background(), p)
	if err != nil {
		t.Fatalf("ClaimPolls: %v", err)
	}
	var ids []string
	for _, c := range cals {
		if c.Kind != store.KindImported {
			t.Errorf("ClaimPolls returned %s of kind %q", c.ID, c.Kind)
		}
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// finish records an uneventful poll that schedules the next one at next.
func finish(t *testing.T, s store.Store, c *store.Calendar, now, next time.Time) {
	t.Helper()
	_, err := s.ApplyImport(context.Background(), &store.ApplyImportParams{
		AccountID: c.AccountID, CalendarID: c.ID, Now: now,
		State: store.ImportState{LastSyncAt: now, LastSuccessAt: now, NextPollAt: next},
	})
	if err != nil {
		t.Fatalf("ApplyImport(no events): %v", err)
	}
}

func testImportedCalendar(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	got, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatalf("Calendar: %v", err)
	}
	if got.Kind != store.KindImported || got.SourceURL != c.SourceURL || got.PollInterval != c.PollInterval ||
		got.Import.HookToken != c.Import.HookToken || !got.Import.NextPollAt.Equal(base) {
		t.Errorf("Calendar = %+v; want the imported calendar %+v", got, c)
	}
	if !got.Import.LastSyncAt.IsZero() || got.Import.LastError != "" || got.Import.EventCount != 0 {
		t.Errorf("new calendar's sync state = %+v; want zero", got.Import)
	}
	native := newCalendar(t, s, a.ID)
	if got, _ := s.Calendar(ctx, a.ID, native.ID); got.Import != (store.ImportState{}) {
		t.Errorf("native calendar's sync state = %+v; want zero", got.Import)
	}
	st := store.ImportState{
		ETag: `"v1"`, LastModified: "Sun, 22 Nov 2026 15:00:00 GMT", BodyHash: "abc", LastSyncAt: base.Add(time.Minute),
		LastSuccessAt: base, LastChangeAt: base, LastError: "HTTP 500", Failures: 2, NextPollAt: base.Add(time.Hour),
	}
	if _, err := s.ApplyImport(ctx, &store.ApplyImportParams{AccountID: a.ID, CalendarID: c.ID, State: st, Now: st.LastSyncAt}); err != nil {
		t.Fatalf("ApplyImport: %v", err)
	}
	got, err = s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatalf("Calendar: %v", err)
	}
	st.HookToken = c.Import.HookToken
	if got.Import != st {
		t.Errorf("sync state after ApplyImport = %+v; want %+v", got.Import, st)
	}
	if got.Version != c.Version {
		t.Errorf("a poll without event writes changed the version from %d to %d", c.Version, got.Version)
	}
	_, err = s.ApplyImport(ctx, &store.ApplyImportParams{AccountID: a.ID, CalendarID: native.ID, State: st, Now: base})
	wantNotFound(t, "ApplyImport(native calendar)", err)
	other := newAccount(t, s)
	_, err = s.ApplyImport(ctx, &store.ApplyImportParams{AccountID: other.ID, CalendarID: c.ID, State: st, Now: base})
	wantNotFound(t, "ApplyImport(other account)", err)
}

func testClaimPolls(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c1 := newImported(t, s, a.ID, "https://one.example.com/a.ics", base)
	c2 := newImported(t, s, a.ID, "https://two.example.com/b.ics", base.Add(-time.Minute))
	later := newImported(t, s, a.ID, "https://three.example.com/c.ics", base.Add(time.Hour))
	newCalendar(t, s, a.ID) // native calendars are never polled

	at, ok, err := s.NextPollAt(ctx)
	if err != nil || !ok || !at.Equal(base.Add(-time.Minute)) {
		t.Errorf("NextPollAt = %v, %v, %v; want %v", at, ok, err, base.Add(-time.Minute))
	}
	lease := 2 * time.Minute
	if got, want := claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: lease}), sorted(c1.ID, c2.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimPolls = %v; want the due calendars %v", got, want)
	}
	if got := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(time.Minute), Limit: 10, Lease: lease}); len(got) != 0 {
		t.Errorf("ClaimPolls during the lease = %v; want none", got)
	}
	if at, _, _ := s.NextPollAt(ctx); !at.Equal(base.Add(lease)) {
		t.Errorf("NextPollAt while leased = %v; want the lease end %v", at, base.Add(lease))
	}
	// c1's poll ends; c2's poller died, so c2 comes back after the lease.
	finish(t, s, c1, base.Add(time.Second), base.Add(30*time.Minute))
	if got, want := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(lease), Limit: 10, Lease: lease}), []string{c2.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimPolls after the lease = %v; want the abandoned %v", got, want)
	}
	if got := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(2 * time.Hour), Limit: 1, Lease: lease}); len(got) != 1 {
		t.Errorf("ClaimPolls(limit 1) = %v; want one", got)
	}
	cal, err := s.Calendar(ctx, a.ID, later.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cal.Import.NextPollAt.IsZero() {
		t.Errorf("NextPollAt of %s is zero", later.ID)
	}
}

func testClaimPollsExcludesHosts(t *testing.T, s store.Store) {
	a := newAccount(t, s)
	busy1 := newImported(t, s, a.ID, "https://Busy.example.com/1.ics", base)
	busy2 := newImported(t, s, a.ID, "https://busy.example.com:8443/2.ics", base)
	free := newImported(t, s, a.ID, "https://free.example.com/3.ics", base)
	got := claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: time.Minute, ExcludeHosts: []string{"busy.example.com"}})
	if want := []string{free.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimPolls(exclude busy.example.com) = %v; want %v", got, want)
	}
	got = claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: time.Minute})
	if want := sorted(busy1.ID, busy2.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimPolls = %v; want %v", got, want)
	}
}

func testClaimPollsExcludesAccounts(t *testing.T, s store.Store) {
	busy, other, third := newAccount(t, s), newAccount(t, s), newAccount(t, s)
	newImported(t, s, busy.ID, "https://a.example.com/1.ics", base)
	newImported(t, s, other.ID, "https://b.example.com/2.ics", base)
	free := newImported(t, s, third.ID, "https://c.example.com/3.ics", base)
	got := claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: time.Minute, ExcludeAccounts: []string{busy.ID, other.ID}})
	if want := []string{free.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimPolls(exclude two accounts) = %v; want %v", got, want)
	}
}

func testRequestPoll(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base.Add(time.Hour))
	claim := func(now time.Time) []string {
		t.Helper()
		return claimIDs(t, s, store.ClaimPollsParams{Now: now, Limit: 10, Lease: time.Minute})
	}
	if err := s.RequestPoll(ctx, a.ID, c.ID, base); err != nil {
		t.Fatalf("RequestPoll: %v", err)
	}
	if got := claim(base); len(got) != 1 {
		t.Fatalf("ClaimPolls after RequestPoll(now) = %v; want the calendar", got)
	}
	// A request while the poll runs must not let a second poller in, but
	// must bring the next poll forward once this one is recorded.
	if err := s.RequestPoll(ctx, a.ID, c.ID, base.Add(5*time.Second)); err != nil {
		t.Fatalf("RequestPoll during lease: %v", err)
	}
	if got := claim(base.Add(10 * time.Second)); len(got) != 0 {
		t.Errorf("ClaimPolls during the lease after a request = %v; want none", got)
	}
	finish(t, s, c, base.Add(10*time.Second), base.Add(time.Hour))
	if got, _ := s.Calendar(ctx, a.ID, c.ID); !got.Import.NextPollAt.Equal(base.Add(5 * time.Second)) {
		t.Errorf("next poll after a poll with a pending request = %v; want the request's %v", got.Import.NextPollAt, base.Add(5*time.Second))
	}
	if got := claim(base.Add(10 * time.Second)); len(got) != 1 {
		t.Fatalf("ClaimPolls for the pending request = %v; want the calendar", got)
	}
	// That claim served the request: the next recorded poll keeps its time.
	finish(t, s, c, base.Add(11*time.Second), base.Add(time.Hour))
	if got, _ := s.Calendar(ctx, a.ID, c.ID); !got.Import.NextPollAt.Equal(base.Add(time.Hour)) {
		t.Errorf("next poll after the request was served = %v; want %v", got.Import.NextPollAt, base.Add(time.Hour))
	}
	// A later request never postpones an earlier due time.
	if err := s.RequestPoll(ctx, a.ID, c.ID, base.Add(2*time.Hour)); err != nil {
		t.Fatalf("RequestPoll(later): %v", err)
	}
	if got, _ := s.Calendar(ctx, a.ID, c.ID); !got.Import.NextPollAt.Equal(base.Add(time.Hour)) {
		t.Errorf("next poll after a later request = %v; want %v", got.Import.NextPollAt, base.Add(time.Hour))
	}
	native := newCalendar(t, s, a.ID)
	wantNotFound(t, "RequestPoll(native)", s.RequestPoll(ctx, a.ID, native.ID, base))
	wantNotFound(t, "RequestPoll(other account)", s.RequestPoll(ctx, newAccount(t, s).ID, c.ID, base))
}

func importedEvent(c *store.Calendar, uid string, start time.Time) *store.Event {
	e := newEvent(c, uid, start)
	e.TimeZone = "UTC"
	e.Extra = map[string]string{"X-SOURCE": uid}
	return e
}

func testApplyImport(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	before, err := s.FeedVersion(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	keep, gone := importedEvent(c, "keep", base), importedEvent(c, "gone", base.Add(time.Hour))
	over := importedEvent(c, "series", base.Add(24*time.Hour))
	over.RecurrenceID = "20261123T150000Z"
	changes, err := s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: c.Version, Create: []*store.Event{keep, gone, over}, Now: base,
		State: store.ImportState{LastSyncAt: base, LastSuccessAt: base, LastChangeAt: base, NextPollAt: base.Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("ApplyImport(create): %v", err)
	}
	if len(changes) != 3 {
		t.Fatalf("ApplyImport(create) returned %d changes; want 3", len(changes))
	}
	for _, ch := range changes {
		if ch.Type != store.ChangeCreated || ch.ID == 0 || ch.CalendarID != c.ID || ch.Event == nil {
			t.Errorf("create change = %+v; want a numbered %s of %s with its event", ch, store.ChangeCreated, c.ID)
		}
	}
	after, _ := s.FeedVersion(ctx, a.ID, c.ID)
	if after.Version != before.Version+1 {
		t.Errorf("version after a batch of 3 creates = %d; want %d (one bump per poll)", after.Version, before.Version+1)
	}
	got, err := s.Event(ctx, a.ID, c.ID, over.ID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if got.RecurrenceID != over.RecurrenceID || !reflect.DeepEqual(got.Extra, over.Extra) {
		t.Errorf("stored override = %+v; want %+v", got, over)
	}
	cal, _ := s.Calendar(ctx, a.ID, c.ID)
	if cal.Import.EventCount != 3 {
		t.Errorf("EventCount = %d; want 3", cal.Import.EventCount)
	}

	moved := *keep
	moved.Start, moved.End, moved.Summary = base.Add(2*time.Hour), base.Add(3*time.Hour), "Moved"
	moved.UpdatedAt = base.Add(time.Minute)
	added := importedEvent(c, "added", base.Add(48*time.Hour))
	changes, err = s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: cal.Version, Now: base.Add(time.Minute),
		Create: []*store.Event{added}, Update: []*store.Event{&moved}, Delete: []*store.Event{gone},
		State: store.ImportState{LastSyncAt: base.Add(time.Minute), NextPollAt: base.Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("ApplyImport(mixed): %v", err)
	}
	var types []string
	for _, ch := range changes {
		types = append(types, ch.Type+" "+ch.EventUID)
	}
	want := []string{store.ChangeDeleted + " gone", store.ChangeUpdated + " keep", store.ChangeCreated + " added"}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("changes = %q; want %q", types, want)
	}
	got, err = s.Event(ctx, a.ID, c.ID, keep.ID)
	if err != nil || got.Summary != "Moved" || !got.Start.Equal(moved.Start) || !got.CreatedAt.Equal(keep.CreatedAt) {
		t.Errorf("updated event = %+v, %v; want summary Moved, start %v, creation time kept", got, err, moved.Start)
	}
	_, err = s.Event(ctx, a.ID, c.ID, gone.ID)
	wantNotFound(t, "Event(deleted by import)", err)
	listed, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 100})
	if err != nil || len(listed) != 6 {
		t.Fatalf("ListChanges = %d changes, %v; want 6", len(listed), err)
	}
	if del := listed[3]; del.Type != store.ChangeDeleted || del.Event == nil || del.Event.Summary != gone.Summary {
		t.Errorf("deletion change = %+v; want the deleted event's snapshot", del)
	}
	cal, _ = s.Calendar(ctx, a.ID, c.ID)
	if cal.Import.EventCount != 3 {
		t.Errorf("EventCount after mixed import = %d; want 3", cal.Import.EventCount)
	}
}

func testApplyImportConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	stale := c.Version
	c.Name, c.UpdatedAt = "Renamed", base.Add(time.Second)
	if err := s.UpdateCalendar(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, err := s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: stale, Create: []*store.Event{importedEvent(c, "x", base)}, Now: base,
		SyncChange: store.ChangeSyncRecovered,
		State:      store.ImportState{LastSyncAt: base, LastError: "must not be stored", NextPollAt: base.Add(time.Hour)},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ApplyImport(stale version) = %v; want ErrConflict", err)
	}
	got, _ := s.Calendar(ctx, a.ID, c.ID)
	if got.Import.LastError != "" || got.Import.EventCount != 0 {
		t.Errorf("a refused ApplyImport stored sync state %+v", got.Import)
	}
	if chs, _ := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 10}); len(chs) != 0 {
		t.Errorf("a refused ApplyImport stored %d changes", len(chs))
	}
	// A duplicate (UID, RECURRENCE-ID) rolls the whole batch back.
	dup1, dup2 := importedEvent(c, "dup", base), importedEvent(c, "dup", base)
	_, err = s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: got.Version, Create: []*store.Event{dup1, dup2}, Now: base,
		State: store.ImportState{NextPollAt: base.Add(time.Hour)},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("ApplyImport(duplicate uid) = %v; want ErrConflict", err)
	}
	if evs, _ := s.ListEvents(ctx, store.ListEventsParams{AccountID: a.ID, CalendarID: c.ID, Page: store.Page{Limit: 10}}); len(evs) != 0 {
		t.Errorf("a failed batch left %d events", len(evs))
	}
}

func testSyncChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	changes, err := s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, SyncChange: store.ChangeSyncFailed, Now: base,
		State: store.ImportState{LastSyncAt: base, LastError: "HTTP 500", Failures: 1, NextPollAt: base.Add(time.Minute)},
	})
	if err != nil {
		t.Fatalf("ApplyImport(sync failed): %v", err)
	}
	if len(changes) != 1 || changes[0].Type != store.ChangeSyncFailed || changes[0].ID == 0 {
		t.Fatalf("changes = %+v; want one %s", changes, store.ChangeSyncFailed)
	}
	listed, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 10})
	if err != nil || len(listed) != 1 {
		t.Fatalf("ListChanges = %v, %v; want the sync change", listed, err)
	}
	if ch := listed[0]; ch.Type != store.ChangeSyncFailed || ch.Event != nil || ch.EventID != "" || ch.CalendarID != c.ID {
		t.Errorf("listed sync change = %+v; want %s of %s without an event", ch, store.ChangeSyncFailed, c.ID)
	}
	found := false
	FanOut(t, s, func(read []*store.Change) []*store.Message {
		for _, ch := range read {
			if ch.ID == changes[0].ID {
				found = ch.Event == nil && ch.Type == store.ChangeSyncFailed
			}
		}
		return nil
	})
	if !found {
		t.Errorf("the fan-out did not read the sync change without an event")
	}

	// A poll that recovers and starts holding a deletion records both.
	changes, err = s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, SyncChange: store.ChangeSyncRecovered, HeldChange: true, Now: base.Add(time.Minute),
		State: store.ImportState{LastSyncAt: base.Add(time.Minute), NextPollAt: base.Add(2 * time.Minute)},
	})
	if err != nil {
		t.Fatalf("ApplyImport(recovered and held): %v", err)
	}
	var types []string
	for _, ch := range changes {
		types = append(types, ch.Type)
	}
	if want := []string{store.ChangeSyncRecovered, store.ChangeSyncHeld}; !slices.Equal(types, want) {
		t.Errorf("changes of a recovering poll that holds = %v; want %v", types, want)
	}
}

func testHookToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	got, err := s.CalendarByHookToken(ctx, c.Import.HookToken)
	if err != nil || got.ID != c.ID || got.AccountID != a.ID {
		t.Errorf("CalendarByHookToken = %v, %v; want %s", got, err, c.ID)
	}
	_, err = s.CalendarByHookToken(ctx, id.FeedToken())
	wantNotFound(t, "CalendarByHookToken(unknown)", err)
	_, err = s.CalendarByHookToken(ctx, "")
	wantNotFound(t, "CalendarByHookToken(empty)", err)
	dup := &store.Calendar{
		ID: id.New("cal"), AccountID: a.ID, Name: "Dup", TimeZone: "UTC", Kind: store.KindImported,
		SourceURL: "https://x.example.com/", CreatedAt: base, UpdatedAt: base,
		Import: store.ImportState{HookToken: c.Import.HookToken},
	}
	if err := s.CreateCalendar(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateCalendar(same hook token) = %v; want ErrConflict", err)
	}
}

// testApplyImportPartial: a chunk of a big import writes its events with
// their changes and one version bump, forgets the validators, and leaves
// the rest of the sync state and the lease alone, so a poll that stops
// after it comes back after the lease; a chunk against a stale version
// is a conflict that writes nothing.
func testApplyImportPartial(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newImported(t, s, a.ID, "https://chunks.example.com/a.ics", base)
	st := store.ImportState{ETag: `"v1"`, BodyHash: "old", LastSyncAt: base, LastSuccessAt: base, NextPollAt: base}
	if _, err := s.ApplyImport(ctx, &store.ApplyImportParams{AccountID: a.ID, CalendarID: c.ID, State: st, Now: base}); err != nil {
		t.Fatalf("ApplyImport(state): %v", err)
	}
	lease := 2 * time.Minute
	if got := claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: lease}); !slices.Contains(got, c.ID) {
		t.Fatalf("ClaimPolls = %v; want %s", got, c.ID)
	}
	changes, err := s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: c.Version, Partial: true, Now: base.Add(time.Second),
		Create: []*store.Event{importedEvent(c, "one", base), importedEvent(c, "two", base.Add(time.Hour))},
		State:  store.ImportState{LastSyncAt: base.Add(time.Second), LastError: "must not be stored", NextPollAt: base.Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("ApplyImport(partial): %v", err)
	}
	if len(changes) != 2 {
		t.Errorf("partial chunk returned %d changes; want 2", len(changes))
	}
	got, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != c.Version+1 {
		t.Errorf("version after a chunk = %d; want %d", got.Version, c.Version+1)
	}
	if got.Import.ETag != "" || got.Import.BodyHash != "" || !got.Import.LastSyncAt.Equal(base) || got.Import.LastError != "" {
		t.Errorf("sync state after a chunk = %+v; want the validators forgotten and the rest as before", got.Import)
	}
	if ids := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(time.Minute), Limit: 10, Lease: lease}); slices.Contains(ids, c.ID) {
		t.Errorf("ClaimPolls after a chunk, during the lease = %v; want %s still leased", ids, c.ID)
	}
	if ids := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(lease), Limit: 10, Lease: lease}); !slices.Contains(ids, c.ID) {
		t.Errorf("ClaimPolls after the lease = %v; want %s back (its poll stopped after a chunk)", ids, c.ID)
	}
	// A chunk that renews the lease keeps the calendar from being claimed
	// again while its poll writes.
	if _, err := s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Partial: true, Now: base.Add(lease), LeaseUntil: base.Add(time.Hour),
	}); err != nil {
		t.Fatalf("ApplyImport(partial, lease): %v", err)
	}
	if ids := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(30 * time.Minute), Limit: 10, Lease: lease}); slices.Contains(ids, c.ID) {
		t.Errorf("ClaimPolls within the renewed lease = %v; want %s left to its poller", ids, c.ID)
	}
	if ids := claimIDs(t, s, store.ClaimPollsParams{Now: base.Add(time.Hour), Limit: 10, Lease: lease}); !slices.Contains(ids, c.ID) {
		t.Errorf("ClaimPolls after the renewed lease = %v; want %s back", ids, c.ID)
	}
	_, err = s.ApplyImport(ctx, &store.ApplyImportParams{
		AccountID: a.ID, CalendarID: c.ID, Version: c.Version, Partial: true, Now: base.Add(time.Second),
		Create: []*store.Event{importedEvent(c, "three", base)},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("chunk at a stale version: %v; want ErrConflict", err)
	}
	if fc, err := s.FeedContent(ctx, a.ID, c.ID); err != nil || len(fc.Events) != 2 {
		t.Errorf("events after the refused chunk = %v, %v; want the chunk's 2", fc, err)
	}
}
