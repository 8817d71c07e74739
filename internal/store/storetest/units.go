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

var unitTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Units", testUnits},
	{"UnitIsolation", testUnitIsolation},
	{"CalendarUnitMembership", testCalendarUnitMembership},
	{"BlockingEvents", testBlockingEvents},
	{"DetectConflictsOnce", testDetectConflictsOnce},
	{"DetectConflictsCursor", testDetectConflictsCursor},
	{"DetectConflictsResume", testDetectConflictsResume},
	{"DeleteUnitResolvesConflicts", testDeleteUnitResolvesConflicts},
}

func newUnit(t *testing.T, s store.Store, accountID, name string) *store.Unit {
	t.Helper()
	u := &store.Unit{
		ID: id.New("unit"), AccountID: accountID, Name: name, TimeZone: "Europe/Berlin", SameDayTurnover: true,
		ExportSummary: "Not available", CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateUnit(context.Background(), u); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	return u
}

// logTypes returns the types of the change log entries of the given
// types, in log order, read through a fan-out cursor of the test's own.
func logTypes(t *testing.T, s store.Store, cursor string, types ...string) []*store.Change {
	t.Helper()
	var out []*store.Change
	for {
		res, err := s.FanOut(context.Background(), cursor, 500, func(_ context.Context, chs []*store.Change) ([]*store.Message, error) {
			for _, ch := range chs {
				if slices.Contains(types, ch.Type) {
					out = append(out, ch)
				}
			}
			return nil, nil
		})
		if err != nil {
			t.Fatalf("FanOut(%s): %v", cursor, err)
		}
		if res.Unsettled {
			time.Sleep(time.Millisecond)
			continue
		}
		if res.Changes == 0 {
			return out
		}
	}
}

func testUnits(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u1 := newUnit(t, s, a.ID, "Beach house")
	u2 := newUnit(t, s, a.ID, "Cabin")
	got, err := s.Unit(ctx, a.ID, u1.ID)
	if err != nil {
		t.Fatalf("Unit: %v", err)
	}
	if got.Name != "Beach house" || !got.SameDayTurnover || got.TimeZone != "Europe/Berlin" || !got.CreatedAt.Equal(base) {
		t.Errorf("Unit = %+v; want the stored unit", got)
	}
	page, err := s.ListUnits(ctx, store.ListUnitsParams{AccountID: a.ID, Page: store.Page{Limit: 1}})
	if err != nil || len(page) != 1 || page[0].ID != u1.ID {
		t.Fatalf("ListUnits page 1 = %v, %v; want [%s]", page, err, u1.ID)
	}
	page, err = s.ListUnits(ctx, store.ListUnitsParams{AccountID: a.ID, Page: store.Page{After: page[0].Seq, Limit: 10}})
	if err != nil || len(page) != 1 || page[0].ID != u2.ID {
		t.Fatalf("ListUnits page 2 = %v, %v; want [%s]", page, err, u2.ID)
	}
	u1.Name, u1.SameDayTurnover, u1.ExportSummary, u1.UpdatedAt = "Beach house 2", false, "Busy", base.Add(time.Hour)
	if err := s.UpdateUnit(ctx, u1); err != nil {
		t.Fatalf("UpdateUnit: %v", err)
	}
	got, _ = s.Unit(ctx, a.ID, u1.ID)
	if got.Name != "Beach house 2" || got.SameDayTurnover || got.ExportSummary != "Busy" {
		t.Errorf("after UpdateUnit: %+v", got)
	}
	if chs := logTypes(t, s, "test-units", store.ChangeUnitChanged); len(chs) != 1 || chs[0].EventID != u1.ID || chs[0].CalendarID != "" {
		t.Errorf("unit changes = %v; want one for %s, of no calendar", chs, u1.ID)
	}
	byID, err := s.UnitsByID(ctx, a.ID, []string{u2.ID, "unit_missing", u1.ID})
	if err != nil || len(byID) != 2 {
		t.Errorf("UnitsByID = %v, %v; want both units", byID, err)
	}
	if err := s.DeleteUnit(ctx, a.ID, u2.ID, base); err != nil {
		t.Fatalf("DeleteUnit: %v", err)
	}
	_, err = s.Unit(ctx, a.ID, u2.ID)
	wantNotFound(t, "Unit after delete", err)
	wantNotFound(t, "DeleteUnit twice", s.DeleteUnit(ctx, a.ID, u2.ID, base))
}

func testUnitIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	u := newUnit(t, s, a.ID, "A's")
	calB := newCalendar(t, s, b.ID)
	calA := newCalendar(t, s, a.ID)
	_, err := s.Unit(ctx, b.ID, u.ID)
	wantNotFound(t, "Unit of another account", err)
	wantNotFound(t, "DeleteUnit of another account", s.DeleteUnit(ctx, b.ID, u.ID, base))
	u2 := *u
	u2.AccountID, u2.Name = b.ID, "stolen"
	wantNotFound(t, "UpdateUnit of another account", s.UpdateUnit(ctx, &u2))
	_, err = s.SetCalendarUnit(ctx, b.ID, calB.ID, u.ID, base)
	wantNotFound(t, "attach to another account's unit", err)
	_, err = s.SetCalendarUnit(ctx, a.ID, calB.ID, u.ID, base)
	wantNotFound(t, "attach another account's calendar", err)
	if _, err := s.SetCalendarUnit(ctx, a.ID, calA.ID, u.ID, base); err != nil {
		t.Fatalf("SetCalendarUnit: %v", err)
	}
	if cs, err := s.UnitCalendars(ctx, b.ID, []string{u.ID}); err != nil || len(cs) != 0 {
		t.Errorf("UnitCalendars of another account = %v, %v; want none", cs, err)
	}
	if m, err := s.CalendarUnits(ctx, b.ID, []string{calA.ID}); err != nil || len(m) != 0 {
		t.Errorf("CalendarUnits of another account = %v, %v; want none", m, err)
	}
	if us, err := s.UnitsByID(ctx, b.ID, []string{u.ID}); err != nil || len(us) != 0 {
		t.Errorf("UnitsByID of another account = %v, %v; want none", us, err)
	}
	if m, err := s.CalendarMembership(ctx, b.ID, []string{calA.ID}); err != nil || len(m.Units)+len(m.Calendars) != 0 {
		t.Errorf("CalendarMembership of another account = %+v, %v; want none", m, err)
	}
}

// checkMembership checks CalendarMembership with c1 in u1, c2 in u2 and
// c3, a third calendar, in u1 (asked or not).
func checkMembership(t *testing.T, s store.Store, accountID string, u1, u2 *store.Unit, c1, c2 *store.Calendar) {
	t.Helper()
	ctx := context.Background()
	c3 := newCalendar(t, s, accountID)
	loose := newCalendar(t, s, accountID)
	if _, err := s.SetCalendarUnit(ctx, accountID, c3.ID, u1.ID, base); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := s.SetCalendarUnit(ctx, accountID, c3.ID, "", base); err != nil {
			t.Fatal(err)
		}
	}()
	unitIDs := func(us []*store.Unit) (ids []string) {
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		return ids
	}
	members := func(cs []*store.UnitCalendar) (ids []string) {
		for _, c := range cs {
			ids = append(ids, c.UnitID+"/"+c.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name      string
		asked     []string
		units     []string
		calendars []string
	}{
		{"none", nil, nil, nil},
		{"loose calendar", []string{loose.ID, "cal_unknown"}, nil, nil},
		{"one of u1", []string{c3.ID}, []string{u1.ID}, []string{u1.ID + "/" + c1.ID, u1.ID + "/" + c3.ID}},
		{"both units, u1 twice", []string{c2.ID, c3.ID, c1.ID, loose.ID}, []string{u1.ID, u2.ID},
			[]string{u1.ID + "/" + c1.ID, u1.ID + "/" + c3.ID, u2.ID + "/" + c2.ID}},
	} {
		m, err := s.CalendarMembership(ctx, accountID, tc.asked)
		if err != nil {
			t.Fatalf("CalendarMembership %s: %v", tc.name, err)
		}
		if got := unitIDs(m.Units); !slices.Equal(got, tc.units) {
			t.Errorf("CalendarMembership %s: units %v; want %v", tc.name, got, tc.units)
		}
		if got := members(m.Calendars); !slices.Equal(got, tc.calendars) {
			t.Errorf("CalendarMembership %s: calendars %v; want %v", tc.name, got, tc.calendars)
		}
		if len(m.Units) > 0 && (m.Units[0].Name != u1.Name || !m.Units[0].CreatedAt.Equal(u1.CreatedAt)) {
			t.Errorf("CalendarMembership %s: unit %+v; want the whole unit %+v", tc.name, m.Units[0], u1)
		}
		if len(m.Calendars) > 0 && (m.Calendars[0].Name != c1.Name || m.Calendars[0].Kind != c1.Kind) {
			t.Errorf("CalendarMembership %s: calendar %+v; want the whole calendar", tc.name, m.Calendars[0].Calendar)
		}
		for _, c := range tc.asked {
			want := map[string]string{c1.ID: u1.ID, c2.ID: u2.ID, c3.ID: u1.ID}[c]
			got := ""
			for _, mc := range m.Calendars {
				if mc.ID == c {
					got = mc.UnitID
				}
			}
			if got != want {
				t.Errorf("CalendarMembership %s: the unit of %s = %q; want %q", tc.name, c, got, want)
			}
		}
	}
}

func testCalendarUnitMembership(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u1, u2 := newUnit(t, s, a.ID, "one"), newUnit(t, s, a.ID, "two")
	c1, c2 := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	for _, c := range []*store.Calendar{c1, c2} {
		old, err := s.SetCalendarUnit(ctx, a.ID, c.ID, u1.ID, base)
		if err != nil || old != "" {
			t.Fatalf("attach %s = %q, %v; want no previous unit", c.ID, old, err)
		}
	}
	cals, err := s.UnitCalendars(ctx, a.ID, []string{u1.ID})
	if err != nil || len(cals) != 2 || cals[0].ID != c1.ID || cals[1].ID != c2.ID || cals[0].UnitID != u1.ID {
		t.Fatalf("UnitCalendars = %v, %v; want c1, c2 in creation order", cals, err)
	}
	if cals[0].Kind != store.KindNative || cals[0].Name != "Cal" {
		t.Errorf("UnitCalendars calendar = %+v; want the whole calendar", cals[0].Calendar)
	}
	// Moving c2 names both units in the log.
	old, err := s.SetCalendarUnit(ctx, a.ID, c2.ID, u2.ID, base)
	if err != nil || old != u1.ID {
		t.Fatalf("move = %q, %v; want previous unit %s", old, err, u1.ID)
	}
	m, err := s.CalendarUnits(ctx, a.ID, []string{c1.ID, c2.ID})
	if err != nil || m[c1.ID] != u1.ID || m[c2.ID] != u2.ID {
		t.Errorf("CalendarUnits = %v, %v", m, err)
	}
	checkMembership(t, s, a.ID, u1, u2, c1, c2)
	// Setting the same unit again writes nothing.
	if _, err := s.SetCalendarUnit(ctx, a.ID, c2.ID, u2.ID, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetCalendarUnit(ctx, a.ID, c1.ID, "", base); err != nil {
		t.Fatalf("detach: %v", err)
	}
	var units []string
	for _, ch := range logTypes(t, s, "test-membership", store.ChangeUnitChanged) {
		units = append(units, ch.EventID)
	}
	// checkMembership attached a third calendar to u1 and detached it.
	want := []string{u1.ID, u1.ID, u1.ID, u2.ID, u1.ID, u1.ID, u1.ID}
	if !slices.Equal(units, want) {
		t.Errorf("unit changes name %v; want %v", units, want)
	}
	// A deleted calendar leaves its unit; a deleted unit frees its calendars.
	if err := s.DeleteCalendar(ctx, a.ID, c2.ID, base); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.UnitCalendars(ctx, a.ID, []string{u2.ID}); len(cs) != 0 {
		t.Errorf("UnitCalendars after the calendar's deletion = %v; want none", cs)
	}
	if _, err := s.SetCalendarUnit(ctx, a.ID, c1.ID, u1.ID, base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUnit(ctx, a.ID, u1.ID, base); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.CalendarUnits(ctx, a.ID, []string{c1.ID}); len(m) != 0 {
		t.Errorf("CalendarUnits after the unit's deletion = %v; want none", m)
	}
}

func testBlockingEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c, other := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	day := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	mk := func(uid string, start time.Time, hours int, mut func(*store.Event)) *store.Event {
		e := newEvent(c, uid, start)
		e.End = start.Add(time.Duration(hours) * time.Hour)
		if mut != nil {
			mut(e)
		}
		mustCreateEvent(t, s, e)
		return e
	}
	in := mk("in", day.Add(10*time.Hour), 2, func(e *store.Event) {
		e.TimeZone, e.Description, e.Location = "Europe/Berlin", "Guest: Ana", "Flat 2"
		e.Metadata, e.Extra = map[string]string{"ref": "HM1"}, map[string]string{"X-AIRBNB-ID": "HM1"}
		e.ExDates = []time.Time{day.Add(34 * time.Hour)}
	})
	mk("before", day.Add(-5*time.Hour), 2, nil)
	spans := mk("spans", day.Add(-5*time.Hour), 10, nil)
	mk("after", day.Add(30*time.Hour), 2, nil)
	// Longer than store.LongEvent: found however long before it started.
	long := mk("long", day.Add(-60*24*time.Hour), 60*24+1, nil)
	mk("long-over", day.Add(-60*24*time.Hour), 50*24, nil)
	mk("cancelled", day.Add(10*time.Hour), 2, func(e *store.Event) { e.Status = store.StatusCancelled })
	tentative := mk("tentative", day.Add(12*time.Hour), 2, func(e *store.Event) { e.Status = store.StatusTentative })
	series := mk("series", day.Add(-30*24*time.Hour), 1, func(e *store.Event) { e.RRule = "FREQ=DAILY" })
	override := mk("series", day.Add(90*24*time.Hour), 1, func(e *store.Event) {
		e.RecurrenceID, e.Status = "20270830T000000Z", store.StatusCancelled
	})
	mustCreateEvent(t, s, newEvent(other, "elsewhere", day.Add(10*time.Hour)))
	got, err := s.BlockingEvents(ctx, store.BlockingEventsParams{
		AccountID: a.ID, CalendarIDs: []string{c.ID}, From: day, To: day.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("BlockingEvents: %v", err)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	want := []string{series.ID, spans.ID, in.ID, tentative.ID, override.ID, long.ID}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("BlockingEvents = %v; want %v (overlapping, recurring and overrides; not cancelled, outside or other calendars)", ids, want)
	}
	// What busy time needs comes back; the rest is left out.
	for _, e := range got {
		if e.ID != in.ID {
			continue
		}
		wantEv := *in
		wantEv.Description, wantEv.Location, wantEv.Metadata, wantEv.Extra = "", "", nil, nil
		if !reflect.DeepEqual(*e, wantEv) {
			t.Errorf("BlockingEvents' event = %+v; want %+v (no description, location, metadata or extra)", *e, wantEv)
		}
	}
	b := newAccount(t, s)
	if got, _ := s.BlockingEvents(ctx, store.BlockingEventsParams{
		AccountID: b.ID, CalendarIDs: []string{c.ID}, From: day, To: day.Add(24 * time.Hour),
	}); len(got) != 0 {
		t.Errorf("BlockingEvents of another account = %v; want none", got)
	}
}

// conflictOf returns a conflict of events x and y of unit u.
func conflictOf(u *store.Unit, x, y *store.Event, at time.Time) *store.Conflict {
	if x.ID > y.ID {
		x, y = y, x
	}
	side := func(e *store.Event) store.ConflictSide {
		return store.ConflictSide{CalendarID: e.CalendarID, EventID: e.ID, UID: e.UID, Kind: store.KindNative,
			Start: e.Start, End: e.End, Status: e.Status}
	}
	return &store.Conflict{
		ID: id.New("cfl"), AccountID: u.AccountID, UnitID: u.ID, A: side(x), B: side(y), State: store.ConflictOpen,
		OverlapStart: y.Start, OverlapEnd: x.End, DetectedAt: at,
	}
}

// detectOnce runs DetectConflicts steps until one reads changes, with
// detect's outcome.
func detectOnce(t *testing.T, s store.Store, up *store.ConflictUpdate) store.DetectResult {
	t.Helper()
	for {
		res, err := s.DetectConflicts(context.Background(), store.DetectParams{Limit: 1000}, func(context.Context, []*store.Change) (*store.ConflictUpdate, error) {
			return up, nil
		})
		if err != nil {
			t.Fatalf("DetectConflicts: %v", err)
		}
		if res.Changes > 0 || !res.Unsettled {
			return res
		}
		time.Sleep(time.Millisecond)
	}
}

func testDetectConflictsOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "u")
	c := newCalendar(t, s, a.ID)
	x, y := newEvent(c, "x", base), newEvent(c, "y", base.Add(time.Hour))
	mustCreateEvent(t, s, x)
	mustCreateEvent(t, s, y)
	first := conflictOf(u, x, y, base)
	if res := detectOnce(t, s, &store.ConflictUpdate{Detected: []*store.Conflict{first}}); res.Detected != 1 || res.Changes == 0 {
		t.Fatalf("first step = %+v; want one detected", res)
	}
	// The same pair again (a replay, or a second node's view) stores nothing.
	mustCreateEvent(t, s, newEvent(c, "z", base.Add(24*time.Hour)))
	if res := detectOnce(t, s, &store.ConflictUpdate{Detected: []*store.Conflict{conflictOf(u, y, x, base)}}); res.Detected != 0 {
		t.Errorf("second detection of the pair = %+v; want none stored", res)
	}
	open, err := s.OpenConflicts(ctx, store.OpenConflictsParams{EventIDs: []string{y.ID}})
	if err != nil || len(open) != 1 || open[0].ID != first.ID {
		t.Fatalf("OpenConflicts = %v, %v; want %s", open, err, first.ID)
	}
	got, err := s.Conflict(ctx, a.ID, first.ID)
	if err != nil || got.A.EventID != first.A.EventID || got.B.UID != first.B.UID || !got.OverlapStart.Equal(first.OverlapStart) {
		t.Errorf("Conflict = %+v, %v; want the stored one", got, err)
	}
	_, err = s.Conflict(ctx, newAccount(t, s).ID, first.ID)
	wantNotFound(t, "Conflict of another account", err)
	// Resolving twice reports once; the pair may then open again.
	res := *first
	res.State, res.ResolvedAt = store.ConflictResolved, base.Add(2*time.Hour)
	mustCreateEvent(t, s, newEvent(c, "w", base.Add(48*time.Hour)))
	again := conflictOf(u, x, y, base.Add(3*time.Hour))
	if r := detectOnce(t, s, &store.ConflictUpdate{Resolved: []*store.Conflict{&res, &res}, Detected: []*store.Conflict{again}}); r.Resolved != 1 || r.Detected != 1 {
		t.Errorf("resolve and reopen = %+v; want one of each", r)
	}
	list, err := s.ListConflicts(ctx, store.ListConflictsParams{AccountID: a.ID, UnitID: u.ID, State: store.ConflictResolved, Page: store.Page{Limit: 10}})
	if err != nil || len(list) != 1 || list[0].ID != first.ID || !list[0].ResolvedAt.Equal(res.ResolvedAt) {
		t.Errorf("resolved conflicts = %v, %v; want %s", list, err, first.ID)
	}
	list, _ = s.ListConflicts(ctx, store.ListConflictsParams{AccountID: a.ID, UnitID: u.ID, Page: store.Page{Limit: 10}})
	if len(list) != 2 {
		t.Errorf("all conflicts = %d; want 2", len(list))
	}
	var types []string
	for _, ch := range logTypes(t, s, "test-conflicts", store.ChangeConflictDetected, store.ChangeConflictResolved) {
		types = append(types, ch.Type+" "+ch.EventID)
	}
	want := []string{
		store.ChangeConflictDetected + " " + first.ID,
		store.ChangeConflictResolved + " " + first.ID,
		store.ChangeConflictDetected + " " + again.ID,
	}
	if !slices.Equal(types, want) {
		t.Errorf("conflict changes = %v; want %v", types, want)
	}
	// A deleted unit takes its conflicts with it.
	if err := s.DeleteUnit(ctx, a.ID, u.ID, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conflict(ctx, a.ID, again.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Conflict after its unit's deletion: %v; want ErrNotFound", err)
	}
}

func testDetectConflictsCursor(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	e := newEvent(c, "e", base)
	mustCreateEvent(t, s, e)
	seen := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		res, err := s.DetectConflicts(ctx, store.DetectParams{Limit: 1000}, func(_ context.Context, chs []*store.Change) (*store.ConflictUpdate, error) {
			for _, ch := range chs {
				if ch.EventID == e.ID {
					seen++
					if ch.Event == nil || ch.Event.UID != "e" {
						t.Errorf("change of %s carries event %+v; want its snapshot", e.ID, ch.Event)
					}
				}
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Changes == 0 && !res.Unsettled {
			break
		}
	}
	if seen != 1 {
		t.Errorf("the event's change was read %d times; want once", seen)
	}
	// A failing step moves nothing.
	e2 := newEvent(c, "e2", base)
	mustCreateEvent(t, s, e2)
	boom := errors.New("boom")
	for {
		_, err := s.DetectConflicts(ctx, store.DetectParams{Limit: 1000}, func(context.Context, []*store.Change) (*store.ConflictUpdate, error) { return nil, boom })
		if errors.Is(err, boom) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	found := false
	for !found {
		res, err := s.DetectConflicts(ctx, store.DetectParams{Limit: 1000}, func(_ context.Context, chs []*store.Change) (*store.ConflictUpdate, error) {
			found = slices.ContainsFunc(chs, func(ch *store.Change) bool { return ch.EventID == e2.ID })
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Changes == 0 && !res.Unsettled && !found {
			t.Fatal("the change of a failed step was not read again")
		}
	}
}

// detectStep runs DetectConflicts steps with p until one reads a change or
// the log is settled, and returns it with the event ids it read.
func detectStep(t *testing.T, s store.Store, p store.DetectParams, up *store.ConflictUpdate) (store.DetectResult, []string) {
	t.Helper()
	for {
		var read []string
		res, err := s.DetectConflicts(context.Background(), p, func(_ context.Context, chs []*store.Change) (*store.ConflictUpdate, error) {
			for _, ch := range chs {
				read = append(read, ch.EventID)
			}
			return up, nil
		})
		if err != nil {
			t.Fatalf("DetectConflicts(%+v): %v", p, err)
		}
		if res.Changes > 0 || !res.Unsettled {
			return res, read
		}
		time.Sleep(time.Millisecond)
	}
}

// testDetectConflictsResume: a resumed step with nothing to store reads on
// from where the last one stopped and leaves the stored cursor; Save and a
// step that stores something move it; a worker whose view of the stored
// cursor is stale is Busy.
func testDetectConflictsResume(t *testing.T, s store.Store) {
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "u")
	c := newCalendar(t, s, a.ID)
	x := newEvent(c, "x", base)
	mustCreateEvent(t, s, x)
	// Read to the end of the log, storing the cursor.
	var first store.DetectResult
	for {
		res, _ := detectStep(t, s, store.DetectParams{Limit: 1000}, nil)
		if res.Changes == 0 {
			break
		}
		first = res
	}
	if first.Resume == nil || first.Resume.Read != first.Resume.Stored {
		t.Fatalf("unresumed step left %+v; want the cursor stored where it read", first.Resume)
	}
	y := newEvent(c, "y", base.Add(time.Hour))
	mustCreateEvent(t, s, y)
	resumed, read := detectStep(t, s, store.DetectParams{Limit: 1000, Resume: first.Resume}, nil)
	if !slices.Contains(read, y.ID) || resumed.Resume.Stored != first.Resume.Stored || resumed.Resume.Read == first.Resume.Read {
		t.Fatalf("resumed step with nothing to store = %+v (read %v); want y read, the cursor left at %+v", resumed.Resume, read, first.Resume.Stored)
	}
	// A resumed step that reads nothing new stores nothing either.
	if res, read := detectStep(t, s, store.DetectParams{Limit: 1000, Resume: resumed.Resume}, nil); res.Changes != 0 || len(read) != 0 {
		t.Fatalf("resumed step at the end of the log read %v; want nothing", read)
	}
	// The stored cursor did not move: a worker without a resume reads y again.
	if _, again := detectStep(t, s, store.DetectParams{Limit: 1000, Resume: &store.DetectResume{Read: first.Resume.Stored, Stored: first.Resume.Stored}}, nil); !slices.Contains(again, y.ID) {
		t.Fatalf("a step from the stored cursor read %v; want y's change again", again)
	}
	// Save stores the resumed position even with no new change.
	saved, _ := detectStep(t, s, store.DetectParams{Limit: 1000, Resume: resumed.Resume, Save: true}, nil)
	if saved.Busy || saved.Resume.Stored != resumed.Resume.Read {
		t.Fatalf("saving step = %+v; want the cursor stored at %+v", saved, resumed.Resume.Read)
	}
	if res, read := detectStep(t, s, store.DetectParams{Limit: 1000}, nil); res.Changes != 0 {
		t.Fatalf("after the save a step from the stored cursor read %v; want nothing", read)
	}
	// A worker that still believes the cursor is where it was is Busy
	// when it has something to store, and stores nothing.
	z := newEvent(c, "z", base.Add(2*time.Hour))
	mustCreateEvent(t, s, z)
	stale := &store.DetectResume{Read: resumed.Resume.Read, Stored: first.Resume.Stored}
	res, _ := detectStep(t, s, store.DetectParams{Limit: 1000, Resume: stale}, &store.ConflictUpdate{
		Detected: []*store.Conflict{conflictOf(u, x, y, base)}})
	if !res.Busy || res.Detected != 0 {
		t.Fatalf("step of an overtaken worker = %+v; want Busy, nothing stored", res)
	}
	// The worker that is in step stores the conflict with its cursor.
	res, _ = detectStep(t, s, store.DetectParams{Limit: 1000, Resume: saved.Resume}, &store.ConflictUpdate{
		Detected: []*store.Conflict{conflictOf(u, x, y, base)}})
	if res.Busy || res.Detected != 1 || res.Resume.Stored != res.Resume.Read {
		t.Fatalf("step with a conflict = %+v; want it stored with the cursor", res)
	}
}

// testDeleteUnitResolvesConflicts: deleting a unit records one
// resolution of each of its open conflicts, carrying the conflict, and
// none of a resolved one or of another unit's.
func testDeleteUnitResolvesConflicts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u, keep := newUnit(t, s, a.ID, "u"), newUnit(t, s, a.ID, "keep")
	c := newCalendar(t, s, a.ID)
	x, y, z := newEvent(c, "x", base), newEvent(c, "y", base.Add(time.Hour)), newEvent(c, "z", base.Add(2*time.Hour))
	for _, e := range []*store.Event{x, y, z} {
		mustCreateEvent(t, s, e)
	}
	open, ended, other := conflictOf(u, x, y, base), conflictOf(u, y, z, base), conflictOf(keep, x, z, base)
	if res := detectOnce(t, s, &store.ConflictUpdate{Detected: []*store.Conflict{open, ended, other}}); res.Detected != 3 {
		t.Fatalf("detection = %+v; want three stored", res)
	}
	r := *ended
	r.State, r.ResolvedAt = store.ConflictResolved, base.Add(time.Minute)
	mustCreateEvent(t, s, newEvent(c, "w", base.Add(3*time.Hour)))
	if res := detectOnce(t, s, &store.ConflictUpdate{Resolved: []*store.Conflict{&r}}); res.Resolved != 1 {
		t.Fatalf("resolution = %+v; want one", res)
	}
	cursor := "test-delete-unit"
	logTypes(t, s, cursor) // from here on
	deleted := base.Add(time.Hour)
	if err := s.DeleteUnit(ctx, a.ID, u.ID, deleted); err != nil {
		t.Fatal(err)
	}
	var got []*store.Change
	got = append(got, logTypes(t, s, cursor, store.ChangeConflictResolved, store.ChangeConflictDetected)...)
	if len(got) != 1 || got[0].EventID != open.ID || got[0].AccountID != a.ID {
		t.Fatalf("changes of the deletion = %+v; want one resolution of %s", got, open.ID)
	}
	cfl := got[0].Conflict
	if cfl == nil || cfl.ID != open.ID || cfl.UnitID != u.ID || cfl.AccountID != a.ID || cfl.State != store.ConflictResolved ||
		!cfl.ResolvedAt.Equal(deleted) || cfl.A.EventID != open.A.EventID || cfl.B.UID != open.B.UID ||
		!cfl.OverlapStart.Equal(open.OverlapStart) {
		t.Errorf("the resolution carries %+v; want conflict %+v resolved at %v", cfl, open, deleted)
	}
	if _, err := s.Conflict(ctx, a.ID, open.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Conflict after its unit's deletion: %v; want ErrNotFound", err)
	}
	if still, err := s.OpenConflicts(ctx, store.OpenConflictsParams{UnitID: keep.ID}); err != nil || len(still) != 1 {
		t.Errorf("the other unit's open conflicts = %v, %v; want its one", still, err)
	}
	wantNotFound(t, "DeleteUnit twice", s.DeleteUnit(ctx, a.ID, u.ID, deleted))
	if again := logTypes(t, s, cursor, store.ChangeConflictResolved); len(again) != 0 {
		t.Errorf("a second deletion recorded %v; want nothing", again)
	}
}
