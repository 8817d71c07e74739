package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/webhook"
)

// TestCluster runs three `calhook serve` processes against one fresh
// PostgreSQL schema and writes a stream of changes through all of them,
// round-robin. In the middle of the stream one node is killed with
// SIGKILL (and started again a few seconds later, as a supervisor would)
// and another is stopped gracefully and started again. Then:
//
//   - every change the API acknowledged reached every subscription it
//     matches, as exactly one message (one webhook id), delivered and
//     acknowledged by the receiver; nothing arrived that the stream did not
//     cause; a webhook id that arrived more than once came with the same
//     body (a retry or a redelivery after the kill);
//   - the rate-limited subscription never got more than its limit + 2
//     webhooks within any one second, from all nodes together (by arrival
//     at the receiver; the message names calhook's own attempt times too,
//     to tell bunched sends from bunched arrivals), and the limit was
//     reached (it mattered);
//   - a feed's ETag changes on one node right after a write on another.
//
// It needs CALHOOK_TEST_POSTGRES (and fails if that database does not
// answer) and CALHOOK_TEST_CLUSTER=1: it takes about two minutes and times
// arrivals, so scripts/test.sh runs it on its own after the other tests
// rather than alongside them in go test ./....
//
// The stream is 20,000 changes (creates, updates, deletes) from twelve
// writers, fanned out to three subscriptions: the whole account (every
// change; the receiver answers 503 to the first attempt of every 40th
// message, so retries happen too), the main calendar (18,000), and a second
// calendar (2,000) with rateLimit 25. The second calendar's changes come
// from two of the writers, so they arrive at about a sixth of the stream's
// rate, faster than 25/s while those writers run: a backlog builds that
// only the limit drains, at 25/s for about 80 s, within the stream's
// length. A limit on the whole stream would take 20,000/limit seconds to
// drain; putting it on a 2,000-change subset keeps the test in a few
// minutes while the limit still decides the pace.
func TestCluster(t *testing.T) {
	if os.Getenv("CALHOOK_TEST_CLUSTER") != "1" {
		t.Skip("the 3-node cluster test takes about two minutes: scripts/test.sh runs it on its own; " +
			"set CALHOOK_TEST_CLUSTER=1 (and CALHOOK_TEST_POSTGRES) to run it here")
	}
	dbURL := storetest.PostgresURL(t)
	const (
		nodes         = 3
		mainWriters   = 10
		mainOps       = 1800 // per main writer: 18,000 changes on the main calendar
		limitWriters  = 2
		limitOps      = 1000 // per limited writer: 2,000 changes on the limited calendar
		rateLimit     = 25   // webhooks per second to the limited subscription
		failEvery     = 40
		streamTimeout = 4 * time.Minute
		// deliveryTimeout bounds the wait after the stream: the lease of
		// what the killed node had claimed (webhook timeout + 30 s) and
		// the limited subscription's backlog.
		deliveryTimeout = 2 * time.Minute
	)
	// The kill -9 and the graceful restart, at these shares of the
	// stream's acknowledged changes.
	total := mainWriters*mainOps + limitWriters*limitOps
	killAt, restartAt := total*3/10, total*6/10
	ctx, cancel := context.WithTimeout(t.Context(), streamTimeout+deliveryTimeout+time.Minute)
	defer cancel()

	db := storetest.PostgresSchema(t, dbURL)
	admin := randomHex(16)
	flags := []string{
		"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32",
		"--retry-schedule", "1s,1s,1s,1s,1s",
		"--webhook-timeout", "2s",
		"--shutdown-timeout", "10s",
	}
	c := &nodeSet{t: t, db: db, admin: admin, flags: flags}
	for range nodes {
		c.start(-1)
	}
	api := newClient()
	api.http.Transport.(*http.Transport).MaxIdleConnsPerHost = 64

	rcv := newReceiver(failEvery)
	arrivals := &arrivalLog{next: rcv, at: map[string][]time.Time{}}
	hooks := httptest.NewServer(arrivals)
	defer hooks.Close()

	// Setup, each call through another node: an account, two calendars,
	// three subscriptions.
	key := newAccount(t, api, c.url(0), admin, "cluster test")
	mainCal := newCalendar(t, api, c.url(1), key, "Main")
	limitCal := newCalendar(t, api, c.url(2), key, "Limited")
	specs := []subSpec{{"/hooks/all", "", 0}, {"/hooks/main", mainCal, 0}, {"/hooks/limited", limitCal, rateLimit}}
	subs := make([]string, len(specs))
	for i, s := range specs {
		subs[i] = subscribe(t, api, c.url(i%nodes), key, hooks.URL, rcv, s)
	}

	// The change cursors before the stream.
	cursors := map[string]string{}
	for _, calID := range []string{mainCal, limitCal} {
		cursors[calID] = changeCursor(t, api, c.url(0), key, calID)
	}

	// The stream.
	leds := map[string]*ledger{mainCal: {}, limitCal: {}}
	acked := func() int { return leds[mainCal].ackedCount() + leds[limitCal].ackedCount() }
	var seq atomic.Int64
	streamCtx, stopStream := context.WithTimeout(ctx, streamTimeout)
	defer stopStream()
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range mainWriters + limitWriters {
		calID, ops := mainCal, mainOps
		if w >= mainWriters {
			calID, ops = limitCal, limitOps
		}
		wg.Go(func() {
			st := &stream{
				t: t, api: api, router: c, led: leds[calID], seq: &seq, key: key, calendarID: calID,
				rng: rand.New(rand.NewPCG(uint64(w), 20261202)), writer: w, uidPrefix: "cluster", summary: "Cluster test",
			}
			for i := range ops {
				if streamCtx.Err() != nil {
					return
				}
				st.step(streamCtx, i)
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	// A failure below must not leave writers behind the test.
	defer func() { stopStream(); <-writersDone }()

	// The disruptions, while the writers go on through the other nodes.
	waitAcked := func(n int) {
		for acked() < n {
			select {
			case <-writersDone:
				t.Fatalf("the stream ended after %d acknowledged changes, before %d", acked(), n)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitAcked(killAt)
	c.kill(1)
	killedAt := time.Now()
	t.Logf("%v: killed node 1 (SIGKILL) after %d acknowledged changes; %d webhooks received so far",
		time.Since(begin).Round(time.Millisecond), acked(), rcv.total())
	time.Sleep(3 * time.Second) // the others carry on alone
	c.start(1)
	t.Logf("%v: node 1 started again at %s", time.Since(begin).Round(time.Millisecond), c.url(1))
	waitAcked(restartAt)
	if err := c.stop(2); err != nil {
		t.Errorf("graceful stop of node 2: %v", err)
	}
	c.start(2)
	t.Logf("%v: node 2 stopped gracefully and started again after %d acknowledged changes",
		time.Since(begin).Round(time.Millisecond), acked())
	<-writersDone
	streamEnd := time.Now()
	if t.Failed() {
		t.FailNow()
	}
	mainAcked, mainDoubt := leds[mainCal].snapshot()
	limAcked, limDoubt := leds[limitCal].snapshot()
	allAcked, allDoubt := slices.Concat(mainAcked, limAcked), slices.Concat(mainDoubt, limDoubt)
	t.Logf("stream done in %v: %d changes acknowledged (%.0f/s), %d in doubt",
		streamEnd.Sub(begin).Round(time.Millisecond), len(allAcked), float64(len(allAcked))/streamEnd.Sub(begin).Seconds(), len(allDoubt))
	if len(allAcked)+len(allDoubt) < total {
		t.Fatalf("the stream did not finish within %v: %d of %d changes acknowledged", streamTimeout, len(allAcked), total)
	}

	// Wait for every subscription's receiver to have acknowledged at
	// least one webhook per acknowledged change, then for calhook to
	// report every message delivered.
	want := map[string]int{"/hooks/all": len(allAcked), "/hooks/main": len(mainAcked), "/hooks/limited": len(limAcked)}
	msgs, err := waitDelivered(ctx, api, c.url(0), key, subs, rcv, want, deliveryTimeout, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all delivered %v after the end of the stream (%v after the kill); %d webhooks received in all",
		time.Since(streamEnd).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond), rcv.total())

	// Every acknowledged change committed once, every message delivered
	// once per change and subscription.
	committed := map[string][]change{}
	for _, calID := range []string{mainCal, limitCal} {
		ch, err := listChanges(ctx, api, c.url(2), key, calID, cursors[calID])
		if err != nil {
			t.Fatal(err)
		}
		committed[calID] = ch
	}
	checkCommitted(t, committed[mainCal], mainAcked, mainDoubt)
	checkCommitted(t, committed[limitCal], limAcked, limDoubt)
	checkSubscription(t, "account subscription", rcv.sub("/hooks/all"), msgs[subs[0]],
		slices.Concat(committed[mainCal], committed[limitCal]), allAcked, allDoubt)
	checkSubscription(t, "main calendar subscription", rcv.sub("/hooks/main"), msgs[subs[1]],
		committed[mainCal], mainAcked, mainDoubt)
	checkSubscription(t, "rate-limited subscription", rcv.sub("/hooks/limited"), msgs[subs[2]],
		committed[limitCal], limAcked, limDoubt)
	for _, p := range rcv.problemList() {
		t.Error(p)
	}

	// The rate limit, over every arrival at the limited endpoint.
	times := arrivals.times("/hooks/limited")
	most, at := maxInWindow(times, time.Second)
	span := times[len(times)-1].Sub(times[0])
	// Sends the limiter spaced by its interval but that arrived much
	// closer together: late claims that caught up.
	interval := time.Second / rateLimit
	bunched := 0
	for i := 1; i < len(times); i++ {
		if times[i].Sub(times[i-1]) < interval/4 {
			bunched++
		}
	}
	t.Logf("rate-limited subscription: %d requests over %v (%.1f/s), at most %d within one second (at %v); "+
		"%d arrivals less than %v after the one before",
		len(times), span.Round(time.Millisecond), float64(len(times)-1)/span.Seconds(), most, at.Sub(begin).Round(time.Millisecond),
		bunched, interval/4)
	// The same over calhook's own record of when it started each attempt,
	// to tell bunched sends from bunched arrivals.
	sent, err := attemptTimes(ctx, api, c.url(0), key, msgs[subs[2]])
	if err != nil {
		t.Fatal(err)
	}
	mostSent, sentAt := maxInWindow(sent, time.Second)
	t.Logf("rate-limited subscription: %d attempts recorded, at most %d started within one second (at %v)",
		len(sent), mostSent, sentAt.Sub(begin).Round(time.Millisecond))
	if most > rateLimit+2 {
		t.Errorf("rate-limited subscription: %d webhooks arrived within one second from %v (calhook started at most %d attempts "+
			"within one second, from %v); the limit is %d/s (+2 allowed):\n%s",
			most, at.Sub(begin).Round(time.Millisecond), mostSent, sentAt.Sub(begin).Round(time.Millisecond), rateLimit,
			arrivals.describe("/hooks/limited", at, time.Second))
	}
	if most < rateLimit*8/10 {
		t.Errorf("rate-limited subscription: at most %d webhooks within any second; the stream never pushed it to its limit of %d/s",
			most, rateLimit)
	}

	// Cache invalidation across nodes, now that two of them were
	// restarted, on an account of its own so that its writes reach no
	// subscription.
	otherKey := newAccount(t, api, c.url(0), admin, "cluster test: feeds")
	feedCal := newCalendar(t, api, c.url(1), otherKey, "Feed")
	checkFeedETags(t, api, c, otherKey, feedCal)

	for i := range nodes {
		if err := c.stop(i); err != nil {
			t.Errorf("node %d: shutdown after the test: %v", i, err)
		}
	}
}

// nodeSet is the cluster's nodes by slot; a slot's node may be down for a
// while, and its replacement listens on another port.
type nodeSet struct {
	t     *testing.T
	db    string
	admin string
	flags []string

	mu    sync.Mutex
	nodes []*server
	gens  []int // bumped whenever a slot's node goes down
}

// start starts a node in slot i, or in a new slot when i < 0.
func (c *nodeSet) start(i int) {
	c.t.Helper()
	s := startServer(c.t, c.db, c.admin, c.flags...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 {
		c.nodes = append(c.nodes, s)
		c.gens = append(c.gens, 0)
		return
	}
	c.nodes[i] = s
}

// url returns the base URL of slot i's node.
func (c *nodeSet) url(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].baseURL()
}

// route sends the n-th write to slot n modulo the slots, or the next one
// that is up; a write is in doubt if that slot's node went down meanwhile.
func (c *nodeSet) route(_ context.Context, n int64) (target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range len(c.nodes) {
		i := int((n + int64(k)) % int64(len(c.nodes)))
		if s := c.nodes[i]; s != nil {
			gen := c.gens[i]
			return target{
				base: s.baseURL(), whileUp: fmt.Sprintf("through node %d while it was up", i),
				wentDown: func() bool { return c.wentDown(i, gen) },
			}, nil
		}
	}
	return target{}, errors.New("no node is up")
}

// wentDown reports whether slot i's node went down since generation gen.
func (c *nodeSet) wentDown(i, gen int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[i] != gen
}

// take marks slot i as down and returns its node.
func (c *nodeSet) take(i int) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.gens[i]++
	return s
}

// kill ends slot i's node with SIGKILL.
func (c *nodeSet) kill(i int) { c.take(i).kill() }

// stop ends slot i's node with SIGTERM and waits for a clean exit.
func (c *nodeSet) stop(i int) error {
	s := c.take(i)
	if err := s.stop(15 * time.Second); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, s.logText())
	}
	return nil
}

// arrivalLog records when each request arrived, by URL path, and hands
// it on.
type arrivalLog struct {
	next http.Handler
	mu   sync.Mutex
	at   map[string][]time.Time
	ids  []arrival
}

func (a *arrivalLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.mu.Lock()
	a.at[r.URL.Path] = append(a.at[r.URL.Path], now)
	a.ids = append(a.ids, arrival{now, r.URL.Path, r.Header.Get(webhook.HeaderID)})
	a.mu.Unlock()
	a.next.ServeHTTP(w, r)
}

type arrival struct {
	at       time.Time
	path, id string
}

// describe lists the arrivals at path within [from, from+w), marking
// repeats of a webhook id.
func (a *arrivalLog) describe(path string, from time.Time, w time.Duration) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]int{}
	var b strings.Builder
	for _, x := range a.ids {
		if x.path != path {
			continue
		}
		seen[x.id]++
		if !x.at.Before(from) && x.at.Sub(from) < w {
			fmt.Fprintf(&b, "  +%v %s attempt %d\n", x.at.Sub(from).Round(time.Millisecond), x.id, seen[x.id])
		}
	}
	return b.String()
}

// times returns the arrivals at path, in order.
func (a *arrivalLog) times(path string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := slices.Clone(a.at[path])
	slices.SortFunc(ts, func(x, y time.Time) int { return x.Compare(y) })
	return ts
}

// maxInWindow returns the most times within any half-open window
// [t, t+w) and where the first such window starts. times must be sorted.
func maxInWindow(times []time.Time, w time.Duration) (int, time.Time) {
	most, at := 0, time.Time{}
	j := 0
	for i := range times {
		for j < len(times) && times[j].Sub(times[i]) < w {
			j++
		}
		if n := j - i; n > most {
			most, at = n, times[i]
		}
	}
	return most, at
}

// attemptTimes returns when calhook started each attempt of msgs, from
// GET /v1/messages/{id}/attempts, sorted.
func attemptTimes(ctx context.Context, api *client, base, key string, msgs []message) ([]time.Time, error) {
	var mu sync.Mutex
	var out []time.Time
	var firstErr error
	next := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range next {
				var page struct {
					Data []struct {
						AttemptedAt time.Time `json:"attemptedAt"`
					} `json:"data"`
				}
				err := api.do(ctx, http.MethodGet, base+"/v1/messages/"+id+"/attempts?limit=200", key, nil, &page, http.StatusOK)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for _, a := range page.Data {
					out = append(out, a.AttemptedAt)
				}
				mu.Unlock()
			}
		})
	}
	for _, m := range msgs {
		next <- m.ID
	}
	close(next)
	wg.Wait()
	slices.SortFunc(out, func(x, y time.Time) int { return x.Compare(y) })
	return out, firstErr
}

// etagGrace is how long a node may keep serving a feed's old ETag after a
// write through another node was acknowledged. Nodes learn of each other's
// writes by PostgreSQL notifications, which arrive a moment after the
// commit, so a read on another node right after the write may race them;
// a node that never drops its cached feed fails.
const etagGrace = time.Second

// checkFeedETags checks cache invalidation across nodes: node B serves a
// feed from its cache (it answers 304 to its ETag), a write through node A
// is acknowledged, and B must then serve the new feed, with a new ETag, at
// once or within etagGrace. It tries every ordered pair of nodes three
// times and logs how many reads right after the write were already fresh.
func checkFeedETags(t *testing.T, api *client, c *nodeSet, key, calendarID string) {
	t.Helper()
	ctx := t.Context()
	var tok struct {
		CalendarFeedURLs map[string]string `json:"calendarFeedUrls"`
	}
	api.mustDo(t, http.MethodGet, c.url(0)+"/v1/feed-token", key, nil, &tok, http.StatusOK)
	feedURL, err := url.Parse(tok.CalendarFeedURLs[calendarID])
	if err != nil || feedURL.Path == "" {
		t.Fatalf("feed URL of %s: %q (%v)", calendarID, tok.CalendarFeedURLs[calendarID], err)
	}
	feedAt := func(node int) string { return c.url(node) + feedURL.RequestURI() }
	get := func(u, ifNoneMatch string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		resp, err := api.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	nodes := 3
	trial := 0
	var stale []string
	for round := range 3 {
		for a := range nodes {
			for b := range nodes {
				if a == b {
					continue
				}
				trial++
				// B serves the feed and caches it; asked again with its
				// ETag it answers 304.
				status, before := get(feedAt(b), "")
				if status != http.StatusOK || before == "" {
					t.Fatalf("feed on node %d: status %d, ETag %q", b, status, before)
				}
				// A 200 with another ETag is the previous trial's write
				// reaching B only now (another node checked it was
				// fresh): B's answer moves on, within the grace.
				asked := time.Now()
				status, again := get(feedAt(b), before)
				for status == http.StatusOK && again != before && time.Since(asked) < etagGrace {
					before = again
					status, again = get(feedAt(b), before)
				}
				if status != http.StatusNotModified {
					t.Fatalf("feed on node %d with its own ETag %s: status %d (ETag %s); want 304", b, before, status, again)
				}
				// A write through A.
				in := map[string]string{
					"uid": fmt.Sprintf("etag-%d-%d-%d@e2e.calhook.test", round, a, b), "summary": "ETag check",
					"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z",
				}
				api.mustDo(t, http.MethodPost, c.url(a)+"/v1/calendars/"+calendarID+"/events", key, in, nil, http.StatusCreated)
				// B at once, and again until it is fresh.
				written := time.Now()
				status, after := get(feedAt(b), before)
				if status == http.StatusOK && after != before {
					continue
				}
				for (status != http.StatusOK || after == before) && time.Since(written) < etagGrace {
					time.Sleep(time.Millisecond)
					status, after = get(feedAt(b), before)
				}
				took := time.Since(written).Round(100 * time.Microsecond)
				if status != http.StatusOK || after == before {
					t.Errorf("write through node %d: node %d still answered %d with the old ETag %s after %v",
						a, b, status, before, took)
					continue
				}
				stale = append(stale, fmt.Sprintf("%d→%d %v", a, b, took))
			}
		}
	}
	t.Logf("feed ETag across nodes: %d of %d reads right after a write through another node saw the new ETag; "+
		"the others within (write node→read node, time from the acknowledged write) %v", trial-len(stale), trial, stale)
}
