package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// readCounter is a store that records the most events any one read
// returned, and how many pages were read.
type readCounter struct {
	Store
	mu       sync.Mutex
	most     int
	pages    int
	tooBig   int
	contents int
}

func (rc *readCounter) WindowFeedContent(ctx context.Context, accountID, calendarID string, w store.FeedWindow) (*store.FeedContent, error) {
	fc, err := rc.Store.WindowFeedContent(ctx, accountID, calendarID, w)
	if err == nil {
		rc.mu.Lock()
		rc.most = max(rc.most, len(fc.Events))
		rc.contents++
		if fc.TooBig {
			rc.tooBig++
		}
		rc.mu.Unlock()
	}
	return fc, err
}

func (rc *readCounter) FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error) {
	page, next, err := rc.Store.FeedEvents(ctx, c, w, pos, limit)
	rc.mu.Lock()
	rc.most = max(rc.most, len(page))
	rc.pages++
	rc.mu.Unlock()
	return page, next, err
}

// streamFixture is an account whose feeds hold what a streamed render
// must get right: several pages of events, zones, a cancelled event,
// history outside the window, old series that still recur and one that
// ended, a UID two calendars share, and a calendar whose feed is off.
type streamFixture struct {
	db         store.Store
	acct       *store.Account
	cals       []*store.Calendar
	now        time.Time
	eventCount int
}

func newStreamFixture(t *testing.T) *streamFixture {
	t.Helper()
	ctx := context.Background()
	f := &streamFixture{db: storetest.OpenSQLite(t), now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	f.acct = &store.Account{ID: id.New("acc"), Name: "Acme", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: f.now, UpdatedAt: f.now}
	if err := f.db.CreateAccount(ctx, f.acct); err != nil {
		t.Fatal(err)
	}
	all := 0
	for i, name := range []string{"Beach", "Loft", "Hidden"} {
		c := &store.Calendar{ID: id.New("cal"), AccountID: f.acct.ID, Name: name, TimeZone: "Europe/Berlin", Kind: store.KindNative,
			CreatedAt: f.now, UpdatedAt: f.now}
		if i == 1 {
			c.FeedWindowDays = &all // the Loft keeps its whole history
		}
		c.FeedDisabled = i == 2
		if err := f.db.CreateCalendar(ctx, c); err != nil {
			t.Fatal(err)
		}
		f.cals = append(f.cals, c)
	}
	day := 24 * time.Hour
	add := func(c *store.Calendar, uid string, start time.Time, tune func(*store.Event)) {
		e := &store.Event{ID: id.New("evt"), AccountID: f.acct.ID, CalendarID: c.ID, UID: uid, Summary: "Stay " + uid,
			Start: start, End: start.Add(3 * day), TimeZone: "Europe/Berlin", Status: store.StatusConfirmed,
			CreatedAt: f.now, UpdatedAt: f.now}
		if tune != nil {
			tune(e)
		}
		if _, err := f.db.CreateEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		f.eventCount++
	}
	beach, loft, hidden := f.cals[0], f.cals[1], f.cals[2]
	// Later bookings are written first, so end order is not write order.
	for i := range 1200 {
		add(beach, fmt.Sprintf("b%04d", i), f.now.Add(time.Duration(600-i)*day), func(e *store.Event) {
			if i%7 == 0 {
				e.TimeZone = "America/New_York"
			}
			if i%50 == 0 {
				e.Status = store.StatusCancelled
			}
			if i%90 == 0 {
				e.AllDay, e.Start, e.End = true, e.Start.Truncate(day), e.Start.Truncate(day).Add(2*day)
			}
		})
	}
	for i := range 300 {
		add(loft, fmt.Sprintf("l%04d", i), f.now.Add(-time.Duration(i)*day), func(e *store.Event) { e.TimeZone = "Asia/Kolkata" })
	}
	add(beach, "weekly", f.now.AddDate(-3, 0, 0), func(e *store.Event) { e.RRule = "FREQ=WEEKLY"; e.End = e.Start.Add(time.Hour) })
	add(beach, "ended", f.now.AddDate(-3, 0, 0), func(e *store.Event) { e.RRule = "FREQ=DAILY;COUNT=3"; e.TimeZone = "Asia/Tokyo" })
	add(loft, "b0003", f.now.Add(5*day), nil) // the Beach has this UID too
	add(hidden, "secret", f.now.Add(day), nil)
	return f
}

// service returns a feed service over rc with the given stream size.
func (f *streamFixture) service(rc Store, streamBytes int64) *Service {
	return NewService(rc, Options{ProdID: "-//calhook//test//EN", StreamBytes: streamBytes, Window: 90 * 24 * time.Hour,
		Now: func() time.Time { return f.now }})
}

// veventSet splits a feed into what comes before its first VEVENT and
// its VEVENTs sorted, so renders that order events differently compare.
func veventSet(body []byte) (string, []string) {
	s := string(body)
	head, rest, _ := strings.Cut(s, "BEGIN:VEVENT\r\n")
	var events []string
	for rest != "" {
		var ev string
		ev, rest, _ = strings.Cut(rest, "END:VEVENT\r\n")
		events = append(events, ev)
		rest = strings.TrimPrefix(rest, "BEGIN:VEVENT\r\n")
		if rest == "END:VCALENDAR\r\n" {
			break
		}
	}
	slices.Sort(events)
	return head, events
}

// TestStreamedFeedMatchesRender checks that a feed too big to hold is
// written from pages, each read holding at most a page of events, and
// has the same header, VTIMEZONEs and VEVENTs as the render of the whole
// feed in memory: the window, the recurring series, the zones, the
// cancelled events, the shared UID and the disabled calendar included.
func TestStreamedFeedMatchesRender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStreamFixture(t)
	whole := f.service(f.db, 1<<30)
	rc := &readCounter{Store: f.db}
	streamed := f.service(rc, 2000)
	for _, calID := range []string{f.cals[0].ID, f.cals[1].ID, ""} {
		want, err := whole.Get(ctx, f.acct.ID, calID, f.acct.FeedToken)
		if err != nil || want.Streamed() {
			t.Fatalf("Get(%q) in memory: streamed %v, %v", calID, want != nil && want.Streamed(), err)
		}
		got, err := streamed.Get(ctx, f.acct.ID, calID, f.acct.FeedToken)
		if err != nil || !got.Streamed() {
			t.Fatalf("Get(%q) over StreamBytes: streamed %v, %v; want a streamed feed", calID, got != nil && got.Streamed(), err)
		}
		var buf bytes.Buffer
		n, err := got.Write(ctx, &buf)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("Write(%q) = %d, %v; want the %d bytes written", calID, n, err, buf.Len())
		}
		wantHead, wantEvents := veventSet(want.Body)
		gotHead, gotEvents := veventSet(buf.Bytes())
		if gotHead != wantHead {
			t.Errorf("streamed %q: header and VTIMEZONEs differ:\n%s\nwant:\n%s", calID, gotHead, wantHead)
		}
		if !slices.Equal(gotEvents, wantEvents) {
			t.Errorf("streamed %q: %d VEVENTs; want the %d of the render in memory", calID, len(gotEvents), len(wantEvents))
		}
		if len(wantEvents) < 100 || strings.Contains(buf.String(), "secret") || !strings.HasSuffix(buf.String(), "END:VCALENDAR\r\n") {
			t.Errorf("streamed %q: %d VEVENTs, hidden calendar's event present %v; want a whole feed of the published calendars",
				calID, len(gotEvents), strings.Contains(buf.String(), "secret"))
		}
	}
	if most := max(streamed.maxEvents(), streamPage); rc.most > most || rc.tooBig != rc.contents || rc.pages < 5 {
		t.Errorf("reads: at most %d events a read, %d of %d content reads too big, %d pages; want at most %d, all too big, pages",
			rc.most, rc.tooBig, rc.contents, rc.pages, most)
	}
	if !strings.Contains(string(mustRender(t, whole, f, "")), "UID:b0003-"+f.cals[1].ID) {
		t.Errorf("the shared UID is not made unique in the all-calendars feed")
	}
}

func mustRender(t *testing.T, svc *Service, f *streamFixture, calID string) []byte {
	t.Helper()
	feed, err := svc.Get(context.Background(), f.acct.ID, calID, f.acct.FeedToken)
	if err != nil {
		t.Fatal(err)
	}
	return mustWrite(t, feed)
}

// beforePass is a store that calls fn before a streamed render's pass
// over a calendar's events starts (a read from the zero position).
type beforePass struct {
	Store
	fn func(c *store.Calendar, pass int)
	mu sync.Mutex
	n  map[string]int
}

func (bp *beforePass) FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error) {
	if pos == (store.FeedPos{}) {
		bp.mu.Lock()
		bp.n[c.ID]++
		pass := bp.n[c.ID]
		bp.mu.Unlock()
		bp.fn(c, pass)
	}
	return bp.Store.FeedEvents(ctx, c, w, pos, limit)
}

// TestStreamedFeedWriteDuringRender checks a write during a streamed
// render, between its pass for the zones and the pass that writes the
// events: the render shows it, and as the feed has no VTIMEZONE for its
// zone, it goes out in UTC rather than with a TZID nothing defines.
func TestStreamedFeedWriteDuringRender(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStreamFixture(t)
	beach := f.cals[0]
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	late := &store.Event{ID: id.New("evt"), AccountID: f.acct.ID, CalendarID: beach.ID, UID: "late", Summary: "Late",
		Start: start, End: start.Add(time.Hour), TimeZone: "Pacific/Auckland", Status: store.StatusConfirmed,
		CreatedAt: f.now, UpdatedAt: f.now}
	bp := &beforePass{Store: f.db, n: map[string]int{}, fn: func(c *store.Calendar, pass int) {
		if c.ID == beach.ID && pass == 2 {
			if _, err := f.db.CreateEvent(ctx, late); err != nil {
				t.Error(err)
			}
		}
	}}
	got, err := f.service(bp, 2000).Get(ctx, f.acct.ID, beach.ID, f.acct.FeedToken)
	if err != nil || !got.Streamed() {
		t.Fatalf("Get: streamed %v, %v", got != nil && got.Streamed(), err)
	}
	body := string(mustWrite(t, got))
	if !strings.Contains(body, "UID:late\r\n") || !strings.Contains(body, "DTSTART:20270301T090000Z\r\n") ||
		strings.Contains(body, "Pacific/Auckland") {
		i := max(strings.Index(body, "UID:late"), 0)
		t.Errorf("the late event is missing or written with a zone the feed does not define: %q", body[i:min(i+300, len(body))])
	}
}

func mustWrite(t *testing.T, f *Feed) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := f.Write(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failAfter accepts n bytes, then fails every write, as a client that
// went away.
type failAfter struct{ n int }

var errGone = errors.New("client went away")

func (w *failAfter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errGone
	}
	w.n -= len(p)
	return len(p), nil
}

// TestStreamedFeedStopsWhenTheClientGoes checks that a streamed render
// whose writes fail stops reading the store and returns the error.
func TestStreamedFeedStopsWhenTheClientGoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStreamFixture(t)
	rc := &readCounter{Store: f.db}
	svc := f.service(rc, 2000)
	feed, err := svc.Get(ctx, f.acct.ID, "", f.acct.FeedToken)
	if err != nil {
		t.Fatal(err)
	}
	whole := mustWrite(t, feed)
	rc.pages = 0
	mustWrite(t, feed)
	pages := rc.pages
	rc.pages = 0
	n, err := feed.Write(ctx, &failAfter{n: 20000})
	if !errors.Is(err, errGone) || n >= int64(len(whole)) {
		t.Errorf("Write to a failing writer = %d, %v; want %v before the %d bytes", n, err, errGone, len(whole))
	}
	if rc.pages >= pages {
		t.Errorf("a failed render read %d pages; want fewer than a whole one's %d", rc.pages, pages)
	}
}
