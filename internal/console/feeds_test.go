package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store/storetest"
)

// TestFeedSwitchForms toggles the account's and a calendar's feed from
// the Feeds screen with plain forms (no JavaScript), and checks what the
// feed URLs answer after each step, on every backend.
func TestFeedSwitchForms(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			ctx := context.Background()
			a, other := e.newAccount("Rentals"), e.newAccount("Other")
			name := "Beach " + hostileAttr
			beach, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			loftName, theirName := "Loft", "Theirs"
			loft, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: &loftName})
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := e.cals.CreateCalendar(ctx, other.ID, calendar.CalendarInput{Name: &theirName})
			if err != nil {
				t.Fatal(err)
			}
			feedURL := func(calID string) string {
				return e.srv.URL + "/feeds/" + a.ID + "/" + calID + ".ics?token=" + a.FeedToken
			}
			fetch := func(u string) (int, string) {
				t.Helper()
				res, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(body)
			}
			wantFeed := func(step, calID string, status int, text string) {
				t.Helper()
				got, body := fetch(feedURL(calID))
				if got != status || !strings.Contains(body, text) {
					t.Errorf("%s: feed of %s = %d %q; want %d with %q", step, calID, got, body, status, text)
				}
			}
			wantFeed("at first", beach.ID, http.StatusOK, "BEGIN:VCALENDAR")

			b := e.browser()
			b.signIn(a.APIKey)
			_, page := b.get("/console/feeds")
			for _, want := range []string{"Disable all feeds", `action="/console/feeds/calendars/` + beach.ID + `/switch"`,
				`aria-label="Disable the feed of Beach &#34;&gt;&lt;img src=x onerror=alert(1)&gt;"`} {
				if !strings.Contains(page, want) {
					t.Errorf("Feeds page lacks %q", want)
				}
			}
			if strings.Contains(page, hostileAttr) {
				t.Error("Feeds page shows the hostile calendar name unescaped")
			}

			post := func(path, disabled string, want int) string {
				t.Helper()
				status, body, res := b.post(path, url.Values{"disabled": {disabled}})
				if status != want {
					t.Fatalf("POST %s disabled=%s = %d; want %d\n%s", path, disabled, status, want, body)
				}
				if status == http.StatusSeeOther {
					_, body = b.get(res.Header.Get("Location"))
				}
				return body
			}
			page = post("/console/feeds/calendars/"+beach.ID+"/switch", "true", http.StatusSeeOther)
			if !strings.Contains(page, "Feed disabled") || !strings.Contains(page, `aria-label="Enable the feed of Beach`) {
				t.Errorf("after disabling a calendar's feed the page lacks its notice or its Enable button")
			}
			wantFeed("beach off", beach.ID, http.StatusForbidden, "this calendar's iCal feed is turned off")
			wantFeed("beach off", loft.ID, http.StatusOK, "BEGIN:VCALENDAR")

			page = post("/console/feeds/switch", "true", http.StatusSeeOther)
			if !strings.Contains(page, "Enable all feeds") || !strings.Contains(page, "Every feed of the account is disabled") {
				t.Errorf("after disabling every feed the page does not say so")
			}
			wantFeed("account off", loft.ID, http.StatusForbidden, "the account's iCal feeds are turned off")
			if got, body := fetch(e.srv.URL + "/feeds/" + a.ID + ".ics?token=" + a.FeedToken); got != http.StatusForbidden {
				t.Errorf("account off: all-calendars feed = %d %q; want 403", got, body)
			}
			if got, _ := fetch(e.srv.URL + "/feeds/" + other.ID + "/" + theirs.ID + ".ics?token=" + other.FeedToken); got != http.StatusOK {
				t.Errorf("account off: another account's feed = %d; want 200", got)
			}

			// Refusals change nothing: a bad value, another account's
			// calendar, no CSRF token.
			post("/console/feeds/switch", "maybe", http.StatusBadRequest)
			post("/console/feeds/calendars/"+beach.ID+"/switch", "", http.StatusBadRequest)
			post("/console/feeds/calendars/"+theirs.ID+"/switch", "true", http.StatusNotFound)
			if status, _, _ := b.post("/console/feeds/switch", url.Values{"disabled": {"false"}, "csrf": {""}}); status != http.StatusForbidden {
				t.Errorf("switch without a CSRF token = %d; want 403", status)
			}
			wantFeed("after refusals", loft.ID, http.StatusForbidden, "the account's iCal feeds are turned off")
			if c, _ := e.cals.Calendar(ctx, other.ID, theirs.ID); c.FeedDisabled {
				t.Error("another account's calendar feed was switched off")
			}

			post("/console/feeds/switch", "false", http.StatusSeeOther)
			wantFeed("account on", loft.ID, http.StatusOK, "BEGIN:VCALENDAR")
			wantFeed("account on", beach.ID, http.StatusForbidden, "this calendar's iCal feed is turned off")
			post("/console/feeds/calendars/"+beach.ID+"/switch", "false", http.StatusSeeOther)
			wantFeed("all on", beach.ID, http.StatusOK, "BEGIN:VCALENDAR")
		})
	}
}
