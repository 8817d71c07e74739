package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// detect runs the conflict detector until it has read every change.
func (e *env) detect() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := e.detector.RunOnce(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if res.Changes == 0 && !res.Unsettled {
			return
		}
		if res.Unsettled || res.Busy {
			// Writes still in flight on PostgreSQL: their changes are
			// read once they commit.
			time.Sleep(10 * time.Millisecond)
		}
	}
	e.t.Fatal("the detector did not settle")
}

func TestUnits(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme")
			ctx := context.Background()
			b := e.browser()
			b.signIn(a.APIKey)

			// Empty state, then a unit made by the form.
			status, body := b.get("/console/units")
			if status != http.StatusOK || !strings.Contains(body, "No units yet") || !strings.Contains(body, `href="/console/units" aria-current="page"`) {
				t.Fatalf("units page: %d, empty state and nav link shown: %v", status, strings.Contains(body, "No units yet"))
			}
			status, _, res := b.post("/console/units", url.Values{"name": {"Cottage " + hostileScript}, "timeZone": {"Europe/Lisbon"}, "sameDayTurnover": {"on"}})
			if status != http.StatusSeeOther {
				t.Fatalf("create unit: status %d", status)
			}
			unitPath := strings.Split(res.Header.Get("Location"), "?")[0]
			unitID := strings.TrimPrefix(unitPath, "/console/units/")
			u, err := e.units.Unit(ctx, a.ID, unitID)
			if err != nil || u.TimeZone != "Europe/Lisbon" || !u.SameDayTurnover {
				t.Fatalf("unit after the form: %+v, %v", u, err)
			}
			if _, body := b.get(unitPath); !strings.Contains(body, "No calendars in this unit yet") {
				t.Error("a unit without calendars does not say what to do next")
			}

			// Two calendars, one attached by each way, with overlapping
			// stays: a conflict.
			own, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Direct " + hostileAttr)})
			channel, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Airbnb"),
				Source: &calendar.SourceInput{URL: "http://127.0.0.1:9/airbnb.ics"}})
			if err != nil {
				t.Fatal(err)
			}
			b.get(unitPath)
			for _, c := range []string{own.ID, channel.ID} {
				if status, _, _ := b.post(unitPath+"/calendars", url.Values{"calendarId": {c}}); status != http.StatusSeeOther {
					t.Fatalf("attach %s: status %d", c, status)
				}
			}
			_, err = e.cals.CreateEvent(ctx, a.ID, own.ID, calendar.EventInput{Summary: ptr("Guest " + hostileScript),
				Start: ptr("2030-01-03"), End: ptr("2030-01-07"), AllDay: ptr(true)})
			if err != nil {
				t.Fatal(err)
			}
			// An imported calendar's events come from its feed; the store
			// writes one as the importer would.
			imported := &store.Event{ID: "evt_imported1", AccountID: a.ID, CalendarID: channel.ID, UID: "airbnb-1", Summary: "Reserved",
				Start: time.Date(2030, 1, 5, 0, 0, 0, 0, time.UTC), End: time.Date(2030, 1, 9, 0, 0, 0, 0, time.UTC), AllDay: true,
				Status: store.StatusConfirmed, TimeZone: "UTC", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if _, err := e.db.CreateEvent(ctx, imported); err != nil {
				t.Fatal(err)
			}
			e.detect()

			status, body = b.get("/console/units")
			if status != http.StatusOK {
				t.Fatalf("units list: %d", status)
			}
			wantContains(t, "units list", body, "Cottage &lt;script&gt;", "1 open", ">2<")
			wantEscaped(t, "units list", body)
			status, body = b.get(unitPath + "?from=2030-01-01")
			if status != http.StatusOK {
				t.Fatalf("unit page: %d", status)
			}
			wantContains(t, "unit page", body,
				"Guest &lt;script&gt;alert(1)&lt;/script&gt;", "Direct &#34;&gt;&lt;img", "imported from 127.0.0.1", "Reserved",
				// The stay, nights 3 to 6 January, from the afternoon of
				// the 3rd (half day 5, column 7) to the morning of the 7th.
				"bar ev conflict gs7 ge15", "bar ev conflict gs11 ge19", "bar busy gs7 ge19", "bar overlap gs11 ge15",
				"/feeds/"+a.ID+"/"+own.ID+"/blocked.ics?token=", "Open conflicts", "2030-01-05 to 2030-01-07", "Earlier", "?from=2030-01-29")
			wantEscaped(t, "unit page", body)
			if strings.Contains(body, "No open conflicts") {
				t.Error("unit page says no open conflicts")
			}
			// A window that starts inside the stay clips its bar.
			if _, body := b.get(unitPath + "?from=2030-01-05"); !strings.Contains(body, "bar ev conflict gs2 ge7") {
				t.Error("a stay that began before the window is not drawn from its first column")
			}
			_, body = b.get("/console/overview")
			if !strings.Contains(body, `href="/console/units/`+unitID+`#open-h"`) {
				t.Error("the overview does not link the unit with an open conflict")
			}
			// Detected conflicts are news; the detector's bookkeeping is not.
			wantContains(t, "overview", body, "availability.<wbr>conflict.<wbr>detected", "calendar.<wbr>event.<wbr>created")
			if strings.Contains(body, "availability.<wbr>unit.<wbr>changed") {
				t.Error("the overview lists internal unit changes")
			}

			// The channel's booking goes: the conflict is resolved.
			if _, err := e.db.DeleteEvent(ctx, a.ID, channel.ID, imported.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			e.detect()
			_, body = b.get(unitPath + "?from=2030-01-01")
			wantContains(t, "unit page after the resolution", body, "No open conflicts", "Recently resolved", "(deleted)")
			if _, body := b.get("/console/overview"); strings.Contains(body, "/console/units/"+unitID) {
				t.Error("the overview still lists a unit whose conflict was resolved")
			}

			// Settings, detach, delete.
			if status, _, _ := b.post(unitPath, url.Values{"name": {"Seaside"}, "timeZone": {"Europe/Lisbon"}}); status != http.StatusSeeOther {
				t.Errorf("update unit: status %d", status)
			}
			if u, _ := e.units.Unit(ctx, a.ID, unitID); u.Name != "Seaside" || u.SameDayTurnover {
				t.Errorf("unit after update: %+v; want Seaside without same-day turnover", u)
			}
			if status, _, _ := b.post(unitPath+"/calendars/"+channel.ID+"/detach", nil); status != http.StatusSeeOther {
				t.Errorf("detach: status %d", status)
			}
			if in, _ := e.units.CalendarUnits(ctx, a.ID, []string{channel.ID, own.ID}); in[channel.ID] != "" || in[own.ID] != unitID {
				t.Errorf("membership after detach: %v", in)
			}
			// A calendar of no unit (or another) is not detached from here.
			if status, _, _ := b.post(unitPath+"/calendars/"+channel.ID+"/detach", nil); status != http.StatusNotFound {
				t.Errorf("detach of a calendar outside the unit: status %d; want 404", status)
			}
			if status, _, _ := b.post(unitPath+"/calendars", url.Values{"calendarId": {"cal_nope"}}); status != http.StatusNotFound {
				t.Errorf("attach of an unknown calendar: status %d; want 404", status)
			}

			// Another account sees none of it.
			other := e.newAccount("Other")
			ob := e.browser()
			ob.signIn(other.APIKey)
			if status, _ := ob.get(unitPath); status != http.StatusNotFound {
				t.Errorf("another account's GET of the unit: %d; want 404", status)
			}
			for _, p := range []struct {
				path string
				form url.Values
			}{
				{unitPath, url.Values{"name": {"Mine"}}},
				{unitPath + "/calendars", url.Values{"calendarId": {channel.ID}}},
				{unitPath + "/calendars/" + own.ID + "/detach", nil},
				{unitPath + "/delete", url.Values{"confirm": {"yes"}}},
			} {
				if status, _, _ := ob.post(p.path, p.form); status != http.StatusNotFound {
					t.Errorf("another account's POST %s: %d; want 404", p.path, status)
				}
			}
			if _, body := ob.get("/console/units"); strings.Contains(body, unitID) {
				t.Error("another account's units list shows the unit")
			}

			if status, _, _ := b.post(unitPath+"/delete", nil); status != http.StatusBadRequest {
				t.Errorf("delete without confirmation: status %d; want 400", status)
			}
			if status, _, _ := b.post(unitPath+"/delete", url.Values{"confirm": {"yes"}}); status != http.StatusSeeOther {
				t.Errorf("delete: status %d", status)
			}
			if _, err := e.units.Unit(ctx, a.ID, unitID); err == nil {
				t.Error("the unit is still there after its deletion")
			}
			if _, err := e.cals.Calendar(ctx, a.ID, own.ID); err != nil {
				t.Errorf("the unit's calendar went with it: %v", err)
			}
		})
	}
}

// TestUnitsPaging: the list shows a page of units and links the next.
func TestUnitsPaging(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.newAccount("Acme")
	ctx := context.Background()
	for i := range 51 {
		name := "Room " + string(rune('A'+i/26)) + string(rune('a'+i%26))
		if _, err := e.units.CreateUnit(ctx, a.ID, availability.UnitInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.signIn(a.APIKey)
	_, body := b.get("/console/units")
	if !strings.Contains(body, "Room Aa") || strings.Contains(body, "Room Bz") || !strings.Contains(body, "More units") {
		t.Fatal("the first page is not the first 50 units with a link to more")
	}
	next := strings.Split(strings.Split(body, `<a href="?after=`)[1], `"`)[0]
	if _, body := b.get("/console/units?after=" + next); !strings.Contains(body, "Room By") || strings.Contains(body, "Room Aa") || strings.Contains(body, "More units") {
		t.Error("the second page is not the last unit alone")
	}
}

// TestUnitTimelineGroupsDenseDays: events of one calendar on the same
// half days share a bar that links to the agenda of that day.
func TestUnitTimelineGroupsDenseDays(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.newAccount("Acme")
	ctx := context.Background()
	cal, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Meeting room")})
	u, err := e.units.CreateUnit(ctx, a.ID, availability.UnitInput{Name: ptr("Room")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.units.SetCalendarUnit(ctx, a.ID, cal.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	for _, ev := range [][3]string{
		{"Stand-up", "2030-01-02T09:00:00", "2030-01-02T10:00:00"},
		{"Review", "2030-01-02T09:30:00", "2030-01-02T10:30:00"},
		{"Call", "2030-01-02T10:00:00", "2030-01-02T11:00:00"},
		{"Workshop", "2030-01-02T15:00:00", "2030-01-02T16:00:00"},
	} {
		if _, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{Summary: &ev[0], Start: &ev[1], End: &ev[2]}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.signIn(a.APIKey)
	_, body := b.get("/console/units/" + u.ID + "?from=2030-01-01")
	// 2 January's morning is half day 2 (column 4), its afternoon 3.
	wantContains(t, "dense timeline", body,
		`class="bar ev gs4 ge5 ln1" href="/console/calendars/`+cal.ID+`?from=2030-01-02"`, ">3 events<",
		`class="bar ev gs5 ge6 ln1"`, ">Workshop<")
	for _, s := range []string{">Stand-up<", ">Review<", ">Call<"} {
		if strings.Contains(body, s) {
			t.Errorf("the timeline draws %s apart from the events it shares half days with", s)
		}
	}

	// The page's availability is cached until the account's calendars
	// change: a write that tells no one (straight to the store) is not
	// seen yet; the next write through the service drops the cache.
	quiet := &store.Event{ID: "evt_quiet", AccountID: a.ID, CalendarID: cal.ID, UID: "quiet", Summary: "Unannounced",
		Start: time.Date(2030, 1, 4, 15, 0, 0, 0, time.UTC), End: time.Date(2030, 1, 4, 16, 0, 0, 0, time.UTC),
		Status: store.StatusConfirmed, TimeZone: "UTC", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if _, err := e.db.CreateEvent(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	if _, body := b.get("/console/units/" + u.ID + "?from=2030-01-01"); strings.Contains(body, "Unannounced") {
		t.Error("the timeline read its availability again without a change note")
	}
	if _, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{Summary: ptr("Evening"),
		Start: ptr("2030-01-05T20:00:00"), End: ptr("2030-01-05T21:00:00")}); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/console/units/" + u.ID + "?from=2030-01-01")
	wantContains(t, "timeline after a change", body, ">Evening<", ">Unannounced<")
}
