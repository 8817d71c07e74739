package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks that /openapi.json documents exactly the
// routes the server registers.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	r := s.do("GET", "/openapi.json", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", r.status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q; want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	// The mux cannot match "{accountId}.ics" inside a segment; the
	// handlers cut the suffix from {file}.
	feedPaths := map[string]string{
		"GET /feeds/{file}":             "GET /feeds/{accountId}.ics",
		"GET /feeds/{accountId}/{file}": "GET /feeds/{accountId}/{calendarId}.ics",
		// Only blocked.ics is served there.
		"GET /feeds/{accountId}/{calendarId}/{file}": "GET /feeds/{accountId}/{calendarId}/blocked.ics",
	}
	var registered []string
	for _, p := range s.handler.Routes() {
		if doc, ok := feedPaths[p]; ok {
			p = doc
		}
		registered = append(registered, p)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	for _, p := range registered {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q is registered but not in openapi.json", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(registered, p) {
			t.Errorf("openapi.json documents %q, which is not registered", p)
		}
	}
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		r := s.do("GET", path, "", nil)
		if r.status != http.StatusOK || r.json(t)["status"] != "ok" {
			t.Errorf("GET %s = %d %s; want 200 ok", path, r.status, r.body)
		}
	}
	s.do("GET", "/v1/calendars", "", nil) // a 401 to count
	r := s.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`calhook_http_requests_total{code="401",method="GET",route="/v1/calendars"} 1`,
		`calhook_http_request_duration_seconds_bucket{route="/readyz"`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
	}{
		{"no key", "GET", "/v1/calendars", nil, 401},
		{"wrong bearer", "GET", "/v1/calendars", []string{"Authorization", "Bearer chk_wrong"}, 401},
		{"basic scheme", "GET", "/v1/calendars", []string{"Authorization", "Basic " + a.key}, 401},
		{"bearer", "GET", "/v1/calendars", []string{"Authorization", "Bearer " + a.key}, 200},
		{"bearer lower case", "GET", "/v1/calendars", []string{"Authorization", "bearer " + a.key}, 200},
		{"x-api-key", "GET", "/v1/calendars", []string{"x-api-key", a.key}, 200},
		{"admin route without token", "GET", "/v1/accounts/" + a.id, nil, 401},
		{"admin route with account key", "GET", "/v1/accounts/" + a.id, []string{"Authorization", "Bearer " + a.key}, 401},
		{"admin route with admin token", "GET", "/v1/accounts/" + a.id, []string{"Authorization", "Bearer " + adminToken}, 200},
		{"account route with admin token", "GET", "/v1/calendars", []string{"Authorization", "Bearer " + adminToken}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(tt.method, tt.path, "", nil, tt.headers...)
			if r.status != tt.want {
				t.Errorf("%s %s = %d %s; want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			if r.status == 401 && r.errorCode(t) != "unauthorized" {
				t.Errorf("error code = %q; want unauthorized", r.errorCode(t))
			}
		})
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	// A server without an admin token refuses account creation outright.
	srv := newServerAdmin(t, "")
	r := srv.do("POST", "/v1/accounts", "anything", map[string]string{"name": "x"})
	if r.status != http.StatusForbidden {
		t.Errorf("POST /v1/accounts without CALHOOK_ADMIN_TOKEN = %d; want 403", r.status)
	}
}

func TestAccountsAdmin(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("  Acme Rentals ")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a.feedToken) {
		t.Errorf("feedToken = %q; want 64 lowercase hex characters", a.feedToken)
	}
	got := s.must(200, "GET", "/v1/accounts/"+a.id, adminToken, nil)
	if got["name"] != "Acme Rentals" || got["apiKey"] != nil || got["feedToken"] != nil {
		t.Errorf("GET account = %v; want the trimmed name and no secrets", got)
	}
	for _, body := range []string{`{"name":""}`, `{}`, `{"name":"a","extra":1}`, `[1]`} {
		if r := s.do("POST", "/v1/accounts", adminToken, body); r.status != 400 {
			t.Errorf("POST /v1/accounts %s = %d; want 400", body, r.status)
		}
	}
	s.newCalendar(a, "Cal", "UTC")
	s.must(204, "DELETE", "/v1/accounts/"+a.id, adminToken, nil)
	s.must(404, "GET", "/v1/accounts/"+a.id, adminToken, nil)
	if r := s.do("GET", "/v1/calendars", a.key, nil); r.status != 401 {
		t.Errorf("deleted account's key still works: %d", r.status)
	}
	s.must(404, "DELETE", "/v1/accounts/"+a.id, adminToken, nil)
}

// TestCrossAccountIsolation walks every account route with a second
// account's key and the first account's ids: each must answer 404 and
// change nothing.
func TestCrossAccountIsolation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner, intruder := s.newAccount("Owner"), s.newAccount("Intruder")
	calID := s.newCalendar(owner, "Private", "Europe/Berlin")
	sub := s.must(201, "POST", "/v1/subscriptions", owner.key, map[string]any{"webhookUrl": "http://127.0.0.1:9/hook"})
	subID := sub["webhookSubscriptionId"].(string)
	ev := s.newEvent(owner, calID, map[string]any{"summary": "Secret", "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"})
	evID := ev["id"].(string)
	s.fanOut()
	msgs := s.must(200, "GET", "/v1/subscriptions/"+subID+"/messages", owner.key, nil)["data"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("owner's subscription has %d messages; want 1", len(msgs))
	}
	msgID := msgs[0].(map[string]any)["id"].(string)
	unitID := s.must(201, "POST", "/v1/units", owner.key, map[string]any{"name": "Private unit"})["id"].(string)
	s.must(200, "PATCH", "/v1/calendars/"+calID, owner.key, map[string]any{"unitId": unitID})
	ids := strings.NewReplacer("{calendarId}", calID, "{eventId}", evID, "{accountId}", owner.id,
		"{subscriptionId}", subID, "{messageId}", msgID, "{endUserAccountId}", owner.id, "{unitId}", unitID)
	bodies := map[string]any{
		"PATCH":  map[string]string{"summary": "Hacked", "name": "Hacked"},
		"POST":   map[string]string{"summary": "Planted", "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T11:00:00Z"},
		"DELETE": nil,
		"GET":    nil,
	}
	walked := 0
	for _, route := range s.handler.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v1/accounts") || !strings.Contains(path, "{") {
			continue
		}
		walked++
		body := bodies[method]
		switch {
		case method == "PATCH" && strings.Contains(path, "{subscriptionId}"):
			body = map[string]any{"webhookUrl": "http://127.0.0.1:9/stolen"}
		case method == "PATCH" && !strings.Contains(path, "{eventId}"):
			body = map[string]string{"name": "Hacked"}
		case strings.Contains(path, "{endUserAccountId}") && method == "POST":
			body = map[string]any{"calendarId": calID, "webhookUrl": "http://127.0.0.1:9/stolen"}
		case strings.Contains(path, "{endUserAccountId}") && method == "DELETE":
			body = map[string]any{"subscriptionId": subID}
		case strings.Contains(path, "rotate-secret") || strings.Contains(path, "redeliver"):
			body = nil
		}
		r := s.do(method, ids.Replace(path), intruder.key, body)
		if r.status != http.StatusNotFound {
			t.Errorf("%s %s with another account's key = %d %s; want 404", method, path, r.status, r.body)
		}
		if strings.Contains(string(r.body), "Secret") || strings.Contains(string(r.body), "Private") {
			t.Errorf("%s %s leaked the owner's data: %s", method, path, r.body)
		}
	}
	if walked < 18 {
		t.Errorf("walked %d routes with ids; want every calendar and event route", walked)
	}
	// Routes without ids only ever show the caller's own objects.
	list := s.must(200, "GET", "/v1/calendars", intruder.key, nil)
	if data := list["data"].([]any); len(data) != 0 {
		t.Errorf("intruder lists %d calendars; want 0", len(data))
	}
	tok := s.must(200, "GET", "/v1/feed-token", intruder.key, nil)
	if strings.Contains(string(mustJSON(t, tok)), calID) || tok["feedToken"] == owner.feedToken {
		t.Errorf("intruder's feed token answer mentions the owner's objects: %v", tok)
	}
	// The owner's objects are untouched.
	got := s.must(200, "GET", "/v1/calendars/"+calID+"/events/"+evID, owner.key, nil)
	if got["summary"] != "Secret" || got["sequence"].(float64) != 0 {
		t.Errorf("owner's event after the walk = %v; want it unchanged", got)
	}
	cal := s.must(200, "GET", "/v1/calendars/"+calID, owner.key, nil)
	if cal["name"] != "Private" {
		t.Errorf("owner's calendar after the walk = %v; want it unchanged", cal)
	}
	events := s.must(200, "GET", "/v1/calendars/"+calID+"/events", owner.key, nil)
	if n := len(events["data"].([]any)); n != 1 {
		t.Errorf("owner's calendar has %d events after the walk; want 1", n)
	}
	gotSub := s.must(200, "GET", "/v1/subscriptions/"+subID, owner.key, nil)
	if gotSub["webhookUrl"] != "http://127.0.0.1:9/hook" || gotSub["previousSecretExpiresAt"] != nil {
		t.Errorf("owner's subscription after the walk = %v; want it unchanged (no rotation)", gotSub)
	}
	if subs := s.must(200, "GET", "/v1/subscriptions", intruder.key, nil); len(subs["data"].([]any)) != 0 {
		t.Errorf("intruder lists the owner's subscriptions")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Cal", "Europe/Berlin")
	events := "/v1/calendars/" + cal + "/events"
	valid := `"summary":"x","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"`
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		ctype    string
		want     int
		wantText string
	}{
		{"malformed JSON", "POST", events, `{"summary":`, "", 400, "malformed JSON"},
		{"not an object", "POST", events, `["x"]`, "", 400, "malformed JSON"},
		{"trailing data", "POST", events, `{` + valid + `} {}`, "", 400, "unexpected data"},
		{"empty body", "POST", events, ``, "", 400, "empty"},
		{"unknown field", "POST", events, `{` + valid + `,"colour":"red"}`, "", 400, `unknown field "colour"`},
		{"wrong type", "POST", events, `{"summary":5,"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, "", 400, `"summary" must be a string`},
		{"missing summary", "POST", events, `{"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, "", 400, "summary: is required"},
		{"blank summary", "POST", events, `{"summary":"  ","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, "", 400, "summary"},
		{"missing start", "POST", events, `{"summary":"x","end":"2026-12-01T11:00:00Z"}`, "", 400, "start: is required"},
		{"end before start", "POST", events, `{"summary":"x","start":"2026-12-01T10:00:00Z","end":"2026-12-01T09:00:00Z"}`, "", 400, "end: must not be before start"},
		{"all-day end not after start", "POST", events, `{"summary":"x","start":"2026-12-01","end":"2026-12-01"}`, "", 400, "exclusive"},
		{"bad start", "POST", events, `{"summary":"x","start":"tomorrow","end":"2026-12-01T09:00:00Z"}`, "", 400, "start: must be an RFC 3339"},
		{"bad time zone", "POST", events, `{` + valid + `,"timeZone":"Mars/Olympus"}`, "", 400, "timeZone"},
		{"bad calendar zone", "POST", "/v1/calendars", `{"name":"x","timeZone":"Europe/Nowhere"}`, "", 400, "timeZone"},
		{"Local zone", "POST", "/v1/calendars", `{"name":"x","timeZone":"Local"}`, "", 400, "timeZone"},
		{"bad rrule", "POST", events, `{` + valid + `,"rrule":"FREQ=SOMETIMES"}`, "", 400, "rrule"},
		{"rrule with DTSTART", "POST", events, `{` + valid + `,"rrule":"DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY"}`, "", 400, "rrule"},
		{"bad status", "POST", events, `{` + valid + `,"status":"maybe"}`, "", 400, "status"},
		{"bad exdate", "POST", events, `{` + valid + `,"exdates":["soon"]}`, "", 400, "exdates[0]"},
		{"control char in summary", "POST", events, `{"summary":"a\u0000b","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, "", 400, "control"},
		{"oversized body", "POST", events, `{"summary":"` + strings.Repeat("x", 1<<20) + `"}`, "", 413, "larger than"},
		{"form content type", "POST", events, `{` + valid + `}`, "application/x-www-form-urlencoded", 415, "application/json"},
		{"bad limit", "GET", events + "?limit=0", ``, "", 400, "limit"},
		{"huge limit", "GET", events + "?limit=100000", ``, "", 400, "limit"},
		{"bad page token", "GET", events + "?pageToken=garbage!", ``, "", 400, "pageToken"},
		{"bad from", "GET", events + "?from=yesterday", ``, "", 400, "from"},
		{"bad since", "GET", "/v1/calendars/" + cal + "/changes?since=zzz", ``, "", 400, "since"},
		{"unknown route", "GET", "/v1/nothing", ``, "", 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			headers := []string{}
			if tt.ctype != "" {
				headers = append(headers, "Content-Type", tt.ctype)
			}
			r := s.do(tt.method, tt.path, a.key, body, headers...)
			if r.status != tt.want {
				t.Fatalf("status = %d %s; want %d", r.status, r.body, tt.want)
			}
			m := r.json(t)
			e, ok := m["error"].(map[string]any)
			if !ok || e["code"] == "" {
				t.Fatalf("body = %s; want {\"error\":{\"code\",\"message\"}}", r.body)
			}
			if msg, _ := e["message"].(string); !strings.Contains(msg, tt.wantText) {
				t.Errorf("message = %q; want it to mention %q", msg, tt.wantText)
			}
		})
	}
	// Nothing invalid was stored, and nothing was recorded as a change.
	list := s.must(200, "GET", events, a.key, nil)
	if n := len(list["data"].([]any)); n != 0 {
		t.Errorf("%d events stored by invalid requests; want 0", n)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	other := s.newAccount("Other")
	var want []string
	for i := range 7 {
		want = append(want, s.newCalendar(a, "Cal "+string(rune('A'+i)), "UTC"))
		s.newCalendar(other, "Noise", "UTC")
	}
	var got []string
	token := ""
	pages := 0
	for {
		path := "/v1/calendars?limit=3"
		if token != "" {
			path += "&pageToken=" + token
		}
		m := s.must(200, "GET", path, a.key, nil)
		pages++
		for _, c := range m["data"].([]any) {
			got = append(got, c.(map[string]any)["id"].(string))
		}
		next, _ := m["nextPageToken"].(string)
		if next == "" {
			break
		}
		if strings.ContainsAny(next, "0123456789") && !regexp.MustCompile(`[A-Za-z]`).MatchString(next) {
			t.Errorf("page token %q looks like a bare position; want it opaque", next)
		}
		token = next
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paged ids = %v in %d pages; want %v in 3 pages", got, pages, want)
	}
}

func TestEventLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach house", "Europe/Berlin")
	base := "/v1/calendars/" + cal
	ev := s.newEvent(a, cal, map[string]any{
		"summary": "Booking", "start": "2026-12-01T15:00:00", "end": "2026-12-05T10:00:00",
		"rrule": "freq=weekly; count=3", "exdates": []string{"2026-12-08T15:00:00"}, "metadata": map[string]string{"ref": "42"},
	})
	checks := map[string]any{
		"start": "2026-12-01T15:00:00+01:00", "end": "2026-12-05T10:00:00+01:00", "timeZone": "Europe/Berlin",
		"status": "confirmed", "rrule": "FREQ=WEEKLY;COUNT=3", "sequence": 0.0, "allDay": false,
	}
	for k, want := range checks {
		if ev[k] != want {
			t.Errorf("created %s = %v; want %v", k, ev[k], want)
		}
	}
	if uid, _ := ev["uid"].(string); !strings.HasSuffix(uid, "@calhook") {
		t.Errorf("generated uid = %q; want a @calhook UID", uid)
	}
	id := ev["id"].(string)
	upd := s.must(200, "PATCH", base+"/events/"+id, a.key, map[string]any{"summary": "Booking (changed)", "status": "tentative"})
	if upd["sequence"].(float64) != 1 || upd["summary"] != "Booking (changed)" || upd["start"] != ev["start"] {
		t.Errorf("after PATCH = %v; want sequence 1, new summary, same start", upd)
	}
	upd = s.must(200, "PATCH", base+"/events/"+id, a.key, map[string]any{"end": "2026-12-06T10:00:00+01:00"})
	if upd["sequence"].(float64) != 2 || upd["end"] != "2026-12-06T10:00:00+01:00" {
		t.Errorf("after second PATCH = %v; want sequence 2 and the new end", upd)
	}
	if r := s.do("PATCH", base+"/events/"+id, a.key, map[string]any{"end": "2026-11-01T10:00:00Z"}); r.status != 400 {
		t.Errorf("PATCH end before start = %d; want 400", r.status)
	}
	allDay := s.newEvent(a, cal, map[string]any{"uid": "stay-1@example.com", "summary": "Owner stay", "start": "2026-12-20", "end": "2026-12-27"})
	if allDay["allDay"] != true || allDay["start"] != "2026-12-20" || allDay["uid"] != "stay-1@example.com" {
		t.Errorf("all-day event = %v", allDay)
	}
	dup := s.do("POST", base+"/events", a.key, map[string]any{"uid": "stay-1@example.com", "summary": "x", "start": "2026-12-20", "end": "2026-12-21"})
	if dup.status != 409 || dup.errorCode(t) != "conflict" {
		t.Errorf("duplicate uid = %d %s; want 409 conflict", dup.status, dup.body)
	}
	inRange := s.must(200, "GET", base+"/events?from=2026-12-19T00:00:00Z&to=2026-12-31T00:00:00Z", a.key, nil)
	if n := len(inRange["data"].([]any)); n != 2 {
		t.Errorf("events from 12-19 to 12-31 = %d; want 2 (the stay and the recurring booking)", n)
	}
	s.must(204, "DELETE", base+"/events/"+id, a.key, nil)
	s.must(404, "GET", base+"/events/"+id, a.key, nil)
	s.must(404, "DELETE", base+"/events/"+id, a.key, nil)

	changes := s.must(200, "GET", base+"/changes?since="+encodeZeroCursor(), a.key, nil)
	var types []string
	for _, c := range changes["data"].([]any) {
		types = append(types, c.(map[string]any)["type"].(string))
	}
	want := []string{"calendar.event.created", "calendar.event.updated", "calendar.event.updated", "calendar.event.created", "calendar.event.deleted"}
	if !slices.Equal(types, want) {
		t.Errorf("changes = %v; want %v", types, want)
	}
	// Following nextCursor yields nothing new until the next write.
	next := changes["nextCursor"].(string)
	if more := s.must(200, "GET", base+"/changes?since="+next, a.key, nil); len(more["data"].([]any)) != 0 {
		t.Errorf("changes after nextCursor = %v; want none", more["data"])
	}
	s.newEvent(a, cal, map[string]any{"summary": "Later", "start": "2027-01-01", "end": "2027-01-02"})
	if more := s.must(200, "GET", base+"/changes?since="+next, a.key, nil); len(more["data"].([]any)) != 1 {
		t.Errorf("changes after a new write = %v; want one", more["data"])
	}
	// An empty since starts from now.
	if now := s.must(200, "GET", base+"/changes", a.key, nil); len(now["data"].([]any)) != 0 || now["nextCursor"] == "" {
		t.Errorf("changes without since = %v; want none and a cursor", now)
	}
}

// encodeZeroCursor is the cursor before the first change: the API's
// cursors are base64url("p" + position).
func encodeZeroCursor() string { return "cDA" }

func TestCalendarLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	c := s.must(201, "POST", "/v1/calendars", a.key, map[string]string{"name": "Loft"})
	if c["timeZone"] != "UTC" || c["kind"] != "native" {
		t.Errorf("defaults = %v; want UTC and native", c)
	}
	id := c["id"].(string)
	u := s.must(200, "PATCH", "/v1/calendars/"+id, a.key, map[string]string{"name": "Loft 2", "timeZone": "Asia/Tokyo"})
	if u["name"] != "Loft 2" || u["timeZone"] != "Asia/Tokyo" || u["version"].(float64) <= c["version"].(float64) {
		t.Errorf("after PATCH = %v", u)
	}
	s.newEvent(a, id, map[string]any{"summary": "x", "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"})
	s.must(204, "DELETE", "/v1/calendars/"+id, a.key, nil)
	s.must(404, "GET", "/v1/calendars/"+id, a.key, nil)
	s.must(404, "GET", "/v1/calendars/"+id+"/events", a.key, nil)
}
