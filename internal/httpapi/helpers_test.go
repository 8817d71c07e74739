package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/idempotency"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

const adminToken = "test-admin-token"

// countingStore counts the reads that a cached feed must avoid.
type countingStore struct {
	store.Store
	feedReads atomic.Int64
}

func (s *countingStore) WindowFeedContent(ctx context.Context, accountID, calendarID string, w store.FeedWindow) (*store.FeedContent, error) {
	s.feedReads.Add(1)
	return s.Store.WindowFeedContent(ctx, accountID, calendarID, w)
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	*httptest.Server
	t       testing.TB
	handler *httpapi.Handler
	store   *countingStore
	logs    *syncBuffer
}

// openTestStore opens the store the API tests run against: SQLite, or with
// CALHOOK_TEST_BACKEND=postgres a fresh schema of the PostgreSQL in
// CALHOOK_TEST_POSTGRES (scripts/test.sh runs the package both ways).
func openTestStore(t testing.TB) store.Store {
	t.Helper()
	if os.Getenv("CALHOOK_TEST_BACKEND") == "postgres" {
		return storetest.OpenPostgres(t, storetest.PostgresURL(t))
	}
	return storetest.OpenSQLite(t)
}

// newServer starts the whole HTTP interface on a real database.
func newServer(t testing.TB) *testServer {
	t.Helper()
	return newServerAdmin(t, adminToken)
}

// newServerAdmin is newServer with the given admin token.
func newServerAdmin(t testing.TB, admin string) *testServer {
	t.Helper()
	return newServerOn(t, openTestStore(t), admin, nil)
}

// newServerOn is newServerAdmin on the given store, tracing its writes
// with tracer unless it is nil; tune changes the holds service's options.
func newServerOn(t testing.TB, st store.Store, admin string, tracer *tracing.Tracer, tune ...func(*holds.Options)) *testServer {
	t.Helper()
	return newServerFeeds(t, st, admin, tracer, feed.Options{}, tune...)
}

// newServerFeeds is newServerOn with the feed service's window and cache
// options from feedOpts.
func newServerFeeds(t testing.TB, st store.Store, admin string, tracer *tracing.Tracer, feedOpts feed.Options, tune ...func(*holds.Options)) *testServer {
	t.Helper()
	cs := &countingStore{Store: st}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := &notify.Bus{}
	feedOpts.ProdID, feedOpts.RefreshInterval, feedOpts.Bus = "-//calhook//test//EN", 15*time.Minute, bus
	feeds := feed.NewService(cs, feedOpts)
	holdOpts := holds.Options{Bus: bus}
	for _, f := range tune {
		f(&holdOpts)
	}
	h := httpapi.New(httpapi.Config{
		Store:     cs,
		Accounts:  account.NewService(cs, nil, bus),
		Calendars: calendar.NewService(cs, nil, bus),
		Feeds:     feeds,
		Hooks:     icalhooks.NewService(icalhooks.Config{Store: cs, Bus: bus}),
		Subscriptions: subscription.NewService(cs, outbound.Policy{
			AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		}, nil, nil),
		Availability: availability.NewService(cs, availability.Options{Bus: bus}),
		Holds:        holds.NewService(cs, holdOpts),
		Idempotency:  idempotency.New(cs, nil),
		Logger:       log,
		AdminToken:   admin,
		Tracer:       tracer,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, t: t, handler: h, store: cs, logs: logs}
}

// fanOut turns the recorded changes into messages, as the delivery
// pipeline's fan-out worker does in a running server.
func (s *testServer) fanOut() {
	s.t.Helper()
	f := delivery.NewFanOut(delivery.FanOutConfig{Store: s.store, BaseURL: s.URL})
	// On PostgreSQL a change is read once the transactions before it
	// ended, which may be other tests'.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		res, err := f.RunOnce(context.Background())
		if err != nil {
			s.t.Fatalf("fan-out: %v", err)
		}
		if res.Changes == 0 && !res.Unsettled {
			return
		}
		if res.Changes == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	s.t.Fatal("fan-out: the change log did not settle within 30 s")
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r response) errorCode(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request; body may be nil, a string (sent as is) or a value
// marshalled to JSON. Extra headers come as name/value pairs.
func (s *testServer) do(method, path, key string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// The server's own client: closing another test's server drops the
	// idle connections of http.DefaultClient, and with them a request of
	// this test that was about to reuse one.
	resp, err := s.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// must sends a request and fails the test unless the status is want.
func (s *testServer) must(want int, method, path, key string, body any) map[string]any {
	s.t.Helper()
	r := s.do(method, path, key, body)
	if r.status != want {
		s.t.Fatalf("%s %s = %d %s; want %d", method, path, r.status, r.body, want)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(s.t)
}

type testAccount struct {
	id, key, feedToken string
}

func (s *testServer) newAccount(name string) testAccount {
	s.t.Helper()
	m := s.must(http.StatusCreated, "POST", "/v1/accounts", adminToken, map[string]string{"name": name})
	return testAccount{id: m["id"].(string), key: m["apiKey"].(string), feedToken: m["feedToken"].(string)}
}

func (s *testServer) newCalendar(a testAccount, name, zone string) string {
	s.t.Helper()
	m := s.must(http.StatusCreated, "POST", "/v1/calendars", a.key, map[string]string{"name": name, "timeZone": zone})
	return m["id"].(string)
}

func (s *testServer) newEvent(a testAccount, calID string, body map[string]any) map[string]any {
	s.t.Helper()
	return s.must(http.StatusCreated, "POST", "/v1/calendars/"+calID+"/events", a.key, body)
}
