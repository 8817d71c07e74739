package importer

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// Upstream events used across the tests. Each is a list of property lines;
// stamp() adds the DTSTAMP a feed was generated at.
var (
	evA = []string{"UID:a@upstream", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z", "SUMMARY:Booking A",
		"X-AIRBNB-ID:HM123"}
	evAMoved = []string{"UID:a@upstream", "DTSTART:20261201T120000Z", "DTEND:20261201T130000Z", "SUMMARY:Booking A",
		"X-AIRBNB-ID:HM123"}
	evB = []string{"UID:b@upstream", "DTSTART;VALUE=DATE:20261205", "DTEND;VALUE=DATE:20261208", "SUMMARY:Stay B",
		"STATUS:CONFIRMED"}
	evBCancelled = []string{"UID:b@upstream", "DTSTART;VALUE=DATE:20261205", "DTEND;VALUE=DATE:20261208",
		"SUMMARY:Stay B", "STATUS:CANCELLED"}
	evC      = []string{"UID:c@upstream", "DTSTART:20261210T080000Z", "DTEND:20261210T090000Z", "SUMMARY:Booking C"}
	evSeries = []string{"UID:r@upstream", "DTSTART;TZID=Europe/Berlin:20261207T090000",
		"DTEND;TZID=Europe/Berlin:20261207T100000", "RRULE:FREQ=WEEKLY;COUNT=4", "SUMMARY:Cleaning"}
	evSeriesExdate = []string{"UID:r@upstream", "DTSTART;TZID=Europe/Berlin:20261207T090000",
		"DTEND;TZID=Europe/Berlin:20261207T100000", "RRULE:FREQ=WEEKLY;COUNT=4", "SUMMARY:Cleaning",
		"EXDATE;TZID=Europe/Berlin:20261221T090000"}
	evOverride = []string{"UID:r@upstream", "RECURRENCE-ID;TZID=Europe/Berlin:20261214T090000",
		"DTSTART;TZID=Europe/Berlin:20261214T113000", "DTEND;TZID=Europe/Berlin:20261214T123000", "SUMMARY:Cleaning (late)"}
	evOverrideMoved = []string{"UID:r@upstream", "RECURRENCE-ID;TZID=Europe/Berlin:20261214T090000",
		"DTSTART;TZID=Europe/Berlin:20261214T140000", "DTEND;TZID=Europe/Berlin:20261214T150000", "SUMMARY:Cleaning (late)"}
)

// overrideKey is the override's key: its RECURRENCE-ID in UTC.
const overrideKey = "r@upstream@20261214T080000Z"

// stamp returns a VEVENT of props generated at n: DTSTAMP and
// LAST-MODIFIED differ with n, as they do on every fetch of many feeds.
func stamp(n int, props []string) string {
	ts := time.Date(2026, 11, 22, 15, 0, n, 0, time.UTC).Format("20060102T150405Z")
	return vevent(append([]string{"DTSTAMP:" + ts, "LAST-MODIFIED:" + ts}, props...)...)
}

// reversed returns props in reverse order (property order must not
// matter).
func reversed(props []string) []string {
	out := slices.Clone(props)
	slices.Reverse(out)
	return out
}

func TestImportLifecycle(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	steps := []struct {
		name    string
		advance time.Duration // moves the clock before the poll
		events  []string
		status  string
		want    []string
	}{
		{"initial import", 0, []string{stamp(1, evA), stamp(1, evB), stamp(1, evSeries), stamp(1, evOverride)}, StatusChanged,
			[]string{"event.created a@upstream", "event.created b@upstream", "event.created r@upstream", "event.created " + overrideKey}},
		{"DTSTAMP churn and reordering", 0, []string{stamp(2, reversed(evOverride)), stamp(2, reversed(evSeries)),
			stamp(2, reversed(evB)), stamp(2, reversed(evA))}, StatusUnchanged, nil},
		{"move", 0, []string{stamp(3, evAMoved), stamp(3, evB), stamp(3, evSeries), stamp(3, evOverride)}, StatusChanged,
			[]string{"event.updated a@upstream"}},
		{"cancel", 0, []string{stamp(4, evAMoved), stamp(4, evBCancelled), stamp(4, evSeries), stamp(4, evOverride)}, StatusChanged,
			[]string{"event.updated b@upstream"}},
		{"add", 0, []string{stamp(5, evAMoved), stamp(5, evBCancelled), stamp(5, evC), stamp(5, evSeries), stamp(5, evOverride)},
			StatusChanged, []string{"event.created c@upstream"}},
		{"delete", 0, []string{stamp(6, evBCancelled), stamp(6, evC), stamp(6, evSeries), stamp(6, evOverride)}, StatusChanged,
			[]string{"event.deleted a@upstream"}},
		{"recurring: exdate and moved override", 0, []string{stamp(7, evBCancelled), stamp(7, evC), stamp(7, evSeriesExdate),
			stamp(7, evOverrideMoved)}, StatusChanged, []string{"event.updated r@upstream", "event.updated " + overrideKey}},
		{"override removed", 0, []string{stamp(8, evBCancelled), stamp(8, evC), stamp(8, evSeriesExdate)}, StatusChanged,
			[]string{"event.deleted " + overrideKey}},
		{"valid empty calendar: deletes held", 0, nil, StatusUnchanged, []string{"sync.held"}},
		{"still empty after the delay: deletes applied", DefaultGuardDelay, nil, StatusChanged,
			[]string{"event.deleted b@upstream", "event.deleted c@upstream", "event.deleted r@upstream"}},
	}
	var cursor store.ChangePos
	for _, step := range steps {
		h.clock.Advance(step.advance)
		up.serveFeed(feed(step.events...), "", "")
		before := h.version(cal)
		res := h.poll(cal)
		if res.Status != step.status || res.Err != nil {
			t.Fatalf("%s: poll = %s, %v; want %s", step.name, res.Status, res.Err, step.status)
		}
		var got []string
		got, cursor = h.changesSince(cal, cursor)
		if !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s: changes = %q; want %q", step.name, got, step.want)
		}
		eventChanges := 0
		for _, ch := range step.want {
			if strings.HasPrefix(ch, "event.") {
				eventChanges++
			}
		}
		wantVersion := before
		if eventChanges > 0 {
			wantVersion++ // one bump per poll, however many events changed
		}
		if v := h.version(cal); v != wantVersion {
			t.Errorf("%s: version %d -> %d; want %d", step.name, before, v, wantVersion)
		}
		if n := res.Created + res.Updated + res.Deleted; n != eventChanges {
			t.Errorf("%s: result counts %d+%d+%d; want %d in all", step.name, res.Created, res.Updated, res.Deleted, eventChanges)
		}
		switch step.name {
		case "initial import":
			checkInitialEvents(t, h.events(cal))
		case "cancel":
			if got := h.events(cal)["b@upstream"].Status; got != store.StatusCancelled {
				t.Errorf("cancelled event has status %q; want %q (kept, left out of feeds)", got, store.StatusCancelled)
			}
		case "recurring: exdate and moved override":
			evs := h.events(cal)
			wantEx := []time.Time{time.Date(2026, 12, 21, 8, 0, 0, 0, time.UTC)}
			if got := evs["r@upstream"].ExDates; !slices.EqualFunc(got, wantEx, time.Time.Equal) {
				t.Errorf("series EXDATEs = %v; want %v", got, wantEx)
			}
			if got := evs[overrideKey].Start; !got.Equal(time.Date(2026, 12, 14, 13, 0, 0, 0, time.UTC)) {
				t.Errorf("moved override starts %v; want 13:00 UTC", got)
			}
		}
		if got := h.get(cal).Import.EventCount; got != len(h.events(cal)) {
			t.Errorf("%s: eventCount = %d; want %d", step.name, got, len(h.events(cal)))
		}
	}
}

func checkInitialEvents(t *testing.T, evs map[string]*store.Event) {
	t.Helper()
	a := evs["a@upstream"]
	if a == nil || a.Summary != "Booking A" || !a.Start.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) ||
		a.Extra["X-AIRBNB-ID"] != "HM123" || a.Status != store.StatusConfirmed {
		t.Errorf("event a = %+v; want Booking A at 10:00 UTC, confirmed, with X-AIRBNB-ID kept", a)
	}
	b := evs["b@upstream"]
	if b == nil || !b.AllDay || !b.Start.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) ||
		!b.End.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("all-day event b = %+v; want Dec 5 to Dec 8 (exclusive) as midnight UTC", b)
	}
	r := evs["r@upstream"]
	if r == nil || r.RRule != "FREQ=WEEKLY;COUNT=4" || r.TimeZone != "Europe/Berlin" ||
		!r.Start.Equal(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("series r = %+v; want weekly from Dec 7 09:00 Berlin", r)
	}
	if o := evs[overrideKey]; o == nil || o.Summary != "Cleaning (late)" {
		t.Errorf("override = %+v; want Cleaning (late)", o)
	}
}

// TestDTSTAMPChurnEmitsNothing proves that a feed which rewrites DTSTAMP
// and LAST-MODIFIED on every fetch (and shuffles property order) produces
// no change, no version bump and no webhook.
func TestDTSTAMPChurnEmitsNothing(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	events := [][]string{evA, evB, evSeries, evOverride}
	render := func(n int, rev bool) string {
		var out []string
		for _, e := range events {
			if rev {
				e = reversed(e)
			}
			out = append(out, stamp(n, e))
		}
		return feed(out...)
	}
	up.serveFeed(render(0, false), "", "")
	if res := h.poll(cal); res.Status != StatusChanged {
		t.Fatalf("first poll = %s, %v; want changed", res.Status, res.Err)
	}
	_, cursor := h.changesSince(cal, store.ChangePos{})
	v := h.version(cal)
	notified := h.changed.Load()
	for n := 1; n <= 5; n++ {
		body := render(n, n%2 == 1)
		up.serveFeed(body, "", "")
		res := h.poll(cal)
		if res.Status != StatusUnchanged || res.Created+res.Updated+res.Deleted != 0 {
			t.Errorf("fetch %d with new DTSTAMPs = %s (%d/%d/%d); want unchanged", n, res.Status, res.Created, res.Updated, res.Deleted)
		}
		if got, _ := h.changesSince(cal, cursor); len(got) != 0 {
			t.Errorf("fetch %d with new DTSTAMPs recorded changes %q", n, got)
		}
	}
	if got := h.version(cal); got != v {
		t.Errorf("version moved from %d to %d on DTSTAMP churn", v, got)
	}
	if got := h.changed.Load(); got != notified {
		t.Errorf("Changed called %d times on DTSTAMP churn; want 0", got-notified)
	}
}

func TestConditionalGET(t *testing.T) {
	t.Parallel()
	body := feed(stamp(1, evA))
	tests := []struct {
		name         string
		etag, lm     string
		wantHeader   string
		wantValue    string
		secondStatus string
	}{
		{"ETag", `"v1"`, "", "If-None-Match", `"v1"`, StatusNotModified},
		{"Last-Modified", "", "Sun, 22 Nov 2026 15:00:00 GMT", "If-Modified-Since", "Sun, 22 Nov 2026 15:00:00 GMT", StatusNotModified},
		{"no validators: same body by hash", "", "", "", "", StatusUnchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, "")
			h := newHarness(t, harnessOpts{})
			cal := h.calendar(up.URL+"/cal.ics", 0)
			up.serveFeed(body, tt.etag, tt.lm)
			if res := h.poll(cal); res.Status != StatusChanged {
				t.Fatalf("first poll = %s, %v", res.Status, res.Err)
			}
			if got := up.lastHeader().Get("Accept-Encoding"); got != "gzip" {
				t.Errorf("Accept-Encoding = %q; want gzip", got)
			}
			stored := h.get(cal)
			if stored.Import.ETag != tt.etag || stored.Import.LastModified != tt.lm {
				t.Errorf("stored validators = %q, %q; want %q, %q", stored.Import.ETag, stored.Import.LastModified, tt.etag, tt.lm)
			}
			reads, v := h.store.feedReads.Load(), h.version(cal)
			h.clock.Advance(time.Minute)
			res := h.poll(cal)
			if res.Status != tt.secondStatus {
				t.Errorf("second poll = %s, %v; want %s", res.Status, res.Err, tt.secondStatus)
			}
			if tt.wantHeader != "" {
				if got := up.lastHeader().Get(tt.wantHeader); got != tt.wantValue {
					t.Errorf("%s = %q; want %q", tt.wantHeader, got, tt.wantValue)
				}
			}
			if got := h.store.feedReads.Load(); got != reads {
				t.Errorf("the second poll read the stored events %d times; want 0 (no parse, no diff)", got-reads)
			}
			after := h.get(cal)
			if after.Version != v || !after.Import.LastSyncAt.Equal(h.clock.Now()) || !after.Import.LastSuccessAt.Equal(h.clock.Now()) {
				t.Errorf("after the second poll: version %d (was %d), lastSyncAt %v, lastSuccessAt %v; want version kept, both %v",
					after.Version, v, after.Import.LastSyncAt, after.Import.LastSuccessAt, h.clock.Now())
			}
		})
	}
}

func TestGzipAndRedirects(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	body := []byte(feed(stamp(1, evA), stamp(1, evC)))
	up.set(func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/")); err == nil && n > 0 {
			http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
			return
		}
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("request without Accept-Encoding: gzip")
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gzipped(t, body))
	})
	cal := h.calendar(up.URL+"/hop/5", 0) // five redirects: the limit
	res := h.poll(cal)
	if res.Status != StatusChanged || res.Created != 2 {
		t.Fatalf("poll through 5 redirects of a gzip feed = %s (%d created), %v; want 2 created", res.Status, res.Created, res.Err)
	}
}

// TestFetchFailures runs every way a fetch can fail after a good import:
// the error is recorded, events stay, calendar.sync.failed is emitted once
// per outage and calendar.sync.recovered when it heals.
func TestFetchFailures(t *testing.T) {
	t.Parallel()
	good := feed(stamp(1, evA), stamp(1, evB))
	huge := bytes.Repeat([]byte("X-FILLER:0123456789012345678901234567890123456789012345678901234567890123\r\n"), (30<<20)/76+1)
	bomb := gzipped(t, make([]byte, 100<<20))
	truncated := good[:len(good)-len("END:VCALENDAR\r\n")-40]
	tests := []struct {
		name    string
		handler http.HandlerFunc
		url     string // overrides the feed URL
		want    string // substring of lastError
	}{
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "", "HTTP 500 Internal Server Error"},
		{"HTTP 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "", "HTTP 404 Not Found"},
		{"hang", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, "", "timed out"},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("BEGIN:VCALENDAR\r\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, "", "timed out"},
		{"30 MiB body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(huge)))
			w.Write(huge)
		}, "", "body larger than 20 MiB"},
		{"30 MiB body without Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // chunked: no length known up front
			w.Write(huge)
		}, "", "body larger than 20 MiB"},
		{"gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb)
		}, "", "body larger than 20 MiB"},
		{"corrupt gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("not gzip at all"))
		}, "", "invalid gzip body"},
		{"HTML body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<!DOCTYPE html><html><body>Login required</body></html>"))
		}, "", "HTML or XML instead of iCalendar"},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(truncated)) }, "", "truncated input"},
		{"empty body", func(w http.ResponseWriter, r *http.Request) {}, "", "unparsable feed: empty"},
		{"too many redirects", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		}, "", "stopped after 5 redirects"},
		{"redirect to a private address", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://10.1.2.3/feed.ics", http.StatusFound)
		}, "", "redirect 1 refused: forbidden address"},
		{"connection refused", nil, "http://127.0.0.1:1/cal.ics", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, "")
			// The hanging cases wait for the fetch timeout; the others
			// must not hit it, even under the race detector.
			timeout := 20 * time.Second
			if tt.want == "timed out" {
				timeout = 300 * time.Millisecond
			}
			h := newHarness(t, harnessOpts{timeout: timeout})
			cal := h.calendar(up.URL+"/cal.ics", 0)
			up.serveFeed(good, "", "")
			if res := h.poll(cal); res.Status != StatusChanged || res.Created != 2 {
				t.Fatalf("good poll = %s, %v", res.Status, res.Err)
			}
			_, cursor := h.changesSince(cal, store.ChangePos{})
			if tt.url != "" {
				cal.SourceURL = tt.url
				if err := h.store.UpdateCalendar(context.Background(), cal); err != nil {
					t.Fatal(err)
				}
			} else {
				up.set(tt.handler)
			}
			for n := 1; n <= 2; n++ {
				h.clock.Advance(time.Minute)
				res := h.poll(cal)
				if res.Status != StatusError || res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) {
					t.Fatalf("failing poll %d = %s, %v; want error containing %q", n, res.Status, res.Err, tt.want)
				}
				got := h.get(cal)
				if !strings.Contains(got.Import.LastError, tt.want) || got.Import.Failures != n {
					t.Errorf("poll %d: lastError %q, failures %d; want %q, %d", n, got.Import.LastError, got.Import.Failures, tt.want, n)
				}
				if !got.Import.LastSyncAt.Equal(h.clock.Now()) || got.Import.LastSuccessAt.Equal(h.clock.Now()) {
					t.Errorf("poll %d: lastSyncAt %v, lastSuccessAt %v; want only lastSyncAt now", n, got.Import.LastSyncAt, got.Import.LastSuccessAt)
				}
				if len(h.events(cal)) != 2 || got.Import.EventCount != 2 {
					t.Errorf("poll %d: %d events (count %d) after a failed fetch; want the 2 kept", n, len(h.events(cal)), got.Import.EventCount)
				}
			}
			changes, cursor := h.changesSince(cal, cursor)
			if want := []string{"sync.failed"}; !reflect.DeepEqual(changes, want) {
				t.Errorf("changes during the outage = %q; want %q (once per outage)", changes, want)
			}
			if tt.url != "" {
				cal.SourceURL = up.URL + "/cal.ics"
				if err := h.store.UpdateCalendar(context.Background(), cal); err != nil {
					t.Fatal(err)
				}
			}
			up.serveFeed(good, "", "")
			h.clock.Advance(time.Minute)
			if res := h.poll(cal); res.Status != StatusUnchanged {
				t.Errorf("healed poll = %s, %v; want unchanged", res.Status, res.Err)
			}
			changes, _ = h.changesSince(cal, cursor)
			if want := []string{"sync.recovered"}; !reflect.DeepEqual(changes, want) {
				t.Errorf("changes after healing = %q; want %q", changes, want)
			}
			if got := h.get(cal); got.Import.LastError != "" || got.Import.Failures != 0 {
				t.Errorf("after healing: lastError %q, failures %d; want cleared", got.Import.LastError, got.Import.Failures)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "900")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	res := h.poll(cal)
	if res.Status != StatusError || !strings.Contains(res.Err.Error(), "429") {
		t.Fatalf("poll = %s, %v; want a 429 error", res.Status, res.Err)
	}
	if got, want := h.get(cal).Import.NextPollAt, h.clock.Now().Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("next poll after Retry-After: 900 = %v; want %v", got, want)
	}
}

// TestBackoffAndAdaptiveSchedule drives a calendar's schedule through a
// failure streak and recovery with the test clock: no sleeping.
func TestBackoffAndAdaptiveSchedule(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{schedule: Schedule{Default: 10 * time.Minute, Min: 30 * time.Second, Max: time.Hour}})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	next := func() time.Duration { return h.get(cal).Import.NextPollAt.Sub(h.clock.Now()) }

	up.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	var got []time.Duration
	for range 8 {
		h.poll(cal)
		got = append(got, next())
		h.clock.Advance(next())
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backoff = %v; want %v", got, want)
	}

	up.serveFeed(feed(stamp(1, evA)), "", "")
	h.poll(cal) // a change: poll faster for a while
	if got := next(); got != 10*time.Minute/4 {
		t.Errorf("interval right after a change = %v; want base/4 = %v", got, 10*time.Minute/4)
	}
	h.clock.Advance(30 * time.Minute)
	h.poll(cal)
	if got := next(); got != 5*time.Minute {
		t.Errorf("interval 30 min after a change = %v; want base/2", got)
	}
	h.clock.Advance(3 * 24 * time.Hour)
	h.poll(cal)
	if got := next(); got != 20*time.Minute {
		t.Errorf("interval 3 days after a change = %v; want base×2", got)
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	s := Schedule{Default: 5 * time.Minute, Min: 30 * time.Second, Max: time.Hour, Jitter: 0.1}.withDefaults()
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	created := now.Add(-time.Hour)
	tests := []struct {
		name     string
		interval time.Duration
		change   time.Time
		want     time.Duration
	}{
		{"never changed, new", 0, time.Time{}, 5 * time.Minute},
		{"changed 5 min ago", 0, now.Add(-5 * time.Minute), 75 * time.Second},
		{"changed 30 min ago", 0, now.Add(-30 * time.Minute), 150 * time.Second},
		{"changed 5 h ago", 0, now.Add(-5 * time.Hour), 5 * time.Minute},
		{"changed 2 days ago", 0, now.Add(-48 * time.Hour), 10 * time.Minute},
		{"changed 30 days ago", 0, now.Add(-30 * 24 * time.Hour), 20 * time.Minute},
		{"fast floor", time.Minute, now.Add(-time.Minute), 30 * time.Second},
		{"quiet ceiling", 30 * time.Minute, now.Add(-30 * 24 * time.Hour), time.Hour},
		{"explicit interval above the ceiling is kept", 2 * time.Hour, now.Add(-5 * time.Hour), 2 * time.Hour},
	}
	for _, tt := range tests {
		if got := s.Healthy(tt.interval, tt.change, created, now); got != tt.want {
			t.Errorf("%s: Healthy(%v) = %v; want %v", tt.name, tt.interval, got, tt.want)
		}
	}
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		got := s.Jittered(10*time.Minute, r)
		if got < 9*time.Minute || got > 11*time.Minute {
			t.Errorf("Jittered(10m, %v) = %v; want within ±10%%", r, got)
		}
	}
	if got := s.Jittered(30*time.Second, 0); got != 30*time.Second {
		t.Errorf("Jittered(floor, 0) = %v; want never below the floor", got)
	}
	if got := Later(time.Minute, 10*time.Minute, time.Hour); got != 10*time.Minute {
		t.Errorf("Later(1m, max-age 10m) = %v; want 10m", got)
	}
	if got := Later(time.Minute, 48*time.Hour, time.Hour); got != time.Hour {
		t.Errorf("Later(1m, 48h, limit 1h) = %v; want 1h", got)
	}
	if got := retryAfter("Sun, 22 Nov 2026 15:10:00 GMT", now); got != 10*time.Minute {
		t.Errorf("retryAfter(HTTP date) = %v; want 10m", got)
	}
	if got := retryAfter("120", now); got != 2*time.Minute {
		t.Errorf("retryAfter(120) = %v; want 2m", got)
	}
}

func TestHookURLHeaderAndPing(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{publicURL: "https://calhook.example.com/"})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	up.serveFeed(feed(stamp(1, evA)), `"e1"`, "")
	h.poll(cal)
	want := "https://calhook.example.com/hooks/in/" + cal.Import.HookToken
	if got := up.lastHeader().Get("X-ICALHOOKS-URL"); got != want {
		t.Errorf("X-ICALHOOKS-URL = %q; want %q", got, want)
	}
	if len(cal.Import.HookToken) != 64 {
		t.Errorf("hook token %q: want 64 hex characters (32 random bytes)", cal.Import.HookToken)
	}

	ctx := context.Background()
	if err := h.imp.Ping(ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Ping(unknown token) = %v; want ErrNotFound", err)
	}
	claim := func() int {
		t.Helper()
		cals, err := h.store.ClaimPolls(ctx, store.ClaimPollsParams{Now: h.clock.Now(), Limit: 10, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cals {
			if _, err := h.imp.pollCalendar(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		return len(cals)
	}
	if err := h.imp.Ping(ctx, cal.Import.HookToken); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n := claim(); n != 1 {
		t.Errorf("polls after a ping = %d; want 1", n)
	}
	// Pings within the window (1 s) coalesce into one poll at its end.
	for range 3 {
		h.clock.Advance(200 * time.Millisecond)
		if err := h.imp.Ping(ctx, cal.Import.HookToken); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	h.clock.Advance(200 * time.Millisecond) // 0.8 s after the first ping
	if n := claim(); n != 0 {
		t.Errorf("polls within 1 s of the last triggered one = %d; want 0", n)
	}
	h.clock.Advance(300 * time.Millisecond) // 1.1 s after the first ping
	if n := claim(); n != 1 {
		t.Errorf("polls at the end of the window = %d; want 1 (coalesced)", n)
	}
	if n := claim(); n != 0 {
		t.Errorf("polls after the coalesced one = %d; want 0", n)
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	up.serveFeed(feed(
		stamp(1, []string{"UID:rd", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z", "SUMMARY:With RDATE",
			"RDATE:20261215T100000Z,20261208T100000Z", "STATUS:TENTATIVE", "SEQUENCE:3", "LOCATION:Room 1",
			"DESCRIPTION:Line 1\\nLine 2", "X-CUSTOM;X-PARAM=1:value"}),
		stamp(1, []string{"DTSTART:20261202T100000", "DURATION:PT30M", "SUMMARY:Floating, no UID"}),
	), "", "")
	if res := h.poll(cal); res.Created != 2 {
		t.Fatalf("poll = %s %d created, %v", res.Status, res.Created, res.Err)
	}
	var rd, floating *store.Event
	for k, e := range h.events(cal) {
		if k == "rd" {
			rd = e
		} else {
			floating = e
		}
	}
	if rd.Extra[rdateKey] != "20261208T100000Z,20261215T100000Z" || rd.Status != store.StatusTentative || rd.Sequence != 3 ||
		rd.Location != "Room 1" || rd.Description != "Line 1\nLine 2" || rd.Extra["X-CUSTOM"] == "" {
		t.Errorf("event rd = %+v; want RDATEs sorted in Extra, tentative, sequence 3, location, description and X-CUSTOM", rd)
	}
	// Floating times are placed in the calendar's zone (Europe/Berlin).
	if floating == nil || floating.UID == "" || !floating.Start.Equal(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)) ||
		floating.End.Sub(floating.Start) != 30*time.Minute {
		t.Errorf("floating event = %+v; want a derived UID, 10:00 Berlin = 09:00 UTC, 30 min", floating)
	}
	// Re-polling derives the same UID: nothing changes.
	up.serveFeed(feed(
		stamp(2, []string{"UID:rd", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z", "SUMMARY:With RDATE",
			"RDATE:20261208T100000Z,20261215T100000Z", "STATUS:TENTATIVE", "SEQUENCE:3", "LOCATION:Room 1",
			"DESCRIPTION:Line 1\\nLine 2", "X-CUSTOM;X-PARAM=1:value"}),
		stamp(2, []string{"DTSTART:20261202T100000", "DURATION:PT30M", "SUMMARY:Floating, no UID"}),
	), "", "")
	if res := h.poll(cal); res.Status != StatusUnchanged {
		t.Errorf("re-poll with RDATEs reordered and a derived UID = %s (%d/%d/%d); want unchanged",
			res.Status, res.Created, res.Updated, res.Deleted)
	}
}

// TestSilentFetchAbandoned stalls a loopback upstream at each point a
// fetch can wait — before the headers, in the middle of the body — and
// checks that the poll is abandoned after the idle timeout, long before
// the overall one, while an upstream that trickles bytes more often than
// the idle timeout is read to the end.
func TestSilentFetchAbandoned(t *testing.T) {
	t.Parallel()
	good := feed(stamp(1, evA), stamp(1, evB))
	const idle = 300 * time.Millisecond
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// wantErr is a substring of lastError, "" for a successful poll.
		wantErr string
	}{
		{"no headers", stall, "the server sent nothing for 300ms"},
		{"stalls mid-body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/calendar")
			w.Write([]byte(good[:len(good)/2]))
			w.(http.Flusher).Flush()
			stall(w, r)
		}, "the server sent nothing for 300ms"},
		{"trickles steadily", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/calendar")
			for chunk := range slices.Chunk([]byte(good), len(good)/8+1) {
				w.Write(chunk)
				w.(http.Flusher).Flush()
				time.Sleep(idle / 4)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, "")
			up.set(tt.handler)
			h := newHarness(t, harnessOpts{timeout: 20 * time.Second, idle: idle})
			cal := h.calendar(up.URL+"/cal.ics", 0)
			started := time.Now()
			res := h.poll(cal)
			took := time.Since(started)
			if tt.wantErr == "" {
				if res.Status != StatusChanged || res.Created != 2 {
					t.Fatalf("poll = %s (%v); want changed with 2 events", res.Status, res.Err)
				}
				return
			}
			if res.Status != StatusError || !strings.Contains(h.get(cal).Import.LastError, tt.wantErr) {
				t.Fatalf("poll = %s, lastError %q; want an error containing %q", res.Status, h.get(cal).Import.LastError, tt.wantErr)
			}
			// Well under the 20 s overall timeout: the idle timeout ended it.
			if took > 10*time.Second {
				t.Errorf("the stalled fetch took %s; want it abandoned after about %s", took, idle)
			}
		})
	}
}
