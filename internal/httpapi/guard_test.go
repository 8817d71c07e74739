package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestImportGuardOverAPI drives issue 17's rules through the API: a
// malformed body is a failed sync that keeps the bookings, a valid empty
// calendar holds the deletes (shown as heldDeletes, one calendar.sync.held
// webhook), and POST …/sync/confirm applies them.
func TestImportGuardOverAPI(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Channel")
	full := icsFeed(
		icsEvent("b1@up", "20261201T100000Z", "Booking 1", ""),
		icsEvent("b2@up", "20261202T100000Z", "Booking 2", ""),
		icsEvent("b3@up", "20261203T100000Z", "Booking 3", ""),
	)
	up := newUpstreamFeed(t, full)
	sub := s.must(201, "POST", "/v1/subscriptions", a.key, map[string]any{
		"webhookUrl": "http://127.0.0.1:9/hook",
		"eventTypes": []string{"calendar.event.deleted", "calendar.sync.failed", "calendar.sync.held"},
	})["webhookSubscriptionId"].(string)
	cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
		"name": "Channel", "source": map[string]any{"url": up.URL + "/cal.ics"},
	})["id"].(string)
	s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	if r := s.do("POST", "/v1/calendars/"+cal+"/sync/confirm", a.key, nil); r.status != http.StatusConflict || r.errorCode(t) != "nothing_held" {
		t.Errorf("confirm without a hold = %d %s; want 409 nothing_held", r.status, r.body)
	}

	up.set("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nthis is garbage from a broken proxy\r\n<html>oops</html>\r\nEND:VCALENDAR\r\n", 200)
	res := s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	c := res["calendar"].(map[string]any)
	if res["status"] != "error" || c["eventCount"] != 3.0 || !strings.Contains(c["lastError"].(string), "line 4: malformed iCalendar") {
		t.Errorf("sync of a garbled body = %v; want error at line 4, 3 events kept", res)
	}

	up.set("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n", 200)
	res = s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	c = res["calendar"].(map[string]any)
	held, _ := c["heldDeletes"].(map[string]any)
	if res["deleted"] != 0.0 || res["held"] != 3.0 || c["eventCount"] != 3.0 || c["lastError"] != nil ||
		held == nil || held["count"] != 3.0 || held["reason"] == "" || held["since"] == nil {
		t.Errorf("sync of a valid empty calendar = %v; want 3 held, none deleted, no error", res)
	}
	got := s.must(200, "GET", "/v1/calendars/"+cal, a.key, nil)
	if h, _ := got["heldDeletes"].(map[string]any); h == nil || len(h["events"].([]any)) != 3 {
		t.Errorf("calendar = %v; want heldDeletes listing 3 events", got)
	}

	res = s.must(200, "POST", "/v1/calendars/"+cal+"/sync/confirm", a.key, nil)
	c = res["calendar"].(map[string]any)
	if res["deleted"] != 3.0 || c["heldDeletes"] != nil || c["eventCount"] != 0.0 {
		t.Errorf("confirm = %v; want 3 deleted and no hold", res)
	}
	s.fanOut()
	var types []string
	for _, m := range s.must(200, "GET", "/v1/subscriptions/"+sub+"/messages?limit=100", a.key, nil)["data"].([]any) {
		types = append(types, m.(map[string]any)["eventType"].(string))
	}
	slices.Sort(types)
	want := []string{"calendar.event.deleted", "calendar.event.deleted", "calendar.event.deleted", "calendar.sync.failed", "calendar.sync.held"}
	if !slices.Equal(types, want) {
		t.Errorf("webhook messages = %q; want %q", types, want)
	}
}

// TestEventDateRange checks that the API refuses event times that would
// leave years 1–9999 in some zone, and never answers an empty start.
func TestEventDateRange(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Range")
	cal := s.newCalendar(a, "Range", "UTC")
	tests := []struct {
		zone, start, end string
		status           int
	}{
		{"America/New_York", "9999-12-31T22:00:00", "9999-12-31T23:00:00", 400},
		{"America/New_York", "9999-12-29T18:00:00", "9999-12-29T19:00:00", 201},
		{"Asia/Tokyo", "0001-01-01T08:00:00", "0001-01-01T09:00:00", 400},
		{"UTC", "0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z", 400},
		{"UTC", "0001-01-03T00:00:00Z", "0001-01-03T01:00:00Z", 201},
		{"Europe/Berlin", "2026-12-01T10:00:00", "10000-01-01T00:00:00+01:00", 400},
	}
	for _, tt := range tests {
		r := s.do("POST", "/v1/calendars/"+cal+"/events", a.key, map[string]any{
			"summary": "x", "timeZone": tt.zone, "start": tt.start, "end": tt.end,
		})
		if r.status != tt.status {
			t.Errorf("event %s–%s in %s = %d %s; want %d", tt.start, tt.end, tt.zone, r.status, r.body, tt.status)
			continue
		}
		if r.status == 201 {
			if e := r.json(t); e["start"] == "" || e["end"] == "" {
				t.Errorf("event %s in %s = %v; want start and end", tt.start, tt.zone, e)
			}
		}
	}
}
