package httpapi_test

import (
	"net/http"
	"testing"
)

func TestWrongMethod(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantAllow    string
	}{
		{"PUT", "/v1/calendars", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, POST"},
		{"POST", "/v1/calendars/cal_x", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, PATCH, DELETE"},
		{"DELETE", "/healthz", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{"PUT", "/v1/nothing-here", http.StatusNotFound, "not_found", ""},
		{"GET", "/v1/calendars/cal_x/events/evt_y/more", http.StatusNotFound, "not_found", ""},
	}
	for _, tt := range tests {
		r := s.do(tt.method, tt.path, a.key, nil)
		if r.status != tt.wantStatus || r.errorCode(t) != tt.wantCode {
			t.Errorf("%s %s = %d %s; want %d %s", tt.method, tt.path, r.status, r.body, tt.wantStatus, tt.wantCode)
		}
		if got := r.header.Get("Allow"); got != tt.wantAllow {
			t.Errorf("%s %s: Allow = %q; want %q", tt.method, tt.path, got, tt.wantAllow)
		}
	}
}

func TestListEventsDateBounds(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	s.newEvent(a, cal, map[string]any{"summary": "Call", "start": "2026-12-10T10:00:00Z", "end": "2026-12-10T11:00:00Z"})
	s.newEvent(a, cal, map[string]any{"summary": "Stay", "start": "2026-12-20", "end": "2026-12-27"})
	events := "/v1/calendars/" + cal + "/events"
	tests := []struct {
		query string
		want  int
	}{
		{"?from=2026-12-19", 1},
		{"?to=2026-12-19", 1},
		{"?from=2026-12-01&to=2026-12-31", 2},
		{"?from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z", 2},
		{"?from=2026-12-27", 0},
		{"?from=2026-12-10T10:30:00Z&to=2026-12-20", 1},
	}
	for _, tt := range tests {
		got := s.must(http.StatusOK, "GET", events+tt.query, a.key, nil)
		if n := len(got["data"].([]any)); n != tt.want {
			t.Errorf("GET events%s: %d events; want %d", tt.query, n, tt.want)
		}
	}
	if r := s.do("GET", events+"?from=2026-13-01", a.key, nil); r.status != http.StatusBadRequest {
		t.Errorf("GET events?from=2026-13-01 = %d; want 400", r.status)
	}
}
