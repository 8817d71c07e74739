package console_test

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store/storetest"
)

// TestLiveStream checks the Server-Sent Events that refresh pages: a
// write after the page was read sends a change event at once.
func TestLiveStream(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme")
			b := e.browser()
			b.signIn(a.APIKey)
			_, page := b.get("/console/overview")
			m := regexp.MustCompile(`data-live="(/console/live\?mark=[0-9.]+)"`).FindStringSubmatch(page)
			if m == nil {
				t.Fatal("the page names no live stream")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+m[1], nil)
			res, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("live stream Content-Type %q", ct)
			}
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			// Nothing changed since the page: only the greeting.
			for l := range lines {
				if l == "event: hello" {
					break
				}
			}
			cal, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Cal")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{
				Summary: ptr("x"), Start: ptr("2030-01-01T10:00:00"), End: ptr("2030-01-01T11:00:00"),
			}); err != nil {
				t.Fatal(err)
			}
			for l := range lines {
				if strings.HasPrefix(l, "event: change") {
					return
				}
			}
			t.Fatal("no change event after a write")
		})
	}
}

func TestLiveStreamNeedsSession(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	res, err := http.Get(e.srv.URL + "/console/live")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("live stream without a session: %d; want 401", res.StatusCode)
	}
}
