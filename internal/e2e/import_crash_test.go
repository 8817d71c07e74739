package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/webhook"
)

// bigChannelFeed returns a feed of n one-hour bookings, UIDs bk-0…bk-(n-1).
func bigChannelFeed(n int) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Channel//EN\r\n")
	day0 := time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := range n {
		start := day0.Add(time.Duration(i) * 2 * time.Hour)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:bk-%d\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n",
			i, start.Format("20060102T150405Z"), start.Add(time.Hour).Format("20060102T150405Z"))
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}

// hookIDs records each distinct webhook (by webhook-id) a receiver got,
// as "type detail", detail being data.uid, or what detail reads from the
// data when set; retries of one webhook count once.
type hookIDs struct {
	mu     sync.Mutex
	got    map[string]string
	detail func(data json.RawMessage) string
}

func (h *hookIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		EventType string
		Data      json.RawMessage
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &p); err == nil {
		var d string
		if h.detail != nil {
			d = h.detail(p.Data)
		} else {
			var data struct{ UID string }
			_ = json.Unmarshal(p.Data, &data)
			d = data.UID
		}
		h.mu.Lock()
		if h.got == nil {
			h.got = map[string]string{}
		}
		h.got[r.Header.Get(webhook.HeaderID)] = strings.TrimSpace(p.EventType + " " + d)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// byKind counts the distinct webhooks by "type detail".
func (h *hookIDs) byKind() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, v := range h.got {
		out[v]++
	}
	return out
}

// TestImportCrashMidway kills calhook (SIGKILL) while it writes a big
// import in chunks, restarts it on the same database and checks that the
// next poll completes the import: every event exactly once, one created
// change and one created webhook per event — none lost, none doubled.
func TestImportCrashMidway(t *testing.T) {
	t.Parallel()
	const n = 12_000 // 24 chunks of 500
	up := &upstream{}
	up.set(200, "text/calendar", bigChannelFeed(n))
	feedSrv := httptest.NewServer(up)
	defer feedSrv.Close()
	hooks := &hookIDs{got: map[string]string{}}
	rcv := httptest.NewServer(hooks)
	defer rcv.Close()

	db := filepath.Join(t.TempDir(), "calhook.db")
	admin := randomHex(16)
	flags := []string{"--allow-private-cidr", "127.0.0.1/32", "--allow-http-feeds", "--allow-http-webhooks",
		"--import-timeout", "20s",
		// The lease must outlast the whole chunked import, or the poll is
		// taken again while it still writes.
		"--import-lease", "40s", "--webhook-timeout", "2s",
		// One receiver takes all 30,000 webhooks: no per-host pacing.
		"--webhook-host-rate", "0"}
	srv := startServer(t, db, admin, flags...)
	api := newClient()
	key := newAccount(t, api, srv.baseURL(), admin, "Channel manager")
	// The change log's position before the import, from a native
	// calendar's changes (an empty since starts at the newest change).
	native := newCalendar(t, api, srv.baseURL(), key, "Native")
	start := changeCursor(t, api, srv.baseURL(), key, native)
	api.mustDo(t, "POST", srv.baseURL()+"/v1/subscriptions", key, map[string]string{"webhookUrl": rcv.URL}, nil, 201)
	var imp struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/calendars", key, map[string]any{
		"name": "Channel", "source": map[string]any{"url": feedSrv.URL + "/export.ics", "pollIntervalSeconds": 3600},
	}, &imp, 201)

	// Kill once some chunks, but not all, are in.
	deadline := time.Now().Add(60 * time.Second)
	var seen int
	for {
		changes, err := listChanges(t.Context(), api, srv.baseURL(), key, imp.ID, start)
		if err != nil {
			t.Fatalf("list changes: %v", err)
		}
		seen = len(changes)
		if seen > 0 && seen < n {
			break
		}
		if seen >= n {
			t.Skipf("the import finished (%d changes) before the test could kill it mid-way", seen)
		}
		if time.Now().After(deadline) {
			t.Fatal("the import did not start within 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill()
	t.Logf("killed calhook (SIGKILL) with %d of %d created changes committed", seen, n)
	srv = startServer(t, db, admin, flags...)

	// After the lease, the next poll completes the import.
	deadline = time.Now().Add(120 * time.Second)
	for {
		var c struct {
			EventCount int
			LastError  *string
		}
		api.mustDo(t, "GET", srv.baseURL()+"/v1/calendars/"+imp.ID, key, nil, &c, 200)
		if c.EventCount == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import did not complete within 120 s of the restart: %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	changes, err := listChanges(t.Context(), api, srv.baseURL(), key, imp.ID, start)
	if err != nil {
		t.Fatalf("list changes: %v", err)
	}
	created := map[string]int{}
	for _, c := range changes {
		if c.Type != "calendar.event.created" {
			var cal struct{ LastError *string }
			api.mustDo(t, "GET", srv.baseURL()+"/v1/calendars/"+imp.ID, key, nil, &cal, 200)
			t.Errorf("change %s %s (lastError %v); want only created changes", c.Type, c.UID, cal.LastError)
			continue
		}
		created[c.UID]++
	}
	for uid, k := range created {
		if k != 1 {
			t.Errorf("%d created changes of %s; want 1", k, uid)
		}
	}
	if len(created) != n {
		t.Errorf("created changes of %d events; want %d", len(created), n)
	}
	deadline = time.Now().Add(180 * time.Second)
	for {
		got := hooks.byKind()
		if len(got) >= n {
			for k, v := range got {
				if v != 1 {
					t.Errorf("webhook %q arrived as %d distinct messages; want 1", k, v)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d distinct created webhooks within 180 s; want %d", len(got), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
