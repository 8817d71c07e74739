package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/subscription"
)

// importTestPolicy allows loopback (where the test feeds run) but keeps the
// other private ranges refused, like a production policy with a test
// exception.
var importTestPolicy = outbound.Policy{
	AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
}

// newImportServer is newServer with imports enabled and the importer
// running, on the same database as newServer (SQLite, or PostgreSQL with
// CALHOOK_TEST_BACKEND=postgres); the importer sends X-ICALHOOKS-URL
// pointing at the server.
func newImportServer(t *testing.T) *testServer {
	t.Helper()
	return newImportServerWith(t, nil)
}

// newImportServerWith is newImportServer with the importer's config
// changed by tune (nil: the defaults).
func newImportServerWith(t *testing.T, tune func(*importer.Config)) *testServer {
	t.Helper()
	cs := &countingStore{Store: openTestStore(t)}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := &notify.Bus{}
	feeds := feed.NewService(cs, feed.Options{ProdID: "-//calhook//test//EN", RefreshInterval: 15 * time.Minute, Bus: bus})
	cals := calendar.NewService(cs, nil, bus)
	cals.EnableImports(calendar.ImportRules{URLs: importTestPolicy, MinPollInterval: 30 * time.Second})
	var h *httpapi.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	srv.Start()
	t.Cleanup(srv.Close)
	// The importer has a bus of its own whose changes reach the feed
	// cache, so that creating a calendar does not wake its scheduler.
	impBus := &notify.Bus{}
	impBus.FeedsChanged.Subscribe(bus.FeedsChanged.Publish)
	icfg := importer.Config{
		Store: cs, Logger: log, Bus: impBus, PublicURL: srv.URL,
		Client: outbound.NewClient(outbound.Options{Policy: importTestPolicy, Timeout: 5 * time.Second, MaxRedirects: 5}),
	}
	if tune != nil {
		tune(&icfg)
	}
	imp := importer.New(icfg)
	if err := imp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imp.Stop(context.Background()) })
	h = httpapi.New(httpapi.Config{
		Store:         cs,
		Accounts:      account.NewService(cs, nil, bus),
		Calendars:     cals,
		Feeds:         feeds,
		Importer:      imp,
		Subscriptions: subscription.NewService(cs, importTestPolicy, nil, nil),
		Logger:        log,
		AdminToken:    adminToken,
	})
	return &testServer{Server: srv, t: t, handler: h, store: cs, logs: logs}
}

// upstreamFeed serves an iCalendar body the test can change, and records
// the X-ICALHOOKS-URL of the last request.
type upstreamFeed struct {
	*httptest.Server
	mu     sync.Mutex
	body   string
	status int
	hook   string
	hits   atomic.Int64
}

func newUpstreamFeed(t *testing.T, body string) *upstreamFeed {
	t.Helper()
	u := &upstreamFeed{body: body, status: http.StatusOK}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		defer u.mu.Unlock()
		u.hook = r.Header.Get("X-ICALHOOKS-URL")
		if u.status != http.StatusOK {
			http.Error(w, "upstream trouble", u.status)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		w.Write([]byte(u.body))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamFeed) set(body string, status int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.body, u.status = body, status
}

func (u *upstreamFeed) hookURL() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hook
}

func icsFeed(events ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//upstream//EN\r\n" + strings.Join(events, "") + "END:VCALENDAR\r\n"
}

func icsEvent(uid, start, summary, extra string) string {
	return "BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20261122T150000Z\r\nDTSTART:" + start + "\r\nDURATION:PT1H\r\nSUMMARY:" +
		summary + "\r\n" + extra + "END:VEVENT\r\n"
}

func TestImportedCalendarSource(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Importer")
	up := newUpstreamFeed(t, icsFeed())
	hostPort := strings.TrimPrefix(up.URL, "http://")
	tests := []struct {
		name   string
		source any
		status int
		// wantURL is the stored source URL; wantMsg a substring of the
		// error message.
		wantURL string
		wantMsg string
	}{
		{"http feed", map[string]any{"url": up.URL + "/cal.ics"}, 201, up.URL + "/cal.ics", ""},
		{"webcal is https", map[string]any{"url": "webcal://" + hostPort + "/cal.ics"}, 201, "https://" + hostPort + "/cal.ics", ""},
		{"poll interval", map[string]any{"url": up.URL + "/cal.ics", "pollIntervalSeconds": 60}, 201, up.URL + "/cal.ics", ""},
		{"private address", map[string]any{"url": "http://10.0.0.5/cal.ics"}, 400, "", "source.url: forbidden address"},
		{"link-local metadata", map[string]any{"url": "http://169.254.169.254/latest"}, 400, "", "source.url: forbidden address"},
		{"ftp", map[string]any{"url": "ftp://" + hostPort + "/cal.ics"}, 400, "", "scheme ftp is not allowed"},
		{"no url", map[string]any{"pollIntervalSeconds": 300}, 400, "", "source.url: is required"},
		{"interval below the floor", map[string]any{"url": up.URL + "/cal.ics", "pollIntervalSeconds": 5}, 400, "", "pollIntervalSeconds"},
		{"unknown field", map[string]any{"url": up.URL + "/cal.ics", "every": 5}, 400, "", "unknown field"},
	}
	for _, tt := range tests {
		r := s.do("POST", "/v1/calendars", a.key, map[string]any{"name": "Feed", "source": tt.source})
		if r.status != tt.status {
			t.Errorf("%s: POST /v1/calendars = %d %s; want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		m := r.json(t)
		if tt.status != 201 {
			msg, _ := m["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("%s: error %q; want it to mention %q", tt.name, msg, tt.wantMsg)
			}
			continue
		}
		src, _ := m["source"].(map[string]any)
		if m["kind"] != "imported" || src["url"] != tt.wantURL {
			t.Errorf("%s: calendar kind %v source %v; want imported from %s", tt.name, m["kind"], src, tt.wantURL)
		}
		for _, k := range []string{"lastSyncAt", "lastSuccessAt", "lastError", "etag", "nextPollAt", "eventCount"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: calendar JSON lacks %q: %v", tt.name, k, m)
			}
		}
		if tt.name == "poll interval" && src["pollIntervalSeconds"] != 60.0 {
			t.Errorf("pollIntervalSeconds = %v; want 60", src["pollIntervalSeconds"])
		}
	}
	native := s.newCalendar(a, "Native", "UTC")
	m := s.must(200, "GET", "/v1/calendars/"+native, a.key, nil)
	for _, k := range []string{"source", "lastSyncAt", "eventCount"} {
		if _, ok := m[k]; ok {
			t.Errorf("native calendar JSON has %q: %v", k, m)
		}
	}
	if r := s.do("PATCH", "/v1/calendars/"+native, a.key, map[string]any{"source": map[string]any{"url": up.URL}}); r.status != 400 {
		t.Errorf("PATCH with source = %d %s; want 400", r.status, r.body)
	}
}

func TestImportedCalendarSyncAndReadOnly(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Importer")
	up := newUpstreamFeed(t, icsFeed(
		icsEvent("a@up", "20261201T100000Z", "Booking A", "X-AIRBNB-ID:HM1\r\n"),
		icsEvent("b@up", "20261202T100000Z", "Cancelled B", "STATUS:CANCELLED\r\n"),
	))
	cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
		"name": "Airbnb", "source": map[string]any{"url": up.URL + "/cal.ics"},
	})["id"].(string)

	res := s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	c := res["calendar"].(map[string]any)
	// The first poll may already have run when the calendar was created;
	// either way both events are there now.
	if c["eventCount"] != 2.0 || c["lastSyncAt"] == nil || c["lastError"] != nil {
		t.Errorf("sync?wait=true calendar = %v; want eventCount 2, lastSyncAt set, no error", c)
	}
	if st := res["status"]; st != "changed" && st != "unchanged" {
		t.Errorf("first sync status = %v; want changed or unchanged", st)
	}

	// A request made while a poll is claimed but not yet fetching is
	// served by that poll and also leaves the calendar due once more, so
	// a second poll may import an addition before the next sync's own
	// poll: then add another event. Each round needs that race anew.
	feed := []string{
		icsEvent("a@up", "20261201T100000Z", "Booking A", "X-AIRBNB-ID:HM1\r\n"),
		icsEvent("b@up", "20261202T100000Z", "Cancelled B", "STATUS:CANCELLED\r\n"),
	}
	for try := 1; ; try++ {
		feed = append(feed, icsEvent(fmt.Sprintf("c%d@up", try), "20261203T100000Z", "Booking C", ""))
		up.set(icsFeed(feed...), 200)
		res = s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
		if res["status"] != "unchanged" || try == 5 {
			break
		}
	}
	if res["status"] != "changed" || res["created"] != 1.0 || res["updated"] != 0.0 || res["deleted"] != 0.0 {
		t.Errorf("sync after an upstream add = %v; want changed, created 1", res)
	}

	up.set("", http.StatusInternalServerError)
	res = s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	c = res["calendar"].(map[string]any)
	if res["status"] != "error" || !strings.Contains(res["error"].(string), "HTTP 500") || c["lastError"] == nil || c["eventCount"] != float64(len(feed)) {
		t.Errorf("sync of a failing feed = %v; want status error with HTTP 500, lastError set, %d events kept", res, len(feed))
	}
	up.set(icsFeed(icsEvent("a@up", "20261201T100000Z", "Booking A", "")), 200)

	if r := s.do("POST", "/v1/calendars/"+cal+"/sync", a.key, nil); r.status != http.StatusAccepted || r.json(t)["status"] != "queued" {
		t.Errorf("sync without wait = %d %s; want 202 queued", r.status, r.body)
	}
	native := s.newCalendar(a, "Native", "UTC")
	if r := s.do("POST", "/v1/calendars/"+native+"/sync", a.key, nil); r.status != http.StatusConflict || r.errorCode(t) != "not_imported" {
		t.Errorf("sync of a native calendar = %d %s; want 409 not_imported", r.status, r.body)
	}
	if r := s.do("POST", "/v1/calendars/"+native+"/sync?wait=true", a.key, nil); r.status != http.StatusConflict {
		t.Errorf("sync?wait=true of a native calendar = %d %s; want 409", r.status, r.body)
	}
	if r := s.do("POST", "/v1/calendars/cal_missing/sync", a.key, nil); r.status != http.StatusNotFound {
		t.Errorf("sync of a missing calendar = %d; want 404", r.status)
	}
	if r := s.do("POST", "/v1/calendars/"+cal+"/sync?wait=maybe", a.key, nil); r.status != http.StatusBadRequest {
		t.Errorf("sync?wait=maybe = %d; want 400", r.status)
	}
	other := s.newAccount("Other")
	if r := s.do("POST", "/v1/calendars/"+cal+"/sync", other.key, nil); r.status != http.StatusNotFound {
		t.Errorf("sync of another account's calendar = %d; want 404", r.status)
	}

	// The events are read-only through the API.
	events := s.must(200, "GET", "/v1/calendars/"+cal+"/events", a.key, nil)["data"].([]any)
	if len(events) == 0 {
		t.Fatal("no imported events listed")
	}
	evID := events[0].(map[string]any)["id"].(string)
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/calendars/" + cal + "/events", map[string]any{"summary": "x", "start": "2026-12-01", "end": "2026-12-02"}},
		{"PATCH", "/v1/calendars/" + cal + "/events/" + evID, map[string]any{"summary": "x"}},
		{"DELETE", "/v1/calendars/" + cal + "/events/" + evID, nil},
	} {
		if r := s.do(w.method, w.path, a.key, w.body); r.status != http.StatusConflict || r.errorCode(t) != "read_only" {
			t.Errorf("%s %s on an imported calendar = %d %s; want 409 read_only", w.method, w.path, r.status, r.body)
		}
	}

	// Imported events appear in calhook's own feed; cancelled ones are
	// left out.
	feedBody := s.do("GET", "/feeds/"+a.id+"/"+cal+".ics?token="+a.feedToken, "", nil)
	if feedBody.status != 200 || !strings.Contains(string(feedBody.body), "SUMMARY:Booking A") ||
		strings.Contains(string(feedBody.body), "Cancelled B") || !strings.Contains(string(feedBody.body), "X-AIRBNB-ID:HM1") {
		t.Errorf("feed of the imported calendar = %d:\n%s\nwant Booking A with X-AIRBNB-ID and without the cancelled event", feedBody.status, feedBody.body)
	}
}

// TestSyncRepeated repeats POST …/sync, with and without wait, against a
// real upstream: the calendar's fetches stay at about one a second however
// fast the calls come, and past the account's burst the API answers 429
// with Retry-After.
func TestSyncRepeated(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Importer")
	up := newUpstreamFeed(t, icsFeed(icsEvent("a@up", "20261201T100000Z", "Booking A", "")))
	cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
		"name": "Airbnb", "source": map[string]any{"url": up.URL + "/cal.ics"},
	})["id"].(string)
	s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)

	start, before := time.Now(), up.hits.Load()
	// A few callers wait for their polls meanwhile; each waits at most
	// a second or so, for the poll at the end of the window.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			r := s.do("POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
			if r.status != http.StatusOK && r.status != http.StatusTooManyRequests {
				t.Errorf("POST sync?wait=true = %d %s", r.status, r.body)
			}
		})
	}
	// Eight callers at once outrun the account's refill (10 a second)
	// even when each call takes a few hundred milliseconds on a busy
	// machine.
	var limitedOnce sync.Once
	var limited response
	var calls atomic.Int64
	var callers sync.WaitGroup
	for range 8 {
		callers.Go(func() {
			for calls.Add(1) <= 500 {
				switch r := s.do("POST", "/v1/calendars/"+cal+"/sync", a.key, nil); r.status {
				case http.StatusAccepted:
				case http.StatusTooManyRequests:
					limitedOnce.Do(func() { limited = r })
					return
				default:
					t.Errorf("POST sync = %d %s", r.status, r.body)
					return
				}
			}
		})
	}
	callers.Wait()
	wg.Wait()
	// One poll a second at most, and one more whose window began
	// before the loop.
	elapsed := time.Since(start)
	if got, most := up.hits.Load()-before, int64(elapsed/time.Second)+2; got > most {
		t.Errorf("repeated syncs for %s made %d fetches; want at most %d (one a second)", elapsed, got, most)
	}
	if limited.status == 0 {
		t.Fatal("500 sync calls were all accepted; want 429 past the account's burst")
	}
	if code := limited.errorCode(t); code != "rate_limited" {
		t.Errorf("429 code = %q; want rate_limited", code)
	}
	if ra, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q; want whole seconds, at least 1", limited.header.Get("Retry-After"))
	}
}

func TestHooksIn(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Importer")
	up := newUpstreamFeed(t, icsFeed(icsEvent("a@up", "20261201T100000Z", "Booking A", "")))
	cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
		"name": "Upstream", "source": map[string]any{"url": up.URL + "/cal.ics"},
	})["id"].(string)
	s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
	hook := up.hookURL()
	if !strings.HasPrefix(hook, s.URL+"/hooks/in/") || len(strings.TrimPrefix(hook, s.URL+"/hooks/in/")) != 64 {
		t.Fatalf("X-ICALHOOKS-URL sent upstream = %q; want %s/hooks/in/<64 hex>", hook, s.URL)
	}
	path := strings.TrimPrefix(hook, s.URL)

	// The upstream changes and pings: calhook polls at once.
	up.set(icsFeed(icsEvent("a@up", "20261201T100000Z", "Booking A", ""), icsEvent("b@up", "20261202T100000Z", "Booking B", "")), 200)
	hits := up.hits.Load()
	req, _ := http.NewRequest(http.MethodHead, s.URL+path, nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HEAD %s = %d; want 202", path, resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := s.must(200, "GET", "/v1/calendars/"+cal, a.key, nil)
		if m["eventCount"] == 2.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ping did not lead to a poll: upstream hits %d -> %d, calendar %v", hits, up.hits.Load(), m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, method := range []string{"GET", "POST"} {
		if r := s.do(method, path, "", nil); r.status != http.StatusAccepted {
			t.Errorf("%s %s = %d %s; want 202", method, path, r.status, r.body)
		}
	}
	for _, method := range []string{"HEAD", "GET", "POST"} {
		if r := s.do(method, "/hooks/in/"+strings.Repeat("0", 64), "", nil); r.status != http.StatusNotFound {
			t.Errorf("%s /hooks/in/<unknown> = %d; want 404", method, r.status)
		}
	}
}
