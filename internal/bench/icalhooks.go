package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Settings and targets of the icalhooks scenario.
const (
	icalhooksName = "icalhooks"
	// DefaultIcalhooksHooks is how many hooks register on the feed.
	DefaultIcalhooksHooks = 10000
	// DefaultIcalhooksEvents is how many events the calendar holds: a
	// small feed, so that the header's cost is not hidden behind the
	// body's.
	DefaultIcalhooksEvents = 10
	// pingsTargetMS is the time from the API write by which every HEAD
	// should have arrived.
	pingsTargetMS = 2000
	// headerOverheadTarget is how much slower feed GETs with the header
	// may be than GETs without it.
	headerOverheadTarget = 0.10
	// registerClients is how many clients register hooks at once.
	registerClients = 8
	// pingsTimeout bounds the wait for every HEAD of a round.
	pingsTimeout = 30 * time.Second
	// recordTimeout bounds the wait for calhook to record the pings.
	recordTimeout = 30 * time.Second
	// settleTime lets calhook's fan-out finish with the events created
	// before the hooks register (its safety-net poll is 1 s), so that no
	// hook is pinged for them.
	settleTime = 1500 * time.Millisecond
	// icalhooksHostRate is calhook's --icalhooks-host-rate for the run:
	// every hook is on one host, the receiver.
	icalhooksHostRate = 100000

	hookURLHeader    = "X-ICALHOOKS-URL"
	hookStatusHeader = "X-ICALHOOKS-STATUS"
	hookFeedHeader   = "X-ICALHOOKS-FEED"
	hookStatusActive = "active"
	hookPathPrefix   = "/h/"
)

// icalhooksFlags registers the flags of icalhooks. --hooks is stored in
// Config.FanoutSubscriptions: like webhooks-throughput's fan-out part, it
// is how many receivers one change goes to.
func icalhooksFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.FanoutSubscriptions, "hooks", DefaultIcalhooksHooks, "hooks registered on the feed, each with its own path on the loopback receiver")
	fs.IntVar(&cfg.Events, "events", DefaultIcalhooksEvents, "events in the calendar")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "measured length of each feed load run")
	cfg.Warmup = DefaultWarmup
	fs.Var((*warmupValue)(&cfg.Warmup), "warmup", "unmeasured load before each feed load run (0 for none)")
	fs.IntVar(&cfg.Connections, "connections", DefaultConnections, "concurrent keep-alive connections of the feed load")
	fs.StringVar(&cfg.LoadGen, "loadgen", LoadGenAuto, "load generator: auto (wrk if installed), wrk or go (also checks every X-ICALHOOKS-STATUS, but slower than wrk)")
	fs.StringVar(&cfg.Postgres, "postgres", "",
		"run calhook on a fresh schema of this postgres:// `URL` each round instead of SQLite")
	deliveryFlags(fs, cfg)
}

// icalhooksArgs returns calhook's flags for the run: the receiver on
// loopback allowed, and caps and the per-host rate raised so that hooks
// holds every hook on one host.
func icalhooksArgs(cfg Config, hooks int) []string {
	capN := strconv.Itoa(max(2*hooks, 20000))
	return append([]string{
		"--log-level", "warn",
		"--allow-private-cidr", "127.0.0.1/32",
		"--icalhooks-max-per-feed", capN,
		"--icalhooks-max-per-token", capN,
		"--icalhooks-max-per-host", capN,
		"--icalhooks-host-rate", strconv.Itoa(icalhooksHostRate),
		"--delivery-workers", strconv.Itoa(cfg.DeliveryWorkers),
	}, perEndpointArgs(cfg.DeliveryPerEndpoint)...)
}

// icalhooksRound is what one round measured.
type icalhooksRound struct {
	feedBytes int
	// registerRPS is registrations per second, all hooks new.
	registerRPS float64
	// apiWriteMS is how long the POST of the change took to be answered.
	apiWriteMS float64
	// pings holds, in milliseconds and sorted, the time from just before
	// the change was sent to each hook's first HEAD.
	pings []float64
	// early counts hooks pinged before the change was sent; missing those
	// never pinged within pingsTimeout.
	early, missing int
	// rcv is the receiver's tally, taken at the end of the round so that
	// late second HEADs count too.
	rcv       pingStats
	firstBad  string
	recorded  int     // hooks calhook recorded a 2xx ping for
	armedLeft int     // hooks still armed after the pings were recorded
	recordMS  float64 // from the change until every ping was recorded; 0 if not
	// with and without are the feed loads with and without the header.
	with, without runStats
	// rewritten is set when the armed hook's last registration time
	// moved during the load with the header: a database write.
	rewritten bool
}

// runIcalhooks is the icalhooks scenario. Each round starts a fresh
// calhook, registers cfg.FanoutSubscriptions hooks on one feed, writes one
// change and times the HEADs; then it re-arms one hook and loads the
// unchanged feed with and without that hook's X-ICALHOOKS-URL.
func runIcalhooks(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.FanoutSubscriptions == 0 {
		cfg.FanoutSubscriptions = DefaultIcalhooksHooks
	}
	if cfg.Events == 0 {
		cfg.Events = DefaultIcalhooksEvents
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.FanoutSubscriptions < 1 {
		return nil, fmt.Errorf("hooks %d: must be at least 1", cfg.FanoutSubscriptions)
	}
	lg, err := pickLoadGen(cfg.LoadGen)
	if err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, icalhooksName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	rcv, err := newPingReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.Close()

	switch lg.(type) {
	case wrkLoadGen:
		if cfg.Duration%time.Second != 0 || cfg.Warmup%time.Second != 0 {
			env.log.Info("wrk takes whole seconds; rounding duration and warm-up up")
		}
	case goLoadGen:
		if cfg.LoadGen == LoadGenAuto {
			env.log.Warn("wrk not installed (Debian: apt-get install wrk); the built-in generator may cap the feed rates")
		}
	}
	var rounds []icalhooksRound
	for round := 1; round <= cfg.Runs; round++ {
		r, err := env.icalhooksRound(ctx, lg, rcv, round)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		rounds = append(rounds, r)
		env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs),
			"register_rps", round1(r.registerRPS), "pings_all_ms", round2(percentile(r.pings, 100)),
			"pings_p50_ms", round2(percentile(r.pings, 50)), "pings_p99_ms", round2(percentile(r.pings, 99)),
			"with_header_rps", round1(r.with.RPS()), "without_header_rps", round1(r.without.RPS()),
			"ping_errors", int64(r.early+r.missing)+r.rcv.errors())
	}
	return icalhooksResults(cfg, lg, rounds), nil
}

// icalhooksRound runs one calhook through registration, the change and
// the feed loads.
func (env *webhookEnv) icalhooksRound(ctx context.Context, lg loadGenerator, rcv *pingReceiver, round int) (icalhooksRound, error) {
	cfg := env.cfg
	n := cfg.FanoutSubscriptions
	var r icalhooksRound
	log := env.log.With("round", round)
	dir := filepath.Join(env.dir, fmt.Sprintf("round%d", round))
	var srv *calhookServer
	var err error
	if cfg.Postgres == "" {
		srv, err = startCalhook(ctx, env.bin, dir, icalhooksArgs(cfg, n)...)
	} else {
		var schema *pgSchema
		if schema, err = createPGSchema(ctx, cfg.Postgres); err != nil {
			return r, err
		}
		defer func() {
			if err := schema.drop(); err != nil {
				log.Warn("drop schema", "error", err)
			}
		}()
		srv, err = startNode(ctx, env.bin, dir, schema.URL, randomHex(32), icalhooksArgs(cfg, n)...)
	}
	if err != nil {
		return r, err
	}
	defer env.stopCalhook(srv)

	api := newAPIClient(srv.baseURL, registerClients)
	acc, cal, err := api.createAccountCalendar(ctx, srv.adminToken, "Bench – iCal Hooks")
	if err != nil {
		return r, err
	}
	events, err := genEvents(cfg.Events+1, eventSeed+uint64(round), eventBase, "Europe/Berlin")
	if err != nil {
		return r, err
	}
	change := events[cfg.Events]
	change.UID = fmt.Sprintf("icalhooks-change-%d@calhookbench", round)
	if err := api.createEvents(ctx, acc.APIKey, cal.ID, events[:cfg.Events], createWorkers); err != nil {
		return r, err
	}
	feedPath := "/feeds/" + url.PathEscape(acc.ID) + "/" + url.PathEscape(cal.ID) + ".ics"
	feedURL := srv.baseURL + feedPath + "?token=" + url.QueryEscape(acc.FeedToken)
	probe, err := probeFeed(ctx, feedURL, 0)
	if err != nil {
		return r, fmt.Errorf("calhook: %w", err)
	}
	for _, note := range probe.notes {
		log.Warn("calhook feed check", "note", note)
	}
	rcv.reset(n, srv.baseURL+feedPath)
	if err := sleepCtx(ctx, settleTime); err != nil {
		return r, err
	}

	log.Info("registering hooks", "hooks", n, "clients", registerClients)
	reg, err := registerHooks(ctx, feedURL, rcv.URL, n, registerClients)
	if err != nil {
		return r, err
	}
	r.registerRPS = perSecond(int64(n), reg)

	body, err := json.Marshal(change)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	status, err := postJSON(ctx, api.http, srv.baseURL+"/v1/calendars/"+cal.ID+"/events", acc.APIKey, body)
	r.apiWriteMS = ms(time.Since(t0))
	if err != nil || status != http.StatusCreated {
		return r, fmt.Errorf("write the change: status %d, %v", status, err)
	}
	waitErr := rcv.wait(ctx, pingsTimeout, srv.proc)
	if waitErr != nil && !errors.Is(waitErr, errPingsIncomplete) {
		return r, waitErr
	}
	r.pings, r.early, r.missing = rcv.latencies(t0)
	if waitErr != nil {
		log.Warn("not every hook was pinged", "error", waitErr)
	}

	// Calhook records each ping after its HEAD was answered; the feed
	// loads start once that bookkeeping is done.
	rec, err := waitRecorded(ctx, api, acc.APIKey, n, recordTimeout)
	if err != nil {
		return r, err
	}
	r.recorded, r.armedLeft = rec.recorded, rec.armed
	if rec.recorded >= n {
		r.recordMS = ms(rec.at.Sub(t0))
	} else {
		log.Warn("calhook did not record every ping", "recorded", rec.recorded, "hooks", n, "waited", recordTimeout)
	}

	// The feed as it is now, with the change, for the loads.
	probe, err = probeFeed(ctx, feedURL, 0)
	if err != nil {
		return r, fmt.Errorf("calhook: %w", err)
	}
	r.feedBytes = len(probe.body)
	if err := env.feedLoads(ctx, lg, &r, round, api, acc.APIKey, feedURL, rcv.URL+hookPathPrefix+"0", probe); err != nil {
		return r, err
	}
	r.rcv, r.firstBad = rcv.stats()
	if r.firstBad != "" {
		log.Warn("receiver saw bad pings", "first", r.firstBad)
	}
	return r, nil
}

// feedLoads re-arms the hook at hookURL, then loads the unchanged feed
// with its X-ICALHOOKS-URL and without, the order alternating by round,
// checking a few answers by hand around each run.
func (env *webhookEnv) feedLoads(ctx context.Context, lg loadGenerator, r *icalhooksRound, round int,
	api *apiClient, apiKey, feedURL, hookURL string, probe *feedResponse) error {
	cfg := env.cfg
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	if err := checkFeedGet(ctx, client, feedURL, hookURL, len(probe.body)); err != nil {
		return fmt.Errorf("re-arm %s: %w", hookURL, err)
	}
	before, err := api.firstHook(ctx, apiKey)
	if err != nil {
		return err
	}
	if before.URL != hookURL || !before.Armed {
		return fmt.Errorf("after re-arming, the first hook is %s (armed %v); want %s armed", before.URL, before.Armed, hookURL)
	}
	loads := []hookLoad{
		{target: target{Name: "with_header", URL: feedURL, Status: http.StatusOK, BodySize: int64(len(probe.body)),
			HeaderSize: probe.header200 + int64(len(hookStatusHeader)+len(hookStatusActive)+4)}, HookURL: hookURL},
		{target: target{Name: "without_header", URL: feedURL, Status: http.StatusOK, BodySize: int64(len(probe.body)),
			HeaderSize: probe.header200}},
	}
	if round%2 == 0 {
		slices.Reverse(loads)
	}
	for _, l := range loads {
		st, err := runHookLoad(ctx, lg, l, cfg.Connections, cfg.Warmup, cfg.Duration)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// wrk cannot see headers: a couple of requests by hand.
		for range 2 {
			if err := checkFeedGet(ctx, client, feedURL, l.HookURL, len(probe.body)); err != nil {
				return fmt.Errorf("after the %s load: %w", l.Name, err)
			}
		}
		if l.HookURL != "" {
			r.with = st
		} else {
			r.without = st
		}
		attrs := []any{"round", round, "target", l.Name, "rps", round1(st.RPS()), "ok", st.OK, "errors", st.Errors}
		if st.Errors > 0 {
			env.log.Warn("feed load had errors", append(attrs, "detail", st.Detail)...)
		} else {
			env.log.Info("feed load", attrs...)
		}
	}
	after, err := api.firstHook(ctx, apiKey)
	if err != nil {
		return err
	}
	r.rewritten = !after.LastRegisteredAt.Equal(before.LastRegisteredAt)
	if r.rewritten {
		env.log.Warn("re-registering an armed hook of an unchanged feed wrote to the database",
			"last_registered_before", before.LastRegisteredAt, "after", after.LastRegisteredAt)
	}
	return nil
}

// hookPath is the receiver path of hook i.
func hookPath(i int) string { return hookPathPrefix + strconv.Itoa(i) }

// hookIndex returns i for a path hookPath(i) with 0 ≤ i < n.
func hookIndex(path string, n int) (int, bool) {
	s, ok := strings.CutPrefix(path, hookPathPrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

// checkPingHeaders returns what is wrong with a ping's headers, or "":
// calhook's User-Agent and the feed's URL without its token.
func checkPingHeaders(h http.Header, wantFeed string) string {
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "calhook/") {
		return fmt.Sprintf("User-Agent %q, want calhook/*", ua)
	}
	feed := h.Get(hookFeedHeader)
	if strings.Contains(strings.ToLower(feed), "token") {
		return fmt.Sprintf("%s %q carries a token", hookFeedHeader, feed)
	}
	if feed != wantFeed {
		return fmt.Sprintf("%s %q, want %q", hookFeedHeader, feed, wantFeed)
	}
	return ""
}

// registerHooks GETs the feed once per hook with X-ICALHOOKS-URL set to
// base+hookPath(i), from up to clients at once, hook 0 first and alone
// so that it is the account's first hook. Every answer must be 200 with
// X-ICALHOOKS-STATUS: active. It returns the time from the first request
// to the last answer.
func registerHooks(ctx context.Context, feedURL, base string, n, clients int) (time.Duration, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	if err := checkFeedGet(ctx, client, feedURL, base+hookPath(0), 0); err != nil {
		return 0, fmt.Errorf("register hook 0: %w", err)
	}
	var next atomic.Int64
	next.Store(1)
	var mu sync.Mutex
	fails := failures{}
	var first error
	var wg sync.WaitGroup
	for range min(clients, n-1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := checkFeedGet(ctx, client, feedURL, base+hookPath(i), 0); err != nil {
					mu.Lock()
					fails[shortErr(err)]++
					if first == nil {
						first = fmt.Errorf("register hook %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if first != nil {
		return 0, fmt.Errorf("%w (all failures: %s)", first, fails)
	}
	return elapsed, nil
}

// checkFeedGet GETs the feed, with X-ICALHOOKS-URL: hookURL when hookURL
// is set, and wants 200, a body of wantLen bytes (when not 0) and
// X-ICALHOOKS-STATUS: active with the header, none without.
func checkFeedGet(ctx context.Context, client *http.Client, feedURL, hookURL string, wantLen int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, feedURL, nil)
	if err != nil {
		return err
	}
	if hookURL != "" {
		req.Header.Set(hookURLHeader, hookURL)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if problem := feedAnswerProblem(resp.StatusCode, n, resp.Header, hookURL != "", int64(wantLen)); problem != "" {
		return errors.New(problem)
	}
	return nil
}

// feedAnswerProblem returns what is wrong with a feed answer, or "".
func feedAnswerProblem(status int, bodyLen int64, h http.Header, withHook bool, wantLen int64) string {
	switch hs := h.Get(hookStatusHeader); {
	case status != http.StatusOK:
		return "status " + strconv.Itoa(status)
	case wantLen > 0 && bodyLen != wantLen:
		return fmt.Sprintf("body not %d bytes", wantLen)
	case withHook && hs != hookStatusActive:
		return fmt.Sprintf("%s %q", hookStatusHeader, hs)
	case !withHook && hs != "":
		return fmt.Sprintf("%s %q without %s", hookStatusHeader, hs, hookURLHeader)
	}
	return ""
}

// hookInfo is the part of an iCal hook in the API the bench needs.
type hookInfo struct {
	URL              string     `json:"url"`
	Armed            bool       `json:"armed"`
	LastRegisteredAt time.Time  `json:"lastRegisteredAt"`
	LastPingAt       *time.Time `json:"lastPingAt"`
	LastPingStatus   int        `json:"lastPingStatus"`
}

// hookPage is a page of GET /v1/icalhooks.
type hookPage struct {
	Data          []hookInfo `json:"data"`
	NextPageToken string     `json:"nextPageToken"`
}

// firstHook returns the account's first registered hook.
func (c *apiClient) firstHook(ctx context.Context, apiKey string) (hookInfo, error) {
	var p hookPage
	if err := c.do(ctx, http.MethodGet, "/v1/icalhooks?limit=1", apiKey, nil, &p, http.StatusOK); err != nil {
		return hookInfo{}, fmt.Errorf("list hooks: %w", err)
	}
	if len(p.Data) == 0 {
		return hookInfo{}, errors.New("list hooks: none")
	}
	return p.Data[0], nil
}

// allHooks returns every hook of the account.
func (c *apiClient) allHooks(ctx context.Context, apiKey string) ([]hookInfo, error) {
	var all []hookInfo
	token := ""
	for {
		path := "/v1/icalhooks?limit=200"
		if token != "" {
			path += "&pageToken=" + url.QueryEscape(token)
		}
		var p hookPage
		if err := c.do(ctx, http.MethodGet, path, apiKey, nil, &p, http.StatusOK); err != nil {
			return nil, fmt.Errorf("list hooks: %w", err)
		}
		all = append(all, p.Data...)
		if p.NextPageToken == "" || len(p.Data) == 0 {
			return all, nil
		}
		token = p.NextPageToken
	}
}

// recordState is what calhook's hook list says after the pings.
type recordState struct {
	// recorded counts hooks with a 2xx ping, armed those still armed.
	recorded, armed int
	at              time.Time
}

// countRecorded tallies hooks.
func countRecorded(hooks []hookInfo) recordState {
	var s recordState
	for _, h := range hooks {
		if h.LastPingAt != nil && h.LastPingStatus >= 200 && h.LastPingStatus < 400 {
			s.recorded++
		}
		if h.Armed {
			s.armed++
		}
	}
	return s
}

// waitRecorded lists the hooks until calhook has recorded a ping for n
// of them or timeout passes, and returns the last tally.
func waitRecorded(ctx context.Context, api *apiClient, apiKey string, n int, timeout time.Duration) (recordState, error) {
	deadline := time.Now().Add(timeout)
	for {
		hooks, err := api.allHooks(ctx, apiKey)
		if err != nil {
			return recordState{}, err
		}
		s := countRecorded(hooks)
		s.at = time.Now()
		if s.recorded >= n || s.at.After(deadline) {
			return s, nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return s, err
		}
	}
}

// pingReceiver is the hooks' endpoint: an HTTP server on 127.0.0.1 in
// the bench process that answers 200 to HEAD hookPath(i) and notes, per
// hook, how many HEADs came and when the first did.
type pingReceiver struct {
	// URL is the receiver's root, such as http://127.0.0.1:41234.
	URL string

	srv    *http.Server
	served chan struct{}

	mu       sync.Mutex
	n        int
	feed     string      // the X-ICALHOOKS-FEED to expect
	first    []time.Time // first HEAD per hook
	heads    []int32     // HEADs per hook
	st       pingStats
	firstBad string
	all      chan struct{} // closed when every hook has had a HEAD
}

// pingStats counts what the receiver saw in a round.
type pingStats struct {
	// Requests counts every request; Distinct the hooks pinged and
	// Duplicates the HEADs beyond each hook's first.
	Requests, Distinct, Duplicates int64
	// Unexpected counts requests that were not HEAD to a hook path,
	// BadHeaders pings without calhook's User-Agent or the tokenless
	// feed URL.
	Unexpected, BadHeaders int64
}

func (s pingStats) errors() int64 { return s.Duplicates + s.Unexpected + s.BadHeaders }

// newPingReceiver listens on a free loopback port and serves until Close.
func newPingReceiver() (*pingReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ping receiver: %w", err)
	}
	pr := &pingReceiver{URL: "http://" + ln.Addr().String(), served: make(chan struct{}), all: make(chan struct{})}
	pr.srv = &http.Server{
		Handler:           pr,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		defer close(pr.served)
		pr.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	return pr, nil
}

// Close stops the server and waits for it.
func (pr *pingReceiver) Close() error {
	err := pr.srv.Close()
	<-pr.served
	return err
}

// reset expects n hooks whose pings name feed.
func (pr *pingReceiver) reset(n int, feed string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.n, pr.feed = n, feed
	pr.first = make([]time.Time, n)
	pr.heads = make([]int32, n)
	pr.st = pingStats{}
	pr.firstBad = ""
	pr.all = make(chan struct{})
}

func (pr *pingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !pr.note(r, time.Now()) {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// note counts one request and reports whether it was a ping.
func (pr *pingReceiver) note(r *http.Request, now time.Time) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.st.Requests++
	i, ok := hookIndex(r.URL.Path, pr.n)
	if !ok || r.Method != http.MethodHead {
		pr.st.Unexpected++
		pr.noteBad(fmt.Sprintf("unexpected %s %s", r.Method, r.URL.RequestURI()))
		return false
	}
	if problem := checkPingHeaders(r.Header, pr.feed); problem != "" {
		pr.st.BadHeaders++
		pr.noteBad(r.URL.Path + ": " + problem)
	}
	pr.heads[i]++
	if pr.heads[i] > 1 {
		pr.st.Duplicates++
		pr.noteBad(fmt.Sprintf("%s: HEAD number %d", r.URL.Path, pr.heads[i]))
	} else {
		pr.first[i] = now
		pr.st.Distinct++
		if pr.st.Distinct == int64(pr.n) {
			close(pr.all)
		}
	}
	return true
}

// noteBad keeps the first problem; pr.mu is held.
func (pr *pingReceiver) noteBad(s string) {
	if pr.firstBad == "" {
		pr.firstBad = s
	}
}

// stats returns the round's tally and its first problem.
func (pr *pingReceiver) stats() (pingStats, string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.st, pr.firstBad
}

// errPingsIncomplete is returned when not every hook was pinged in time.
var errPingsIncomplete = errors.New("not every hook was pinged")

// wait waits until every hook has had a HEAD, for at most timeout, or
// until server (if not nil) exits.
func (pr *pingReceiver) wait(ctx context.Context, timeout time.Duration, server *proc) error {
	pr.mu.Lock()
	all := pr.all
	pr.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var exited <-chan struct{}
	if server != nil {
		exited = server.Exited()
	}
	select {
	case <-all:
		return nil
	case <-timer.C:
		st, _ := pr.stats()
		return fmt.Errorf("%w: %d of %d within %v", errPingsIncomplete, st.Distinct, pr.n, timeout)
	case <-exited:
		st, _ := pr.stats()
		return fmt.Errorf("%s exited with %d of %d hooks pinged (%v); log:\n%s", server.name, st.Distinct, pr.n, server.waitErr, server.logTail(20))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// latencies returns, sorted and in milliseconds, the time from t0 to each
// hook's first HEAD, and how many hooks were pinged before t0 or not at
// all.
func (pr *pingReceiver) latencies(t0 time.Time) (sorted []float64, early, missing int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, at := range pr.first {
		switch {
		case at.IsZero():
			missing++
		case at.Before(t0):
			early++
		default:
			sorted = append(sorted, ms(at.Sub(t0)))
		}
	}
	slices.Sort(sorted)
	return sorted, early, missing
}

// hookLoad is one feed load: the target, sent with X-ICALHOOKS-URL:
// HookURL when that is set.
type hookLoad struct {
	target
	HookURL string
}

// runHookLoad loads l with wrk or with the Go generator below, which,
// unlike goLoadGen, can send the header and checks every answer's
// X-ICALHOOKS-STATUS.
func runHookLoad(ctx context.Context, lg loadGenerator, l hookLoad, conns int, warmup, d time.Duration) (runStats, error) {
	if g, ok := lg.(wrkLoadGen); ok {
		if warmup > 0 {
			if _, err := execWrk(ctx, g.path, wrkHookArgs(l, conns, warmup)); err != nil {
				return runStats{}, fmt.Errorf("warm up %s: %w", l.Name, err)
			}
		}
		r, err := execWrk(ctx, g.path, wrkHookArgs(l, conns, d))
		if err != nil {
			return runStats{}, fmt.Errorf("load %s: %w", l.Name, err)
		}
		return wrkStats(r, l.target), nil
	}
	return goHookLoad(ctx, l, conns, warmup, d)
}

// wrkHookArgs is wrkArgs with the X-ICALHOOKS-URL header when l has one.
func wrkHookArgs(l hookLoad, conns int, d time.Duration) []string {
	args := wrkArgs(l.target, conns, d)
	if l.HookURL == "" {
		return args
	}
	last := len(args) - 1
	return append(slices.Clone(args[:last]), "-H", hookURLHeader+": "+l.HookURL, args[last])
}

// execWrk runs wrk with args and parses its summary.
func execWrk(ctx context.Context, path string, args []string) (wrkReport, error) {
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if ctx.Err() != nil {
		return wrkReport{}, ctx.Err()
	}
	if err != nil {
		return wrkReport{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkReport{}, fmt.Errorf("%w:\n%s", err, out)
	}
	return r, nil
}

// goHookLoad is the built-in generator for hookLoad: one goroutine per
// connection, each sending the next request when it has read the last
// body; only answers completed inside the measured window count.
func goHookLoad(ctx context.Context, l hookLoad, conns int, warmup, d time.Duration) (runStats, error) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var measuring atomic.Bool
	oks := make([]int64, conns)
	fails := make([]failures, conns)
	var wg sync.WaitGroup
	for w := range conns {
		fails[w] = failures{}
		wg.Go(func() {
			for loadCtx.Err() == nil {
				problem := fetchHookLoad(loadCtx, client, l)
				if !measuring.Load() {
					continue
				}
				if problem == "" {
					oks[w]++
				} else {
					fails[w][problem]++
				}
			}
		})
	}
	if err := sleepCtx(ctx, warmup); err != nil {
		cancel()
		wg.Wait()
		return runStats{}, fmt.Errorf("load %s: %w", l.Name, err)
	}
	measuring.Store(true)
	start := time.Now()
	err := sleepCtx(ctx, d)
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err != nil {
		return runStats{}, fmt.Errorf("load %s: %w", l.Name, err)
	}
	st := runStats{Elapsed: elapsed}
	all := failures{}
	for w := range conns {
		st.OK += oks[w]
		for k, v := range fails[w] {
			all[k] += v
			st.Errors += v
		}
	}
	st.Detail = all.String()
	return st, nil
}

// fetchHookLoad sends one request of l and returns what was wrong with
// the answer, or "".
func fetchHookLoad(ctx context.Context, client *http.Client, l hookLoad) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return err.Error()
	}
	if l.HookURL != "" {
		req.Header.Set(hookURLHeader, l.HookURL)
	}
	resp, err := client.Do(req)
	if err != nil {
		return shortErr(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return shortErr(err)
	}
	return feedAnswerProblem(resp.StatusCode, n, resp.Header, l.HookURL != "", l.BodySize)
}

// icalhooksResults turns the rounds into result lines: the median over
// the rounds of each round's figure.
func icalhooksResults(cfg Config, lg loadGenerator, rounds []icalhooksRound) []Result {
	machine := hostResult(icalhooksName)
	machine.Info["loadgen"] = lg.Name()
	machine.Info["hooks"] = cfg.FanoutSubscriptions
	machine.Info["events"] = cfg.Events
	machine.Info["connections"] = cfg.Connections
	machine.Info["duration_s"] = cfg.Duration.Seconds()
	machine.Info["warmup_s"] = cfg.Warmup.Seconds()
	machine.Info["runs"] = cfg.Runs
	machine.Info["delivery_workers"] = cfg.DeliveryWorkers
	machine.Info["delivery_per_endpoint"] = cfg.DeliveryPerEndpoint
	machine.Info["icalhooks_host_rate"] = icalhooksHostRate
	machine.Info["register_clients"] = registerClients
	machine.Info["store"] = "sqlite"
	if cfg.Postgres != "" {
		machine.Info["store"] = "postgres"
	}

	var reg, all, p50, p99, first, api, recMS, with, without, overhead []float64
	var pingErrs, withErrs, withoutErrs, dups, early, missing, bad, unexpected int64
	var recorded, armedLeft []int
	var feedBytes, rewritten int
	firstBad := ""
	for _, r := range rounds {
		feedBytes = r.feedBytes
		reg = append(reg, r.registerRPS)
		all = append(all, percentile(r.pings, 100))
		p50 = append(p50, percentile(r.pings, 50))
		p99 = append(p99, percentile(r.pings, 99))
		if len(r.pings) > 0 {
			first = append(first, r.pings[0])
		}
		api = append(api, r.apiWriteMS)
		recMS = append(recMS, r.recordMS)
		recorded = append(recorded, r.recorded)
		armedLeft = append(armedLeft, r.armedLeft)
		pingErrs += int64(r.early+r.missing) + r.rcv.errors()
		dups += r.rcv.Duplicates
		early += int64(r.early)
		missing += int64(r.missing)
		bad += r.rcv.BadHeaders
		unexpected += r.rcv.Unexpected
		if firstBad == "" {
			firstBad = r.firstBad
		}
		with = append(with, r.with.RPS())
		without = append(without, r.without.RPS())
		overhead = append(overhead, 1-ratio(r.with.RPS(), r.without.RPS()))
		withErrs += r.with.Errors
		withoutErrs += r.without.Errors
		if r.rewritten {
			rewritten++
		}
	}
	machine.Info["feed_bytes"] = feedBytes
	pingInfo := map[string]any{
		"first_ms":          roundAll(first, round2),
		"api_write_ms":      roundAll(api, round2),
		"recorded_ms":       roundAll(recMS, round2),
		"recorded":          recorded,
		"armed_after_pings": armedLeft,
		"duplicates":        dups,
		"early":             early,
		"missing":           missing,
		"bad_headers":       bad,
		"unexpected":        unexpected,
		"measured_by":       "bench clock: just before the event POST is sent → each hook's first HEAD at the in-process receiver",
	}
	if firstBad != "" {
		pingInfo["first_problem"] = firstBad
	}
	return []Result{machine,
		{
			Scenario: icalhooksName, Metric: "register_rps", Value: round1(median(reg)), Unit: "req/s",
			Runs: roundAll(reg, round1), Errors: errCount(0),
			Info: map[string]any{"hooks": cfg.FanoutSubscriptions, "clients": registerClients},
		},
		{
			Scenario: icalhooksName, Metric: "pings_all_received_ms", Value: round2(median(all)), Unit: "ms",
			Target: targetOf(pingsTargetMS), Runs: roundAll(all, round2), Errors: errCount(pingErrs), Info: pingInfo,
		},
		{
			Scenario: icalhooksName, Metric: "pings_p50_ms", Value: round2(median(p50)), Unit: "ms",
			Runs: roundAll(p50, round2), Errors: errCount(pingErrs),
		},
		{
			Scenario: icalhooksName, Metric: "pings_p99_ms", Value: round2(median(p99)), Unit: "ms",
			Runs: roundAll(p99, round2), Errors: errCount(pingErrs),
		},
		{
			Scenario: icalhooksName, Metric: "feed_rps_with_header", Value: round1(median(with)), Unit: "req/s",
			Runs: roundAll(with, round1), Errors: errCount(withErrs),
		},
		{
			Scenario: icalhooksName, Metric: "feed_rps_without_header", Value: round1(median(without)), Unit: "req/s",
			Runs: roundAll(without, round1), Errors: errCount(withoutErrs),
		},
		{
			Scenario: icalhooksName, Metric: "header_overhead", Value: round3(1 - ratio(median(with), median(without))), Unit: "ratio",
			Target: targetOf(headerOverheadTarget), Runs: roundAll(overhead, round3),
			Info: map[string]any{
				"definition":             "1 - feed_rps_with_header / feed_rps_without_header; the header names one armed hook of the unchanged feed",
				"hook_rewritten_rounds":  rewritten,
				"hook_rewritten_meaning": "rounds in which the hook's lastRegisteredAt moved during the load with the header (a database write)",
			},
		},
	}
}
