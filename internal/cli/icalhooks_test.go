package cli_test

import (
	"bytes"
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
)

// hookServer is a calhook started through cli.Main with the settings the
// iCal Hooks tests need, and one account with two calendars.
type hookServer struct {
	t          *testing.T
	base       string
	accountID  string
	key, token string
	cals       [2]string
}

func newHookServer(t *testing.T, args ...string) *hookServer {
	t.Helper()
	db := filepath.Join(t.TempDir(), "calhook.db")
	base := startServe(t, map[string]string{"CALHOOK_ADMIN_TOKEN": "adm-0123456789abcdef0123456789abcdef"}, append([]string{
		"--db", db, "--allow-private-cidr", "127.0.0.1/32", "--log-level", "warn",
	}, args...)...)
	s := &hookServer{t: t, base: base}
	var acct struct{ ID, APIKey, FeedToken string }
	s.call("POST", "/v1/accounts", "adm-0123456789abcdef0123456789abcdef", `{"name":"Acme"}`, 201, &acct)
	s.accountID, s.key, s.token = acct.ID, acct.APIKey, acct.FeedToken
	for i := range s.cals {
		var cal struct{ ID string }
		s.call("POST", "/v1/calendars", s.key, fmt.Sprintf(`{"name":"Cal %d"}`, i), 201, &cal)
		s.cals[i] = cal.ID
	}
	return s
}

func (s *hookServer) call(method, path, key, body string, want int, out any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := freshClient().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// event writes a change to calendar i.
func (s *hookServer) event(i int) {
	s.t.Helper()
	s.call("POST", "/v1/calendars/"+s.cals[i]+"/events", s.key,
		`{"summary":"Booking","start":"2026-12-01","end":"2026-12-02"}`, 201, nil)
}

func (s *hookServer) feedPath(cal int) string {
	if cal < 0 {
		return "/feeds/" + s.accountID + ".ics?token=" + s.token
	}
	return "/feeds/" + s.accountID + "/" + s.cals[cal] + ".ics?token=" + s.token
}

// fetch GETs a feed, with the hook header when hookURL is set.
func (s *hookServer) fetch(path, hookURL string, headers ...string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	if hookURL != "" {
		req.Header.Set("X-ICALHOOKS-URL", hookURL)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := freshClient().Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

type hooksList struct {
	Data []struct {
		ID, URL, Status, ClientIP, UserAgent, Feed string
		Armed                                      bool
		CalendarID                                 *string
		Failures                                   int
	}
}

func (s *hookServer) hooks() hooksList {
	s.t.Helper()
	var l hooksList
	s.call("GET", "/v1/icalhooks", s.key, "", 200, &l)
	return l
}

// consumer is an iCal Hooks endpoint that records the HEADs it gets.
type consumer struct {
	*httptest.Server
	mu    sync.Mutex
	heads []*http.Request
	times []time.Time
	got   chan *http.Request
}

func newConsumer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *consumer {
	t.Helper()
	c := &consumer{got: make(chan *http.Request, 1000)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle != nil {
			handle(w, r)
		}
		if r.Method == http.MethodHead {
			c.mu.Lock()
			c.heads = append(c.heads, r)
			c.times = append(c.times, time.Now())
			c.mu.Unlock()
			c.got <- r
		}
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *consumer) wait(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-c.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no HEAD reached %s", c.URL)
		return nil
	}
}

func (c *consumer) none(t *testing.T, why string) {
	t.Helper()
	select {
	case r := <-c.got:
		t.Errorf("unexpected HEAD %s: %s", r.URL, why)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestICalHooksFeedUnchangedForConsumers(t *testing.T) {
	t.Parallel()
	s := newHookServer(t)
	// A probe hook is pinged once the fan-out has handled the event, so
	// that no change still in flight pings the hooks registered below.
	probe := newConsumer(t, nil)
	s.fetch(s.feedPath(0), probe.URL+"/probe")
	s.event(0)
	probe.wait(t)
	c := newConsumer(t, nil)
	plain := s.fetch(s.feedPath(0), "")
	hooked := s.fetch(s.feedPath(0), c.URL+"/hook")
	pb, _ := io.ReadAll(plain.Body)
	hb, _ := io.ReadAll(hooked.Body)
	if plain.StatusCode != 200 || hooked.StatusCode != 200 || !bytes.Equal(pb, hb) || plain.Header.Get("ETag") != hooked.Header.Get("ETag") {
		t.Errorf("the feed differs with the header: %d/%d, ETag %q/%q", plain.StatusCode, hooked.StatusCode,
			plain.Header.Get("ETag"), hooked.Header.Get("ETag"))
	}
	if got := hooked.Header.Get("X-ICALHOOKS-STATUS"); got != "active" {
		t.Errorf("X-ICALHOOKS-STATUS = %q; want active", got)
	}
	if got := plain.Header.Get("X-ICALHOOKS-STATUS"); got != "" {
		t.Errorf("a GET without the header got X-ICALHOOKS-STATUS %q", got)
	}
	// A conditional GET registers too, and still answers 304.
	if r := s.fetch(s.feedPath(0), c.URL+"/other", "If-None-Match", plain.Header.Get("ETag")); r.StatusCode != 304 || r.Header.Get("X-ICALHOOKS-STATUS") != "active" {
		t.Errorf("conditional GET with the header = %d, status %q; want 304 active", r.StatusCode, r.Header.Get("X-ICALHOOKS-STATUS"))
	}
	// A wrong token registers nothing.
	bad := strings.Replace(s.feedPath(0), s.token, strings.Repeat("0", 64), 1)
	if r := s.fetch(bad, c.URL+"/intruder"); r.StatusCode != 403 || r.Header.Get("X-ICALHOOKS-STATUS") != "" {
		t.Errorf("wrong token with the header = %d, status %q; want 403 and no status", r.StatusCode, r.Header.Get("X-ICALHOOKS-STATUS"))
	}
	l := s.hooks()
	if len(l.Data) != 3 {
		t.Fatalf("hooks = %+v; want the 3 registered with the right token", l.Data)
	}
	h := l.Data[1]
	if h.URL != c.URL+"/hook" || h.ClientIP != "127.0.0.1" || !strings.HasPrefix(h.UserAgent, "Go-http-client") ||
		!h.Armed || h.CalendarID == nil || *h.CalendarID != s.cals[0] || strings.Contains(h.Feed, "token") {
		t.Errorf("hook = %+v", h)
	}
}

func TestICalHooksOneShot(t *testing.T) {
	t.Parallel()
	s := newHookServer(t)
	c := newConsumer(t, nil)
	all := newConsumer(t, nil)
	s.fetch(s.feedPath(0), c.URL+"/cal0")
	s.fetch(s.feedPath(-1), all.URL+"/all")

	s.event(1) // another calendar: only the all-calendars feed changed
	all.wait(t)
	c.none(t, "a change to another calendar pinged this calendar's hook")

	s.event(0)
	r := c.wait(t)
	if r.Method != http.MethodHead || !strings.HasPrefix(r.UserAgent(), "calhook/") {
		t.Errorf("ping = %s with User-Agent %q; want HEAD from calhook/VERSION", r.Method, r.UserAgent())
	}
	if want := s.base + "/feeds/" + s.accountID + "/" + s.cals[0] + ".ics"; r.Header.Get("X-ICALHOOKS-FEED") != want {
		t.Errorf("X-ICALHOOKS-FEED = %q; want %q (no token)", r.Header.Get("X-ICALHOOKS-FEED"), want)
	}
	all.none(t, "the all-calendars hook was pinged twice without a fetch in between")

	// Disarmed: more changes, no ping until the consumer fetches again.
	s.event(0)
	c.none(t, "a disarmed hook was pinged")
	s.fetch(s.feedPath(0), "") // a GET without the header does not re-arm
	s.event(0)
	c.none(t, "a GET without the header re-armed the hook")
	s.fetch(s.feedPath(0), c.URL+"/cal0")
	s.event(0)
	c.wait(t)
}

func TestICalHooksRefused(t *testing.T) {
	t.Parallel()
	s := newHookServer(t, "--icalhooks-max-per-feed", "2")
	c := newConsumer(t, nil)
	tests := []struct{ name, url, want string }{
		{"private address", "http://10.0.0.1/hook", "rejected; reason="},
		{"metadata address", "http://169.254.169.254/latest", "rejected; reason="},
		{"localhost", "http://localhost:8080/hook", "rejected; reason="},
		{"decimal loopback", "http://2130706433/hook", "rejected; reason="},
		{"userinfo", "http://user:pw@" + strings.TrimPrefix(c.URL, "http://") + "/x", "rejected; reason="},
		{"ftp", "ftp://example.com/x", "rejected; reason="},
		{"too long", c.URL + "/" + strings.Repeat("a", 2100), "rejected; reason=the URL is longer than 2048 bytes"},
		{"first", c.URL + "/1", "active"},
		{"second", c.URL + "/2", "active"},
		{"over the per-feed cap", c.URL + "/3", "rejected; reason=hook limit reached: 2 hooks per feed"},
	}
	for _, tt := range tests {
		r := s.fetch(s.feedPath(0), tt.url)
		if r.StatusCode != 200 {
			t.Errorf("%s: the feed answered %d; a refused hook must not fail the feed", tt.name, r.StatusCode)
		}
		if got := r.Header.Get("X-ICALHOOKS-STATUS"); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: X-ICALHOOKS-STATUS = %q; want %q", tt.name, got, tt.want)
		}
	}
	if n := len(s.hooks().Data); n != 2 {
		t.Errorf("%d hooks stored; want only the 2 allowed", n)
	}
}

func TestICalHooksTokenRotationDropsHooks(t *testing.T) {
	t.Parallel()
	s := newHookServer(t)
	c := newConsumer(t, nil)
	s.fetch(s.feedPath(0), c.URL+"/hook")
	var rotated struct{ FeedToken string }
	s.call("POST", "/v1/feed-token/rotate", s.key, "", 200, &rotated)
	if n := len(s.hooks().Data); n != 0 {
		t.Errorf("%d hooks after rotating the feed token; want 0", n)
	}
	s.event(0)
	c.none(t, "a hook registered with the old token was pinged")
	// Registering with the new token works.
	s.token = rotated.FeedToken
	if r := s.fetch(s.feedPath(0), c.URL+"/hook"); r.Header.Get("X-ICALHOOKS-STATUS") != "active" {
		t.Errorf("registration with the new token = %q", r.Header.Get("X-ICALHOOKS-STATUS"))
	}
	s.event(0)
	c.wait(t)
}

func TestICalHooksFailingHookIsDropped(t *testing.T) {
	t.Parallel()
	s := newHookServer(t, "--retry-schedule", "20ms,20ms")
	c := newConsumer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ok := newConsumer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound) // 3xx counts as delivered
	})
	s.fetch(s.feedPath(0), c.URL+"/hook")
	s.fetch(s.feedPath(0), ok.URL+"/hook")
	s.event(0)
	for range 3 {
		c.wait(t)
	}
	ok.wait(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := s.hooks()
		if len(l.Data) == 1 && l.Data[0].URL == ok.URL+"/hook" && l.Data[0].Failures == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks = %+v; want only the one whose ping was answered with a redirect", l.Data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestICalHooksChallenge(t *testing.T) {
	t.Parallel()
	s := newHookServer(t, "--icalhooks-verify", "challenge")
	echo := newConsumer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, r.URL.Query().Get("icalhooks.challenge"))
		}
	})
	liar := newConsumer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, "sure")
		}
	})
	for _, c := range []*consumer{echo, liar} {
		if got := s.fetch(s.feedPath(0), c.URL+"/hook").Header.Get("X-ICALHOOKS-STATUS"); got != "pending; reason=verification" {
			t.Errorf("first registration = %q; want pending; reason=verification", got)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := s.hooks()
		if len(l.Data) == 1 && l.Data[0].Status == "active" && l.Data[0].URL == echo.URL+"/hook" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks = %+v; want only the echoing one, active", l.Data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.event(0)
	echo.wait(t)
	liar.none(t, "a hook that failed its challenge was pinged")
}

func TestICalHooksHostRateLimit(t *testing.T) {
	t.Parallel()
	s := newHookServer(t, "--icalhooks-host-rate", "10")
	c := newConsumer(t, nil)
	const n = 25
	for i := range n {
		s.fetch(s.feedPath(0), fmt.Sprintf("%s/hook/%d", c.URL, i))
	}
	s.event(0)
	for range n {
		c.wait(t)
	}
	c.mu.Lock()
	times := append([]time.Time(nil), c.times...)
	c.mu.Unlock()
	// The limiter spaces sends 100 ms apart, each up to a pacing window
	// (10 ms) early; the times here are arrivals, and on a busy machine
	// one ping can arrive late, next to the one after it. So: at most 12
	// in any second (10, one early, one late), and 25 over at least
	// 24 intervals less that slack.
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		if j-i > 12 {
			t.Fatalf("%d pings to one host within a second; want at most 10 (12 with the pacing window and a late arrival)", j-i)
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span < 2*time.Second {
		t.Errorf("%d pings to one host within %v; want them at 10 a second, over 2.4 s", len(times), span)
	}
}

func TestICalHooksTrustedProxy(t *testing.T) {
	t.Parallel()
	c := newConsumer(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "127.0.0.1"},
		{[]string{"--trusted-proxy", "127.0.0.1/32"}, "203.0.113.9"},
	} {
		s := newHookServer(t, tc.args...)
		s.fetch(s.feedPath(0), c.URL+"/hook", "X-Forwarded-For", "198.51.100.1, 203.0.113.9")
		if got := s.hooks().Data[0].ClientIP; got != tc.want {
			t.Errorf("with %v the hook's client IP = %q; want %q", tc.args, got, tc.want)
		}
	}
}
