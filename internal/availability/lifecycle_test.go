package availability_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// conflictChanges returns the conflict changes in the log, as "type id",
// through a fan-out cursor of the test's own.
func (f *fixture) conflictChanges(cursor string) []string {
	f.t.Helper()
	var out []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		res, err := f.s.FanOut(context.Background(), cursor, 1000, func(_ context.Context, chs []*store.Change) ([]*store.Message, error) {
			for _, ch := range chs {
				if strings.HasPrefix(ch.Type, "availability.conflict.") {
					out = append(out, strings.TrimPrefix(ch.Type, "availability.conflict.")+" "+ch.EventID)
				}
			}
			return nil, nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
		if res.Changes == 0 && !res.Unsettled {
			return out
		}
	}
	f.t.Fatal("the change log did not settle")
	return nil
}

func (f *fixture) update(e *store.Event, mut func(*store.Event)) {
	f.t.Helper()
	mut(e)
	e.UpdatedAt = e.UpdatedAt.Add(time.Second)
	if _, err := f.s.UpdateEvent(context.Background(), e); err != nil {
		f.t.Fatal(err)
	}
}

func TestConflictLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b.Open(t), "Europe/Berlin", true)
			direct := f.add(ev{cal: "native", uid: "direct", start: "2027-06-01", end: "2027-06-05"})
			airbnb := f.add(ev{cal: "airbnb", uid: "airbnb", start: "2027-07-01", end: "2027-07-03"})
			f.run()
			if got := f.conflicts(""); len(got) != 0 {
				t.Fatalf("conflicts before any overlap = %v", got)
			}

			// Moved into conflict: detected once, however often the
			// detector runs, and by a restarted detector too.
			f.update(airbnb, func(e *store.Event) { e.Start, e.End = at(t, "2027-06-04", ""), at(t, "2027-06-06", "") })
			f.run()
			f.run()
			f.det = availability.NewDetector(availability.DetectorConfig{Store: f.s, Now: func() time.Time { return now }})
			f.run()
			if got, want := f.conflicts(store.ConflictOpen), []string{"airbnb|direct"}; !slices.Equal(got, want) {
				t.Fatalf("after the move in: open = %v; want %v", got, want)
			}
			open, err := f.svc.ListConflicts(ctx, store.ListConflictsParams{AccountID: f.acct.ID, UnitID: f.unit.ID, Page: store.Page{Limit: 10}})
			if err != nil || len(open) != 1 {
				t.Fatalf("ListConflicts = %v, %v", open, err)
			}
			c := open[0]
			if !c.OverlapStart.Equal(time.Date(2027, 6, 4, 0, 0, 0, 0, mustZone(t, "Europe/Berlin"))) ||
				!c.OverlapEnd.Equal(time.Date(2027, 6, 5, 0, 0, 0, 0, mustZone(t, "Europe/Berlin"))) {
				t.Errorf("overlap = %v–%v; want the night of 4 June in Berlin", c.OverlapStart, c.OverlapEnd)
			}
			sides := map[string]store.ConflictSide{c.A.UID: c.A, c.B.UID: c.B}
			if sides["airbnb"].Kind != store.KindImported || sides["airbnb"].SourceURL == "" || sides["direct"].Kind != store.KindNative ||
				sides["airbnb"].CalendarID != airbnb.CalendarID || sides["direct"].EventID != direct.ID {
				t.Errorf("sides = %+v; want both events with their calendars and sources", sides)
			}

			// Moved out: resolved once.
			f.update(airbnb, func(e *store.Event) { e.Start, e.End = at(t, "2027-06-05", ""), at(t, "2027-06-07", "") })
			f.run()
			if got := f.conflicts(store.ConflictOpen); len(got) != 0 {
				t.Errorf("after the move out: open = %v; want none", got)
			}
			// Cancelled, then confirmed again into conflict, then deleted.
			f.update(airbnb, func(e *store.Event) { e.Start = at(t, "2027-06-03", "") })
			f.run()
			f.update(airbnb, func(e *store.Event) { e.Status = store.StatusCancelled })
			f.run()
			if got := f.conflicts(store.ConflictOpen); len(got) != 0 {
				t.Errorf("after the cancellation: open = %v; want none", got)
			}
			f.update(airbnb, func(e *store.Event) { e.Status = store.StatusConfirmed })
			f.run()
			if _, err := f.s.DeleteEvent(ctx, f.acct.ID, airbnb.CalendarID, airbnb.ID, now); err != nil {
				t.Fatal(err)
			}
			f.run()
			// Detached, attached again, the turnover rule changed.
			booking := f.add(ev{cal: "booking", uid: "booking", start: "2027-06-05", end: "2027-06-09"})
			f.run()
			if got := f.conflicts(store.ConflictOpen); len(got) != 0 {
				t.Errorf("back to back with turnover: open = %v; want none", got)
			}
			if _, err := f.svc.UpdateUnit(ctx, f.acct.ID, f.unit.ID, availability.UnitInput{SameDayTurnover: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			f.run()
			if got, want := f.conflicts(store.ConflictOpen), []string{"booking|direct"}; !slices.Equal(got, want) {
				t.Errorf("without turnover: open = %v; want %v", got, want)
			}
			if err := f.svc.SetCalendarUnit(ctx, f.acct.ID, booking.CalendarID, ""); err != nil {
				t.Fatal(err)
			}
			f.run()
			if got := f.conflicts(store.ConflictOpen); len(got) != 0 {
				t.Errorf("after the detach: open = %v; want none", got)
			}

			var kinds []string
			for _, s := range f.conflictChanges("test-lifecycle") {
				kinds = append(kinds, strings.Fields(s)[0])
			}
			want := []string{"detected", "resolved", "detected", "resolved", "detected", "resolved", "detected", "resolved"}
			if !slices.Equal(kinds, want) {
				t.Errorf("conflict changes = %v; want %v", kinds, want)
			}
			if got := f.conflicts(store.ConflictResolved); len(got) != 4 {
				t.Errorf("resolved conflicts = %v; want 4", got)
			}
		})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAvailabilityQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := b.Open(t)
			f := newFixture(t, s, "UTC", true)
			f.add(ev{cal: "native", uid: "d1", start: "2027-06-01", end: "2027-06-05"})
			f.add(ev{cal: "airbnb", uid: "a1", start: "2027-06-05", end: "2027-06-07"})
			f.add(ev{cal: "booking", uid: "b1", start: "2027-06-10T10:00", end: "2027-06-10T12:00"})
			f.add(ev{cal: "booking", uid: "gone", start: "2027-06-12", end: "2027-06-13", status: store.StatusCancelled})
			from, to := at(t, "2027-06-02", ""), at(t, "2027-06-30", "")
			res, err := f.svc.Availability(ctx, f.acct.ID, []string{f.unit.ID}, from, to)
			if err != nil {
				t.Fatal(err)
			}
			u := res[0]
			var busy []string
			for _, b := range u.Busy {
				var ids []string
				for _, blk := range b.Blocks {
					ids = append(ids, blk.Event.UID)
				}
				busy = append(busy, b.Start.Format(time.RFC3339)+"/"+b.End.Format(time.RFC3339)+" "+strings.Join(ids, ","))
			}
			wantBusy := []string{
				"2027-06-02T00:00:00Z/2027-06-07T00:00:00Z d1,a1", // touching stays merge, clipped to from
				"2027-06-10T10:00:00Z/2027-06-10T12:00:00Z b1",
			}
			if !slices.Equal(busy, wantBusy) {
				t.Errorf("busy = %v; want %v", busy, wantBusy)
			}
			var free []string
			for _, i := range u.Free {
				free = append(free, i.Start.Format(time.RFC3339)+"/"+i.End.Format(time.RFC3339))
			}
			wantFree := []string{"2027-06-07T00:00:00Z/2027-06-10T10:00:00Z", "2027-06-10T12:00:00Z/2027-06-30T00:00:00Z"}
			if !slices.Equal(free, wantFree) {
				t.Errorf("free = %v; want %v", free, wantFree)
			}

			// Many units at once, in the order asked; another account's
			// unit is not found.
			other, err := f.svc.CreateUnit(ctx, f.acct.ID, availability.UnitInput{Name: ptr("Empty")})
			if err != nil {
				t.Fatal(err)
			}
			res, err = f.svc.Availability(ctx, f.acct.ID, []string{other.ID, f.unit.ID}, from, to)
			if err != nil || len(res) != 2 || res[0].Unit.ID != other.ID || len(res[0].Busy) != 0 || len(res[1].Busy) != 2 {
				t.Errorf("two units = %v, %v", res, err)
			}
			g := newFixture(t, s, "UTC", true)
			if _, err := g.svc.Availability(ctx, g.acct.ID, []string{f.unit.ID}, from, to); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("another account's unit: %v; want ErrNotFound", err)
			}
			for _, bad := range [][2]time.Time{{to, from}, {from, from.Add(3 * 366 * 24 * time.Hour)}} {
				if _, err := f.svc.Availability(ctx, f.acct.ID, []string{f.unit.ID}, bad[0], bad[1]); err == nil {
					t.Errorf("window %v: no error", bad)
				}
			}
		})
	}
}

func TestExportFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b.Open(t), "Europe/Berlin", true)
			f.add(ev{cal: "native", uid: "direct-1", start: "2027-06-01", end: "2027-06-05"})
			f.add(ev{cal: "airbnb", uid: "airbnb-1", start: "2027-07-01", end: "2027-07-03"})
			booking := f.add(ev{cal: "booking", uid: "booking-1", start: "2027-08-01T15:00", end: "2027-08-01T18:00", zone: "Europe/Berlin"})
			f.update(booking, func(e *store.Event) {
				e.Summary, e.Description, e.Location = "Guest Jane Doe", "phone +1 555", "Room 12"
			})
			get := func(cal string) string {
				t.Helper()
				fd, err := f.svc.ExportFeed(ctx, f.acct.ID, f.cals[cal].ID, f.acct.FeedToken)
				if err != nil {
					t.Fatalf("ExportFeed(%s): %v", cal, err)
				}
				return string(fd.Body)
			}
			body := get("airbnb")
			for _, bad := range []string{"airbnb-1", "Jane", "555", "Room 12", "Guest", "DESCRIPTION", "LOCATION"} {
				if strings.Contains(body, bad) {
					t.Errorf("airbnb's export feed contains %q:\n%s", bad, body)
				}
			}
			for _, want := range []string{
				"SUMMARY:Not available", "DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270605",
				"DTSTART:20270801T130000Z", "DTEND:20270801T160000Z", "TRANSP:OPAQUE",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("airbnb's export feed lacks %q:\n%s", want, body)
				}
			}
			if n := strings.Count(body, "BEGIN:VEVENT"); n != 2 {
				t.Errorf("airbnb's export feed has %d events; want 2 (direct and booking, not its own)", n)
			}
			// Stable: the same bytes (and UIDs) on a fresh render after an
			// unrelated change of a source event.
			f.svc = availability.NewService(f.s, availability.Options{Now: func() time.Time { return now }})
			f.update(booking, func(e *store.Event) { e.Summary = "Guest John" })
			again := get("airbnb")
			uids := func(s string) []string {
				var out []string
				for _, l := range strings.Split(s, "\r\n") {
					if strings.HasPrefix(l, "UID:") {
						out = append(out, l)
					}
				}
				return out
			}
			if !slices.Equal(uids(body), uids(again)) {
				t.Errorf("UIDs changed: %v then %v", uids(body), uids(again))
			}
			if native := get("native"); !strings.Contains(native, "DTSTART;VALUE=DATE:20270701") || strings.Contains(native, "20270601") {
				t.Errorf("native's export feed should show airbnb's stay and not its own:\n%s", native)
			}
			if _, err := f.svc.ExportFeed(ctx, f.acct.ID, f.cals["airbnb"].ID, strings.Repeat("0", 64)); !errors.Is(err, feed.ErrForbidden) {
				t.Errorf("wrong token: %v; want ErrForbidden", err)
			}
			if err := f.svc.SetCalendarUnit(ctx, f.acct.ID, f.cals["airbnb"].ID, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.ExportFeed(ctx, f.acct.ID, f.cals["airbnb"].ID, f.acct.FeedToken); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("detached calendar's export feed: %v; want ErrNotFound", err)
			}
		})
	}
}

// errProbe ends a probing DetectConflicts step without storing anything.
var errProbe = errors.New("probe")

// unstored returns the uids of the event changes after the stored
// detection cursor, without moving it.
func (f *fixture) unstored() []string {
	f.t.Helper()
	var uids []string
	_, err := f.s.DetectConflicts(context.Background(), store.DetectParams{Limit: 10000},
		func(_ context.Context, chs []*store.Change) (*store.ConflictUpdate, error) {
			for _, ch := range chs {
				if store.IsEventChange(ch.Type) {
					uids = append(uids, ch.EventUID)
				}
			}
			return nil, errProbe
		})
	if err != nil && !errors.Is(err, errProbe) {
		f.t.Fatal(err)
	}
	return uids
}

// TestDetectorStoresOnlyWhatItFinds: a step that finds nothing to store
// leaves the stored cursor (no write transaction); a step that stores a
// conflict stores the cursor with it; the running detector stores its
// cursor when idle.
func TestDetectorStoresOnlyWhatItFinds(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, b.Open(t), "UTC", true)
			f.calendar("native", store.KindNative)
			f.calendar("airbnb", store.KindImported)
			f.run()
			f.add(ev{cal: "native", uid: "quiet", start: "2027-06-01", end: "2027-06-05"})
			f.run()
			if got := f.unstored(); !slices.Contains(got, "quiet") {
				t.Fatalf("after a step with nothing to store, the changes after the stored cursor are %v; want quiet's", got)
			}
			f.add(ev{cal: "airbnb", uid: "clash", start: "2027-06-03", end: "2027-06-06"})
			f.run()
			if got := f.conflicts(store.ConflictOpen); !slices.Equal(got, []string{"clash|quiet"}) {
				t.Fatalf("open conflicts = %v; want clash|quiet", got)
			}
			if got := f.unstored(); len(got) != 0 {
				t.Fatalf("after a step that stored a conflict, the changes after the stored cursor are %v; want none", got)
			}
			f.add(ev{cal: "native", uid: "idle", start: "2027-08-01", end: "2027-08-05"})
			if err := f.det.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer f.det.Stop(context.Background())
			for deadline := time.Now().Add(10 * time.Second); slices.Contains(f.unstored(), "idle"); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the running detector did not store its cursor when idle")
				}
			}
			if got := f.conflicts(store.ConflictOpen); !slices.Equal(got, []string{"clash|quiet"}) {
				t.Errorf("open conflicts = %v; want clash|quiet still", got)
			}
		})
	}
}
