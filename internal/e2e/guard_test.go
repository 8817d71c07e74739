package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is a loopback channel feed whose answer the test changes.
type upstream struct {
	mu     sync.Mutex
	body   string
	status int
	ctype  string
}

func (u *upstream) set(status int, ctype, body string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status, u.ctype, u.body = status, ctype, body
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", u.ctype)
	w.WriteHeader(u.status)
	io.WriteString(w, u.body)
}

// webhookLog collects the webhooks a receiver got, as "type uid".
type webhookLog struct {
	mu  sync.Mutex
	got []string
}

func (l *webhookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		EventType string
		Data      struct{ UID string }
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &p); err == nil {
		l.mu.Lock()
		l.got = append(l.got, strings.TrimSpace(p.EventType+" "+p.Data.UID))
		l.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// take waits until n webhooks arrived beyond those taken before, then a
// little longer to catch any extra one, and returns them sorted.
func (l *webhookLog) take(t *testing.T, taken *int, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l.mu.Lock()
		have := len(l.got) - *taken
		l.mu.Unlock()
		if have >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // an extra webhook would arrive within this
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.got[*taken:])
	*taken = len(l.got)
	slices.Sort(out)
	return out
}

func channelFeed(uids ...string) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Channel//EN\r\n")
	for i, uid := range uids {
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20261201T000000Z\r\nDTSTART;VALUE=DATE:202701%02d\r\n"+
			"DTEND;VALUE=DATE:202701%02d\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n", uid, 10+3*i, 12+3*i)
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}

// TestBrokenUpstreamKeepsBookings runs the real binary against a loopback
// channel feed with three bookings and a real webhook receiver: broken
// bodies answered with 200 fail the sync and delete nothing, a valid empty
// calendar holds the deletes (one calendar.sync.held) until a fetch after
// the delay confirms them, and a held deletion that the next fetch
// contradicts sends nothing. It asserts exactly which webhooks arrived.
func TestBrokenUpstreamKeepsBookings(t *testing.T) {
	t.Parallel()
	up := &upstream{}
	up.set(200, "text/calendar", channelFeed("b1@channel", "b2@channel", "b3@channel"))
	feedSrv := httptest.NewServer(up)
	defer feedSrv.Close()
	hooks := &webhookLog{}
	rcv := httptest.NewServer(hooks)
	defer rcv.Close()

	srv := startServer(t, filepath.Join(t.TempDir(), "calhook.db"), "adm-0123456789abcdef0123456789abcdef", "--allow-private-cidr", "127.0.0.1/32",
		"--allow-http-feeds", "--allow-http-webhooks", "--import-min-interval", "1s", "--import-hold-delay", "1s")
	api := newClient()
	var acc struct{ ID, APIKey string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/accounts", "adm-0123456789abcdef0123456789abcdef", map[string]string{"name": "Rentals"}, &acc, 201)
	api.mustDo(t, "POST", srv.baseURL()+"/v1/subscriptions", acc.APIKey, map[string]string{"webhookUrl": rcv.URL}, nil, 201)
	var cal struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/calendars", acc.APIKey, map[string]any{
		"name": "Channel", "source": map[string]any{"url": feedSrv.URL + "/export.ics", "pollIntervalSeconds": 3600},
	}, &cal, 201)
	type syncResult struct {
		Status   string
		Deleted  int
		Held     int
		Calendar struct {
			EventCount int
			LastError  *string
		}
	}
	sync := func() syncResult {
		t.Helper()
		var r syncResult
		api.mustDo(t, "POST", srv.baseURL()+"/v1/calendars/"+cal.ID+"/sync?wait=true", acc.APIKey, nil, &r, 200)
		return r
	}
	taken := 0
	if r := sync(); r.Calendar.EventCount != 3 {
		t.Fatalf("first sync = %+v; want 3 events", r)
	}
	created := []string{"calendar.event.created b1@channel", "calendar.event.created b2@channel", "calendar.event.created b3@channel"}
	if got := hooks.take(t, &taken, 3); !slices.Equal(got, created) {
		t.Fatalf("webhooks after the first sync = %q; want %q", got, created)
	}

	broken := []struct{ name, ctype, body string }{
		{"garbage lines", "text/calendar", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nthis is garbage from a broken proxy\r\n<html>oops</html>\r\nEND:VCALENDAR\r\n"},
		{"mismatched component", "text/calendar", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VJOURJAL\r\nUID:j\r\nEND:VJGURNAL\r\nEND:VCALENDAR\r\n"},
		{"HTML with 200", "text/html", "<!doctype html><html><body>Maintenance</body></html>"},
		{"JSON error", "application/json", `{"error":"rate limited"}`},
		{"truncated inside an event", "text/calendar", channelFeed("b1@channel")[:90]},
	}
	for _, b := range broken {
		up.set(200, b.ctype, b.body)
		r := sync()
		if r.Status != "error" || r.Calendar.EventCount != 3 || r.Calendar.LastError == nil || r.Deleted != 0 {
			t.Errorf("%s: sync = %+v; want an error with 3 events kept", b.name, r)
		}
	}
	// One outage: calendar.sync.failed once, whatever the bodies.
	if got := hooks.take(t, &taken, 1); !slices.Equal(got, []string{"calendar.sync.failed"}) {
		t.Errorf("webhooks during the broken bodies = %q; want one calendar.sync.failed", got)
	}

	// A valid empty calendar: held, not applied.
	up.set(200, "text/calendar", channelFeed())
	if r := sync(); r.Status == "error" || r.Deleted != 0 || r.Held != 3 || r.Calendar.EventCount != 3 {
		t.Errorf("sync of an empty calendar = %+v; want 3 held, none deleted", r)
	}
	want := []string{"calendar.sync.held", "calendar.sync.recovered"}
	if got := hooks.take(t, &taken, 2); !slices.Equal(got, want) {
		t.Errorf("webhooks after the empty calendar = %q; want %q", got, want)
	}
	// (b) The full calendar comes back: the hold is dropped, nothing sent.
	up.set(200, "text/calendar", channelFeed("b1@channel", "b2@channel", "b3@channel"))
	if r := sync(); r.Deleted != 0 || r.Held != 0 || r.Calendar.EventCount != 3 {
		t.Errorf("sync of the full calendar again = %+v; want nothing held or deleted", r)
	}
	if got := hooks.take(t, &taken, 0); len(got) != 0 {
		t.Errorf("webhooks after the full calendar came back = %q; want none", got)
	}
	// (a) Empty again, and still empty at the fetch the importer makes
	// itself after the delay: the deletes are applied and notified.
	up.set(200, "text/calendar", channelFeed())
	if r := sync(); r.Held != 3 {
		t.Errorf("second empty sync = %+v; want 3 held", r)
	}
	want = []string{"calendar.event.deleted b1@channel", "calendar.event.deleted b2@channel",
		"calendar.event.deleted b3@channel", "calendar.sync.held"}
	if got := hooks.take(t, &taken, 4); !slices.Equal(got, want) {
		t.Errorf("webhooks after the delay = %q; want %q\nlog:\n%s", got, want, srv.logText())
	}
}
