package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
)

func TestUnitsCRUD(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Rentals")
	u := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house", "timeZone": "Europe/Lisbon"})
	if u["sameDayTurnover"] != true || u["exportSummary"] != "Not available" || u["timeZone"] != "Europe/Lisbon" {
		t.Errorf("created unit = %v; want the defaults filled in", u)
	}
	id := u["id"].(string)
	s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Cabin"})
	page := s.must(http.StatusOK, "GET", "/v1/units?limit=1", a.key, nil)
	if d := page["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != id || page["nextPageToken"] == nil {
		t.Fatalf("first page = %v; want the first unit and a next page", page)
	}
	page = s.must(http.StatusOK, "GET", "/v1/units?limit=1&pageToken="+page["nextPageToken"].(string), a.key, nil)
	if d := page["data"].([]any); len(d) != 1 || d[0].(map[string]any)["name"] != "Cabin" || page["nextPageToken"] != nil {
		t.Errorf("second page = %v; want the second unit, last", page)
	}
	got := s.must(http.StatusOK, "PATCH", "/v1/units/"+id, a.key, map[string]any{"sameDayTurnover": false, "exportSummary": "Booked"})
	if got["sameDayTurnover"] != false || got["exportSummary"] != "Booked" || got["name"] != "Beach house" {
		t.Errorf("patched unit = %v", got)
	}
	bad := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/units", map[string]any{}},
		{"POST", "/v1/units", map[string]any{"name": "  "}},
		{"POST", "/v1/units", map[string]any{"name": "x", "timeZone": "Mars/Olympus"}},
		{"POST", "/v1/units", map[string]any{"name": "x", "colour": "red"}},
		{"POST", "/v1/units", `{"name": "x"`},
		{"POST", "/v1/units", map[string]any{"name": "bell\a"}},
		{"POST", "/v1/units", map[string]any{"name": strings.Repeat("x", 256)}},
		{"PATCH", "/v1/units/" + id, map[string]any{"exportSummary": ""}},
		{"PATCH", "/v1/units/" + id, map[string]any{"sameDayTurnover": "no"}},
		{"GET", "/v1/units/" + id + "/availability?from=2027-01-01", nil},
		{"GET", "/v1/units/" + id + "/availability?from=2027-02-01&to=2027-01-01", nil},
		{"GET", "/v1/units/" + id + "/availability?from=2027-01-01&to=2030-01-01", nil},
		{"GET", "/v1/units/" + id + "/availability?from=yesterday&to=2027-01-01", nil},
		{"GET", "/v1/units/" + id + "/conflicts?state=maybe", nil},
		{"GET", "/v1/availability?from=2027-01-01&to=2027-02-01", nil},
	}
	for _, b := range bad {
		if r := s.do(b.method, b.path, a.key, b.body); r.status != http.StatusBadRequest {
			t.Errorf("%s %s %v = %d %s; want 400", b.method, b.path, b.body, r.status, r.body)
		}
	}
	if r := s.do("POST", "/v1/units", a.key, `{"name":"`+strings.Repeat("x", 2<<20)+`"}`); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d; want 413", r.status)
	}
	s.must(http.StatusNoContent, "DELETE", "/v1/units/"+id, a.key, nil)
	s.must(http.StatusNotFound, "GET", "/v1/units/"+id, a.key, nil)
	if r := s.do("GET", "/v1/availability?unit="+id+"&from=2027-01-01&to=2027-02-01", a.key, nil); r.status != http.StatusNotFound {
		t.Errorf("availability of a deleted unit = %d; want 404", r.status)
	}
}

func TestCalendarUnitAttachment(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, other := s.newAccount("Rentals"), s.newAccount("Other")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	foreign := s.must(http.StatusCreated, "POST", "/v1/units", other.key, map[string]any{"name": "Theirs"})["id"].(string)
	cal := s.newCalendar(a, "Direct", "Europe/Berlin")
	got := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal, a.key, nil)
	if got["unitId"] != nil || got["exportFeedUrl"] != nil {
		t.Errorf("calendar in no unit = %v; want unitId null and no exportFeedUrl", got)
	}
	got = s.must(http.StatusOK, "PATCH", "/v1/calendars/"+cal, a.key, map[string]any{"unitId": unit})
	want := s.URL + "/feeds/" + a.id + "/" + cal + "/blocked.ics?token=" + a.feedToken
	if got["unitId"] != unit || got["exportFeedUrl"] != want || got["name"] != "Direct" {
		t.Errorf("attached calendar = %v; want unitId %s and exportFeedUrl %s", got, unit, want)
	}
	list := s.must(http.StatusOK, "GET", "/v1/calendars", a.key, nil)["data"].([]any)
	if list[0].(map[string]any)["unitId"] != unit {
		t.Errorf("listed calendar = %v; want its unit", list[0])
	}
	for _, body := range []any{
		map[string]any{"unitId": foreign},
		map[string]any{"unitId": "unit_nope"},
		map[string]any{"unitId": 42},
		map[string]any{"unitId": ""},
	} {
		if r := s.do("PATCH", "/v1/calendars/"+cal, a.key, body); r.status != http.StatusBadRequest {
			t.Errorf("PATCH %v = %d %s; want 400", body, r.status, r.body)
		}
	}
	if got := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal, a.key, nil); got["unitId"] != unit {
		t.Errorf("a refused PATCH changed the unit: %v", got)
	}
	// Renaming with unitId null renames and detaches.
	got = s.must(http.StatusOK, "PATCH", "/v1/calendars/"+cal, a.key, json.RawMessage(`{"name":"Direct 2","unitId":null}`))
	if got["unitId"] != nil || got["exportFeedUrl"] != nil || got["name"] != "Direct 2" {
		t.Errorf("detached calendar = %v", got)
	}
}

func TestAvailabilityAndConflictsAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Rentals")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	empty := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Empty"})["id"].(string)
	direct, other := s.newCalendar(a, "Direct", "UTC"), s.newCalendar(a, "Other", "UTC")
	for _, c := range []string{direct, other} {
		s.must(http.StatusOK, "PATCH", "/v1/calendars/"+c, a.key, map[string]any{"unitId": unit})
	}
	sub := s.must(http.StatusCreated, "POST", "/v1/subscriptions", a.key, map[string]any{
		"webhookUrl": "http://127.0.0.1:9/hook", "eventTypes": []string{"availability.conflict.detected", "availability.conflict.resolved"},
	})["webhookSubscriptionId"].(string)
	e1 := s.newEvent(a, direct, map[string]any{"summary": "Ann", "start": "2030-06-01", "end": "2030-06-05"})
	e2 := s.newEvent(a, other, map[string]any{"summary": "Bob", "start": "2030-06-04", "end": "2030-06-06", "status": "tentative"})

	av := s.must(http.StatusOK, "GET", "/v1/units/"+unit+"/availability?from=2030-05-30&to=2030-06-10", a.key, nil)
	busy := av["busy"].([]any)
	if len(busy) != 1 || busy[0].(map[string]any)["start"] != "2030-06-01T00:00:00Z" || busy[0].(map[string]any)["end"] != "2030-06-06T00:00:00Z" {
		t.Fatalf("busy = %v; want one merged stretch 1–6 June", busy)
	}
	if evs := busy[0].(map[string]any)["events"].([]any); len(evs) != 2 || evs[0].(map[string]any)["start"] != "2030-06-01" ||
		evs[0].(map[string]any)["source"] != "native" || strings.Contains(string(mustJSON(t, av)), "Ann") {
		t.Errorf("busy events = %v; want both events, by date, without their summaries", evs)
	}
	if free := av["free"].([]any); len(free) != 2 {
		t.Errorf("free = %v; want before and after", free)
	}
	many := s.must(http.StatusOK, "GET", "/v1/availability?unit="+empty+","+unit+"&from=2030-05-30&to=2030-06-10", a.key, nil)["data"].([]any)
	if len(many) != 2 || many[0].(map[string]any)["unitId"] != empty || len(many[1].(map[string]any)["busy"].([]any)) != 1 {
		t.Errorf("two units = %v", many)
	}

	det := availability.NewDetector(availability.DetectorConfig{Store: s.store, BaseURL: s.URL})
	runDetector(t, det)
	open := s.must(http.StatusOK, "GET", "/v1/units/"+unit+"/conflicts?state=open", a.key, nil)["data"].([]any)
	if len(open) != 1 {
		t.Fatalf("open conflicts = %v; want one", open)
	}
	c := open[0].(map[string]any)
	cid := c["id"].(string)
	if got := s.must(http.StatusOK, "GET", "/v1/units/"+unit+"/conflicts/"+cid, a.key, nil); got["state"] != "open" {
		t.Errorf("conflict = %v", got)
	}
	s.must(http.StatusNotFound, "GET", "/v1/units/"+empty+"/conflicts/"+cid, a.key, nil)
	s.fanOut()
	s.must(http.StatusOK, "PATCH", "/v1/calendars/"+other+"/events/"+e2["id"].(string), a.key, map[string]any{"status": "cancelled"})
	runDetector(t, det)
	s.fanOut()
	if open := s.must(http.StatusOK, "GET", "/v1/units/"+unit+"/conflicts?state=open", a.key, nil)["data"].([]any); len(open) != 0 {
		t.Errorf("open conflicts after the cancellation = %v; want none", open)
	}
	msgs := s.must(http.StatusOK, "GET", "/v1/subscriptions/"+sub+"/messages", a.key, nil)["data"].([]any)
	var types []string
	for _, m := range msgs {
		m := m.(map[string]any)
		types = append(types, m["eventType"].(string))
		p := m["payload"].(map[string]any)
		data := p["data"].(map[string]any)
		if data["conflictId"] != cid || data["unitId"] != unit {
			t.Errorf("payload = %v; want conflict %s of unit %s", p, cid, unit)
		}
		ids := map[any]bool{}
		for _, e := range data["events"].([]any) {
			ids[e.(map[string]any)["eventId"]] = true
		}
		if !ids[e1["id"]] || !ids[e2["id"]] {
			t.Errorf("payload events = %v; want both events", data["events"])
		}
	}
	// Newest first.
	if strings.Join(types, ",") != "availability.conflict.resolved,availability.conflict.detected" {
		t.Errorf("messages = %v; want one detected and one resolved", types)
	}
}

// runDetector lets a detector read every change written so far.
func runDetector(t *testing.T, d *availability.Detector) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		res, err := d.RunOnce(context.Background())
		if err != nil {
			t.Fatalf("detector: %v", err)
		}
		if res.Changes == 0 && !res.Unsettled {
			return
		}
		if res.Changes == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("detector: the change log did not settle")
}

func TestExportFeedHTTP(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Rentals")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	direct, airbnb, loose := s.newCalendar(a, "Direct", "UTC"), s.newCalendar(a, "Airbnb", "UTC"), s.newCalendar(a, "Loose", "UTC")
	for _, c := range []string{direct, airbnb} {
		s.must(http.StatusOK, "PATCH", "/v1/calendars/"+c, a.key, map[string]any{"unitId": unit})
	}
	s.newEvent(a, direct, map[string]any{"summary": "Guest Ann Smith", "location": "Villa", "start": "2030-06-01", "end": "2030-06-05"})
	path := "/feeds/" + a.id + "/" + airbnb + "/blocked.ics"
	r := s.do("GET", path+"?token="+a.feedToken, "", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/calendar") || r.header.Get("ETag") == "" {
		t.Fatalf("GET export feed = %d %v", r.status, r.header)
	}
	body := string(r.body)
	if !strings.Contains(body, "SUMMARY:Not available") || !strings.Contains(body, "DTSTART;VALUE=DATE:20300601") ||
		strings.Contains(body, "Ann") || strings.Contains(body, "Villa") {
		t.Errorf("export feed:\n%s", body)
	}
	if r2 := s.do("GET", path+"?token="+a.feedToken, "", nil, "If-None-Match", r.header.Get("ETag")); r2.status != http.StatusNotModified {
		t.Errorf("conditional GET = %d; want 304", r2.status)
	}
	// A new booking elsewhere changes the feed (the cache forgets it).
	s.newEvent(a, direct, map[string]any{"summary": "Bob", "start": "2030-07-01", "end": "2030-07-03"})
	if r3 := s.do("GET", path+"?token="+a.feedToken, "", nil, "If-None-Match", r.header.Get("ETag")); r3.status != http.StatusOK ||
		!strings.Contains(string(r3.body), "20300701") {
		t.Errorf("after a new booking = %d:\n%s", r3.status, r3.body)
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{path, http.StatusForbidden},
		{path + "?token=" + strings.Repeat("0", 64), http.StatusForbidden},
		{"/feeds/" + a.id + "/" + loose + "/blocked.ics?token=" + a.feedToken, http.StatusNotFound},
		{"/feeds/" + a.id + "/" + airbnb + "/other.ics?token=" + a.feedToken, http.StatusNotFound},
		{"/feeds/acc_nope/" + airbnb + "/blocked.ics?token=" + a.feedToken, http.StatusForbidden},
	} {
		if r := s.do("GET", tt.path, "", nil); r.status != tt.want {
			t.Errorf("GET %s = %d; want %d", tt.path, r.status, tt.want)
		}
	}
	if strings.Contains(s.logs.String(), a.feedToken) {
		t.Error("the feed token appears in the logs")
	}
}

// TestUnitDeleteAndDetachResolveConflicts: deleting a unit, or detaching
// one of a conflict's calendars from it, sends one
// availability.conflict.resolved webhook per open conflict, naming both
// events, however often the detector and the fan-out run afterwards.
func TestUnitDeleteAndDetachResolveConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(s *testServer, key, unit, calendar string)
	}{
		{"delete unit", func(s *testServer, key, unit, _ string) {
			s.must(http.StatusNoContent, "DELETE", "/v1/units/"+unit, key, nil)
		}},
		{"detach calendar", func(s *testServer, key, _, calendar string) {
			s.must(http.StatusOK, "PATCH", "/v1/calendars/"+calendar, key, json.RawMessage(`{"unitId":null}`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			a := s.newAccount("Rentals")
			unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
			direct, channel := s.newCalendar(a, "Direct", "UTC"), s.newCalendar(a, "Channel", "UTC")
			for _, c := range []string{direct, channel} {
				s.must(http.StatusOK, "PATCH", "/v1/calendars/"+c, a.key, map[string]any{"unitId": unit})
			}
			sub := s.must(http.StatusCreated, "POST", "/v1/subscriptions", a.key, map[string]any{
				"webhookUrl": "http://127.0.0.1:9/hook", "eventTypes": []string{"availability.conflict.detected", "availability.conflict.resolved"},
			})["webhookSubscriptionId"].(string)
			e1 := s.newEvent(a, direct, map[string]any{"summary": "Ann", "start": "2030-06-01", "end": "2030-06-05"})
			e2 := s.newEvent(a, channel, map[string]any{"summary": "Bob", "start": "2030-06-04", "end": "2030-06-06"})
			det := availability.NewDetector(availability.DetectorConfig{Store: s.store, BaseURL: s.URL})
			runDetector(t, det)
			s.fanOut()
			open := s.must(http.StatusOK, "GET", "/v1/units/"+unit+"/conflicts?state=open", a.key, nil)["data"].([]any)
			if len(open) != 1 {
				t.Fatalf("open conflicts = %v; want one", open)
			}
			cid := open[0].(map[string]any)["id"].(string)

			tc.end(s, a.key, unit, channel)
			for range 2 {
				runDetector(t, det)
				s.fanOut()
			}
			msgs := s.must(http.StatusOK, "GET", "/v1/subscriptions/"+sub+"/messages", a.key, nil)["data"].([]any)
			var types []string
			for _, m := range msgs {
				m := m.(map[string]any)
				types = append(types, m["eventType"].(string))
				data := m["payload"].(map[string]any)["data"].(map[string]any)
				ids := map[any]bool{}
				for _, e := range data["events"].([]any) {
					ids[e.(map[string]any)["eventId"]] = true
				}
				if data["conflictId"] != cid || data["unitId"] != unit || !ids[e1["id"]] || !ids[e2["id"]] {
					t.Errorf("payload = %v; want conflict %s of unit %s with both events", data, cid, unit)
				}
				if m["eventType"] == "availability.conflict.resolved" && data["resolvedAt"] == nil {
					t.Errorf("resolved payload = %v; want resolvedAt", data)
				}
			}
			// Newest first.
			if strings.Join(types, ",") != "availability.conflict.resolved,availability.conflict.detected" {
				t.Errorf("messages = %v; want one detected and one resolved", types)
			}
		})
	}
}
