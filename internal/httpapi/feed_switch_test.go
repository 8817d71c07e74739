package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFeedSwitch walks NetterTech's "Enable iCal feed" toggle through the
// API: a calendar's switch and the account-wide one, each answering 403
// with its reason (after the token check), with no 200 or 304 from a
// render cached before the switch, export feeds following their
// calendar's switch, and everything back as it was once enabled again.
func TestFeedSwitch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, b := s.newAccount("Rentals"), s.newAccount("Other")
	beach, loft := s.newCalendar(a, "Beach", "UTC"), s.newCalendar(a, "Loft", "UTC")
	theirs := s.newCalendar(b, "Theirs", "UTC")
	s.newEvent(a, beach, map[string]any{"summary": "Beach stay", "start": "2030-06-01", "end": "2030-06-05", "allDay": true})
	s.newEvent(a, loft, map[string]any{"summary": "Loft stay", "start": "2030-07-01", "end": "2030-07-03", "allDay": true})
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	for _, c := range []string{beach, loft} {
		s.must(http.StatusOK, "PATCH", "/v1/calendars/"+c, a.key, map[string]any{"unitId": unit})
	}
	export := func(cal string) string { return "/feeds/" + a.id + "/" + cal + "/blocked.ics?token=" + a.feedToken }
	paths := map[string]string{
		"all": feedPath(a, "", a.feedToken), "beach": feedPath(a, beach, a.feedToken), "loft": feedPath(a, loft, a.feedToken),
		"beach export": export(beach), "loft export": export(loft),
	}
	// Warm the caches and keep each feed's ETag for conditional requests.
	etags := map[string]string{}
	for name, p := range paths {
		r := s.do("GET", p, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s (%s) = %d %s; want 200", name, p, r.status, r.body)
		}
		etags[name] = r.header.Get("ETag")
	}

	const calendarOff, accountOff = "this calendar's iCal feed is turned off", "the account's iCal feeds are turned off"
	type want struct {
		status int
		text   string
		absent string
	}
	check := func(step string, wants map[string]want) {
		t.Helper()
		for name, w := range wants {
			for _, cond := range []string{"", "If-None-Match"} {
				var hdr []string
				if cond != "" {
					hdr = []string{cond, etags[name]}
				}
				if cond != "" && w.status == http.StatusOK {
					continue // a feed that is on behaves as TestFeedConditionalRequests says
				}
				r := s.do("GET", paths[name], "", nil, hdr...)
				if r.status != w.status {
					t.Errorf("%s: GET %s %v = %d %q; want %d", step, name, hdr, r.status, r.body, w.status)
					continue
				}
				if !strings.Contains(string(r.body), w.text) {
					t.Errorf("%s: GET %s %v body = %q; want it to contain %q", step, name, hdr, r.body, w.text)
				}
				if w.absent != "" && strings.Contains(string(r.body), w.absent) {
					t.Errorf("%s: GET %s body contains %q", step, name, w.absent)
				}
			}
		}
		// Another account's feeds never move with this one's switches.
		if r := s.do("GET", feedPath(b, theirs, b.feedToken), "", nil); r.status != http.StatusOK {
			t.Errorf("%s: the other account's feed = %d %s; want 200", step, r.status, r.body)
		}
	}

	got := s.must(http.StatusOK, "PATCH", "/v1/calendars/"+beach, a.key, map[string]any{"feedDisabled": true})
	if got["feedDisabled"] != true || got["name"] != "Beach" || got["unitId"] != unit {
		t.Errorf("PATCH feedDisabled = %v; want feedDisabled true, the rest unchanged", got)
	}
	check("beach off", map[string]want{
		"beach":        {http.StatusForbidden, calendarOff, ""},
		"beach export": {http.StatusForbidden, calendarOff, ""},
		"all":          {http.StatusOK, "Loft stay", "Beach stay"},
		"loft":         {http.StatusOK, "Loft stay", ""},
		"loft export":  {http.StatusOK, "BEGIN:VEVENT", ""},
	})
	// The token is checked first: a wrong one learns nothing of the switch.
	if r := s.do("GET", feedPath(a, beach, b.feedToken), "", nil); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "invalid feed token") {
		t.Errorf("a disabled feed with a wrong token = %d %q; want 403 invalid feed token", r.status, r.body)
	}

	if got := s.must(http.StatusOK, "PATCH", "/v1/feed-settings", a.key, map[string]any{"disabled": true}); got["disabled"] != true {
		t.Errorf("PATCH /v1/feed-settings = %v; want disabled true", got)
	}
	if got := s.must(http.StatusOK, "GET", "/v1/feed-settings", a.key, nil); got["disabled"] != true {
		t.Errorf("GET /v1/feed-settings = %v; want disabled true", got)
	}
	check("account off", map[string]want{
		"all":          {http.StatusForbidden, accountOff, ""},
		"beach":        {http.StatusForbidden, accountOff, ""},
		"loft":         {http.StatusForbidden, accountOff, ""},
		"beach export": {http.StatusForbidden, accountOff, ""},
		"loft export":  {http.StatusForbidden, accountOff, ""},
	})
	if got := s.must(http.StatusOK, "GET", "/v1/feed-settings", b.key, nil); got["disabled"] != false {
		t.Errorf("the other account's feed settings = %v; want disabled false", got)
	}

	s.must(http.StatusOK, "PATCH", "/v1/feed-settings", a.key, map[string]any{"disabled": false})
	check("account on, beach still off", map[string]want{
		"beach": {http.StatusForbidden, calendarOff, ""},
		"loft":  {http.StatusOK, "Loft stay", ""},
		"all":   {http.StatusOK, "Loft stay", "Beach stay"},
	})
	s.must(http.StatusOK, "PATCH", "/v1/calendars/"+beach, a.key, map[string]any{"feedDisabled": false})
	check("all on", map[string]want{
		"beach":        {http.StatusOK, "Beach stay", ""},
		"beach export": {http.StatusOK, "BEGIN:VEVENT", ""},
		"all":          {http.StatusOK, "Beach stay", ""},
	})
	// The calendar's bytes are as before the switch: its old ETag is good.
	if r := s.do("GET", paths["beach"], "", nil, "If-None-Match", etags["beach"]); r.status != http.StatusNotModified {
		t.Errorf("beach on again, If-None-Match with its first ETag = %d; want 304", r.status)
	}

	bad := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PATCH", "/v1/feed-settings", map[string]any{}, http.StatusBadRequest},
		{"PATCH", "/v1/feed-settings", map[string]any{"disabled": "yes"}, http.StatusBadRequest},
		{"PATCH", "/v1/feed-settings", map[string]any{"disabled": true, "token": "x"}, http.StatusBadRequest},
		{"PATCH", "/v1/calendars/" + beach, map[string]any{"feedDisabled": 1}, http.StatusBadRequest},
		{"PATCH", "/v1/calendars/" + theirs, map[string]any{"feedDisabled": true}, http.StatusNotFound},
	}
	for _, tt := range bad {
		if r := s.do(tt.method, tt.path, a.key, tt.body); r.status != tt.want {
			t.Errorf("%s %s %v = %d %s; want %d", tt.method, tt.path, tt.body, r.status, r.body, tt.want)
		}
	}
	if r := s.do("GET", feedPath(a, "", a.feedToken), "", nil); r.status != http.StatusOK {
		t.Errorf("after the refused changes the account feed = %d; want 200 (nothing changed)", r.status)
	}
	if r := s.do("GET", feedPath(b, theirs, b.feedToken), "", nil); r.status != http.StatusOK {
		t.Errorf("the other account's calendar after a foreign PATCH = %d; want 200", r.status)
	}
	if r := s.do("PATCH", "/v1/feed-settings", "", map[string]any{"disabled": true}); r.status != http.StatusUnauthorized {
		t.Errorf("PATCH /v1/feed-settings without a key = %d; want 401", r.status)
	}
}
