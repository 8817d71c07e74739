package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
)

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	other := s.newAccount("Other")
	otherCal := s.newCalendar(other, "Theirs", "UTC")
	tests := []struct {
		name, body, wantText string
	}{
		{"missing url", `{}`, "webhookUrl: is required"},
		{"ftp url", `{"webhookUrl":"ftp://example.com/x"}`, "webhookUrl"},
		{"private address", `{"webhookUrl":"http://10.1.2.3/hook"}`, "webhookUrl: forbidden address"},
		{"metadata address", `{"webhookUrl":"http://169.254.169.254/latest"}`, "webhookUrl"},
		{"userinfo", `{"webhookUrl":"http://user:pw@127.0.0.1/hook"}`, "webhookUrl"},
		{"localhost name", `{"webhookUrl":"http://localhost/hook"}`, "webhookUrl"},
		{"unknown event type", `{"webhookUrl":"http://127.0.0.1/h","eventTypes":["calendar.event.exploded"]}`, `unknown event type "calendar.event.exploded"`},
		{"rate limit zero", `{"webhookUrl":"http://127.0.0.1/h","rateLimit":0}`, "rateLimit"},
		{"rate limit negative", `{"webhookUrl":"http://127.0.0.1/h","rateLimit":-5}`, "rateLimit"},
		{"rate limit fractional", `{"webhookUrl":"http://127.0.0.1/h","rateLimit":1.5}`, "rateLimit"},
		{"another account's calendar", `{"webhookUrl":"http://127.0.0.1/h","calendarId":"` + otherCal + `"}`, "calendarId"},
		{"disabled on create", `{"webhookUrl":"http://127.0.0.1/h","disabled":true}`, "disabled"},
		{"unknown field", `{"webhookUrl":"http://127.0.0.1/h","secret":"mine"}`, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("POST", "/v1/subscriptions", a.key, tt.body)
			if r.status != 400 {
				t.Fatalf("status = %d %s; want 400", r.status, r.body)
			}
			if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, tt.wantText) {
				t.Errorf("message = %q; want it to mention %q", msg, tt.wantText)
			}
		})
	}
	if list := s.must(200, "GET", "/v1/subscriptions", a.key, nil); len(list["data"].([]any)) != 0 {
		t.Errorf("invalid requests stored subscriptions: %v", list["data"])
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	created := s.must(201, "POST", "/v1/subscriptions", a.key, map[string]any{
		"webhookUrl": "http://127.0.0.1:9/hook", "calendarId": cal, "rateLimit": 20,
		"eventTypes": []string{"calendar.event.created", "calendar.event.created"}, "description": "PMS",
	})
	id := created["webhookSubscriptionId"].(string)
	secret := created["endpointSecret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || created["id"] != id || created["rateLimit"].(float64) != 20 {
		t.Errorf("created = %v", created)
	}
	if types := created["eventTypes"].([]any); len(types) != 1 {
		t.Errorf("eventTypes = %v; want duplicates removed", types)
	}
	s.must(201, "POST", "/v1/subscriptions", a.key, map[string]any{"webhookUrl": "http://127.0.0.1:9/all"})

	got := s.must(200, "GET", "/v1/subscriptions/"+id, a.key, nil)
	if _, ok := got["endpointSecret"]; ok || strings.Contains(string(mustJSON(t, got)), secret) {
		t.Errorf("GET returns the secret: %v", got)
	}
	filtered := s.must(200, "GET", "/v1/subscriptions?calendarId="+cal, a.key, nil)["data"].([]any)
	all := s.must(200, "GET", "/v1/subscriptions", a.key, nil)["data"].([]any)
	if len(filtered) != 1 || len(all) != 2 {
		t.Errorf("list with calendarId = %d, without = %d; want 1 and 2", len(filtered), len(all))
	}

	upd := s.must(200, "PATCH", "/v1/subscriptions/"+id, a.key, map[string]any{"disabled": true, "rateLimit": 5})
	if upd["disabled"] != true || upd["disabledReason"] == "" || upd["rateLimit"].(float64) != 5 {
		t.Errorf("after disabling = %v", upd)
	}
	upd = s.must(200, "PATCH", "/v1/subscriptions/"+id, a.key, map[string]any{"disabled": false})
	if upd["disabled"] != false || upd["disabledReason"] != nil {
		t.Errorf("after enabling = %v", upd)
	}
	if r := s.do("PATCH", "/v1/subscriptions/"+id, a.key, map[string]any{"calendarId": "cal_other"}); r.status != 400 {
		t.Errorf("changing calendarId = %d; want 400", r.status)
	}

	rot := s.must(200, "POST", "/v1/subscriptions/"+id+"/rotate-secret", a.key, nil)
	if rot["endpointSecret"] == secret || !strings.HasPrefix(rot["endpointSecret"].(string), "whsec_") {
		t.Errorf("rotated secret = %v", rot["endpointSecret"])
	}
	exp, err := time.Parse(time.RFC3339, rot["previousSecretExpiresAt"].(string))
	if err != nil || time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
		t.Errorf("previousSecretExpiresAt = %v; want in 24 h", rot["previousSecretExpiresAt"])
	}
	if del := s.must(200, "DELETE", "/v1/subscriptions/"+id, a.key, nil); del["success"] != true {
		t.Errorf("DELETE = %v; want {\"success\":true}", del)
	}
	s.must(404, "GET", "/v1/subscriptions/"+id, a.key, nil)
}

// TestOneCalShapes checks the OneCal-shaped routes field by field against
// the seed document's examples.
func TestOneCalShapes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	base := "/v1/calendarSubscriptions/" + a.id
	r := s.do("POST", base, "", `{"calendarId":"`+cal+`","webhookUrl":"http://127.0.0.1:9/onecal"}`, "x-api-key", a.key)
	if r.status != 201 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	created := r.json(t)
	if len(created) != 2 || created["webhookSubscriptionId"] == nil || created["endpointSecret"] == nil {
		t.Errorf("POST answer = %v; want exactly webhookSubscriptionId and endpointSecret", created)
	}
	if r := s.do("POST", base, a.key, `{"webhookUrl":"http://127.0.0.1:9/x"}`); r.status != 400 {
		t.Errorf("POST without calendarId = %d; want 400 (it is required)", r.status)
	}
	list := s.must(200, "GET", base, a.key, nil)
	var shape struct {
		Data          []map[string]any `json:"data"`
		NextPageToken *string          `json:"nextPageToken"`
	}
	if err := json.Unmarshal(mustJSON(t, list), &shape); err != nil {
		t.Fatal(err)
	}
	if _, ok := list["nextPageToken"]; !ok || shape.NextPageToken != nil {
		t.Errorf("nextPageToken = %v; want an explicit null", list["nextPageToken"])
	}
	if len(shape.Data) != 1 {
		t.Fatalf("data = %v", shape.Data)
	}
	var keys []string
	for k := range shape.Data[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"calendarId", "createdAt", "endUserAccountId", "expiration", "id", "provider", "resourceId", "subscriptionId", "updatedAt", "url"}
	if !slices.Equal(keys, want) {
		t.Errorf("subscription fields = %v; want %v", keys, want)
	}
	if d := shape.Data[0]; d["url"] != "http://127.0.0.1:9/onecal" || d["calendarId"] != cal || d["endUserAccountId"] != a.id ||
		d["subscriptionId"] != created["webhookSubscriptionId"] {
		t.Errorf("subscription = %v", d)
	}
	// The OneCal filter: the coarse calendar types, so one change is one
	// calendar.event.changed.
	sub := s.must(200, "GET", "/v1/subscriptions/"+created["webhookSubscriptionId"].(string), a.key, nil)
	if types := sub["eventTypes"].([]any); !slices.Contains(types, any("calendar.event.changed")) || slices.Contains(types, any("calendar.event.created")) {
		t.Errorf("OneCal subscription's event types = %v", types)
	}
	s.newEvent(a, cal, map[string]any{"summary": "x", "start": "2026-12-01", "end": "2026-12-02"})
	s.fanOut()
	msgs := s.must(200, "GET", "/v1/subscriptions/"+created["webhookSubscriptionId"].(string)+"/messages", a.key, nil)["data"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["eventType"] != "calendar.event.changed" {
		t.Errorf("messages = %v; want one calendar.event.changed", msgs)
	}

	if r := s.do("DELETE", base, a.key, `{}`); r.status != 400 {
		t.Errorf("DELETE without subscriptionId = %d; want 400", r.status)
	}
	del := s.must(200, "DELETE", base, a.key, map[string]string{"subscriptionId": created["webhookSubscriptionId"].(string)})
	if len(del) != 1 || del["success"] != true {
		t.Errorf("DELETE = %v; want exactly {\"success\":true}", del)
	}
	s.must(404, "DELETE", base, a.key, map[string]string{"subscriptionId": created["webhookSubscriptionId"].(string)})
}

func TestDeliveryLogAndRedeliver(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	sub := s.must(201, "POST", "/v1/subscriptions", a.key, map[string]any{"webhookUrl": "http://127.0.0.1:9/hook"})["webhookSubscriptionId"].(string)
	for i := range 3 {
		s.newEvent(a, cal, map[string]any{"summary": "x", "start": "2026-12-0" + string(rune('1'+i)), "end": "2026-12-09"})
	}
	s.fanOut()
	s.fanOut() // a second run finds nothing new and adds nothing
	page1 := s.must(200, "GET", "/v1/subscriptions/"+sub+"/messages?limit=2", a.key, nil)
	data := page1["data"].([]any)
	if len(data) != 2 || page1["nextPageToken"] == nil {
		t.Fatalf("first page = %v", page1)
	}
	page2 := s.must(200, "GET", "/v1/subscriptions/"+sub+"/messages?limit=2&pageToken="+page1["nextPageToken"].(string), a.key, nil)
	if n := len(page2["data"].([]any)); n != 1 {
		t.Errorf("second page has %d messages; want 1 (3 changes, one message each)", n)
	}
	m := data[0].(map[string]any)
	if m["status"] != "pending" || m["attempts"].(float64) != 0 || m["nextAttemptAt"] == nil {
		t.Errorf("message = %v; want pending with no attempts", m)
	}
	var payload struct{ WebhookID, EventType string }
	if err := json.Unmarshal(mustJSON(t, m["payload"]), &payload); err != nil || payload.WebhookID != m["id"] || payload.EventType != "calendar.event.created" {
		t.Errorf("payload = %v; want the webhook body with the message id", m["payload"])
	}
	// Record a failed attempt as the dispatcher would, then read the log.
	id := m["id"].(string)
	claimed, err := s.store.ClaimMessages(context.Background(), store.ClaimParams{Now: time.Now(), Limit: 10, Lease: time.Minute})
	if err != nil || len(claimed.Deliveries) != 3 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	var results []*store.AttemptResult
	for _, d := range claimed.Deliveries {
		results = append(results, &store.AttemptResult{
			Attempt:        store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: "d-" + d.Message.ID, AttemptedAt: time.Now(), StatusCode: 503, Latency: 12 * time.Millisecond, Response: "busy"},
			SubscriptionID: d.Message.SubscriptionID, Outcome: store.OutcomeUndeliverable,
		})
	}
	if _, err := s.store.RecordAttempts(context.Background(), results, store.RecordParams{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	att := s.must(200, "GET", "/v1/messages/"+id+"/attempts", a.key, nil)["data"].([]any)
	if len(att) != 1 {
		t.Fatalf("attempts = %v", att)
	}
	if at := att[0].(map[string]any); at["statusCode"].(float64) != 503 || at["response"] != "busy" || at["latencyMs"].(float64) != 12 {
		t.Errorf("attempt = %v", at)
	}
	red := s.must(202, "POST", "/v1/messages/"+id+"/redeliver", a.key, nil)
	if red["status"] != "pending" || red["attempts"].(float64) != 1 {
		t.Errorf("after redeliver = %v; want pending, attempts kept at 1", red)
	}
	s.must(200, "PATCH", "/v1/subscriptions/"+sub, a.key, map[string]any{"disabled": true})
	if r := s.do("POST", "/v1/messages/"+id+"/redeliver", a.key, nil); r.status != 409 || r.errorCode(t) != "subscription_disabled" {
		t.Errorf("redeliver to a disabled subscription = %d %s; want 409", r.status, r.body)
	}
}

func TestChangesCursorExpired(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	s.newEvent(a, cal, map[string]any{"summary": "old", "start": "2026-12-01", "end": "2026-12-02"})
	first := s.must(200, "GET", "/v1/calendars/"+cal+"/changes?since="+encodeZeroCursor(), a.key, nil)
	s.fanOut() // pruning keeps what the fan-out and the conflict detector have not read
	runDetector(t, availability.NewDetector(availability.DetectorConfig{Store: s.store, BaseURL: s.URL}))
	if _, err := s.store.Prune(context.Background(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := s.do("GET", "/v1/calendars/"+cal+"/changes?since="+encodeZeroCursor(), a.key, nil)
	if r.status != http.StatusGone || r.errorCode(t) != "cursor_expired" {
		t.Errorf("a cursor older than the retention = %d %s; want 410 cursor_expired", r.status, r.body)
	}
	// The cursor handed out after the pruned change is still good.
	if r := s.do("GET", "/v1/calendars/"+cal+"/changes?since="+first["nextCursor"].(string), a.key, nil); r.status != 200 {
		t.Errorf("the newest cursor after pruning = %d; want 200", r.status)
	}
}

// TestSubscriptionGetsOnlyLaterChanges: a change made before a
// subscription existed is not delivered to it, even when the fan-out gets
// to the change only afterwards.
func TestSubscriptionGetsOnlyLaterChanges(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "UTC")
	s.newEvent(a, cal, map[string]any{"summary": "before", "start": "2026-12-01", "end": "2026-12-02"})
	time.Sleep(2 * time.Millisecond) // the store keeps microseconds; make the order unambiguous
	sub := s.must(201, "POST", "/v1/subscriptions", a.key, map[string]any{"webhookUrl": "http://127.0.0.1:9/hook"})["webhookSubscriptionId"].(string)
	s.newEvent(a, cal, map[string]any{"summary": "after", "start": "2026-12-03", "end": "2026-12-04"})
	s.fanOut()
	msgs := s.must(200, "GET", "/v1/subscriptions/"+sub+"/messages", a.key, nil)["data"].([]any)
	if len(msgs) != 1 {
		t.Errorf("messages = %d; want 1, for the change made after subscribing", len(msgs))
	}
}

// TestSubscriptionLimit fills one account up to the default bound: the next
// create is refused with subscription_limit, another account is not
// affected, and deleting one makes room again.
func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a, b := s.newAccount("Acme"), s.newAccount("Other")
	body := map[string]any{"webhookUrl": "http://127.0.0.1:9/hook"}
	var last string
	for range subscription.DefaultMaxPerAccount {
		last = s.must(201, "POST", "/v1/subscriptions", a.key, body)["id"].(string)
	}
	r := s.do("POST", "/v1/subscriptions", a.key, body)
	if r.status != http.StatusConflict || r.errorCode(t) != "subscription_limit" {
		t.Fatalf("create past the limit = %d %s; want 409 subscription_limit", r.status, r.body)
	}
	if !strings.Contains(string(r.body), "100") {
		t.Errorf("limit message = %s; want it to name the bound", r.body)
	}
	s.must(201, "POST", "/v1/subscriptions", b.key, body)
	s.must(200, "DELETE", "/v1/subscriptions/"+last, a.key, nil)
	s.must(201, "POST", "/v1/subscriptions", a.key, body)
}
