package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEventInput sends arbitrary bodies to the event routes. Whatever the
// input, the server answers 201 or a 4xx with the JSON error shape, never
// a 5xx; and an accepted event reads back as stored and renders into a
// feed whose lines are all folded.
func FuzzEventInput(f *testing.F) {
	for _, seed := range []string{
		`{"summary":"x","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`,
		`{"summary":"Stay","start":"2026-12-01","end":"2026-12-04","status":"tentative"}`,
		`{"summary":"R","start":"2026-12-01T10:00:00","end":"2026-12-01T11:00:00","timeZone":"Asia/Kolkata","rrule":"FREQ=WEEKLY;COUNT=3","exdates":["2026-12-08T10:00:00"]}`,
		`{"summary":"🏖️ 海辺, with; \\ and\nnewline","description":"` + strings.Repeat("é", 100) + `","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`,
		`{"uid":"a@b","summary":"x","start":"2026-12-01","end":"2026-12-01"}`,
		`{"summary":"x","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","metadata":{"k":"v"}}`,
		`{"summary":null}`, `[]`, `{`, `{"summary":"x","start":1}`, ``,
	} {
		f.Add([]byte(seed))
	}
	s := newServer(f)
	a := s.newAccountFuzz(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/calendars/"+a.cal+"/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.key)
		req.Header.Set("Content-Type", "application/json")
		s.handler.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
		case rec.Code >= 400 && rec.Code < 500:
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d answer is not the error shape: %s", rec.Code, rec.Body)
			}
			return
		default:
			t.Fatalf("POST %q = %d %s; want 201 or 4xx", body, rec.Code, rec.Body)
		}
		var created map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
			t.Fatalf("201 body: %v", err)
		}
		get := httptest.NewRecorder()
		req = httptest.NewRequest("GET", "/v1/calendars/"+a.cal+"/events/"+created["id"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+a.key)
		s.handler.ServeHTTP(get, req)
		var read map[string]any
		json.Unmarshal(get.Body.Bytes(), &read)
		for _, k := range []string{"uid", "summary", "description", "location", "start", "end", "status", "rrule"} {
			if read[k] != created[k] {
				t.Errorf("%s read back as %v; created as %v", k, read[k], created[k])
			}
		}
		feed := httptest.NewRecorder()
		s.handler.ServeHTTP(feed, httptest.NewRequest("GET", "/feeds/"+a.id+"/"+a.cal+".ics?token="+a.feedToken, nil))
		if feed.Code != 200 {
			t.Fatalf("feed after accepting %q = %d", body, feed.Code)
		}
		for _, line := range strings.Split(feed.Body.String(), "\r\n") {
			if len(line) > 75 || strings.ContainsAny(line, "\r\n") || !utf8.ValidString(line) {
				t.Fatalf("feed line %q is over 75 octets, has a bare line break, or splits UTF-8", line)
			}
		}
		// Keep the calendar small so the feed stays cheap to render.
		del := httptest.NewRequest("DELETE", "/v1/calendars/"+a.cal+"/events/"+created["id"].(string), nil)
		del.Header.Set("Authorization", "Bearer "+a.key)
		s.handler.ServeHTTP(httptest.NewRecorder(), del)
	})
}

type fuzzAccount struct {
	testAccount
	cal string
}

// newAccountFuzz creates an account and calendar through the handler
// directly, reporting failures to the fuzz target.
func (s *testServer) newAccountFuzz(f *testing.F) fuzzAccount {
	f.Helper()
	post := func(path, key, body string) map[string]any {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		s.handler.ServeHTTP(rec, req)
		var m map[string]any
		if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
			f.Fatalf("POST %s = %d %s", path, rec.Code, rec.Body)
		}
		return m
	}
	acc := post("/v1/accounts", adminToken, `{"name":"Fuzz"}`)
	a := fuzzAccount{testAccount: testAccount{id: acc["id"].(string), key: acc["apiKey"].(string), feedToken: acc["feedToken"].(string)}}
	a.cal = post("/v1/calendars", a.key, `{"name":"Fuzz","timeZone":"Europe/Berlin"}`)["id"].(string)
	return a
}
