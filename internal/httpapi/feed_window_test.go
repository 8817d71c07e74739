package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/store"
)

// TestFeedWindow checks that feeds leave out events that ended before the
// window, keep a series that started long ago but still recurs, and that
// a calendar's own window (feedWindowDays) replaces the default, with bad
// values refused and another account's calendar answering 404.
func TestFeedWindow(t *testing.T) {
	t.Parallel()
	s := newServerFeeds(t, openTestStore(t), adminToken, nil, feed.Options{Window: 90 * 24 * time.Hour})
	a, b := s.newAccount("Acme"), s.newAccount("Other")
	cal := s.newCalendar(a, "Beach", "UTC")
	day := func(d int) string { return time.Now().UTC().AddDate(0, 0, d).Format("2006-01-02") }
	for _, ev := range []map[string]any{
		{"summary": "Old", "start": day(-200), "end": day(-199)},
		{"summary": "Recent", "start": day(-11), "end": day(-10)},
		{"summary": "Coming", "start": day(30), "end": day(31)},
		{"summary": "Ongoing", "start": day(-1000), "end": day(-999), "rrule": "FREQ=WEEKLY"},
		{"summary": "Finished", "start": day(-1000), "end": day(-999), "rrule": "FREQ=WEEKLY;COUNT=3"},
	} {
		s.newEvent(a, cal, ev)
	}
	path := feedPath(a, cal, a.feedToken)
	check := func(when string, in, out []string) {
		t.Helper()
		body := string(s.must200Text(path))
		for _, w := range in {
			if !strings.Contains(body, "SUMMARY:"+w+"\r\n") {
				t.Errorf("%s: feed lacks %q", when, w)
			}
		}
		for _, w := range out {
			if strings.Contains(body, "SUMMARY:"+w+"\r\n") {
				t.Errorf("%s: feed has %q, which ended before the window", when, w)
			}
		}
	}
	check("default window", []string{"Recent", "Coming", "Ongoing"}, []string{"Old", "Finished"})
	for _, tt := range []struct {
		body    string
		in, out []string
	}{
		{`{"feedWindowDays":0}`, []string{"Old", "Recent", "Coming", "Ongoing", "Finished"}, nil},
		{`{"feedWindowDays":5}`, []string{"Coming", "Ongoing"}, []string{"Old", "Recent", "Finished"}},
		{`{"feedWindowDays":null}`, []string{"Recent", "Coming", "Ongoing"}, []string{"Old", "Finished"}},
	} {
		m := s.must(http.StatusOK, "PATCH", "/v1/calendars/"+cal, a.key, tt.body)
		want := strings.TrimSuffix(strings.TrimPrefix(tt.body, `{"feedWindowDays":`), "}")
		if got := fmt.Sprint(m["feedWindowDays"]); got != want && !(want == "null" && m["feedWindowDays"] == nil) {
			t.Errorf("PATCH %s: feedWindowDays = %v; want %s", tt.body, m["feedWindowDays"], want)
		}
		check("after PATCH "+tt.body, tt.in, tt.out)
	}
	for _, bad := range []string{`{"feedWindowDays":-1}`, `{"feedWindowDays":"90"}`, `{"feedWindowDays":1.5}`, `{"feedWindowDays":99999}`} {
		r := s.do("PATCH", "/v1/calendars/"+cal, a.key, bad)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "feedWindowDays") {
			t.Errorf("PATCH %s = %d %s; want 400 naming feedWindowDays", bad, r.status, r.body)
		}
	}
	if r := s.do("PATCH", "/v1/calendars/"+cal, b.key, `{"feedWindowDays":0}`); r.status != http.StatusNotFound {
		t.Errorf("PATCH another account's calendar = %d; want 404", r.status)
	}
	created := s.must(http.StatusCreated, "POST", "/v1/calendars", a.key, `{"name":"Short","feedWindowDays":7}`)
	if created["feedWindowDays"] != float64(7) {
		t.Errorf("POST with feedWindowDays 7: feedWindowDays = %v", created["feedWindowDays"])
	}
}

// TestFeedStreamed checks a feed too big to cache: it is streamed with
// the lines a cached render has (in another event order), with an ETag
// of its own that 304s
// (plain and gzip), changes with a write, and HEAD sends no body.
func TestFeedStreamed(t *testing.T) {
	t.Parallel()
	st := openTestStore(t)
	s := newServerFeeds(t, st, adminToken, nil, feed.Options{StreamBytes: 2000})
	cached := newServerFeeds(t, st, adminToken, nil, feed.Options{})
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "Europe/Berlin")
	for i := range 20 {
		s.newEvent(a, cal, map[string]any{"summary": fmt.Sprintf("Booking %d", i),
			"start": fmt.Sprintf("2026-12-%02dT15:00:00", i+1), "end": fmt.Sprintf("2026-12-%02dT16:00:00", i+1)})
	}
	for _, calID := range []string{cal, ""} {
		path := feedPath(a, calID, a.feedToken)
		plainAE, gzipAE := []string{"Accept-Encoding", "identity"}, []string{"Accept-Encoding", "gzip"}
		streamed := s.do("GET", path, "", nil, plainAE...)
		want := cached.do("GET", path, "", nil, plainAE...)
		if streamed.status != 200 || !slices.Equal(sortedLines(streamed.body), sortedLines(want.body)) {
			t.Fatalf("streamed GET %q = %d, %d bytes; want 200 with the cached render's lines, %d bytes", calID, streamed.status, len(streamed.body), len(want.body))
		}
		etag := streamed.header.Get("Etag")
		if !strings.HasPrefix(etag, `"v-`) || streamed.header.Get("Content-Length") != "" || streamed.header.Get("Last-Modified") == "" {
			t.Errorf("streamed GET: ETag %q, Content-Length %q, Last-Modified %q; want a version ETag, no length, a date",
				etag, streamed.header.Get("Content-Length"), streamed.header.Get("Last-Modified"))
		}
		zipped := s.do("GET", path, "", nil, gzipAE...)
		if zipped.header.Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, zipped.body), streamed.body) {
			t.Errorf("streamed gzip GET: Content-Encoding %q; want gzip of the same bytes", zipped.header.Get("Content-Encoding"))
		}
		zetag := zipped.header.Get("Etag")
		for _, tt := range []struct {
			name   string
			ae     []string
			inm    string
			status int
		}{
			{"plain, its ETag", plainAE, etag, 304},
			{"gzip, its ETag", gzipAE, zetag, 304},
			{"gzip, the plain ETag", gzipAE, etag, 200},
			{"plain, the gzip ETag", plainAE, zetag, 200},
		} {
			r := s.do("GET", path, "", nil, append(tt.ae, "If-None-Match", tt.inm)...)
			if r.status != tt.status || tt.status == 304 && len(r.body) != 0 {
				t.Errorf("%s: GET = %d with %d bytes; want %d", tt.name, r.status, len(r.body), tt.status)
			}
		}
		if r := s.do("HEAD", path, "", nil, plainAE...); r.status != 200 || len(r.body) != 0 || r.header.Get("Etag") != etag {
			t.Errorf("HEAD = %d, %d bytes, ETag %q; want 200, no body, %q", r.status, len(r.body), r.header.Get("Etag"), etag)
		}
		if calID == "" {
			continue
		}
		s.newEvent(a, cal, map[string]any{"summary": "New", "start": "2026-12-28", "end": "2026-12-29"})
		if r := s.do("GET", path, "", nil, append(plainAE, "If-None-Match", etag)...); r.status != 200 || r.header.Get("Etag") == etag {
			t.Errorf("after a write: GET = %d, ETag %q; want 200 with a new ETag", r.status, r.header.Get("Etag"))
		}
	}
}

// sortedLines returns a feed's lines sorted: equal for two renders of
// the same content whatever their event order.
func sortedLines(body []byte) []string {
	return slices.Sorted(strings.SplitSeq(string(body), "\r\n"))
}

// heldPages is a store whose feed pages wait until release is closed.
type heldPages struct {
	store.Store
	release chan struct{}
}

func (h *heldPages) FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, pos, ctx.Err()
	}
	return h.Store.FeedEvents(ctx, c, w, pos, limit)
}

// TestFeedStreamedHeadersFirst checks that a streamed feed's headers
// reach the client before its render has read a page: the render reads
// the whole feed once before its first byte.
func TestFeedStreamedHeadersFirst(t *testing.T) {
	t.Parallel()
	held := &heldPages{Store: openTestStore(t), release: make(chan struct{})}
	s := newServerFeeds(t, held, adminToken, nil, feed.Options{StreamBytes: 1000})
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	for i := range 10 {
		s.newEvent(a, cal, map[string]any{"summary": fmt.Sprintf("Booking %d", i),
			"start": fmt.Sprintf("2027-01-%02dT15:00:00Z", i+1), "end": fmt.Sprintf("2027-01-%02dT16:00:00Z", i+1)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+feedPath(a, cal, a.feedToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Do(req) // returns once the headers are in
	if err != nil {
		t.Fatalf("GET a streamed feed whose pages are held: %v; want its headers first", err)
	}
	defer resp.Body.Close()
	close(held.release)
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil || !strings.Contains(string(body), "SUMMARY:Booking 9") {
		t.Errorf("GET = %d, %v, %d bytes; want 200 with the feed once the pages come", resp.StatusCode, err, len(body))
	}
}
