package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/webhook"
)

// upstreamFeeds is the upstream of the import scenarios: an HTTP server on
// 127.0.0.1 in the bench process serving iCalendar feeds that the bench
// changes, with ETags, answering 304 to a matching If-None-Match. It
// remembers the X-ICALHOOKS-URL each feed was fetched with and, when asked
// to, when each feed was fetched.
type upstreamFeeds struct {
	// URL is the server's root, such as http://127.0.0.1:41234.
	URL    string
	srv    *http.Server
	served chan struct{}

	mu    sync.Mutex
	feeds map[string]*benchFeed // by URL path

	// full, notModified and other count the answers: 200, 304 and
	// anything else (unknown paths).
	full, notModified, other atomic.Int64
}

// benchFeed is one feed the server serves.
type benchFeed struct {
	uids    []string
	version int
	body    []byte
	etag    string
	// hook is the X-ICALHOOKS-URL of the latest request.
	hook string
	// fetches holds when the feed was requested, if tracked.
	fetches []time.Time
	track   bool
}

// newUpstreamFeeds listens on a free loopback port.
func newUpstreamFeeds() (*upstreamFeeds, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("feed server: %w", err)
	}
	fs := &upstreamFeeds{URL: "http://" + ln.Addr().String(), served: make(chan struct{}), feeds: map[string]*benchFeed{}}
	fs.srv = &http.Server{
		Handler:           fs,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		defer close(fs.served)
		fs.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	return fs, nil
}

// Close stops the server and waits for it.
func (fs *upstreamFeeds) Close() error {
	err := fs.srv.Close()
	<-fs.served
	return err
}

// add registers a feed at path with the given events; track records the
// time of every request.
func (fs *upstreamFeeds) add(path string, uids []string, track bool) {
	f := &benchFeed{uids: uids, track: track}
	f.render(path)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.feeds[path] = f
}

// addEvent adds an event to the feed at path and returns the hook URL the
// feed was last fetched with.
func (fs *upstreamFeeds) addEvent(path, uid string) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.feeds[path]
	f.uids = append(f.uids, uid)
	f.render(path)
	return f.hook
}

// hookOf returns the X-ICALHOOKS-URL the feed at path was last fetched
// with.
func (fs *upstreamFeeds) hookOf(path string) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.feeds[path].hook
}

// fetchedAfter returns the first request for the feed at path at or after
// t.
func (fs *upstreamFeeds) fetchedAfter(path string, t time.Time) (time.Time, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, at := range fs.feeds[path].fetches {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// render rebuilds the feed's body and ETag. Every event is a two-hour
// booking on its own day; DTSTAMP is fixed so the bytes depend only on
// the events.
func (f *benchFeed) render(path string) {
	f.version++
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calhookbench//upstream//EN\r\nX-WR-CALNAME:" + path + "\r\n")
	day := time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)
	for i, uid := range f.uids {
		start := day.AddDate(0, 0, i)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20261122T150000Z\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n",
			uid, start.Format("20060102T150405Z"), start.Add(2*time.Hour).Format("20060102T150405Z"))
	}
	b.WriteString("END:VCALENDAR\r\n")
	f.body = []byte(b.String())
	f.etag = `"` + strconv.Itoa(f.version) + `-` + strconv.Itoa(len(f.body)) + `"`
}

func (fs *upstreamFeeds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	fs.mu.Lock()
	f, ok := fs.feeds[r.URL.Path]
	if !ok {
		fs.mu.Unlock()
		fs.other.Add(1)
		http.NotFound(w, r)
		return
	}
	f.hook = r.Header.Get("X-ICALHOOKS-URL")
	if f.track {
		f.fetches = append(f.fetches, now)
	}
	body, etag := f.body, f.etag
	fs.mu.Unlock()
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		fs.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	fs.full.Add(1)
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// startCalhookAt is startCalhook on a given address, for scenarios that
// must tell calhook its own URL (--public-url) before it starts.
func startCalhookAt(ctx context.Context, bin, dir, addr string, extra ...string) (*calhookServer, error) {
	return serveSpec{
		name: "calhook", bin: bin, dir: dir, db: filepath.Join(dir, "calhook.db"), addr: addr,
		adminToken: randomHex(32), extra: extra,
	}.start(ctx)
}

// importedCalendar is the part of an imported calendar the bench reads.
type importedCalendar struct {
	ID            string     `json:"id"`
	LastSuccessAt *time.Time `json:"lastSuccessAt"`
	LastError     *string    `json:"lastError"`
	EventCount    int        `json:"eventCount"`
}

// createImported creates an imported calendar of url polled every
// interval.
func (c *apiClient) createImported(ctx context.Context, apiKey, name, url string, interval time.Duration) (*importedCalendar, error) {
	var cal importedCalendar
	in := map[string]any{"name": name, "timeZone": "UTC", "source": map[string]any{
		"url": url, "pollIntervalSeconds": int64(interval / time.Second),
	}}
	if err := c.do(ctx, http.MethodPost, "/v1/calendars", apiKey, in, &cal, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("create imported calendar: %w", err)
	}
	return &cal, nil
}

// createAccountSubscription subscribes webhookURL to every calendar of the
// account.
func (c *apiClient) createAccountSubscription(ctx context.Context, apiKey, webhookURL string, eventTypes ...string) (webhook.Secret, error) {
	var sub subscription
	if len(eventTypes) == 0 {
		eventTypes = []string{"calendar.event.created"}
	}
	in := map[string]any{"webhookUrl": webhookURL, "eventTypes": eventTypes}
	if err := c.do(ctx, http.MethodPost, "/v1/subscriptions", apiKey, in, &sub, http.StatusCreated); err != nil {
		return webhook.Secret{}, fmt.Errorf("create subscription: %w", err)
	}
	secret, err := webhook.ParseSecret(sub.Secret)
	if err != nil {
		return webhook.Secret{}, fmt.Errorf("create subscription: %w", err)
	}
	return secret, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
