package importer

import (
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// upstream is a feed server on loopback whose answer the test changes
// between polls.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	last    http.Header
	hits    atomic.Int64
}

// newUpstream starts a feed server on addr ("127.0.0.1:0" when empty).
func newUpstream(t testing.TB, addr string) *upstream {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Header.Clone()
		h := u.handler
		u.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	u.Listener.Close()
	u.Listener = l
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) set(h http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = h
}

func (u *upstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// serveFeed answers body as text/calendar with optional validators,
// honouring If-None-Match and If-Modified-Since.
func (u *upstream) serveFeed(body, etag, lastModified string) {
	u.set(func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if lastModified != "" {
			w.Header().Set("Last-Modified", lastModified)
			if etag == "" && r.Header.Get("If-Modified-Since") == lastModified {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
		w.Write([]byte(body))
	})
}

// feed builds a VCALENDAR around VEVENTs, with CRLF line ends.
func feed(events ...string) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//upstream//EN\r\nX-WR-CALNAME:Upstream\r\n")
	for _, e := range events {
		b.WriteString(e)
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}

// vevent builds a VEVENT from property lines ("SUMMARY:x").
func vevent(props ...string) string {
	return "BEGIN:VEVENT\r\n" + strings.Join(props, "\r\n") + "\r\nEND:VEVENT\r\n"
}

func gzipped(t testing.TB, s []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(s); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

// countingStore counts the event reads a poll makes (a 304 or an unchanged
// body must make none).
type countingStore struct {
	store.Store
	feedReads atomic.Int64
}

func (s *countingStore) FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error) {
	s.feedReads.Add(1)
	return s.Store.FeedContent(ctx, accountID, calendarID)
}

// harness is an importer on a real SQLite store with one account.
type harness struct {
	t       testing.TB
	store   *countingStore
	clock   *clock
	imp     *Importer
	account *store.Account
	changed atomic.Int64
	// dbPath is the SQLite file, for tests that open it themselves.
	dbPath string
}

type harnessOpts struct {
	timeout    time.Duration
	publicURL  string
	schedule   Schedule
	conc       int
	perHost    int
	perAccount int
	realClock  bool
	idle       time.Duration
	maxEvents  int
	chunk      int
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "calhook.db")
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	h := &harness{t: t, store: &countingStore{Store: db}, clock: newClock(), dbPath: dbPath}
	client := outbound.NewClient(outbound.Options{
		Policy:    outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		UserAgent: "calhook-test", Timeout: o.timeout, MaxRedirects: 5,
	})
	now := h.clock.Now
	if o.realClock {
		now = time.Now
	}
	bus := &notify.Bus{}
	bus.FeedsChanged.Subscribe(func(notify.FeedChange) { h.changed.Add(1) })
	h.imp = New(Config{
		Store: h.store, Client: client, Now: now, Rand: func() float64 { return 0.5 },
		Schedule: o.schedule, Timeout: o.timeout, PublicURL: o.publicURL,
		Concurrency: o.conc, PerHost: o.perHost, PerAccount: o.perAccount,
		IdleTimeout: o.idle, MaxEvents: o.maxEvents, ChunkSize: o.chunk,
		Bus: bus,
	})
	h.account = &store.Account{
		ID: id.New("acc"), Name: "Test", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now(),
	}
	if err := db.CreateAccount(context.Background(), h.account); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return h
}

// calendar creates an imported calendar of url, due now.
func (h *harness) calendar(url string, interval time.Duration) *store.Calendar {
	h.t.Helper()
	now := h.imp.cfg.Now()
	c := &store.Calendar{
		ID: id.New("cal"), AccountID: h.account.ID, Name: "Imported", TimeZone: "Europe/Berlin",
		Kind: store.KindImported, SourceURL: url, PollInterval: interval, CreatedAt: now, UpdatedAt: now,
		Import: store.ImportState{HookToken: id.FeedToken(), NextPollAt: now},
	}
	if err := h.store.CreateCalendar(context.Background(), c); err != nil {
		h.t.Fatalf("CreateCalendar: %v", err)
	}
	return c
}

// poll requests a poll of c now, claims it and runs it.
func (h *harness) poll(c *store.Calendar) *Result {
	h.t.Helper()
	ctx := context.Background()
	if err := h.store.RequestPoll(ctx, c.AccountID, c.ID, h.clock.Now()); err != nil {
		h.t.Fatalf("RequestPoll: %v", err)
	}
	cals, err := h.store.ClaimPolls(ctx, store.ClaimPollsParams{Now: h.clock.Now(), Limit: 1, Lease: time.Minute})
	if err != nil || len(cals) != 1 || cals[0].ID != c.ID {
		h.t.Fatalf("ClaimPolls = %v, %v; want %s", cals, err, c.ID)
	}
	res, err := h.imp.pollCalendar(ctx, cals[0])
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	return res
}

func (h *harness) get(c *store.Calendar) *store.Calendar {
	h.t.Helper()
	got, err := h.store.Calendar(context.Background(), c.AccountID, c.ID)
	if err != nil {
		h.t.Fatalf("Calendar: %v", err)
	}
	return got
}

func (h *harness) events(c *store.Calendar) map[string]*store.Event {
	h.t.Helper()
	evs, err := h.store.ListEvents(context.Background(), store.ListEventsParams{
		AccountID: c.AccountID, CalendarID: c.ID, Page: store.Page{Limit: 1000},
	})
	if err != nil {
		h.t.Fatalf("ListEvents: %v", err)
	}
	out := map[string]*store.Event{}
	for _, e := range evs {
		k := e.UID
		if e.RecurrenceID != "" {
			k += "@" + e.RecurrenceID
		}
		out[k] = e
	}
	return out
}

// changesSince returns "type uid[@rid]" of the calendar's changes after
// cursor, and the new cursor.
func (h *harness) changesSince(c *store.Calendar, cursor store.ChangePos) ([]string, store.ChangePos) {
	h.t.Helper()
	chs, err := h.store.ListChanges(context.Background(), store.ListChangesParams{
		AccountID: c.AccountID, CalendarID: c.ID, After: cursor, Limit: 1000,
	})
	if err != nil {
		h.t.Fatalf("ListChanges: %v", err)
	}
	var out []string
	for _, ch := range chs {
		s := strings.TrimPrefix(ch.Type, "calendar.")
		if ch.Event != nil {
			s += " " + ch.Event.UID
			if ch.Event.RecurrenceID != "" {
				s += "@" + ch.Event.RecurrenceID
			}
		}
		out = append(out, s)
		cursor = ch.Pos()
	}
	return out, cursor
}

func (h *harness) version(c *store.Calendar) int64 {
	h.t.Helper()
	st, err := h.store.FeedVersion(context.Background(), c.AccountID, c.ID)
	if err != nil {
		h.t.Fatalf("FeedVersion: %v", err)
	}
	return st.Version
}
