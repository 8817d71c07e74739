package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// TestCursorsArePerAccount: change cursors carry no position of the
// shared change log a tenant could read (they are opaque, the same
// position gives each account another cursor), a cursor of one account
// is refused for another's calendar, and a tenant's next cursor is the
// same however much other tenants write in between.
func TestCursorsArePerAccount(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, b := s.newAccount("A"), s.newAccount("B")
	calA, calB := s.newCalendar(a, "A", "UTC"), s.newCalendar(b, "B", "UTC")
	event := func(acct testAccount, cal string) {
		s.newEvent(acct, cal, map[string]any{"summary": "x", "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"})
	}
	changes := func(acct testAccount, cal, since string) (int, map[string]any) {
		r := s.do("GET", "/v1/calendars/"+cal+"/changes?since="+since, acct.key, nil)
		if r.status != http.StatusOK {
			return r.status, nil
		}
		return r.status, r.json(t)
	}
	start := func(acct testAccount, cal string) string {
		_, m := changes(acct, cal, "")
		return m["nextCursor"].(string)
	}
	cursorA := start(a, calA)
	event(a, calA)
	_, m := changes(a, calA, cursorA)
	afterA := m["nextCursor"].(string)
	if data := m["data"].([]any); len(data) != 1 {
		t.Fatalf("A's changes = %v; want its one event", data)
	}
	raw, err := base64.RawURLEncoding.DecodeString(afterA)
	if err != nil || len(raw) != 25 || raw[0] != 'k' {
		t.Errorf("cursor %q = %q; want an opaque 25-byte cursor", afterA, raw)
	}
	for i := 0; i < 20; i++ {
		event(b, calB)
	}
	if _, m := changes(a, calA, afterA); m["nextCursor"] != afterA || len(m["data"].([]any)) != 0 {
		t.Errorf("A's changes after B wrote 20 events = %v; want none and the same cursor %q", m, afterA)
	}
	if st, _ := changes(b, calB, afterA); st != http.StatusBadRequest {
		t.Errorf("B using A's cursor = %d; want 400", st)
	}
	forged := afterA[:len(afterA)-2] + "AA"
	if forged == afterA { // one cursor in 4,096 ends so
		forged = afterA[:len(afterA)-2] + "BA"
	}
	if st, _ := changes(a, calA, forged); st != http.StatusBadRequest {
		t.Errorf("a cursor with a forged tag = %d; want 400", st)
	}
	// The same position is another cursor for another account.
	if start(b, calB) == start(a, calA) {
		t.Errorf("A and B got the same start cursor")
	}
}
