package availability_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// now is the detector's clock in these tests: every event is after it.
var now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is one account with one unit, on a real store.
type fixture struct {
	t    *testing.T
	s    store.Store
	acct *store.Account
	unit *store.Unit
	svc  *availability.Service
	det  *availability.Detector
	cals map[string]*store.Calendar
}

func newFixture(t *testing.T, s store.Store, zone string, turnover bool) *fixture {
	t.Helper()
	ctx := context.Background()
	a := &store.Account{
		ID: id.New("acc"), Name: "Rentals", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	f := &fixture{t: t, s: s, acct: a, cals: map[string]*store.Calendar{},
		svc: availability.NewService(s, availability.Options{Now: clock}),
		det: availability.NewDetector(availability.DetectorConfig{Store: s, Now: clock}),
	}
	u, err := f.svc.CreateUnit(ctx, a.ID, availability.UnitInput{Name: ptr("Beach house"), TimeZone: &zone, SameDayTurnover: &turnover})
	if err != nil {
		t.Fatal(err)
	}
	f.unit = u
	return f
}

func ptr[T any](v T) *T { return &v }

// calendar makes a calendar of the kind and attaches it to the unit.
func (f *fixture) calendar(name, kind string) *store.Calendar {
	f.t.Helper()
	c := &store.Calendar{ID: id.New("cal"), AccountID: f.acct.ID, Name: name, TimeZone: "UTC", Kind: kind,
		CreatedAt: now, UpdatedAt: now}
	if kind == store.KindImported {
		c.SourceURL = "https://example.com/" + name + ".ics"
	}
	if err := f.s.CreateCalendar(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.SetCalendarUnit(context.Background(), f.acct.ID, c.ID, f.unit.ID); err != nil {
		f.t.Fatal(err)
	}
	f.cals[name] = c
	return c
}

// at parses a local time in zone, or a date for all-day events.
func at(t *testing.T, s, zone string) time.Time {
	t.Helper()
	if len(s) == 10 {
		d, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseInLocation("2006-01-02T15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return d.UTC()
}

// ev describes an event of a test case.
type ev struct {
	cal, uid, start, end, zone  string
	status, rrule, recurrenceID string
	exdates                     []string
}

func (f *fixture) add(e ev) *store.Event {
	f.t.Helper()
	c := f.cals[e.cal]
	if c == nil {
		kind := store.KindImported
		if strings.HasPrefix(e.cal, "native") {
			kind = store.KindNative
		}
		c = f.calendar(e.cal, kind)
	}
	zone := cmpOr(e.zone, "UTC")
	out := &store.Event{
		ID: id.New("evt"), AccountID: f.acct.ID, CalendarID: c.ID, UID: e.uid, RecurrenceID: e.recurrenceID,
		Summary: "Guest " + e.uid, Start: at(f.t, e.start, zone), End: at(f.t, e.end, zone), AllDay: len(e.start) == 10,
		Status: cmpOr(e.status, store.StatusConfirmed), RRule: e.rrule, CreatedAt: now, UpdatedAt: now,
	}
	if !out.AllDay {
		out.TimeZone = zone
	}
	for _, x := range e.exdates {
		out.ExDates = append(out.ExDates, at(f.t, x, zone))
	}
	if _, err := f.s.CreateEvent(context.Background(), out); err != nil {
		f.t.Fatalf("CreateEvent(%s): %v", e.uid, err)
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// run lets the detector read every change written so far.
func (f *fixture) run() {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		res, err := f.det.RunOnce(context.Background())
		if err != nil {
			f.t.Fatalf("RunOnce: %v", err)
		}
		if res.Changes == 0 && !res.Unsettled && !res.Busy {
			return
		}
		if res.Changes == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	f.t.Fatal("the detector did not catch up")
}

// conflicts returns the unit's conflicts of a state as "uidA|uidB" pairs
// (a recurrence id after a "#"), sorted.
func (f *fixture) conflicts(state string) []string {
	f.t.Helper()
	cs, err := f.svc.ListConflicts(context.Background(), store.ListConflictsParams{
		AccountID: f.acct.ID, UnitID: f.unit.ID, State: state, Page: store.Page{Limit: 1000},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		names := []string{name(c.A), name(c.B)}
		slices.Sort(names)
		out = append(out, names[0]+"|"+names[1])
	}
	slices.Sort(out)
	return out
}

func name(s store.ConflictSide) string {
	if s.RecurrenceID != "" {
		return s.UID + "#" + s.RecurrenceID
	}
	return s.UID
}

func TestBlockingRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		zone     string
		turnover bool
		events   []ev
		want     []string
	}{
		{
			name: "timed events overlap in absolute time across zones", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "paris", start: "2027-05-10T10:00", end: "2027-05-10T12:00", zone: "Europe/Paris"},
				{cal: "airbnb", uid: "ny", start: "2027-05-10T04:00", end: "2027-05-10T05:00", zone: "America/New_York"},
				{cal: "vrbo", uid: "tokyo-touching", start: "2027-05-10T19:00", end: "2027-05-10T20:00", zone: "Asia/Tokyo"},
			},
			want: []string{"ny|paris"},
		},
		{
			name: "all-day nights in the unit's zone across DST", zone: "America/New_York", turnover: true,
			events: []ev{
				{cal: "airbnb", uid: "stay", start: "2027-03-13", end: "2027-03-15"},
				// 23:30 EDT on the last night: inside (the block ends at midnight EDT, 04:00Z).
				{cal: "native", uid: "late", start: "2027-03-14T23:30", end: "2027-03-14T23:45", zone: "America/New_York"},
				// 00:30 EDT after checkout day began: outside.
				{cal: "native", uid: "after", start: "2027-03-15T00:30", end: "2027-03-15T01:00", zone: "America/New_York"},
				// 23:30 EST the evening before check-in: outside.
				{cal: "native", uid: "before", start: "2027-03-12T23:00", end: "2027-03-12T23:59", zone: "America/New_York"},
			},
			want: []string{"late|stay"},
		},
		{
			name: "all-day nights in UTC when the unit is in UTC", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "airbnb", uid: "stay", start: "2027-03-13", end: "2027-03-15"},
				{cal: "native", uid: "late", start: "2027-03-14T23:30", end: "2027-03-14T23:45", zone: "America/New_York"},
			},
		},
		{
			name: "same-day turnover allowed", zone: "Europe/Berlin", turnover: true,
			events: []ev{
				{cal: "native", uid: "first", start: "2027-06-01", end: "2027-06-05"},
				{cal: "booking", uid: "second", start: "2027-06-05", end: "2027-06-08"},
			},
		},
		{
			name: "same-day turnover refused", zone: "Europe/Berlin", turnover: false,
			events: []ev{
				{cal: "native", uid: "first", start: "2027-06-01", end: "2027-06-05"},
				{cal: "booking", uid: "second", start: "2027-06-05", end: "2027-06-08"},
				{cal: "airbnb", uid: "next-week", start: "2027-06-09", end: "2027-06-10"},
			},
			want: []string{"first|second"},
		},
		{
			name: "tentative blocks, cancelled never", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "hold", start: "2027-07-01", end: "2027-07-04", status: store.StatusTentative},
				{cal: "airbnb", uid: "booked", start: "2027-07-02", end: "2027-07-03"},
				{cal: "booking", uid: "cancelled", start: "2027-07-01", end: "2027-07-05", status: store.StatusCancelled},
			},
			want: []string{"booked|hold"},
		},
		{
			name: "a native calendar's own overlaps conflict, an imported one's do not", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "n1", start: "2027-08-01", end: "2027-08-04"},
				{cal: "native", uid: "n2", start: "2027-08-03", end: "2027-08-05"},
				{cal: "airbnb", uid: "a1", start: "2027-09-01", end: "2027-09-04"},
				{cal: "airbnb", uid: "a2", start: "2027-09-03", end: "2027-09-05"},
			},
			want: []string{"n1|n2"},
		},
		{
			name: "recurring with EXDATE and an override, across DST", zone: "America/New_York", turnover: true,
			events: []ev{
				{cal: "native", uid: "weekly", start: "2027-03-01T10:00", end: "2027-03-01T12:00", zone: "America/New_York",
					rrule: "FREQ=WEEKLY;COUNT=4", exdates: []string{"2027-03-08T10:00"}},
				{cal: "native", uid: "weekly", recurrenceID: "20270315T140000Z", start: "2027-03-16T10:00", end: "2027-03-16T12:00",
					zone: "America/New_York"},
				{cal: "airbnb", uid: "on-exdate", start: "2027-03-08T10:30", end: "2027-03-08T11:00", zone: "America/New_York"},
				{cal: "airbnb", uid: "on-moved", start: "2027-03-15T10:30", end: "2027-03-15T11:00", zone: "America/New_York"},
				{cal: "airbnb", uid: "on-override", start: "2027-03-16T11:00", end: "2027-03-16T11:30", zone: "America/New_York"},
				// 09:00-10:15 EDT: overlaps the 10:00 EDT occurrence, not a
				// 10:00 EST one expanded in UTC.
				{cal: "booking", uid: "after-dst", start: "2027-03-22T09:00", end: "2027-03-22T10:15", zone: "America/New_York"},
				{cal: "booking", uid: "after-count", start: "2027-03-29T10:00", end: "2027-03-29T11:00", zone: "America/New_York"},
			},
			want: []string{"after-dst|weekly", "on-override|weekly#20270315T140000Z"},
		},
		{
			name: "a cancelled override frees its occurrence", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "daily", start: "2027-04-01T08:00", end: "2027-04-01T09:00", rrule: "FREQ=DAILY;COUNT=3"},
				{cal: "native", uid: "daily", recurrenceID: "20270402T080000Z", start: "2027-04-02T08:00", end: "2027-04-02T09:00",
					status: store.StatusCancelled},
				{cal: "airbnb", uid: "day2", start: "2027-04-02T08:30", end: "2027-04-02T08:45"},
				{cal: "airbnb", uid: "day3", start: "2027-04-03T08:30", end: "2027-04-03T08:45"},
			},
			want: []string{"daily|day3"},
		},
		{
			name: "the horizon caps recurring events only", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "far", start: "2030-01-10", end: "2030-01-12"},
				{cal: "airbnb", uid: "far-too", start: "2030-01-11", end: "2030-01-13"},
				{cal: "native", uid: "yearly", start: "2027-05-05", end: "2027-05-06", rrule: "FREQ=YEARLY"},
				{cal: "booking", uid: "in-2028", start: "2028-05-05", end: "2028-05-06"},
				{cal: "booking", uid: "in-2029", start: "2029-05-05", end: "2029-05-06"},
			},
			want: []string{"far|far-too", "in-2028|yearly"},
		},
		{
			name: "overlaps in the past are history", zone: "UTC", turnover: true,
			events: []ev{
				{cal: "native", uid: "old", start: "2026-12-01", end: "2026-12-05"},
				{cal: "airbnb", uid: "old-too", start: "2026-12-02", end: "2026-12-03"},
			},
		},
	}
	for _, b := range storetest.Backends(t) {
		for _, tt := range tests {
			t.Run(b.Name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				for _, mode := range []string{"per event", "whole unit"} {
					f := newFixture(t, b.Open(t), tt.zone, tt.turnover)
					for _, e := range tt.events {
						f.add(e)
					}
					if mode == "whole unit" {
						// The calendars leave the unit before the detector
						// reads their events, and join it again after:
						// the unit is then evaluated as a whole.
						for _, c := range f.cals {
							if err := f.svc.SetCalendarUnit(context.Background(), f.acct.ID, c.ID, ""); err != nil {
								t.Fatal(err)
							}
						}
						f.run()
						for _, c := range f.cals {
							if err := f.svc.SetCalendarUnit(context.Background(), f.acct.ID, c.ID, f.unit.ID); err != nil {
								t.Fatal(err)
							}
						}
					}
					f.run()
					if got := f.conflicts(store.ConflictOpen); !slices.Equal(got, tt.want) {
						t.Errorf("%s: open conflicts = %v; want %v", mode, got, tt.want)
					}
				}
			})
		}
	}
}
