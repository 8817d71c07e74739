package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/calhook/calhook/internal/store"
)

// batchItems returns the results of a batch answer.
func batchResults(t *testing.T, r response) []map[string]any {
	t.Helper()
	raw, ok := r.json(t)["results"].([]any)
	if !ok {
		t.Fatalf("batch answer without results: %s", r.body)
	}
	out := make([]map[string]any, len(raw))
	for k, v := range raw {
		out[k] = v.(map[string]any)
	}
	return out
}

func errCode(res map[string]any) string {
	e, _ := res["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestEventBatch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, other := s.newAccount("Channel manager"), s.newAccount("Other")
	cal, sibling := s.newCalendar(a, "Villa", "Europe/Lisbon"), s.newCalendar(a, "Flat", "UTC")
	theirs := s.newCalendar(other, "Theirs", "UTC")
	kept := s.newEvent(a, cal, map[string]any{"uid": "kept@pms", "summary": "Kept", "start": "2031-05-01", "end": "2031-05-03"})
	gone := s.newEvent(a, cal, map[string]any{"uid": "gone@pms", "summary": "Gone", "start": "2031-05-04", "end": "2031-05-05"})
	inSibling := s.newEvent(a, sibling, map[string]any{"summary": "Elsewhere", "start": "2031-05-01", "end": "2031-05-02"})
	theirEvent := s.newEvent(other, theirs, map[string]any{"uid": "theirs@pms", "summary": "Theirs", "start": "2031-05-01", "end": "2031-05-02"})
	path := "/v1/calendars/" + cal + "/events/batch"
	s.fanOut()

	r := s.do("POST", path, a.key, map[string]any{"items": []map[string]any{
		{"op": "create", "event": map[string]any{"uid": "new@pms", "summary": "New", "start": "2031-06-01", "end": "2031-06-04"}},
		{"op": "update", "uid": "kept@pms", "event": map[string]any{"summary": "Kept, renamed"}},
		{"op": "delete", "id": gone["id"]},
		{"op": "create", "event": map[string]any{"summary": "No end", "start": "2031-06-01"}},
		{"op": "update", "id": inSibling["id"], "event": map[string]any{"summary": "Another calendar's"}},
		{"op": "delete", "id": theirEvent["id"]},
		{"op": "delete", "uid": "theirs@pms"},
		{"op": "create", "uid": "kept@pms", "event": map[string]any{"summary": "Taken UID", "start": "2031-06-01", "end": "2031-06-02"}},
		{"op": "create", "uid": "twice@pms", "event": map[string]any{"summary": "Twice", "start": "2031-06-01", "end": "2031-06-02"}},
		{"op": "create", "uid": "twice@pms", "event": map[string]any{"summary": "Twice", "start": "2031-06-01", "end": "2031-06-02"}},
		{"op": "frobnicate", "id": "x"},
		{"op": "delete", "id": gone["id"], "event": map[string]any{"summary": "x"}},
		{"op": "create", "uid": "gone@pms", "event": map[string]any{"summary": "Replaces the deleted", "start": "2031-07-01", "end": "2031-07-02"}},
	}})
	if r.status != http.StatusMultiStatus {
		t.Fatalf("mixed batch = %d %s; want 207", r.status, r.body)
	}
	res := batchResults(t, r)
	want := []struct {
		status int
		code   string
	}{
		{201, ""}, {200, ""}, {204, ""}, {400, "invalid_request"}, {404, "not_found"}, {404, "not_found"}, {404, "not_found"},
		{409, "conflict"}, {409, "duplicate_in_batch"}, {409, "duplicate_in_batch"}, {400, "invalid_request"},
		{400, "invalid_request"}, {201, ""},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results; want %d: %s", len(res), len(want), r.body)
	}
	for k, w := range want {
		if got := int(res[k]["status"].(float64)); got != w.status || errCode(res[k]) != w.code {
			t.Errorf("item %d = %d %q (%v); want %d %q", k, got, errCode(res[k]), res[k]["error"], w.status, w.code)
		}
	}
	if res[0]["uid"] != "new@pms" || !strings.HasPrefix(res[0]["id"].(string), "evt_") || res[1]["id"] != kept["id"] {
		t.Errorf("results carry ids and uids: %v, %v", res[0], res[1])
	}
	// What was applied is stored, what was refused is not.
	if e := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events/"+kept["id"].(string), a.key, nil); e["summary"] != "Kept, renamed" || e["sequence"].(float64) != 1 {
		t.Errorf("updated event = %v; want the new summary, sequence 1", e)
	}
	if r := s.do("GET", "/v1/calendars/"+cal+"/events/"+gone["id"].(string), a.key, nil); r.status != http.StatusNotFound {
		t.Errorf("deleted event = %d; want 404", r.status)
	}
	if e := s.must(http.StatusOK, "GET", "/v1/calendars/"+sibling+"/events/"+inSibling["id"].(string), a.key, nil); e["summary"] != "Elsewhere" {
		t.Errorf("another calendar's event changed: %v", e)
	}
	if e := s.must(http.StatusOK, "GET", "/v1/calendars/"+theirs+"/events/"+theirEvent["id"].(string), other.key, nil); e["summary"] != "Theirs" {
		t.Errorf("another account's event changed: %v", e)
	}
	list := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events", a.key, nil)["data"].([]any)
	var uids []string
	for _, e := range list {
		uids = append(uids, e.(map[string]any)["uid"].(string))
	}
	if fmt.Sprint(uids) != "[kept@pms new@pms gone@pms]" {
		t.Errorf("events after the batch = %v; want kept, new and the re-created gone", uids)
	}
	// Each applied item is one change, as single writes record them.
	var types []string
	for _, c := range s.changes(a, cal)[2:] {
		types = append(types, c.Type+" "+c.EventUID)
	}
	if got := strings.Join(types, ", "); got != "calendar.event.deleted gone@pms, calendar.event.updated kept@pms, calendar.event.created new@pms, calendar.event.created gone@pms" {
		t.Errorf("changes of the batch = %s", got)
	}

	// Every item applied: 200.
	r = s.do("POST", path, a.key, map[string]any{"items": []map[string]any{
		{"op": "delete", "uid": "new@pms"},
	}})
	if r.status != http.StatusOK || int(batchResults(t, r)[0]["status"].(float64)) != 204 {
		t.Errorf("all applied = %d %s; want 200 with a 204 item", r.status, r.body)
	}
}

func TestEventBatchRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, other := s.newAccount("Channel manager"), s.newAccount("Other")
	cal := s.newCalendar(a, "Villa", "UTC")
	theirs := s.newCalendar(other, "Theirs", "UTC")
	item := map[string]any{"op": "create", "event": map[string]any{"summary": "x", "start": "2031-06-01", "end": "2031-06-02"}}
	items := func(n int) map[string]any {
		out := make([]map[string]any, n)
		for k := range out {
			out[k] = map[string]any{"op": "create", "event": map[string]any{
				"uid": fmt.Sprintf("u%d", k), "summary": "x", "start": "2031-06-01", "end": "2031-06-02"}}
		}
		return map[string]any{"items": out}
	}
	tests := []struct {
		name       string
		path, key  string
		body       any
		wantStatus int
	}{
		{"1,001 items", "/v1/calendars/" + cal + "/events/batch", a.key, items(1001), 400},
		{"no items", "/v1/calendars/" + cal + "/events/batch", a.key, map[string]any{"items": []any{}}, 400},
		{"another account's calendar", "/v1/calendars/" + theirs + "/events/batch", a.key, map[string]any{"items": []any{item}}, 404},
		{"unknown calendar", "/v1/calendars/cal_nope/events/batch", a.key, map[string]any{"items": []any{item}}, 404},
		{"unknown key", "/v1/calendars/" + cal + "/events/batch", a.key, map[string]any{"items": []any{item}, "extra": 1}, 400},
		{"not authenticated", "/v1/calendars/" + cal + "/events/batch", "", map[string]any{"items": []any{item}}, 401},
	}
	for _, tt := range tests {
		if r := s.do("POST", tt.path, tt.key, tt.body); r.status != tt.wantStatus {
			t.Errorf("%s = %d %s; want %d", tt.name, r.status, r.body, tt.wantStatus)
		}
	}
	if l := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events", a.key, nil)["data"].([]any); len(l) != 0 {
		t.Errorf("refused batches stored %d events", len(l))
	}
	// 1,000 items is the most, and all are applied.
	r := s.do("POST", "/v1/calendars/"+cal+"/events/batch", a.key, items(1000))
	if r.status != http.StatusOK || len(batchResults(t, r)) != 1000 {
		t.Fatalf("1,000 items = %d; want 200 with 1,000 results", r.status)
	}
}

func TestEventBatchIdempotency(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Channel manager")
	cal := s.newCalendar(a, "Villa", "UTC")
	path := "/v1/calendars/" + cal + "/events/batch"
	body := map[string]any{"items": []map[string]any{
		{"op": "create", "event": map[string]any{"summary": "Once", "start": "2031-06-01", "end": "2031-06-02"}},
	}}
	first := s.do("POST", path, a.key, body, "Idempotency-Key", "sync-42")
	again := s.do("POST", path, a.key, body, "Idempotency-Key", "sync-42")
	if first.status != http.StatusOK || again.status != http.StatusOK || string(first.body) != string(again.body) ||
		again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %d %s / %d %s; want the first answer replayed", first.status, first.body, again.status, again.body)
	}
	if l := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events", a.key, nil)["data"].([]any); len(l) != 1 {
		t.Errorf("%d events after a retried batch; want 1", len(l))
	}
}

const replaceBody = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pms//EN\r\n" +
	"BEGIN:VEVENT\r\nUID:a@pms\r\nDTSTAMP:20310101T000000Z\r\nDTSTART;VALUE=DATE:20310601\r\nDTEND;VALUE=DATE:20310604\r\nSUMMARY:Booking A\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:b@pms\r\nDTSTAMP:20310101T000000Z\r\nDTSTART:20310610T140000Z\r\nDTEND:20310610T160000Z\r\nSUMMARY:Booking B\r\nEND:VEVENT\r\n" +
	"END:VCALENDAR\r\n"

// changes returns the change log of a calendar, oldest first.
func (s *testServer) changes(a testAccount, calID string) []*store.Change {
	s.t.Helper()
	chs, err := s.store.ListChanges(context.Background(), store.ListChangesParams{AccountID: a.id, CalendarID: calID, Limit: 1000})
	if err != nil {
		s.t.Fatalf("ListChanges: %v", err)
	}
	return chs
}

// putICS sends an .ics body.
func (s *testServer) putICS(path, key, body, contentType string) response {
	s.t.Helper()
	return s.do("PUT", path, key, []byte(body), "Content-Type", contentType)
}

func TestReplaceICS(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a, other := s.newAccount("PMS"), s.newAccount("Other")
	cal := s.newCalendar(a, "Villa", "UTC")
	theirs := s.newCalendar(other, "Theirs", "UTC")
	old := s.newEvent(a, cal, map[string]any{"uid": "b@pms", "summary": "Old B", "start": "2031-06-10T14:00:00Z", "end": "2031-06-10T16:00:00Z",
		"metadata": map[string]string{"ref": "42"}})
	s.newEvent(a, cal, map[string]any{"uid": "stale@pms", "summary": "Stale", "start": "2031-05-01", "end": "2031-05-02"})
	path := "/v1/calendars/" + cal + "/ics"

	r := s.putICS(path, a.key, replaceBody, "text/calendar")
	if r.status != http.StatusOK {
		t.Fatalf("PUT ics = %d %s", r.status, r.body)
	}
	if m := r.json(t); m["status"] != "changed" || m["created"].(float64) != 1 || m["updated"].(float64) != 1 || m["deleted"].(float64) != 1 {
		t.Errorf("first upload = %v; want 1 created, 1 updated, 1 deleted", m)
	}
	e := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events/"+old["id"].(string), a.key, nil)
	if e["summary"] != "Booking B" || e["metadata"].(map[string]any)["ref"] != "42" {
		t.Errorf("updated event = %v; want the uploaded summary, its metadata kept", e)
	}
	before := len(s.changes(a, cal))
	// The same content again, with other DTSTAMPs: nothing changes.
	again := strings.ReplaceAll(replaceBody, "DTSTAMP:20310101T000000Z", "DTSTAMP:20310202T000000Z")
	r = s.putICS(path, a.key, again, "text/calendar; charset=utf-8")
	if m := r.json(t); r.status != http.StatusOK || m["status"] != "unchanged" || m["created"].(float64)+m["updated"].(float64)+m["deleted"].(float64) != 0 {
		t.Errorf("re-upload = %d %s; want 200 unchanged", r.status, r.body)
	}
	if after := len(s.changes(a, cal)); after != before {
		t.Errorf("re-upload recorded %d changes; want none", after-before)
	}

	imported := s.must(http.StatusCreated, "POST", "/v1/calendars", a.key, map[string]any{
		"name": "Airbnb", "source": map[string]any{"url": "http://127.0.0.1:1/a.ics"}})["id"].(string)
	tests := []struct {
		name, path, key, body, ct string
		wantStatus                int
		wantCode                  string
	}{
		{"not a calendar", path, a.key, "hello", "text/calendar", 400, "invalid_request"},
		{"truncated", path, a.key, replaceBody[:80], "text/calendar", 400, "invalid_request"},
		{"empty", path, a.key, "", "text/calendar", 400, "invalid_request"},
		{"JSON", path, a.key, `{"x":1}`, "application/json", 415, "unsupported_media_type"},
		{"too big", path, a.key, strings.Repeat("X", 10<<20+1), "text/calendar", 413, "payload_too_large"},
		{"another account's calendar", "/v1/calendars/" + theirs + "/ics", a.key, replaceBody, "text/calendar", 404, "not_found"},
		{"imported calendar", "/v1/calendars/" + imported + "/ics", a.key, replaceBody, "text/calendar", 409, "read_only"},
	}
	for _, tt := range tests {
		r := s.putICS(tt.path, tt.key, tt.body, tt.ct)
		if r.status != tt.wantStatus || r.errorCode(t) != tt.wantCode {
			t.Errorf("%s = %d %s; want %d %s", tt.name, r.status, r.body, tt.wantStatus, tt.wantCode)
		}
	}
	if l := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events", a.key, nil)["data"].([]any); len(l) != 2 {
		t.Errorf("%d events after refused uploads; want the 2 uploaded", len(l))
	}
	if l := s.must(http.StatusOK, "GET", "/v1/calendars/"+theirs+"/events", other.key, nil)["data"].([]any); len(l) != 0 {
		t.Errorf("another account's calendar got %d events", len(l))
	}
}

// TestEventBatchConcurrent: batches to one calendar at once all apply,
// with single writes between them.
func TestEventBatchConcurrent(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Channel manager")
	cal := s.newCalendar(a, "Villa", "UTC")
	const batches, size = 6, 50
	var wg sync.WaitGroup
	for b := range batches {
		wg.Go(func() {
			items := make([]map[string]any, size)
			for k := range items {
				items[k] = map[string]any{"op": "create", "event": map[string]any{
					"uid": fmt.Sprintf("b%d-%d", b, k), "summary": "x", "start": "2031-06-01", "end": "2031-06-02"}}
			}
			if r := s.do("POST", "/v1/calendars/"+cal+"/events/batch", a.key, map[string]any{"items": items}); r.status != http.StatusOK {
				t.Errorf("batch %d = %d %s; want 200", b, r.status, r.body)
			}
		})
		wg.Go(func() {
			s.newEvent(a, cal, map[string]any{"uid": fmt.Sprintf("single-%d", b), "summary": "x", "start": "2031-06-01", "end": "2031-06-02"})
		})
	}
	wg.Wait()
	if n := len(s.changes(a, cal)); n != batches*(size+1) {
		t.Errorf("%d changes; want %d", n, batches*(size+1))
	}
}
