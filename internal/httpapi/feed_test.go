package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func feedPath(a testAccount, calID, token string) string {
	if calID == "" {
		return "/feeds/" + a.id + ".ics?token=" + token
	}
	return "/feeds/" + a.id + "/" + calID + ".ics?token=" + token
}

func TestFeedAccess(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, b := s.newAccount("Acme"), s.newAccount("Other")
	cal := s.newCalendar(a, "Beach", "Europe/Berlin")
	otherCal := s.newCalendar(b, "Theirs", "UTC")
	tests := []struct {
		name string
		path string
		want int
		text string
	}{
		{"all calendars", feedPath(a, "", a.feedToken), 200, "BEGIN:VCALENDAR"},
		{"one calendar", feedPath(a, cal, a.feedToken), 200, "X-WR-CALNAME:Beach"},
		{"missing token", "/feeds/" + a.id + ".ics", 403, "missing feed token"},
		{"empty token", feedPath(a, "", ""), 403, "missing feed token"},
		{"wrong token", feedPath(a, "", strings.Repeat("0", 64)), 403, "invalid feed token"},
		{"another account's token", feedPath(a, cal, b.feedToken), 403, "invalid feed token"},
		{"unknown account", "/feeds/acc_nobody.ics?token=" + a.feedToken, 403, "invalid feed token"},
		{"unknown calendar, right token", feedPath(a, "cal_nothing", a.feedToken), 404, "not found"},
		{"unknown calendar, wrong token", feedPath(a, "cal_nothing", b.feedToken), 403, "invalid feed token"},
		{"another account's calendar", feedPath(a, otherCal, a.feedToken), 404, "not found"},
		{"no .ics suffix", "/feeds/" + a.id + "?token=" + a.feedToken, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("GET", tt.path, "", nil)
			if r.status != tt.want {
				t.Fatalf("GET %s = %d %q; want %d", tt.path, r.status, r.body, tt.want)
			}
			if !strings.Contains(string(r.body), tt.text) {
				t.Errorf("body = %q; want it to contain %q", r.body, tt.text)
			}
			ct := r.header.Get("Content-Type")
			switch {
			case tt.want == 200 && ct != "text/calendar; charset=utf-8":
				t.Errorf("Content-Type = %q; want text/calendar; charset=utf-8", ct)
			case tt.want == 403 && !strings.HasPrefix(ct, "text/plain"):
				t.Errorf("403 Content-Type = %q; want a plain-text reason", ct)
			}
		})
	}
	if strings.Contains(s.logs.String(), a.feedToken) || strings.Contains(s.logs.String(), b.feedToken) {
		t.Errorf("a feed token appears in the logs")
	}
}

func TestFeedConditionalRequests(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "Europe/Berlin")
	other := s.newCalendar(a, "Loft", "UTC")
	ev := s.newEvent(a, cal, map[string]any{"summary": "Booking", "start": "2026-12-01T15:00:00", "end": "2026-12-03T10:00:00"})
	path, allPath, otherPath := feedPath(a, cal, a.feedToken), feedPath(a, "", a.feedToken), feedPath(a, other, a.feedToken)

	first := s.do("GET", path, "", nil)
	etag, lastMod := first.header.Get("ETag"), first.header.Get("Last-Modified")
	if first.status != 200 || etag == "" || lastMod == "" {
		t.Fatalf("first GET = %d, ETag %q, Last-Modified %q; want 200 with both", first.status, etag, lastMod)
	}
	if r := s.do("GET", path, "", nil, "If-None-Match", etag); r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("If-None-Match with the ETag = %d (%d bytes); want 304 and no body", r.status, len(r.body))
	}
	if r := s.do("GET", path, "", nil, "If-Modified-Since", lastMod); r.status != http.StatusNotModified {
		t.Errorf("If-Modified-Since = %d; want 304", r.status)
	}
	if r := s.do("GET", path, "", nil, "If-None-Match", `"stale"`); r.status != 200 {
		t.Errorf("If-None-Match with another ETag = %d; want 200", r.status)
	}
	// Go's client asks for gzip on a GET, not on a HEAD: ask for the same
	// representation, whose ETag it is.
	if r := s.do("HEAD", path, "", nil, "Accept-Encoding", "gzip"); r.status != 200 || r.header.Get("ETag") != etag {
		t.Errorf("HEAD = %d, ETag %q; want 200 and the same ETag", r.status, r.header.Get("ETag"))
	}

	// Repeated GETs of an unchanged feed come from the cache.
	reads := s.store.feedReads.Load()
	for range 20 {
		s.do("GET", path, "", nil)
		s.do("GET", path, "", nil, "If-None-Match", etag)
	}
	if got := s.store.feedReads.Load() - reads; got != 0 {
		t.Errorf("40 GETs of an unchanged feed read its events %d times; want 0", got)
	}
	allETag := s.do("GET", allPath, "", nil).header.Get("ETag")
	otherETag := s.do("GET", otherPath, "", nil).header.Get("ETag")

	// Any change to an event of the feed changes its ETag, and the
	// all-calendars feed's, but not another calendar's.
	s.must(200, "PATCH", "/v1/calendars/"+cal+"/events/"+ev["id"].(string), a.key, map[string]string{"location": "Sylt"})
	changed := s.do("GET", path, "", nil, "If-None-Match", etag)
	if changed.status != 200 || changed.header.Get("ETag") == etag || !strings.Contains(string(changed.body), "LOCATION:Sylt") {
		t.Errorf("after an update: %d, ETag %q (was %q); want 200, a new ETag and the new location", changed.status, changed.header.Get("ETag"), etag)
	}
	if r := s.do("GET", allPath, "", nil, "If-None-Match", allETag); r.status != 200 || r.header.Get("ETag") == allETag {
		t.Errorf("all-calendars feed after an update = %d, ETag unchanged %v; want a new ETag", r.status, r.header.Get("ETag") == allETag)
	}
	if r := s.do("GET", otherPath, "", nil, "If-None-Match", otherETag); r.status != 304 {
		t.Errorf("other calendar's feed after an update = %d; want 304", r.status)
	}
	for _, step := range []struct {
		name string
		do   func()
	}{
		{"create", func() {
			s.newEvent(a, cal, map[string]any{"summary": "New", "start": "2027-01-01", "end": "2027-01-02"})
		}},
		{"delete", func() {
			s.must(204, "DELETE", "/v1/calendars/"+cal+"/events/"+ev["id"].(string), a.key, nil)
		}},
		{"rename calendar", func() {
			s.must(200, "PATCH", "/v1/calendars/"+cal, a.key, map[string]string{"name": "Beach 2"})
		}},
	} {
		before := s.do("GET", path, "", nil).header.Get("ETag")
		step.do()
		if after := s.do("GET", path, "", nil, "If-None-Match", before); after.status != 200 || after.header.Get("ETag") == before {
			t.Errorf("after %s: %d with ETag %q (was %q); want 200 and a new ETag", step.name, after.status, after.header.Get("ETag"), before)
		}
	}
}

func TestFeedTokenRotation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	got := s.must(200, "GET", "/v1/feed-token", a.key, nil)
	if got["feedToken"] != a.feedToken || !strings.HasSuffix(got["feedUrl"].(string), feedPath(a, "", a.feedToken)) {
		t.Errorf("GET /v1/feed-token = %v", got)
	}
	if u := got["calendarFeedUrls"].(map[string]any)[cal]; !strings.HasSuffix(u.(string), feedPath(a, cal, a.feedToken)) {
		t.Errorf("calendar feed URL = %v", u)
	}
	// Warm the cache with the old token, then rotate.
	s.must200Text(feedPath(a, cal, a.feedToken))
	s.must200Text(feedPath(a, "", a.feedToken))
	rotated := s.must(200, "POST", "/v1/feed-token/rotate", a.key, nil)
	newToken := rotated["feedToken"].(string)
	if newToken == a.feedToken || len(newToken) != 64 {
		t.Fatalf("rotated token = %q; want a new 64-character token", newToken)
	}
	for _, calID := range []string{cal, ""} {
		if r := s.do("GET", feedPath(a, calID, a.feedToken), "", nil); r.status != 403 {
			t.Errorf("old token after rotation (calendar %q) = %d; want 403 at once", calID, r.status)
		}
		if r := s.do("GET", feedPath(a, calID, newToken), "", nil); r.status != 200 {
			t.Errorf("new token (calendar %q) = %d; want 200", calID, r.status)
		}
	}
	if again := s.must(200, "GET", "/v1/feed-token", a.key, nil); again["feedToken"] != newToken {
		t.Errorf("GET /v1/feed-token after rotation = %v; want the new token", again["feedToken"])
	}
}

func TestFeedContent(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	beach := s.newCalendar(a, "Beach", "Europe/Berlin")
	loft := s.newCalendar(a, "Loft", "America/New_York")
	s.newEvent(a, beach, map[string]any{"uid": "shared-uid", "summary": "Stay, with; punctuation\\ and\nnewline", "start": "2026-12-01T15:00:00", "end": "2026-12-03T10:00:00",
		"rrule": "FREQ=DAILY;COUNT=5", "exdates": []string{"2026-12-02T15:00:00"}})
	s.newEvent(a, beach, map[string]any{"summary": "Gone", "status": "cancelled", "start": "2026-12-10", "end": "2026-12-11"})
	s.newEvent(a, beach, map[string]any{"summary": "Maybe", "status": "tentative", "start": "2026-12-12", "end": "2026-12-14"})
	s.newEvent(a, loft, map[string]any{"uid": "shared-uid", "summary": "Utc", "timeZone": "UTC", "start": "2026-12-05T09:00:00Z", "end": "2026-12-05T10:00:00Z"})

	body := string(s.must200Text(feedPath(a, beach, a.feedToken)))
	for _, want := range []string{
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "PRODID:", "X-WR-CALNAME:Beach\r\n", "REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n",
		"X-PUBLISHED-TTL:PT15M\r\n", "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
		"DTSTART;TZID=Europe/Berlin:20261201T150000\r\n", "EXDATE;TZID=Europe/Berlin:20261202T150000\r\n",
		"RRULE:FREQ=DAILY;COUNT=5\r\n", `SUMMARY:Stay\, with\; punctuation\\ and\nnewline`,
		"DTSTART;VALUE=DATE:20261212\r\n", "DTEND;VALUE=DATE:20261214\r\n", "STATUS:TENTATIVE\r\n", "STATUS:CONFIRMED\r\n",
		"SEQUENCE:0\r\n", "DTSTAMP:", "END:VCALENDAR\r\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("feed lacks %q", want)
		}
	}
	if strings.Contains(body, "Gone") {
		t.Errorf("the cancelled event is in the feed; cancelled events are left out")
	}
	for i, line := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
		if len(line) > 75 || strings.Contains(line, "\n") {
			t.Errorf("line %d is %d octets or has a bare LF: %q", i+1, len(line), line)
		}
	}
	all := string(s.must200Text(feedPath(a, "", a.feedToken)))
	for _, want := range []string{"X-WR-CALNAME:Acme", "UID:shared-uid\r\n", "UID:shared-uid-" + loft, "DTSTART:20261205T090000Z",
		"TZID:Europe/Berlin"} {
		if !strings.Contains(all, want) {
			t.Errorf("all-calendars feed lacks %q", want)
		}
	}
	if strings.Contains(all, "TZID:America/New_York") {
		t.Errorf("all-calendars feed has a VTIMEZONE for a zone no event uses")
	}
}

func (s *testServer) must200Text(path string) []byte {
	s.t.Helper()
	r := s.do("GET", path, "", nil)
	if r.status != 200 {
		s.t.Fatalf("GET %s = %d %s", path, r.status, r.body)
	}
	return r.body
}

func TestFeedLastModifiedFollowsWrites(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	r := s.do("GET", feedPath(a, cal, a.feedToken), "", nil)
	lm, err := http.ParseTime(r.header.Get("Last-Modified"))
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", r.header.Get("Last-Modified"), err)
	}
	if d := time.Since(lm); d < 0 || d > time.Minute {
		t.Errorf("Last-Modified = %v; want the calendar's last write, just now", lm)
	}
}

// TestFeedRefusalReadsNoEvents checks that a refused feed request on a cold
// cache is answered from the account row alone: account ids are public, so
// a wrong token must not make the server load and render the events.
func TestFeedRefusalReadsNoEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, b := s.newAccount("Acme"), s.newAccount("Other")
	cal := s.newCalendar(a, "Beach", "UTC")
	for i := range 20 {
		s.newEvent(a, cal, map[string]any{
			"summary": "Booking", "start": fmt.Sprintf("2027-01-%02dT10:00:00", 1+i), "end": fmt.Sprintf("2027-01-%02dT11:00:00", 1+i),
		})
	}
	tests := []struct {
		name  string
		path  string
		want  int
		reads int64
	}{
		{"wrong token, all calendars", feedPath(a, "", strings.Repeat("0", 64)), 403, 0},
		{"wrong token, one calendar", feedPath(a, cal, strings.Repeat("0", 64)), 403, 0},
		{"another account's token", feedPath(a, cal, b.feedToken), 403, 0},
		{"wrong token, unknown calendar", feedPath(a, "cal_nothing", b.feedToken), 403, 0},
		{"short token", feedPath(a, "", "x"), 403, 0},
		{"unknown account", "/feeds/acc_nobody.ics?token=" + a.feedToken, 403, 0},
		// The right token does read, which shows the counter counts. It
		// comes last: it fills the cache, and every case before it
		// meets a cold one.
		{"right token", feedPath(a, cal, a.feedToken), 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.store.feedReads.Load()
			if r := s.do("GET", tt.path, "", nil); r.status != tt.want {
				t.Fatalf("GET %s = %d %q; want %d", tt.path, r.status, r.body, tt.want)
			}
			if got := s.store.feedReads.Load() - before; got != tt.reads {
				t.Errorf("GET %s read feed content %d times; want %d", tt.path, got, tt.reads)
			}
		})
	}
}
