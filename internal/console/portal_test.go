package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/internal/subscription"
)

// portalLink asks the API for a portal link with key.
func (e *env) portalLink(key string, body map[string]any) (int, string) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/portal-links", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		URL string `json:"url"`
	}
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.URL
}

func TestPortalScope(t *testing.T) {
	for _, be := range storetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, be.Open(t), "http://127.0.0.1:1")
			ctx := context.Background()
			a := e.newAccount("Acme")
			inCal, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Mine")})
			outCal, _ := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Not mine")})
			inSub, err := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/in"), CalendarID: &inCal.ID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			outSub, _ := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/out"), CalendarID: &outCal.ID}, nil)
			allSub, _ := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/all")}, nil)
			outMsg, _ := e.subs.SendTest(ctx, a.ID, outSub.ID)
			unit, err := e.units.CreateUnit(ctx, a.ID, availability.UnitInput{Name: ptr("Cottage")})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.units.SetCalendarUnit(ctx, a.ID, inCal.ID, unit.ID); err != nil {
				t.Fatal(err)
			}

			for _, bad := range []map[string]any{
				{"accentColor": "red;}"}, {"logoUrl": "javascript:alert(1)"}, {"calendarIds": []string{"cal_nope"}},
				{"displayName": "x\x00y"}, {"linkTtlSeconds": -1},
			} {
				if status, _ := e.portalLink(a.APIKey, bad); status != http.StatusBadRequest {
					t.Errorf("portal link %v: status %d; want 400", bad, status)
				}
			}
			status, link := e.portalLink(a.APIKey, map[string]any{
				"calendarIds": []string{inCal.ID}, "displayName": "Acme " + hostileScript, "accentColor": "#AA3300",
				"logoUrl": "https://cdn.example.com/logo.png",
			})
			if status != http.StatusCreated || !strings.Contains(link, "/console/portal/") {
				t.Fatalf("portal link: %d %q", status, link)
			}
			u, _ := url.Parse(link)
			b := e.browser()
			res, err := b.c.Get(e.srv.URL + u.Path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/webhooks" {
				t.Fatalf("redeem: %d to %q", res.StatusCode, res.Header.Get("Location"))
			}
			// Single use.
			if res2, _ := e.browser().c.Get(e.srv.URL + u.Path); res2.StatusCode != http.StatusGone {
				t.Errorf("second use of a portal link: %d; want 410", res2.StatusCode)
			}

			status, body := b.get("/console/webhooks")
			if status != http.StatusOK {
				t.Fatalf("portal webhooks: %d", status)
			}
			wantContains(t, "portal webhooks", body, "http://127.0.0.1:9/in", "Acme &lt;script&gt;", "/console/theme.css", "https://cdn.example.com/logo.png")
			wantEscaped(t, "portal webhooks", body)
			for _, hidden := range []string{"http://127.0.0.1:9/out", "http://127.0.0.1:9/all", "Every calendar", "Not mine", "/console/calendars", "/console/keys", "/console/units", "Sign out"} {
				if strings.Contains(body, hidden) {
					t.Errorf("portal webhooks shows %q, outside its scope", hidden)
				}
			}
			res, _ = b.c.Get(e.srv.URL + "/console/webhooks")
			res.Body.Close()
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors http://127.0.0.1:1") || !strings.Contains(csp, "img-src 'self' https://cdn.example.com") {
				t.Errorf("portal CSP %q; want the configured frame ancestors and the logo's origin", csp)
			}
			if _, css := b.get("/console/theme.css"); !strings.Contains(css, "--accent: #aa3300") {
				t.Errorf("theme.css = %q; want the accent colour", css)
			}

			// Route by route: what the scope forbids.
			gets := []struct {
				path string
				want int
			}{
				{"/console/webhooks/" + inSub.ID, http.StatusOK},
				{"/console/webhooks/" + outSub.ID, http.StatusNotFound},
				{"/console/webhooks/" + allSub.ID, http.StatusNotFound},
				{"/console/messages/" + outMsg.ID, http.StatusNotFound},
				{"/console/overview", http.StatusForbidden},
				{"/console/calendars", http.StatusForbidden},
				{"/console/calendars/" + inCal.ID, http.StatusForbidden},
				{"/console/calendars/" + inCal.ID + "/events/new", http.StatusForbidden},
				{"/console/feeds", http.StatusForbidden},
				{"/console/keys", http.StatusForbidden},
				{"/console/accounts", http.StatusForbidden},
				{"/console/units", http.StatusForbidden},
				{"/console/units/" + unit.ID, http.StatusForbidden},
			}
			for _, g := range gets {
				if status, _ := b.get(g.path); status != g.want {
					t.Errorf("portal GET %s: %d; want %d", g.path, status, g.want)
				}
			}
			b.get("/console/webhooks")
			posts := []struct {
				path string
				form url.Values
				want int
			}{
				{"/console/webhooks/" + outSub.ID + "/delete", nil, http.StatusNotFound},
				{"/console/webhooks/" + outSub.ID + "/rotate", nil, http.StatusNotFound},
				{"/console/webhooks/" + allSub.ID + "/disable", nil, http.StatusNotFound},
				{"/console/messages/" + outMsg.ID + "/redeliver", nil, http.StatusNotFound},
				{"/console/webhooks", url.Values{"webhookUrl": {"http://127.0.0.1:9/x"}}, http.StatusBadRequest},
				{"/console/webhooks", url.Values{"webhookUrl": {"http://127.0.0.1:9/x"}, "calendarId": {outCal.ID}}, http.StatusBadRequest},
				{"/console/calendars", url.Values{"name": {"x"}}, http.StatusForbidden},
				{"/console/feeds/rotate", url.Values{"confirm": {"yes"}}, http.StatusForbidden},
				{"/console/feeds/switch", url.Values{"disabled": {"true"}}, http.StatusForbidden},
				{"/console/feeds/calendars/" + inCal.ID + "/switch", url.Values{"disabled": {"true"}}, http.StatusForbidden},
				{"/console/keys", url.Values{"name": {"x"}}, http.StatusForbidden},
				{"/console/accounts", url.Values{"name": {"x"}}, http.StatusForbidden},
				{"/console/units", url.Values{"name": {"x"}}, http.StatusForbidden},
				{"/console/units/" + unit.ID, url.Values{"name": {"x"}}, http.StatusForbidden},
				{"/console/units/" + unit.ID + "/calendars", url.Values{"calendarId": {outCal.ID}}, http.StatusForbidden},
				{"/console/units/" + unit.ID + "/calendars/" + inCal.ID + "/detach", nil, http.StatusForbidden},
				{"/console/units/" + unit.ID + "/delete", url.Values{"confirm": {"yes"}}, http.StatusForbidden},
				{"/console/webhooks", url.Values{"webhookUrl": {"http://127.0.0.1:9/mine"}, "calendarId": {inCal.ID}}, http.StatusCreated},
			}
			for _, p := range posts {
				if status, _, _ := b.post(p.path, p.form); status != p.want {
					t.Errorf("portal POST %s %v: %d; want %d", p.path, p.form, status, p.want)
				}
			}
			if u, err := e.units.Unit(ctx, a.ID, unit.ID); err != nil || u.Name != "Cottage" {
				t.Errorf("unit after the portal's posts: %+v, %v", u, err)
			}
			if in, _ := e.units.CalendarUnits(ctx, a.ID, []string{inCal.ID, outCal.ID}); in[inCal.ID] != unit.ID || in[outCal.ID] != "" {
				t.Errorf("unit membership after the portal's posts: %v", in)
			}
			if got, err := e.subs.Get(ctx, a.ID, outSub.ID); err != nil || got.Disabled {
				t.Errorf("out-of-scope subscription after the portal's posts: %+v, %v", got, err)
			}

			// A portal link with feeds opens the Feeds screen, without the
			// account-wide feed or the token rotation when scoped.
			_, link = e.portalLink(a.APIKey, map[string]any{"feeds": true, "calendarIds": []string{inCal.ID}})
			u, _ = url.Parse(link)
			fb := e.browser()
			fb.get(u.Path)
			status, body = fb.get("/console/feeds")
			if status != http.StatusOK || !strings.Contains(body, "/feeds/"+a.ID+"/"+inCal.ID+".ics") ||
				strings.Contains(body, outCal.ID) || strings.Contains(body, "/feeds/"+a.ID+".ics") || strings.Contains(body, "Regenerate token") {
				t.Errorf("scoped portal feeds page: %d, shows only its calendar's feed: %v", status, !strings.Contains(body, outCal.ID))
			}
			// It switches its own calendar's feed, not another's nor the
			// account's.
			feedPosts := []struct {
				path string
				want int
			}{
				{"/console/feeds/switch", http.StatusForbidden},
				{"/console/feeds/calendars/" + outCal.ID + "/switch", http.StatusNotFound},
				{"/console/feeds/calendars/" + inCal.ID + "/switch", http.StatusSeeOther},
			}
			for _, p := range feedPosts {
				if status, _, _ := fb.post(p.path, url.Values{"disabled": {"true"}}); status != p.want {
					t.Errorf("scoped portal POST %s: %d; want %d", p.path, status, p.want)
				}
			}
			if c, _ := e.cals.Calendar(ctx, a.ID, outCal.ID); c.FeedDisabled {
				t.Error("a scoped portal switched off a calendar outside its scope")
			}
			if c, _ := e.cals.Calendar(ctx, a.ID, inCal.ID); !c.FeedDisabled {
				t.Error("a scoped portal could not switch off its own calendar's feed")
			}
			if acc, _ := e.accounts.Get(ctx, a.ID); acc.FeedsDisabled {
				t.Error("a scoped portal switched off the account's feeds")
			}
			// Revoking the key that made the link ends the portal session.
			if err := e.accounts.RevokeKey(ctx, a.ID, store.DefaultKeyID(a.ID)); err != nil {
				t.Fatal(err)
			}
			if status, _ := b.get("/console/webhooks"); status != http.StatusSeeOther {
				t.Errorf("portal after its key was revoked: %d; want 303 to sign-in", status)
			}
		})
	}
}

func TestConsoleFrameAncestorsNone(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), "https://app.example.com")
	a := e.newAccount("Acme")
	b := e.browser()
	b.signIn(a.APIKey)
	res, err := b.c.Get(e.srv.URL + "/console/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("console (not portal) CSP %q; want frame-ancestors 'none' whatever the portal allows", csp)
	}
}
