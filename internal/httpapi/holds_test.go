package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/holds"
)

func TestHolds(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, other := s.newAccount("Rentals"), s.newAccount("Other")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	path := "/v1/units/" + unit + "/holds"

	got := s.must(http.StatusCreated, "POST", path, a.key, map[string]any{
		"start": "2031-07-01", "end": "2031-07-05", "externalRef": "guest-42", "ttlSeconds": 600,
	})
	hold := got["hold"].(map[string]any)
	if hold["state"] != "held" || hold["start"] != "2031-07-01" || hold["end"] != "2031-07-05" || hold["externalRef"] != "guest-42" ||
		hold["allDay"] != true || hold["expiresAt"] == nil {
		t.Errorf("hold = %v", hold)
	}
	if srcs, ok := got["sources"].([]any); !ok || len(srcs) != 0 {
		t.Errorf("sources = %v; want an empty list (no imported calendars)", got["sources"])
	}
	holdID := hold["id"].(string)
	// The hold is a tentative event of the unit's new native calendar.
	cal := hold["calendarId"].(string)
	ev := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal+"/events/"+hold["eventId"].(string), a.key, nil)
	if ev["status"] != "tentative" {
		t.Errorf("hold event = %v; want tentative", ev)
	}
	if c := s.must(http.StatusOK, "GET", "/v1/calendars/"+cal, a.key, nil); c["unitId"] != unit {
		t.Errorf("hold calendar = %v; want it in the unit", c)
	}

	r := s.do("POST", path, a.key, map[string]any{"start": "2031-07-04", "end": "2031-07-06"})
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), `"code":"unavailable"`) || !strings.Contains(string(r.body), holdID) {
		t.Fatalf("overlapping hold = %d %s; want 409 naming the hold", r.status, r.body)
	}

	list := s.must(http.StatusOK, "GET", path, a.key, nil)
	if d := list["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != holdID {
		t.Errorf("holds = %v", list)
	}
	if c := s.must(http.StatusOK, "POST", "/v1/holds/"+holdID+"/confirm", a.key, nil); c["state"] != "confirmed" || c["externalRef"] != "guest-42" {
		t.Errorf("confirmed = %v", c)
	}
	if r := s.do("DELETE", "/v1/holds/"+holdID, a.key, nil); r.status != http.StatusConflict || !strings.Contains(string(r.body), "hold_confirmed") {
		t.Errorf("release of a confirmed hold = %d %s; want 409 hold_confirmed", r.status, r.body)
	}
	second := s.must(http.StatusCreated, "POST", path, a.key, map[string]any{"start": "2031-08-01T10:00:00Z", "end": "2031-08-01T12:00:00Z"})
	secondID := second["hold"].(map[string]any)["id"].(string)
	s.must(http.StatusNoContent, "DELETE", "/v1/holds/"+secondID, a.key, nil)
	if r := s.do("POST", "/v1/holds/"+secondID+"/confirm", a.key, nil); r.status != http.StatusConflict || !strings.Contains(string(r.body), "hold_released") {
		t.Errorf("confirm of a released hold = %d %s; want 409 hold_released", r.status, r.body)
	}

	// Other accounts' ids are 404; bad input is 400.
	for _, c := range []struct{ method, path string }{
		{"POST", path}, {"GET", path}, {"GET", "/v1/holds/" + holdID}, {"POST", "/v1/holds/" + holdID + "/confirm"},
		{"DELETE", "/v1/holds/" + holdID},
	} {
		if r := s.do(c.method, c.path, other.key, map[string]any{"start": "2032-01-01", "end": "2032-01-02"}); r.status != http.StatusNotFound {
			t.Errorf("%s %s with another account = %d; want 404", c.method, c.path, r.status)
		}
	}
	for _, body := range []any{`{"start":`, map[string]any{"start": "2032-01-01"}, map[string]any{"start": "2032-01-01", "end": "2032-01-02", "colour": 1},
		map[string]any{"start": "2032-01-01", "end": "2032-01-02", "ttlSeconds": "soon"}} {
		if r := s.do("POST", path, a.key, body); r.status != http.StatusBadRequest {
			t.Errorf("POST %v = %d %s; want 400", body, r.status, r.body)
		}
	}
}

func TestHoldsIdempotency(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, other := s.newAccount("Rentals"), s.newAccount("Other")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	theirs := s.must(http.StatusCreated, "POST", "/v1/units", other.key, map[string]any{"name": "Cabin"})["id"].(string)
	path := "/v1/units/" + unit + "/holds"
	body := map[string]any{"start": "2031-09-01", "end": "2031-09-04"}

	first := s.do("POST", path, a.key, body, "Idempotency-Key", "order-1")
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first = %d %s", first.status, first.body)
	}
	again := s.do("POST", path, a.key, body, "Idempotency-Key", "order-1")
	if again.status != http.StatusCreated || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %d %s; want the first answer replayed", again.status, again.body)
	}
	// Without the key the same request is a new one, refused.
	if r := s.do("POST", path, a.key, body); r.status != http.StatusConflict {
		t.Errorf("same request without the key = %d; want 409", r.status)
	}
	r := s.do("POST", path, a.key, map[string]any{"start": "2031-10-01", "end": "2031-10-02"}, "Idempotency-Key", "order-1")
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "idempotency_key_reused") {
		t.Errorf("same key, other body = %d %s; want 409 idempotency_key_reused", r.status, r.body)
	}
	// Keys are per account.
	if r := s.do("POST", "/v1/units/"+theirs+"/holds", other.key, body, "Idempotency-Key", "order-1"); r.status != http.StatusCreated {
		t.Errorf("another account's request with the key = %d %s; want 201", r.status, r.body)
	}
	if l := s.must(http.StatusOK, "GET", path, a.key, nil)["data"].([]any); len(l) != 1 {
		t.Errorf("%d holds; want 1", len(l))
	}

	holdID := first.json(t)["hold"].(map[string]any)["id"].(string)
	c1 := s.do("POST", "/v1/holds/"+holdID+"/confirm", a.key, nil, "Idempotency-Key", "confirm-1")
	c2 := s.do("POST", "/v1/holds/"+holdID+"/confirm", a.key, nil, "Idempotency-Key", "confirm-1")
	if c1.status != http.StatusOK || c2.status != http.StatusOK || string(c1.body) != string(c2.body) || c2.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("confirm retry = %d %s / %d %s; want the first answer replayed", c1.status, c1.body, c2.status, c2.body)
	}
	if r := s.do("POST", path, a.key, body, "Idempotency-Key", strings.Repeat("k", 256)); r.status != http.StatusBadRequest {
		t.Errorf("oversized key = %d; want 400", r.status)
	}

	// Concurrent retries with one key: one hold, every answer the hold or
	// "in use".
	var wg sync.WaitGroup
	var created atomic.Int32
	ids := sync.Map{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.do("POST", path, a.key, map[string]any{"start": "2031-11-01", "end": "2031-11-03"}, "Idempotency-Key", "order-2")
			switch {
			case r.status == http.StatusCreated:
				created.Add(1)
				ids.Store(string(r.body), true)
			case r.status == http.StatusConflict && strings.Contains(string(r.body), "idempotency_key_in_use"):
			default:
				t.Errorf("concurrent retry = %d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	if created.Load() == 0 || n != 1 {
		t.Errorf("%d answers 201 with %d distinct bodies; want at least one, all the same", created.Load(), n)
	}
	if l := s.must(http.StatusOK, "GET", path, a.key, nil)["data"].([]any); len(l) != 2 {
		t.Errorf("%d holds after concurrent retries; want 2", len(l))
	}
}

// TestHoldInExportFeed: a hold blocks in the other calendars' export feeds
// at once, and its release frees them.
func TestHoldInExportFeed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Rentals")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	direct, channel := s.newCalendar(a, "Direct", "UTC"), s.newCalendar(a, "Channel", "UTC")
	for _, c := range []string{direct, channel} {
		s.must(http.StatusOK, "PATCH", "/v1/calendars/"+c, a.key, map[string]any{"unitId": unit})
	}
	feed := "/feeds/" + a.id + "/" + channel + "/blocked.ics?token=" + a.feedToken
	if r := s.do("GET", feed, "", nil); r.status != http.StatusOK || strings.Contains(string(r.body), "20310701") {
		t.Fatalf("export feed before the hold = %d %s", r.status, r.body)
	}
	hold := s.must(http.StatusCreated, "POST", "/v1/units/"+unit+"/holds", a.key, map[string]any{"start": "2031-07-01", "end": "2031-07-03"})["hold"].(map[string]any)
	if hold["calendarId"] != direct {
		t.Errorf("hold in calendar %v; want the unit's first native calendar %s", hold["calendarId"], direct)
	}
	if r := s.do("GET", feed, "", nil); !strings.Contains(string(r.body), "DTSTART;VALUE=DATE:20310701") {
		t.Errorf("export feed after the hold = %d %s; want the held nights", r.status, r.body)
	}
	s.must(http.StatusNoContent, "DELETE", "/v1/holds/"+hold["id"].(string), a.key, nil)
	if r := s.do("GET", feed, "", nil); strings.Contains(string(r.body), "20310701") {
		t.Errorf("export feed after the release = %s; want the nights free", r.body)
	}
}

// TestHoldExpiredBeforeSweep: on a clock the test moves, a hold past its
// expiry no longer blocks and cannot be confirmed (410 hold_expired),
// though no sweep has run.
func TestHoldExpiredBeforeSweep(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s := newServerOn(t, openTestStore(t), adminToken, nil, func(o *holds.Options) { o.Now = clock })
	a := s.newAccount("Rentals")
	unit := s.must(http.StatusCreated, "POST", "/v1/units", a.key, map[string]any{"name": "Beach house"})["id"].(string)
	body := map[string]any{"start": "2031-07-01", "end": "2031-07-05", "ttlSeconds": 60}
	first := s.must(http.StatusCreated, "POST", "/v1/units/"+unit+"/holds", a.key, body)["hold"].(map[string]any)["id"].(string)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	r := s.do("POST", "/v1/holds/"+first+"/confirm", a.key, nil)
	if r.status != http.StatusGone || !strings.Contains(string(r.body), "hold_expired") {
		t.Errorf("confirm at the expiry = %d %s; want 410 hold_expired", r.status, r.body)
	}
	if r := s.do("POST", "/v1/units/"+unit+"/holds", a.key, body); r.status != http.StatusCreated {
		t.Errorf("hold over an expired one = %d %s; want 201", r.status, r.body)
	}
}
