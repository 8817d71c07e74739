package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/console"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/httpapi"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/internal/subscription"
)

const adminToken = "admin-token-for-tests"

// Hostile strings that must come out escaped wherever they are shown.
const (
	hostileScript = `<script>alert(1)</script>`
	hostileAttr   = `"><img src=x onerror=alert(1)>`
)

// env is a console on a real store behind a real HTTP server, with the
// API beside it as calhook serves them.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	db       store.Store
	accounts *account.Service
	cals     *calendar.Service
	subs     *subscription.Service
	sessions *session.Service
	units    *availability.Service
	detector *availability.Detector
	bus      *notify.Bus
}

func newEnv(t testing.TB, db store.Store, frameAncestors ...string) *env {
	t.Helper()
	bus := &notify.Bus{}
	policy := outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	e := &env{t: t, db: db, bus: bus}
	e.accounts = account.NewService(db, nil, bus)
	e.cals = calendar.NewService(db, nil, bus)
	e.cals.EnableImports(calendar.ImportRules{URLs: policy})
	e.subs = subscription.NewService(db, policy, nil, bus)
	e.sessions = session.New(session.Config{Store: db, AdminToken: adminToken})
	e.units = availability.NewService(db, availability.Options{Bus: bus})
	e.detector = availability.NewDetector(availability.DetectorConfig{Store: db})
	hooks := icalhooks.NewService(icalhooks.Config{Store: db, URLs: policy, Client: http.DefaultClient, Bus: bus})
	web, err := console.New(console.Config{
		Accounts: e.accounts, Calendars: e.cals, Subscriptions: e.subs, Hooks: hooks, Sessions: e.sessions,
		Units: e.units, Reader: db, Bus: bus, FrameAncestors: frameAncestors,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{Store: db, Accounts: e.accounts, Calendars: e.cals, Subscriptions: e.subs, Hooks: hooks, Availability: e.units,
		Feeds: feed.NewService(db, feed.Options{Bus: bus}), AdminToken: adminToken, Sessions: e.sessions, Console: web})
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    testing.TB
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	res, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return res.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	res, err := b.c.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	b.get("/console/signin")
	status, body, res := b.post("/console/signin", url.Values{"key": {key}})
	if status != http.StatusSeeOther {
		b.t.Fatalf("sign in: status %d; want 303\n%s", status, body)
	}
	b.get(res.Header.Get("Location"))
}

func (e *env) newAccount(name string) *account.Created {
	e.t.Helper()
	a, err := e.accounts.Create(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func wantContains(t *testing.T, what, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("%s does not show %q", what, s)
		}
	}
}

func wantEscaped(t *testing.T, what, body string) {
	t.Helper()
	for _, raw := range []string{hostileScript, `<img src=x`, `onerror=alert(1)>`} {
		if strings.Contains(body, raw) {
			t.Errorf("%s shows %q unescaped", what, raw)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestPages(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme " + hostileScript)
			ctx := context.Background()
			cal, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Cal " + hostileAttr), TimeZone: ptr("Europe/Berlin")})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{
				Summary: ptr(hostileScript + hostileAttr), Location: ptr("javascript:alert(1)"),
				Start: ptr("2030-01-10T10:00:00"), End: ptr("2030-01-10T11:00:00"),
			})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/hook?x=" + url.QueryEscape(hostileAttr)),
				Description: ptr(hostileScript)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := e.subs.SendTest(ctx, a.ID, sub.ID)
			if err != nil {
				t.Fatal(err)
			}

			// The receiver answered with markup: it is shown, escaped.
			if _, err := e.db.ClaimMessages(ctx, store.ClaimParams{Now: time.Now(), Limit: 10, Lease: time.Minute}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.RecordAttempts(ctx, []*store.AttemptResult{{
				Attempt: store.Attempt{MessageID: msg.ID, MessageSeq: msg.Seq, DeliveryID: "dlv_1", AttemptedAt: time.Now(), StatusCode: 500,
					Latency: time.Millisecond, Error: hostileAttr, Response: hostileScript + `<a href="javascript:alert(1)">x</a>`},
				SubscriptionID: sub.ID, Outcome: store.OutcomeRetry, NextAttemptAt: time.Now().Add(time.Hour),
			}}, store.RecordParams{Now: time.Now()}); err != nil {
				t.Fatal(err)
			}

			b := e.browser()
			b.signIn(a.APIKey)
			pages := []struct {
				path string
				want []string
			}{
				{"/console/overview", []string{"Needs attention", "Latest changes", "calendar.<wbr>event.<wbr>created"}},
				{"/console/calendars", []string{"New calendar", "Cal &#34;&gt;&lt;img"}},
				{"/console/calendars/" + cal.ID + "?from=2030-01-01", []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "New event", "Agenda", "Month"}},
				{"/console/calendars/" + cal.ID + "?view=month&month=2030-01", []string{"January 2030", "&lt;script&gt;"}},
				{"/console/calendars/" + cal.ID + "/events/" + ev.ID, []string{"Save event", "javascript:alert(1)", `value="2030-01-10T10:00"`}},
				{"/console/calendars/" + cal.ID + "/events/new", []string{"Create event"}},
				{"/console/feeds", []string{"/feeds/" + a.ID + ".ics?token=", "Regenerate token", "No iCal Hooks"}},
				{"/console/webhooks", []string{"New endpoint", "calendar.event.created", "&lt;script&gt;"}},
				{"/console/webhooks/" + sub.ID, []string{"Send test event", "Message log", "calhook.test"}},
				{"/console/messages/" + msg.ID, []string{"Request body", "calhook.test", "dlv_1", "&lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=", "webhook-id"}},
				{"/console/keys", []string{"default", "(this session)", "New key"}},
			}
			for _, p := range pages {
				status, body := b.get(p.path)
				if status != http.StatusOK {
					t.Errorf("GET %s: status %d; want 200", p.path, status)
					continue
				}
				wantContains(t, p.path, body, p.want...)
				wantEscaped(t, p.path, body)
				if strings.Contains(body, `href="javascript:`) {
					t.Errorf("%s has a javascript: link", p.path)
				}
			}
			// Another account's objects are not found.
			other := e.newAccount("Other")
			ob := e.browser()
			ob.signIn(other.APIKey)
			for _, p := range []string{"/console/calendars/" + cal.ID, "/console/webhooks/" + sub.ID, "/console/messages/" + msg.ID,
				"/console/calendars/" + cal.ID + "/events/" + ev.ID} {
				if status, _ := ob.get(p); status != http.StatusNotFound {
					t.Errorf("another account's GET %s: status %d; want 404", p, status)
				}
			}
			if status, _, _ := ob.post("/console/webhooks/"+sub.ID+"/delete", nil); status != http.StatusNotFound {
				t.Errorf("another account's delete of a subscription: status %d; want 404", status)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.newAccount("Acme")
	b := e.browser()
	b.signIn(a.APIKey)
	res, err := b.c.Get(e.srv.URL + "/console/overview")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	// The session cookie.
	u, _ := url.Parse(e.srv.URL + "/console/")
	_, body := b.get("/console/overview")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "calhook_session" && c.Value == "" {
			t.Error("empty session cookie")
		}
	}
	// Assets: content-hashed, cached for long, gzipped.
	m := regexp.MustCompile(`/console/assets/console\.[0-9a-f]{12}\.css`).FindString(body)
	if m == "" {
		t.Fatalf("page links no hashed stylesheet")
	}
	req, _ := http.NewRequest("GET", e.srv.URL+m, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") || res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("asset: %d, Cache-Control %q, Content-Encoding %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Encoding"))
	}
}

func TestSessionCookieFlags(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.newAccount("Acme")
	b := e.browser()
	b.get("/console/signin")
	_, _, res := b.post("/console/signin", url.Values{"key": {a.APIKey}})
	var found bool
	for _, c := range res.Cookies() {
		if c.Name == "calhook_session" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" {
				t.Errorf("session cookie %+v; want HttpOnly, SameSite=Strict, Path /console/", c)
			}
		}
	}
	if !found {
		t.Fatal("sign-in set no session cookie")
	}
}

func TestCSRFRefusals(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme")
			ctx := context.Background()
			cal, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Cal")})
			sub, err := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/hook")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			unit, err := e.units.CreateUnit(ctx, a.ID, availability.UnitInput{Name: ptr("Cottage")})
			if err != nil {
				t.Fatal(err)
			}
			inUnit, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("In unit")})
			if err := e.units.SetCalendarUnit(ctx, a.ID, inUnit.ID, unit.ID); err != nil {
				t.Fatal(err)
			}
			b := e.browser()
			b.signIn(a.APIKey)
			forms := []struct {
				path string
				form url.Values
			}{
				{"/console/calendars", url.Values{"name": {"X"}}},
				{"/console/calendars/" + cal.ID + "/events", url.Values{"summary": {"X"}, "start": {"2030-01-01T10:00"}, "end": {"2030-01-01T11:00"}}},
				{"/console/calendars/" + cal.ID + "/delete", nil},
				{"/console/feeds/rotate", url.Values{"confirm": {"yes"}}},
				{"/console/feeds/switch", url.Values{"disabled": {"true"}}},
				{"/console/feeds/calendars/" + cal.ID + "/switch", url.Values{"disabled": {"true"}}},
				{"/console/webhooks", url.Values{"webhookUrl": {"http://127.0.0.1:9/x"}}},
				{"/console/webhooks/" + sub.ID + "/delete", nil},
				{"/console/webhooks/" + sub.ID + "/disable", nil},
				{"/console/webhooks/" + sub.ID + "/test", nil},
				{"/console/keys", url.Values{"name": {"x"}}},
				{"/console/keys/" + store.DefaultKeyID(a.ID) + "/revoke", nil},
				{"/console/units", url.Values{"name": {"X"}}},
				{"/console/units/" + unit.ID, url.Values{"name": {"Renamed"}}},
				{"/console/units/" + unit.ID + "/calendars", url.Values{"calendarId": {cal.ID}}},
				{"/console/units/" + unit.ID + "/calendars/" + inUnit.ID + "/detach", nil},
				{"/console/units/" + unit.ID + "/delete", url.Values{"confirm": {"yes"}}},
				{"/console/signout", nil},
			}
			for _, f := range forms {
				for _, token := range []string{"", "0000", strings.Repeat("a", 64)} {
					form := url.Values{}
					for k, v := range f.form {
						form[k] = v
					}
					form.Set("csrf", token)
					status, body, _ := b.post(f.path, form)
					if status != http.StatusForbidden || !strings.Contains(body, "Form expired") {
						t.Errorf("POST %s with csrf %q: status %d; want 403", f.path, token, status)
					}
				}
			}
			// Nothing changed.
			if _, err := e.cals.Calendar(ctx, a.ID, cal.ID); err != nil {
				t.Errorf("calendar gone after refused posts: %v", err)
			}
			if got, err := e.subs.Get(ctx, a.ID, sub.ID); err != nil || got.Disabled {
				t.Errorf("subscription after refused posts: %+v, %v", got, err)
			}
			if cals, _ := e.cals.ListCalendars(ctx, store.ListCalendarsParams{AccountID: a.ID, Page: store.Page{Limit: 10}}); len(cals) != 2 {
				t.Errorf("%d calendars after refused posts; want 2", len(cals))
			}
			if units, _ := e.units.ListUnits(ctx, store.ListUnitsParams{AccountID: a.ID, Page: store.Page{Limit: 10}}); len(units) != 1 || units[0].Name != "Cottage" {
				t.Errorf("units after refused posts: %+v; want Cottage alone", units)
			}
			if in, _ := e.units.CalendarUnits(ctx, a.ID, []string{cal.ID, inUnit.ID}); in[cal.ID] != "" || in[inUnit.ID] != unit.ID {
				t.Errorf("unit membership after refused posts: %v", in)
			}
			if status, _ := b.get("/console/overview"); status != http.StatusOK {
				t.Errorf("session ended by a refused sign-out: %d", status)
			}
			// A sign-in form from elsewhere (no matching cookie) is refused.
			fresh := e.browser()
			if status, _, _ := fresh.post("/console/signin", url.Values{"key": {a.APIKey}, "csrf": {strings.Repeat("b", 64)}}); status != http.StatusForbidden {
				t.Errorf("sign-in without its form cookie: status %d; want 403", status)
			}
		})
	}
}

func TestForms(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			a := e.newAccount("Acme")
			ctx := context.Background()
			b := e.browser()
			b.signIn(a.APIKey)

			status, _, res := b.post("/console/calendars", url.Values{"name": {"Beach " + hostileScript}, "timeZone": {"Europe/Berlin"}})
			if status != http.StatusSeeOther {
				t.Fatalf("create calendar: status %d", status)
			}
			calPath := res.Header.Get("Location")
			calID := strings.TrimPrefix(strings.Split(calPath, "?")[0], "/console/calendars/")
			b.get(calPath)
			status, _, _ = b.post("/console/calendars/"+calID+"/events", url.Values{
				"summary": {"Stay"}, "start": {"2030-02-01T15:00"}, "end": {"2030-02-03T10:00"}, "status": {"confirmed"},
			})
			if status != http.StatusSeeOther {
				t.Fatalf("create event: status %d", status)
			}
			evs, _ := e.cals.ListEvents(ctx, store.ListEventsParams{AccountID: a.ID, CalendarID: calID, Page: store.Page{Limit: 10}})
			if len(evs) != 1 || evs[0].Summary != "Stay" {
				t.Fatalf("events after the form: %+v", evs)
			}
			b.get("/console/calendars/" + calID + "/events/" + evs[0].ID)
			if status, _, _ = b.post("/console/calendars/"+calID+"/events/"+evs[0].ID, url.Values{
				"summary": {"Stay, longer"}, "start": {"2030-02-01"}, "end": {"2030-02-05"}, "allDay": {"on"}, "status": {"tentative"},
			}); status != http.StatusSeeOther {
				t.Fatalf("update event: status %d", status)
			}
			got, _ := e.cals.Event(ctx, a.ID, calID, evs[0].ID)
			if got.Summary != "Stay, longer" || !got.AllDay || got.Status != "tentative" {
				t.Errorf("event after update: %+v", got)
			}
			// Bad input: a clear error, nothing stored.
			status, body, _ := b.post("/console/calendars/"+calID+"/events", url.Values{"summary": {"x"}, "start": {"nonsense"}, "end": {"2030-01-01"}})
			if status != http.StatusBadRequest || !strings.Contains(body, "That did not work") {
				t.Errorf("bad event: status %d; want 400 with the reason", status)
			}
			if status, _, _ = b.post("/console/calendars/"+calID+"/events/"+evs[0].ID+"/delete", nil); status != http.StatusSeeOther {
				t.Errorf("delete event: status %d", status)
			}

			// Webhooks: created with its secret shown once, then tested,
			// disabled, enabled and rotated.
			status, body, _ = b.post("/console/webhooks", url.Values{
				"webhookUrl": {"http://127.0.0.1:9/hook"}, "eventTypes": {"calendar.event.created", "calendar.event.deleted"}, "rateLimit": {"5"},
				"description": {hostileAttr},
			})
			if status != http.StatusCreated || !strings.Contains(body, "whsec_") {
				t.Fatalf("create subscription: status %d, secret shown: %v", status, strings.Contains(body, "whsec_"))
			}
			wantEscaped(t, "webhooks after create", body)
			subs, _ := e.subs.List(ctx, store.ListSubscriptionsParams{AccountID: a.ID, Page: store.Page{Limit: 10}})
			if len(subs) != 1 || subs[0].RateLimit != 5 || len(subs[0].EventTypes) != 2 {
				t.Fatalf("subscriptions: %+v", subs)
			}
			sp := "/console/webhooks/" + subs[0].ID
			if _, body := b.get(sp); strings.Contains(body, subs[0].Secret) {
				t.Error("the secret is shown again after creation")
			}
			for _, act := range []string{"test", "disable", "enable"} {
				if status, _, _ := b.post(sp+"/"+act, nil); status != http.StatusSeeOther {
					t.Errorf("%s: status %d", act, status)
				}
			}
			if status, body, _ = b.post(sp+"/rotate", nil); status != http.StatusOK || !strings.Contains(body, "New signing secret") {
				t.Errorf("rotate: status %d", status)
			}
			msgs, _, _ := e.subs.FilterMessages(ctx, store.ConsoleMessagesParams{AccountID: a.ID, SubscriptionID: subs[0].ID, Page: store.Page{Limit: 10}})
			if len(msgs) != 1 || msgs[0].EventType != subscription.EventTest {
				t.Errorf("messages after test: %+v", msgs)
			}
			if _, body := b.get(sp + "?status=delivered"); !strings.Contains(body, "No messages match this filter") {
				t.Error("status filter shows messages that do not match")
			}
			if status, _, _ = b.post(sp+"/redeliver-failed", url.Values{"since": {"2020-01-01T00:00"}}); status != http.StatusSeeOther {
				t.Errorf("redeliver failed: status %d", status)
			}
			if status, _, _ = b.post(sp+"/redeliver-failed", url.Values{"since": {"yesterday"}}); status != http.StatusBadRequest {
				t.Errorf("redeliver failed with a bad time: status %d; want 400", status)
			}
			if status, _, _ = b.post("/console/messages/"+msgs[0].ID+"/redeliver", nil); status != http.StatusSeeOther {
				t.Errorf("redeliver: status %d", status)
			}

			// Feed token: refused without confirmation, rotated with it.
			before, _ := e.accounts.Get(ctx, a.ID)
			if status, _, _ = b.post("/console/feeds/rotate", nil); status != http.StatusBadRequest {
				t.Errorf("rotate without confirm: status %d; want 400", status)
			}
			if status, _, _ = b.post("/console/feeds/rotate", url.Values{"confirm": {"yes"}}); status != http.StatusSeeOther {
				t.Errorf("rotate: status %d", status)
			}
			after, _ := e.accounts.Get(ctx, a.ID)
			if after.FeedToken == before.FeedToken {
				t.Error("feed token unchanged after rotation")
			}

			// API keys: a new key is shown once; revoking the session's
			// key ends the session.
			status, body, _ = b.post("/console/keys", url.Values{"name": {"second"}})
			if status != http.StatusCreated || !strings.Contains(body, "chk_") {
				t.Fatalf("create key: status %d", status)
			}
			if status, _, _ = b.post("/console/keys/"+store.DefaultKeyID(a.ID)+"/revoke", nil); status != http.StatusSeeOther {
				t.Errorf("revoke: status %d", status)
			}
			if status, _ := b.get("/console/overview"); status != http.StatusSeeOther {
				t.Errorf("after revoking the session's key: status %d; want 303 to sign-in", status)
			}
		})
	}
}

func TestAdmin(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t))
			b := e.browser()
			b.signIn(adminToken)
			status, body := b.get("/console/accounts")
			if status != http.StatusOK || !strings.Contains(body, "No accounts yet") {
				t.Fatalf("accounts: %d", status)
			}
			status, body, _ = b.post("/console/accounts", url.Values{"name": {hostileScript}})
			if status != http.StatusOK || !strings.Contains(body, "chk_") {
				t.Fatalf("create account: %d, key shown %v", status, strings.Contains(body, "chk_"))
			}
			wantEscaped(t, "accounts", body)
			id := regexp.MustCompile(`acc_[a-z0-9]+`).FindString(body)
			if status, _ := b.get("/console/overview"); status != http.StatusForbidden {
				t.Errorf("admin overview before opening an account: %d; want 403", status)
			}
			if status, _, _ := b.post("/console/accounts/"+id+"/open", nil); status != http.StatusSeeOther {
				t.Fatalf("open account: %d", status)
			}
			if status, body := b.get("/console/overview"); status != http.StatusOK || !strings.Contains(body, "Needs attention") {
				t.Errorf("overview of the opened account: %d", status)
			}
			// An account session is not an admin one.
			a := e.newAccount("Acme")
			ab := e.browser()
			ab.signIn(a.APIKey)
			if status, _ := ab.get("/console/accounts"); status != http.StatusForbidden {
				t.Errorf("account session GET /console/accounts: %d; want 403", status)
			}
		})
	}
}

func TestSignInRateLimit(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.newAccount("Acme")
	b := e.browser()
	b.get("/console/signin")
	for i := range 10 {
		if status, body, _ := b.post("/console/signin", url.Values{"key": {"chk_wrong"}}); status != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
			t.Fatalf("failed sign-in %d: status %d; want 401", i, status)
		}
	}
	status, _, res := b.post("/console/signin", url.Values{"key": {a.APIKey}})
	if status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("sign-in after 10 failures: status %d, Retry-After %q; want 429 with Retry-After", status, res.Header.Get("Retry-After"))
	}
}

func TestSignedOutRedirects(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	b := e.browser()
	for _, p := range []string{"/console/overview", "/console/webhooks", "/console/accounts", "/console/keys"} {
		res, err := b.c.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/signin?next=") {
			t.Errorf("GET %s signed out: %d to %q; want 303 to sign-in", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if status, _, _ := b.post("/console/webhooks", url.Values{"csrf": {"x"}}); status != http.StatusUnauthorized {
		t.Errorf("POST signed out: %d; want 401", status)
	}
}
