package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/webhook"
)

// Event types of the webhooks the stream causes.
const (
	typeCreated = "calendar.event.created"
	typeUpdated = "calendar.event.updated"
	typeDeleted = "calendar.event.deleted"
)

// TestCrashRecovery writes a stream of event changes from concurrent
// clients, kills calhook with SIGKILL in the middle of it, restarts it on
// the same database and finishes the stream. Every change the API
// acknowledged must then reach every subscription's receiver, as exactly
// one message (retries repeat its webhook-id and its body byte for byte),
// and nothing may arrive that the stream did not cause. Writes that were
// in flight at the kill may or may not have happened; both are accepted.
//
// It does not run in parallel: it measures nothing, but a kill at the
// wrong moment under heavy load from other tests would only make the
// timing of the restart less representative. Most of its 35 s or so is
// the delivery lease: a message claimed when the process died is sent
// again only once its lease (webhook timeout + 30 s) has run out.
func TestCrashRecovery(t *testing.T) {
	const (
		writers      = 4
		opsPerWriter = 500 // 2,000 changes in all
		// killAfter is how many acknowledged changes trigger the kill.
		killAfter = 700
		// failEvery makes the receiver answer 503 to the first attempt of
		// every failEvery-th message, so retries happen too.
		failEvery = 40
		// deliveryTimeout bounds the wait for the queue to drain after
		// the stream, lease expiry included.
		deliveryTimeout = 60 * time.Second
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	db := filepath.Join(t.TempDir(), "calhook.db")
	admin := randomHex(16)
	flags := []string{
		"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32",
		"--retry-schedule", "1s,1s,1s,1s,1s",
		// The lease of a claimed message is this plus 30 s; shorter
		// means a quicker redelivery of what was in flight at the kill.
		"--webhook-timeout", "1s",
		"--shutdown-timeout", "5s",
		// Both receivers are on one loopback host: the per-host webhook
		// rate (50/s by default) would stretch 4,000 deliveries past the
		// drain timeout, and this test is about crashes, not pacing.
		"--webhook-host-rate", "0",
	}
	srv := startServer(t, db, admin, flags...)
	api := newClient()

	rcv := newReceiver(failEvery)
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()

	// Setup: an account, a calendar, a subscription to the whole account
	// and one to the calendar only.
	key := newAccount(t, api, srv.baseURL(), admin, "crash test")
	cal := newCalendar(t, api, srv.baseURL(), key, "Crash test")
	specs := []subSpec{{"/hooks/0", "", 0}, {"/hooks/1", cal, 0}}
	subs := make([]string, len(specs))
	for i, s := range specs {
		subs[i] = subscribe(t, api, srv.baseURL(), key, hooks.URL, rcv, s)
	}
	// The change cursor before the stream, to list exactly the changes
	// that were committed afterwards.
	start := changeCursor(t, api, srv.baseURL(), key, cal)

	// The stream.
	g := newGate(srv.baseURL())
	var led ledger
	var seq atomic.Int64
	killNow := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			st := &stream{
				t: t, api: api, router: g, led: &led, seq: &seq, key: key, calendarID: cal,
				rng: rand.New(rand.NewPCG(uint64(w), 20261201)), writer: w, uidPrefix: "crash", summary: "Crash test",
			}
			for i := range opsPerWriter {
				if ctx.Err() != nil {
					return
				}
				st.step(ctx, i)
				if led.ackedCount() >= killAfter {
					killOnce.Do(func() { close(killNow) })
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	select {
	case <-killNow:
	case <-writersDone:
		t.Fatalf("the stream ended after %d acknowledged changes, before the kill at %d", led.ackedCount(), killAfter)
	}
	g.down()
	srv.kill()
	killedAt := time.Now()
	ackedAtKill := led.ackedCount()
	t.Logf("killed calhook (SIGKILL) after %d acknowledged changes; %d webhooks received so far", ackedAtKill, rcv.total())
	srv = startServer(t, db, admin, flags...)
	g.open(srv.baseURL())
	t.Logf("restarted calhook on the same database in %v at %s", time.Since(killedAt).Round(time.Millisecond), srv.addr)
	<-writersDone
	if t.Failed() {
		t.FailNow()
	}
	acked, doubt := led.snapshot()
	t.Logf("stream done: %d changes acknowledged (%d after the restart), %d in doubt", len(acked), len(acked)-ackedAtKill, len(doubt))
	if len(acked) == ackedAtKill {
		t.Fatal("no change was acknowledged after the restart")
	}

	// Wait until calhook reports every message delivered and the receiver
	// has answered 2xx to each.
	want := map[string]int{}
	for _, s := range specs {
		want[s.path] = len(acked)
	}
	msgs, err := waitDelivered(ctx, api, srv.baseURL(), key, subs, rcv, want, deliveryTimeout, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all delivered %v after the kill; %d webhooks received in all", time.Since(killedAt).Round(time.Millisecond), rcv.total())

	// The changes calhook committed, from its own change feed.
	committed, err := listChanges(ctx, api, srv.baseURL(), key, cal, start)
	if err != nil {
		t.Fatal(err)
	}
	checkCommitted(t, committed, acked, doubt)
	for i, subID := range subs {
		checkSubscription(t, fmt.Sprintf("subscription %d (%s)", i, subID), rcv.sub(specs[i].path),
			msgs[subID], committed, acked, doubt)
	}
	for _, p := range rcv.problemList() {
		t.Error(p)
	}
	if err := srv.stop(10 * time.Second); err != nil {
		t.Errorf("shutdown after the test: %v; log:\n%s", err, srv.logText())
	}
}

// op is one change the stream asked for.
type op struct {
	typ     string // typeCreated, typeUpdated or typeDeleted
	uid     string
	eventID string    // empty for a create not acknowledged
	start   time.Time // the event's start after the change; unique per op
}

// key identifies the change a webhook reports. The uid tells events
// apart, and each update moves the event to a start time no other change
// uses, so repeated updates of one event differ too.
func (o op) key() string {
	if o.typ == typeUpdated {
		return o.typ + " " + o.uid + " " + o.start.UTC().Format(time.RFC3339)
	}
	return o.typ + " " + o.uid
}

// ledger records the outcome of every write.
type ledger struct {
	mu      sync.Mutex
	acked   []op // answered with the expected 2xx
	inDoubt []op // failed because calhook was killed: may or may not have happened
}

func (l *ledger) ack(o op) {
	l.mu.Lock()
	l.acked = append(l.acked, o)
	l.mu.Unlock()
}

func (l *ledger) doubt(o op) {
	l.mu.Lock()
	l.inDoubt = append(l.inDoubt, o)
	l.mu.Unlock()
}

func (l *ledger) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *ledger) snapshot() (acked, inDoubt []op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked), slices.Clone(l.inDoubt)
}

// gate holds the current server's URL and stops writers while calhook is
// down. Its generation tells a writer whether the server it sent to was
// killed meanwhile.
type gate struct {
	mu   sync.Mutex
	base string
	gen  int
	up   chan struct{} // closed while the server is up
}

func newGate(base string) *gate {
	up := make(chan struct{})
	close(up)
	return &gate{base: base, up: up}
}

// route waits for the running server and sends every write to it; a
// write is in doubt if that server was killed meanwhile.
func (g *gate) route(ctx context.Context, _ int64) (target, error) {
	for {
		g.mu.Lock()
		up, base, gen := g.up, g.base, g.gen
		g.mu.Unlock()
		select {
		case <-up:
			return target{
				base: base, whileUp: "while calhook was up",
				wentDown: func() bool { return g.killedSince(gen) },
			}, nil
		default:
		}
		// Down: wait for the restart, then read the new server's URL.
		select {
		case <-up:
		case <-ctx.Done():
			return target{}, ctx.Err()
		}
	}
}

// down marks the server as going away; call it before killing it.
func (g *gate) down() {
	g.mu.Lock()
	g.up = make(chan struct{})
	g.gen++
	g.mu.Unlock()
}

// open lets writers through to the server at base.
func (g *gate) open(base string) {
	g.mu.Lock()
	g.base = base
	close(g.up)
	g.mu.Unlock()
}

// killedSince reports whether the server of generation gen was killed.
func (g *gate) killedSince(gen int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen != gen
}

// target is the server that one write goes to.
type target struct {
	base     string
	whileUp  string      // names the server in the failure of a write while it was up
	wentDown func() bool // reports whether the server was taken down since the write began
}

// router picks the server of each write: the crash test's gate, or the
// cluster test's nodes in turn.
type router interface {
	// route returns the target of the n-th write of the stream. It fails
	// with ctx's error when ctx ends, or when no server can take the write.
	route(ctx context.Context, n int64) (target, error)
}

// stream is one writer: it creates events in its calendar and updates and
// deletes the ones it created, each write through the server its router
// picks.
type stream struct {
	t          *testing.T
	api        *client
	router     router
	led        *ledger
	seq        *atomic.Int64
	key        string
	calendarID string
	rng        *rand.Rand
	writer     int
	uidPrefix  string // the events' uids are <uidPrefix>-<writer>-<i>@e2e.calhook.test
	summary    string // the events' summaries are "<summary> <n>"
	live       []op   // this writer's events that exist, as far as it knows
}

// startBase is the start of the first event; each op adds an hour.
var startBase = time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC)

// step makes the i-th change of this writer. A write that fails because
// its server was taken down meanwhile is in doubt; any other failure fails
// the test.
func (s *stream) step(ctx context.Context, i int) {
	n := s.seq.Add(1)
	start := startBase.Add(time.Duration(n) * time.Hour)
	var o op
	pick := -1
	switch r := s.rng.IntN(100); {
	case len(s.live) < 3 || r < 50:
		o = op{typ: typeCreated, uid: fmt.Sprintf("%s-%d-%d@e2e.calhook.test", s.uidPrefix, s.writer, i), start: start}
	case r < 85:
		pick = s.rng.IntN(len(s.live))
		o = op{typ: typeUpdated, uid: s.live[pick].uid, eventID: s.live[pick].eventID, start: start}
	default:
		pick = s.rng.IntN(len(s.live))
		o = s.live[pick]
		o.typ = typeDeleted
	}

	to, err := s.router.route(ctx, n)
	if err != nil {
		// The end of ctx stops the writer; a router's own failure fails
		// the test. errors.Is is false while ctx.Err() is nil.
		if !errors.Is(err, ctx.Err()) {
			s.t.Errorf("writer %d: %v", s.writer, err)
		}
		return
	}
	events := to.base + "/v1/calendars/" + s.calendarID + "/events"
	times := map[string]string{
		"start": start.Format(time.RFC3339), "end": start.Add(30 * time.Minute).Format(time.RFC3339),
	}
	var created struct {
		ID string `json:"id"`
	}
	switch o.typ {
	case typeCreated:
		in := map[string]string{"uid": o.uid, "summary": fmt.Sprintf("%s %d", s.summary, n)}
		maps.Copy(in, times)
		err = s.api.do(ctx, http.MethodPost, events, s.key, in, &created, http.StatusCreated)
	case typeUpdated:
		err = s.api.do(ctx, http.MethodPatch, events+"/"+o.eventID, s.key, times, nil, http.StatusOK)
	case typeDeleted:
		err = s.api.do(ctx, http.MethodDelete, events+"/"+o.eventID, s.key, nil, nil, http.StatusNoContent)
	}
	var se *statusError
	switch {
	case err == nil:
		if o.typ == typeCreated {
			o.eventID = created.ID
		}
		s.led.ack(o)
		switch o.typ {
		case typeCreated:
			s.live = append(s.live, o)
		case typeUpdated:
			s.live[pick].start = o.start
		case typeDeleted:
			s.live = slices.Delete(s.live, pick, pick+1)
		}
		return
	case errors.As(err, &se):
		s.t.Errorf("writer %d: %v", s.writer, err)
	case to.wentDown():
		s.led.doubt(o)
	case ctx.Err() != nil:
		return
	default:
		s.t.Errorf("writer %d: %s %s %s: %v", s.writer, o.typ, o.uid, to.whileUp, err)
	}
	// Whatever happened to the event is unknown now: leave it alone.
	if pick >= 0 {
		s.live = slices.Delete(s.live, pick, pick+1)
	}
}

// payload is the part of a webhook body the test checks.
type payload struct {
	WebhookID string `json:"webhookId"`
	EventType string `json:"eventType"`
	Data      struct {
		CalendarID string `json:"calendarId"`
		EventID    string `json:"eventId"`
		UID        string `json:"uid"`
		Start      string `json:"start"`
	} `json:"data"`
}

// key is the op key of the change the payload reports.
func (p payload) key() (string, error) {
	o := op{typ: p.EventType, uid: p.Data.UID}
	if p.EventType == typeUpdated {
		t, err := time.Parse(time.RFC3339, p.Data.Start)
		if err != nil {
			return "", fmt.Errorf("webhook %s: data.start: %w", p.WebhookID, err)
		}
		o.start = t
	}
	return o.key(), nil
}

// receiver is the webhook endpoint of every subscription: it verifies
// each delivery, records it by webhook id and answers 204 (or 503 to the
// first attempt of some messages).
type receiver struct {
	failEvery int

	mu       sync.Mutex
	subs     map[string]*received // by URL path
	seen     int                  // distinct messages so far, over all subscriptions
	requests int
	problems []string
}

// received is what one subscription's endpoint got.
type received struct {
	subID    string
	verifier webhook.Verifier
	bodies   map[string][]byte // first body of each webhook id
	payloads map[string]payload
	ok       map[string]int // 2xx answers by webhook id
	attempts map[string]int
}

func newReceiver(failEvery int) *receiver {
	return &receiver{failEvery: failEvery, subs: map[string]*received{}}
}

// add registers the endpoint of a subscription.
func (rv *receiver) add(path, subID string, secret webhook.Secret) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.subs[path] = &received{
		subID: subID, verifier: webhook.Verifier{Secret: secret},
		bodies: map[string][]byte{}, payloads: map[string]payload{}, ok: map[string]int{}, attempts: map[string]int{},
	}
}

// newAccount creates an account through the server at base and returns
// its API key.
func newAccount(t *testing.T, api *client, base, admin, name string) string {
	t.Helper()
	var acc struct {
		APIKey string `json:"apiKey"`
	}
	api.mustDo(t, http.MethodPost, base+"/v1/accounts", admin, map[string]string{"name": name}, &acc, http.StatusCreated)
	return acc.APIKey
}

// newCalendar creates a calendar in UTC through the server at base and
// returns its id.
func newCalendar(t *testing.T, api *client, base, key, name string) string {
	t.Helper()
	var cal struct {
		ID string `json:"id"`
	}
	api.mustDo(t, http.MethodPost, base+"/v1/calendars", key, map[string]string{"name": name, "timeZone": "UTC"}, &cal, http.StatusCreated)
	return cal.ID
}

// subSpec is a subscription a test creates: the receiver's endpoint path,
// the calendar it is limited to (none: the whole account) and its rate
// limit (0: none).
type subSpec struct {
	path, calendarID string
	rateLimit        int
}

// subscribe creates the subscription spec through the server at base, with
// the receiver's endpoint at hooksURL+spec.path as its URL, registers that
// endpoint with rcv and returns the subscription's id.
func subscribe(t *testing.T, api *client, base, key, hooksURL string, rcv *receiver, spec subSpec) string {
	t.Helper()
	in := map[string]any{"webhookUrl": hooksURL + spec.path}
	if spec.calendarID != "" {
		in["calendarId"] = spec.calendarID
	}
	if spec.rateLimit > 0 {
		in["rateLimit"] = spec.rateLimit
	}
	var sub struct {
		ID     string `json:"webhookSubscriptionId"`
		Secret string `json:"endpointSecret"`
	}
	api.mustDo(t, http.MethodPost, base+"/v1/subscriptions", key, in, &sub, http.StatusCreated)
	secret, err := webhook.ParseSecret(sub.Secret)
	if err != nil {
		t.Fatalf("subscription %s secret: %v", spec.path, err)
	}
	rcv.add(spec.path, sub.ID, secret)
	return sub.ID
}

// maxProblems bounds the problems kept, so one systematic fault does not
// print thousands of lines.
const maxProblems = 20

func (rv *receiver) problem(format string, args ...any) {
	if len(rv.problems) < maxProblems {
		rv.problems = append(rv.problems, fmt.Sprintf(format, args...))
	}
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.requests++
	rec, found := rv.subs[r.URL.Path]
	switch {
	case err != nil:
		rv.problem("%s: read body: %v", r.URL.Path, err)
		http.Error(w, "read body", http.StatusBadRequest)
		return
	case r.Method != http.MethodPost || !found:
		rv.problem("unexpected %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if err := rec.verifier.Verify(body, r.Header); err != nil {
		rv.problem("%s: webhook-signature: %v", r.URL.Path, err)
	}
	if err := rec.verifier.VerifySHA256(body, r.Header); err != nil {
		rv.problem("%s: X-Calhook-Signature: %v", r.URL.Path, err)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		rv.problem("%s: body is not a webhook payload: %v: %q", r.URL.Path, err, body)
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	if id != p.WebhookID {
		rv.problem("%s: webhook-id header %q, body webhookId %q", r.URL.Path, id, p.WebhookID)
	}
	if ev := r.Header.Get(webhook.HeaderEvent); ev != p.EventType {
		rv.problem("%s: %s header %q, body eventType %q", r.URL.Path, webhook.HeaderEvent, ev, p.EventType)
	}
	rec.attempts[id]++
	if first, ok := rec.bodies[id]; ok {
		if !bytes.Equal(first, body) {
			rv.problem("%s: webhook %s delivered again with another body:\n%s\nthen\n%s", r.URL.Path, id, first, body)
		}
	} else {
		rec.bodies[id], rec.payloads[id] = body, p
		rv.seen++
		if rv.failEvery > 0 && rv.seen%rv.failEvery == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}
	rec.ok[id]++
	w.WriteHeader(http.StatusNoContent)
}

// total is the number of requests received.
func (rv *receiver) total() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.requests
}

// acknowledgedAtLeast reports whether each endpoint path has acknowledged
// at least want[path] distinct messages.
func (rv *receiver) acknowledgedAtLeast(want map[string]int) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for path, n := range want {
		if rec := rv.subs[path]; rec == nil || len(rec.ok) < n {
			return false
		}
	}
	return true
}

// sub returns a copy of what the endpoint at path received.
func (rv *receiver) sub(path string) *received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rec := rv.subs[path]
	return &received{
		subID: rec.subID, bodies: maps.Clone(rec.bodies), payloads: maps.Clone(rec.payloads),
		ok: maps.Clone(rec.ok), attempts: maps.Clone(rec.attempts),
	}
}

func (rv *receiver) problemList() []string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return slices.Clone(rv.problems)
}

// message is an entry of GET /v1/subscriptions/{id}/messages.
type message struct {
	ID        string          `json:"id"`
	EventType string          `json:"eventType"`
	Status    string          `json:"status"`
	Attempts  int             `json:"attempts"`
	Payload   json.RawMessage `json:"payload"`
}

// listAllMessages pages through the messages of each subscription.
func listAllMessages(ctx context.Context, api *client, base, key string, subs []string) (map[string][]message, error) {
	out := map[string][]message{}
	for _, sub := range subs {
		token := ""
		for {
			u := base + "/v1/subscriptions/" + sub + "/messages?limit=200"
			if token != "" {
				u += "&pageToken=" + url.QueryEscape(token)
			}
			var page struct {
				Data          []message `json:"data"`
				NextPageToken string    `json:"nextPageToken"`
			}
			if err := api.do(ctx, http.MethodGet, u, key, nil, &page, http.StatusOK); err != nil {
				return nil, err
			}
			out[sub] = append(out[sub], page.Data...)
			if page.NextPageToken == "" {
				break
			}
			token = page.NextPageToken
		}
	}
	return out, nil
}

// drained reports whether the subscription of each endpoint path has at
// least want[path] messages, all delivered according to calhook and
// acknowledged by the receiver, and if not, why.
func drained(msgs map[string][]message, rv *receiver, want map[string]int) (bool, string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var why []string
	for _, path := range slices.Sorted(maps.Keys(want)) {
		rec, n := rv.subs[path], want[path]
		list := msgs[rec.subID]
		statuses := map[string]int{}
		missing := 0
		for _, m := range list {
			statuses[m.Status]++
			if rec.ok[m.ID] == 0 {
				missing++
			}
		}
		if len(list) < n || statuses["delivered"] != len(list) || missing > 0 {
			why = append(why, fmt.Sprintf("%s: %d messages (want at least %d), statuses %v, %d not acknowledged by the receiver",
				path, len(list), n, statuses, missing))
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// waitDelivered waits until the receiver has acknowledged at least
// want[path] distinct webhooks at each endpoint path and calhook, at base,
// reports every message of subs delivered and acknowledged; it polls every
// poll for up to timeout and returns the messages by subscription.
func waitDelivered(ctx context.Context, api *client, base, key string, subs []string, rcv *receiver,
	want map[string]int, timeout, poll time.Duration,
) (map[string][]message, error) {
	deadline := time.Now().Add(timeout)
	for {
		if rcv.acknowledgedAtLeast(want) {
			msgs, err := listAllMessages(ctx, api, base, key, subs)
			if err != nil {
				return nil, err
			}
			if done, _ := drained(msgs, rcv, want); done {
				return msgs, nil
			}
		}
		if time.Now().After(deadline) {
			msgs, _ := listAllMessages(ctx, api, base, key, subs)
			_, why := drained(msgs, rcv, want)
			return nil, fmt.Errorf("not everything was delivered within %v of the end of the stream: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// change is an entry of GET /v1/calendars/{id}/changes.
type change struct {
	Type    string `json:"type"`
	EventID string `json:"eventId"`
	UID     string `json:"uid"`
}

// changeCursor returns the calendar's current change cursor, from which
// listChanges lists exactly the changes committed afterwards.
func changeCursor(t *testing.T, api *client, base, key, calendarID string) string {
	t.Helper()
	var start struct {
		NextCursor string `json:"nextCursor"`
	}
	api.mustDo(t, http.MethodGet, base+"/v1/calendars/"+calendarID+"/changes", key, nil, &start, http.StatusOK)
	return start.NextCursor
}

// listChanges pages through the calendar's changes after cursor.
func listChanges(ctx context.Context, api *client, base, key, calendarID, cursor string) ([]change, error) {
	var out []change
	for {
		var page struct {
			Data       []change `json:"data"`
			NextCursor string   `json:"nextCursor"`
		}
		u := base + "/v1/calendars/" + calendarID + "/changes?limit=200&since=" + url.QueryEscape(cursor)
		if err := api.do(ctx, http.MethodGet, u, key, nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		if len(page.Data) == 0 {
			return out, nil
		}
		out = append(out, page.Data...)
		cursor = page.NextCursor
	}
}

// countBy counts xs by f.
func countBy[T any](xs []T, f func(T) string) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		m[f(x)]++
	}
	return m
}

// reporter is the part of testing.TB the checks use, so that a test can
// check the checks.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// checkCommitted checks calhook's change feed against the stream: every
// acknowledged change is in it, and everything else in it was in doubt.
func checkCommitted(t reporter, committed []change, acked, doubt []op) {
	t.Helper()
	typeUID := func(typ, uid string) string { return typ + " " + uid }
	got := countBy(committed, func(c change) string { return typeUID(c.Type, c.UID) })
	ack := countBy(acked, func(o op) string { return typeUID(o.typ, o.uid) })
	dbt := countBy(doubt, func(o op) string { return typeUID(o.typ, o.uid) })
	for _, k := range slices.Sorted(maps.Keys(ack)) {
		if got[k] < ack[k] {
			t.Errorf("change feed has %d × %s; %d were acknowledged", got[k], k, ack[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if got[k] > ack[k]+dbt[k] {
			t.Errorf("change feed has %d × %s; only %d acknowledged and %d in doubt", got[k], k, ack[k], dbt[k])
		}
	}
}

// checkSubscription checks one subscription's deliveries against
// calhook's messages, its change feed and the stream.
func checkSubscription(t reporter, name string, rec *received, msgs []message, committed []change, acked, doubt []op) {
	t.Helper()
	// One message per committed change, all delivered, each received
	// with the payload calhook stored.
	if len(msgs) != len(committed) {
		t.Errorf("%s: %d messages for %d committed changes", name, len(msgs), len(committed))
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.ID] = true
		body, ok := rec.bodies[m.ID]
		switch {
		case m.Status != "delivered":
			t.Errorf("%s: message %s is %s after %d attempts", name, m.ID, m.Status, m.Attempts)
		case !ok || rec.ok[m.ID] == 0:
			t.Errorf("%s: message %s is delivered but the receiver did not acknowledge it", name, m.ID)
		case !sameJSON(body, m.Payload):
			t.Errorf("%s: message %s: received body\n%s\ndiffers from the stored payload\n%s", name, m.ID, body, m.Payload)
		}
	}
	for id := range rec.bodies {
		if !ids[id] {
			t.Errorf("%s: received webhook %s that is not among the subscription's messages", name, id)
		}
	}
	if got, want := countBy(msgs, func(m message) string { return m.EventType }),
		countBy(committed, func(c change) string { return c.Type }); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: messages by type %v; committed changes by type %v", name, got, want)
	}

	// Every acknowledged change arrived exactly once (as distinct
	// webhook ids), and nothing arrived that the stream did not cause.
	got := map[string]int{}
	for id, p := range rec.payloads {
		k, err := p.key()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got[k]++
		if rec.ok[id] == 0 {
			t.Errorf("%s: webhook %s (%s) was never acknowledged", name, id, k)
		}
	}
	want := map[string]bool{}
	for _, o := range acked {
		k := o.key()
		want[k] = true
		if got[k] != 1 {
			t.Errorf("%s: acknowledged change %s arrived as %d distinct webhooks; want 1", name, k, got[k])
		}
	}
	maybe := map[string]bool{}
	for _, o := range doubt {
		maybe[o.key()] = true
	}
	redelivered, inDoubtArrived := 0, 0
	for k, n := range got {
		switch {
		case want[k]:
		case maybe[k]:
			inDoubtArrived++
			if n != 1 {
				t.Errorf("%s: change %s (in doubt) arrived as %d distinct webhooks; want 1", name, k, n)
			}
		default:
			t.Errorf("%s: webhook for %s, which the stream never acknowledged nor had in flight", name, k)
		}
	}
	retried := 0
	for id, n := range rec.attempts {
		if n > 1 {
			retried++
		}
		if rec.ok[id] > 1 {
			redelivered++
		}
	}
	t.Logf("%s: %d messages, %d retried, %d acknowledged more than once (in flight at the kill), %d of %d in-doubt changes happened",
		name, len(rec.payloads), retried, redelivered, inDoubtArrived, len(doubt))
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
