package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store/storetest"
)

// TestMonthShowsOngoingStays: a stay that began before the month grid's
// first day shows on the days it still runs.
func TestMonthShowsOngoingStays(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme")
			ctx := context.Background()
			cal, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Cottage"), TimeZone: ptr("Europe/Berlin")})
			// The March 2030 grid starts on Monday 25 February.
			for _, ev := range []calendar.EventInput{
				{Summary: ptr("Long stay"), Start: ptr("2030-02-20"), End: ptr("2030-02-27"), AllDay: ptr(true)},
				{Summary: ptr("Season let"), Start: ptr("2029-12-01"), End: ptr("2030-03-03"), AllDay: ptr(true)},
				{Summary: ptr("Gone before"), Start: ptr("2030-02-10"), End: ptr("2030-02-25"), AllDay: ptr(true)},
			} {
				if _, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, ev); err != nil {
					t.Fatal(err)
				}
			}
			b := e.browser()
			b.signIn(a.APIKey)
			_, body := b.get("/console/calendars/" + cal.ID + "?view=month&month=2030-03")
			// Nights of 25 and 26 February; the check-out day is free.
			if n := strings.Count(body, ">Long stay<"); n != 2 {
				t.Errorf("the month grid shows the stay begun before it on %d days; want 2", n)
			}
			if n := strings.Count(body, ">Season let<"); n != 6 {
				t.Errorf("the month grid shows the season let on %d days; want 6", n)
			}
			if strings.Contains(body, "Gone before") {
				t.Error("the month grid shows a stay that ended as it begins")
			}
		})
	}
}
