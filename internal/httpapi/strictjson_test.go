package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestStrictJSON: a key given twice, at any depth, and a key that names a
// field only in another case are refused with 400 and write nothing;
// metadata keys, which are the client's own, may differ in case.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Strict")
	cal := s.newCalendar(a, "Rooms", "UTC")
	events := "/v1/calendars/" + cal + "/events"
	const times = `"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"`
	tests := []struct {
		name, path, body string
		status           int
		want             string // in the error message
	}{
		{"duplicate top-level key", "/v1/calendars", `{"name":"A","name":"B"}`, 400, `duplicate key "name"`},
		{"key in another case", "/v1/calendars", `{"Name":"A"}`, 400, `unknown field "Name" (did you mean "name"?`},
		{"upper-case key", events, `{"SUMMARY":"x",` + times + `}`, 400, `did you mean "summary"?`},
		{"duplicate nested key", events, `{"summary":"x",` + times + `,"metadata":{"k":"1","k":"2"}}`, 400, `duplicate key "k" in metadata`},
		{"duplicate in an array's object", "/v1/subscriptions", `{"webhookUrl":"http://127.0.0.1/h","eventTypes":["calendar.event.created"],"eventTypes":[]}`, 400, `duplicate key "eventTypes"`},
		{"metadata keys differing in case", events, `{"summary":"x",` + times + `,"metadata":{"k":"1","K":"2"}}`, 201, ""},
		{"exact keys", "/v1/calendars", `{"name":"A","timeZone":"UTC"}`, 201, ""},
	}
	for _, tt := range tests {
		r := s.do("POST", tt.path, a.key, tt.body)
		if r.status != tt.status {
			t.Errorf("%s: POST %s %s = %d %s; want %d", tt.name, tt.path, tt.body, r.status, r.body, tt.status)
			continue
		}
		if tt.status == http.StatusBadRequest {
			msg, _ := r.json(t)["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("%s: message %q; want it to contain %q", tt.name, msg, tt.want)
			}
		}
	}
	// Nothing refused was written: one calendar besides Rooms, one event.
	if got := len(s.must(200, "GET", "/v1/calendars", a.key, nil)["data"].([]any)); got != 2 {
		t.Errorf("%d calendars; want 2 (Rooms and the exact one)", got)
	}
	if got := len(s.must(200, "GET", events, a.key, nil)["data"].([]any)); got != 1 {
		t.Errorf("%d events; want 1", got)
	}
}
