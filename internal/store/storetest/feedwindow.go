package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// feedWindowTests check the windowed feed read.
var feedWindowTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"FeedWindowKeepsRecentAndSeries", testFeedWindow},
	{"FeedWindowIsStored", testFeedWindowStored},
	{"FeedKnownEvents", testFeedKnownEvents},
	{"FeedEventsPages", testFeedEventsPages},
	{"FeedTooBig", testFeedTooBig},
}

// testFeedWindow checks that WindowFeedContent leaves out what ended
// before each calendar's cutoff, keeps recurring series and overrides
// for the caller to judge, applies each calendar's own window in the
// account's feed, and keeps to the account.
func testFeedWindow(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	def := newCalendar(t, s, a.ID) // the default window
	all := newCalendar(t, s, a.ID) // keeps all history
	zero, short := 0, 5
	all.FeedWindowDays = &zero
	all.UpdatedAt = base
	if err := s.UpdateCalendar(ctx, all); err != nil {
		t.Fatalf("UpdateCalendar: %v", err)
	}
	shortCal := newCalendar(t, s, a.ID)
	shortCal.FeedWindowDays = &short
	if err := s.UpdateCalendar(ctx, shortCal); err != nil {
		t.Fatalf("UpdateCalendar: %v", err)
	}
	day := 24 * time.Hour
	for _, c := range []*store.Calendar{def, all, shortCal} {
		mustCreateEvent(t, s, newEvent(c, "old", base.Add(-400*day)))
		mustCreateEvent(t, s, newEvent(c, "recent", base.Add(-10*day)))
		mustCreateEvent(t, s, newEvent(c, "future", base.Add(30*day)))
		series := newEvent(c, "series", base.Add(-1000*day))
		series.RRule = "FREQ=WEEKLY"
		mustCreateEvent(t, s, series)
		override := newEvent(c, "series", base.Add(-993*day))
		override.RecurrenceID = "20240101T140000Z"
		mustCreateEvent(t, s, override)
	}
	w := store.FeedWindow{Now: base, Default: 90 * day}
	uids := func(fc *store.FeedContent, calendarID string) []string {
		var out []string
		for _, e := range fc.Events {
			if e.CalendarID == calendarID {
				out = append(out, e.UID+"/"+e.RecurrenceID)
			}
		}
		return out
	}
	want := map[string][]string{
		def.ID:      {"future/", "recent/", "series/", "series/20240101T140000Z"},
		all.ID:      {"future/", "old/", "recent/", "series/", "series/20240101T140000Z"},
		shortCal.ID: {"future/", "series/", "series/20240101T140000Z"},
	}
	for _, c := range []*store.Calendar{def, all, shortCal} {
		fc, err := s.WindowFeedContent(ctx, a.ID, c.ID, w)
		if err != nil {
			t.Fatalf("WindowFeedContent(%s): %v", c.ID, err)
		}
		if got := uids(fc, c.ID); !slices.Equal(got, want[c.ID]) {
			t.Errorf("WindowFeedContent(window %v) = %v; want %v", c.FeedWindowDays, got, want[c.ID])
		}
	}
	acct, err := s.WindowFeedContent(ctx, a.ID, "", w)
	if err != nil {
		t.Fatalf("WindowFeedContent(all calendars): %v", err)
	}
	if len(acct.Calendars) != 3 || len(acct.Events) != 12 {
		t.Errorf("WindowFeedContent(all calendars): %d calendars, %d events; want 3, 12", len(acct.Calendars), len(acct.Events))
	}
	for i, c := range acct.Calendars {
		if c.ID != []string{def.ID, all.ID, shortCal.ID}[i] {
			t.Errorf("WindowFeedContent(all calendars): calendar %d is %s; want creation order", i, c.ID)
		}
		if got := uids(acct, c.ID); !slices.Equal(got, want[c.ID]) {
			t.Errorf("WindowFeedContent(all calendars), calendar %d = %v; want %v", i, got, want[c.ID])
		}
	}
	// Without a window, everything.
	full, err := s.WindowFeedContent(ctx, a.ID, def.ID, store.FeedWindow{})
	if err != nil || len(full.Events) != 5 {
		t.Errorf("WindowFeedContent(no window) = %d events, %v; want 5", len(full.Events), err)
	}
	b := newAccount(t, s)
	_, err = s.WindowFeedContent(ctx, b.ID, def.ID, w)
	wantNotFound(t, "WindowFeedContent(other account's calendar)", err)
}

// testFeedWindowStored checks that a calendar's window is stored, read
// back, and reset to the default with nil.
func testFeedWindowStored(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	if c.FeedWindowDays != nil {
		t.Fatalf("new calendar: FeedWindowDays = %d; want nil", *c.FeedWindowDays)
	}
	for _, days := range []*int{ptr(30), ptr(0), nil} {
		c.FeedWindowDays = days
		if err := s.UpdateCalendar(ctx, c); err != nil {
			t.Fatalf("UpdateCalendar: %v", err)
		}
		got, err := s.Calendar(ctx, a.ID, c.ID)
		if err != nil {
			t.Fatalf("Calendar: %v", err)
		}
		if (got.FeedWindowDays == nil) != (days == nil) || days != nil && *got.FeedWindowDays != *days {
			t.Errorf("FeedWindowDays after UpdateCalendar(%v) = %v; want %v", deref(days), deref(got.FeedWindowDays), deref(days))
		}
	}
	created := &store.Calendar{ID: id.New("cal"), AccountID: a.ID, Name: "W", TimeZone: "UTC", Kind: store.KindNative,
		FeedWindowDays: ptr(7), CreatedAt: base, UpdatedAt: base}
	if err := s.CreateCalendar(ctx, created); err != nil {
		t.Fatalf("CreateCalendar: %v", err)
	}
	if got, err := s.Calendar(ctx, a.ID, created.ID); err != nil || got.FeedWindowDays == nil || *got.FeedWindowDays != 7 {
		t.Errorf("CreateCalendar(window 7): read back %v, %v; want 7", got, err)
	}
}

func ptr(n int) *int { return &n }

// deref formats an optional window for messages.
func deref(p *int) any {
	if p == nil {
		return "nil"
	}
	return *p
}

// testFeedKnownEvents checks that a feed read with known events answers
// what a read without them answers, with the known events that did not
// change as the very same values, in a windowed calendar as in one
// without a window.
func testFeedKnownEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	day := 24 * time.Hour
	for _, w := range []store.FeedWindow{{}, {Now: base, Default: 90 * day}} {
		c := newCalendar(t, s, a.ID)
		var evs []*store.Event
		for i, uid := range []string{"d", "b", "a", "c", "old"} {
			start := base.Add(time.Duration(i+1) * day)
			if uid == "old" {
				start = base.Add(-400 * day)
			}
			e := newEvent(c, uid, start)
			mustCreateEvent(t, s, e)
			evs = append(evs, e)
		}
		before, err := s.WindowFeedContent(ctx, a.ID, c.ID, w)
		if err != nil {
			t.Fatalf("WindowFeedContent: %v", err)
		}
		known := map[string]*store.Event{}
		for _, e := range before.Events {
			known[e.ID] = e
		}
		// "b" changes, "a" goes, "e" comes; "d" and "c" stay.
		changed := *evs[1]
		changed.Summary, changed.UpdatedAt = "Moved", base.Add(time.Minute)
		if _, err := s.UpdateEvent(ctx, &changed); err != nil {
			t.Fatalf("UpdateEvent: %v", err)
		}
		if _, err := s.DeleteEvent(ctx, a.ID, c.ID, evs[2].ID, base.Add(time.Minute)); err != nil {
			t.Fatalf("DeleteEvent: %v", err)
		}
		mustCreateEvent(t, s, newEvent(c, "e", base.Add(9*day)))
		want, err := s.WindowFeedContent(ctx, a.ID, c.ID, w)
		if err != nil {
			t.Fatalf("WindowFeedContent: %v", err)
		}
		w.Known = known
		got, err := s.WindowFeedContent(ctx, a.ID, c.ID, w)
		if err != nil {
			t.Fatalf("WindowFeedContent(known): %v", err)
		}
		if len(got.Events) != len(want.Events) || got.Version != want.Version {
			t.Fatalf("WindowFeedContent(known) = %d events, version %d; want %d, %d",
				len(got.Events), got.Version, len(want.Events), want.Version)
		}
		for i, e := range got.Events {
			if e.ID != want.Events[i].ID || e.Summary != want.Events[i].Summary || !e.UpdatedAt.Equal(want.Events[i].UpdatedAt) {
				t.Errorf("WindowFeedContent(known) event %d = %s %q; want %s %q", i, e.UID, e.Summary,
					want.Events[i].UID, want.Events[i].Summary)
			}
			if same := known[e.ID] == e; same != (e.UID == "d" || e.UID == "c" || e.UID == "old") {
				t.Errorf("WindowFeedContent(known) event %s: the known value is used: %v", e.UID, same)
			}
		}
	}
}

// testFeedEventsPages checks that FeedEvents, page after page, reads the
// events WindowFeedContent reads, each once, in FeedPos order (events
// that end at the same instant included), for calendars with and
// without a window.
func testFeedEventsPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	day := 24 * time.Hour
	w := store.FeedWindow{Now: base, Default: 90 * day}
	windowed := newCalendar(t, s, a.ID)
	all := newCalendar(t, s, a.ID)
	zero := 0
	all.FeedWindowDays = &zero
	if err := s.UpdateCalendar(ctx, all); err != nil {
		t.Fatalf("UpdateCalendar: %v", err)
	}
	for _, c := range []*store.Calendar{windowed, all} {
		for i := range 7 {
			// Later events end sooner, so end order is not seq order, and
			// pairs end at the same instant, so pages split ties.
			mustCreateEvent(t, s, newEvent(c, fmt.Sprintf("now-%d", i), base.Add(time.Duration(3-i/2)*day)))
			mustCreateEvent(t, s, newEvent(c, fmt.Sprintf("old-%d", i), base.Add(-time.Duration(200+i)*day)))
			series := newEvent(c, fmt.Sprintf("series-%d", i), base.Add(-time.Duration(500+i)*day))
			series.RRule = "FREQ=WEEKLY"
			mustCreateEvent(t, s, series)
		}
		override := newEvent(c, "series-0", base.Add(-493*day))
		override.RecurrenceID = "20250601T140000Z"
		mustCreateEvent(t, s, override)
	}
	for _, c := range []*store.Calendar{windowed, all} {
		fc, err := s.WindowFeedContent(ctx, a.ID, c.ID, w)
		if err != nil {
			t.Fatalf("WindowFeedContent: %v", err)
		}
		var want []string
		for _, e := range fc.Events {
			want = append(want, e.ID)
		}
		for _, limit := range []int{1, 2, 3, 500} {
			var got []string
			var prev *store.Event
			pos, pages := store.FeedPos{}, 0
			for !pos.Done {
				var page []*store.Event
				page, pos, err = s.FeedEvents(ctx, c, w, pos, limit)
				if err != nil {
					t.Fatalf("FeedEvents: %v", err)
				}
				if len(page) > limit {
					t.Fatalf("FeedEvents(limit %d) = %d events", limit, len(page))
				}
				for _, e := range page {
					if prev != nil && !feedOrdered(prev, e, w.Cutoff(c)) {
						t.Errorf("FeedEvents(limit %d): %s (end %v, seq %d) after %s (end %v, seq %d)", limit,
							e.UID, e.End, e.Seq, prev.UID, prev.End, prev.Seq)
					}
					prev = e
					got = append(got, e.ID)
				}
				if pages++; pages > 100 {
					t.Fatalf("FeedEvents(limit %d) is not done after 100 pages", limit)
				}
			}
			slices.Sort(got)
			sorted := slices.Sorted(slices.Values(want))
			if !slices.Equal(got, sorted) {
				t.Errorf("FeedEvents(window %v, limit %d) read %d events; want the %d of WindowFeedContent, each once",
					deref(c.FeedWindowDays), limit, len(got), len(want))
			}
		}
	}
}

// feedOrdered reports whether b may follow a in FeedEvents' order for a
// calendar whose window starts at cut.
func feedOrdered(a, b *store.Event, cut time.Time) bool {
	if cut.IsZero() {
		return a.Seq < b.Seq
	}
	aIn, bIn := !a.End.Before(cut), !b.End.Before(cut)
	switch {
	case aIn != bIn:
		return bIn
	case !aIn:
		return a.Seq < b.Seq
	}
	return a.End.Before(b.End) || a.End.Equal(b.End) && a.Seq < b.Seq
}

// testFeedTooBig checks FeedWindow.MaxEvents: a feed with more events
// than it allows is read without them, marked TooBig, its calendars and
// version still there; one with as many is read whole; known events
// count too.
func testFeedTooBig(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c1, c2 := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	for i := range 3 {
		mustCreateEvent(t, s, newEvent(c1, fmt.Sprintf("a%d", i), base.Add(time.Duration(i)*time.Hour)))
		mustCreateEvent(t, s, newEvent(c2, fmt.Sprintf("b%d", i), base.Add(time.Duration(i)*time.Hour)))
	}
	whole, err := s.WindowFeedContent(ctx, a.ID, "", store.FeedWindow{})
	if err != nil {
		t.Fatalf("WindowFeedContent: %v", err)
	}
	known := map[string]*store.Event{}
	for _, e := range whole.Events {
		known[e.ID] = e
	}
	for _, tt := range []struct {
		calendarID string
		max        int
		known      map[string]*store.Event
		tooBig     bool
	}{
		{"", 6, nil, false},
		{"", 5, nil, true},
		{"", 3, nil, true}, // the first calendar fills the budget
		{"", 5, known, true},
		{"", 6, known, false},
		{c1.ID, 3, nil, false},
		{c1.ID, 2, nil, true},
		{c1.ID, 2, known, true},
	} {
		fc, err := s.WindowFeedContent(ctx, a.ID, tt.calendarID, store.FeedWindow{MaxEvents: tt.max, Known: tt.known})
		if err != nil {
			t.Fatalf("WindowFeedContent(max %d): %v", tt.max, err)
		}
		wantCals, wantEvents := 2, 6
		if tt.calendarID != "" {
			wantCals, wantEvents = 1, 3
		}
		if tt.tooBig {
			wantEvents = 0
		}
		if fc.TooBig != tt.tooBig || len(fc.Events) != wantEvents || len(fc.Calendars) != wantCals || fc.Version == 0 {
			t.Errorf("WindowFeedContent(%q, max %d, known %v) = TooBig %v, %d events, %d calendars, version %d; want %v, %d, %d, a version",
				tt.calendarID, tt.max, tt.known != nil, fc.TooBig, len(fc.Events), len(fc.Calendars), fc.Version, tt.tooBig, wantEvents, wantCals)
		}
	}
}
