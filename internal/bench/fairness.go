package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Settings and targets of fairness.
const (
	fairnessName = "fairness"
	// DefaultFairnessEvents is the size of the hostile tenant's imported
	// feed: the most an imported calendar may hold by default.
	DefaultFairnessEvents = 50_000
	// DefaultFairnessWindow is how long the well-behaved tenant's load is
	// measured in each phase.
	DefaultFairnessWindow = 20 * time.Second
	// fairWriteRate is the well-behaved tenant's writes per second; it
	// reads its feed every fairFeedEvery.
	fairWriteRate = 50
	fairFeedEvery = 100 * time.Millisecond
	// Targets: write and feed p99, and how late the first poll of a new
	// imported calendar (due at once) may come.
	fairWriteP99TargetMS = 50
	fairFeedP99TargetMS  = 10
	fairFirstPollTarget  = 2 * time.Second
	// fairStallingHosts is how many never-answering feed hosts the hostile
	// tenant imports from (one name each, so the per-host limit does not
	// apply), and fairSubscriptions its subscriptions (the default cap).
	fairStallingHosts = 8
	fairSubscriptions = 100
	// fairFlipEvery is how often the hostile feed changes every event.
	fairFlipEvery = 5 * time.Second
)

// fairnessFlags registers the flags of fairness.
func fairnessFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Events, "events", DefaultFairnessEvents, "events of the hostile tenant's imported feed")
	fs.DurationVar(&cfg.Duration, "duration", DefaultFairnessWindow, "measured window of each phase")
}

// fairPhase is what the well-behaved tenant saw in one phase.
type fairPhase struct {
	writes, feeds []float64 // milliseconds, sorted
	firstPoll     time.Duration
	errors        int64
}

// runFairness is the fairness scenario: a well-behaved tenant writes 50
// events a second, reads its feed ten times a second and creates an
// imported calendar, once alone ("quiet") and once while a hostile tenant
// imports a big feed that changes every event every few seconds, imports
// feeds from hosts that never answer, repeats sync?wait=true and fans
// every write out to the most subscriptions an account may have
// ("hostile"). The well-behaved tenant's write p99, feed p99 and first
// poll delay are reported for both phases, against the targets.
func runFairness(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Events <= 0 {
		cfg.Events = DefaultFairnessEvents
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultFairnessWindow
	}
	cfg = cfg.withDefaults()
	env, err := newWebhookEnv(ctx, cfg, fairnessName, 0)
	if err != nil {
		return nil, err
	}
	defer env.close()
	up, err := newFairUpstream(cfg.Events)
	if err != nil {
		return nil, err
	}
	defer up.close()

	phases := map[string]*fairPhase{}
	for _, name := range []string{"quiet", "hostile"} {
		ph, err := fairnessPhase(ctx, env, up, name, cfg.Duration)
		if err != nil {
			return nil, fmt.Errorf("%s phase: %w", name, err)
		}
		env.log.Info("phase done", "phase", name, "write_p99_ms", round2(percentile(ph.writes, 99)),
			"feed_p99_ms", round2(percentile(ph.feeds, 99)), "first_poll_ms", round2(ms(ph.firstPoll)), "errors", ph.errors)
		phases[name] = ph
	}
	info := map[string]any{"hostile_events": cfg.Events, "window_s": cfg.Duration.Seconds(),
		"write_rate": fairWriteRate, "stalling_hosts": fairStallingHosts, "subscriptions": fairSubscriptions}
	out := []Result{}
	for _, name := range []string{"quiet", "hostile"} {
		ph := phases[name]
		target := func(v float64) *float64 {
			if name == "hostile" {
				return targetOf(v)
			}
			return nil
		}
		out = append(out,
			Result{Scenario: fairnessName, Metric: name + "_write_p99_ms", Value: round2(percentile(ph.writes, 99)), Unit: "ms",
				Target: target(fairWriteP99TargetMS), Errors: errCount(ph.errors), Info: info},
			Result{Scenario: fairnessName, Metric: name + "_feed_p99_ms", Value: round2(percentile(ph.feeds, 99)), Unit: "ms",
				Target: target(fairFeedP99TargetMS), Info: info},
			Result{Scenario: fairnessName, Metric: name + "_first_poll_ms", Value: round2(ms(ph.firstPoll)), Unit: "ms",
				Target: target(ms(fairFirstPollTarget)),
				Info:   map[string]any{"note": "a new imported calendar is due at once: its interval is 0, so the target is 2 s"}},
		)
	}
	return append(out, hostResult(fairnessName)), nil
}

// fairnessPhase runs one phase on a fresh calhook with the default
// per-tenant limits.
func fairnessPhase(ctx context.Context, env *webhookEnv, up *fairUpstream, name string, window time.Duration) (*fairPhase, error) {
	srv, err := startCalhook(ctx, env.bin, filepath.Join(env.dir, name),
		"--log-level", "warn", "--allow-http-feeds", "--allow-http-webhooks", "--allow-private-cidr", "127.0.0.0/8",
		// The limits under test, whatever the bench environment lifts.
		"--max-subscriptions", strconv.Itoa(fairSubscriptions), "--webhook-host-rate", "50")
	if err != nil {
		return nil, err
	}
	defer env.stopCalhook(srv)
	api := newAPIClient(srv.baseURL, 8)
	good, err := api.createAccount(ctx, srv.adminToken, "well-behaved")
	if err != nil {
		return nil, err
	}
	cal, err := api.createCalendar(ctx, good.APIKey, "Rooms", "UTC")
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var hostile sync.WaitGroup
	if name == "hostile" {
		if err := startHostile(runCtx, &hostile, api, srv, up, env); err != nil {
			return nil, err
		}
	}
	defer hostile.Wait()
	defer stop()

	ph := &fairPhase{}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs atomic.Int64
	deadline := time.Now().Add(window)
	// Writes at a steady pace.
	wg.Go(func() {
		tick := time.NewTicker(time.Second / fairWriteRate)
		defer tick.Stop()
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			wg.Go(func() {
				start := time.Now().Add(time.Duration(i) * time.Hour).UTC()
				body := fmt.Sprintf(`{"summary":"Booking %d","start":%q,"end":%q}`, i,
					start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))
				t0 := time.Now()
				if status := send(runCtx, client, http.MethodPost, srv.baseURL+"/v1/calendars/"+cal.ID+"/events", good.APIKey, body); status != http.StatusCreated {
					errs.Add(1)
					return
				}
				mu.Lock()
				ph.writes = append(ph.writes, ms(time.Since(t0)))
				mu.Unlock()
			})
		}
	})
	// Feed reads.
	wg.Go(func() {
		feedURL := srv.baseURL + "/feeds/" + good.ID + "/" + cal.ID + ".ics?token=" + good.FeedToken
		for time.Now().Before(deadline) && runCtx.Err() == nil {
			t0 := time.Now()
			if status := send(runCtx, client, http.MethodGet, feedURL, "", ""); status != http.StatusOK {
				errs.Add(1)
			} else {
				mu.Lock()
				ph.feeds = append(ph.feeds, ms(time.Since(t0)))
				mu.Unlock()
			}
			if sleepCtx(runCtx, fairFeedEvery) != nil {
				return
			}
		}
	})
	// A new imported calendar, a little into the window.
	wg.Go(func() {
		if sleepCtx(runCtx, window/4) != nil {
			return
		}
		t0 := time.Now()
		ic, err := api.createImported(runCtx, good.APIKey, "Channel", up.url("/small.ics"), time.Hour)
		if err != nil {
			errs.Add(1)
			return
		}
		for runCtx.Err() == nil {
			var c importedCalendar
			if err := api.do(runCtx, http.MethodGet, "/v1/calendars/"+ic.ID, good.APIKey, nil, &c, http.StatusOK); err == nil && c.LastSuccessAt != nil {
				ph.firstPoll = time.Since(t0)
				return
			}
			if time.Since(t0) > 2*window {
				ph.firstPoll = time.Since(t0)
				return
			}
			if sleepCtx(runCtx, 20*time.Millisecond) != nil {
				return
			}
		}
	})
	wg.Wait()
	slices.Sort(ph.writes)
	slices.Sort(ph.feeds)
	ph.errors = errs.Load()
	if len(ph.writes) == 0 || len(ph.feeds) == 0 {
		return nil, fmt.Errorf("no successful write or feed read (%d errors); calhook log: %s", ph.errors, srv.logTail(20))
	}
	return ph, nil
}

// startHostile sets the hostile tenant going until ctx ends.
func startHostile(ctx context.Context, wg *sync.WaitGroup, api *apiClient, srv *calhookServer, up *fairUpstream, env *webhookEnv) error {
	bad, err := api.createAccount(ctx, srv.adminToken, "hostile")
	if err != nil {
		return err
	}
	for i := range fairSubscriptions {
		in := map[string]any{"webhookUrl": env.rcv.URL + "/hostile/" + strconv.Itoa(i)}
		if err := api.do(ctx, http.MethodPost, "/v1/subscriptions", bad.APIKey, in, nil, http.StatusCreated); err != nil {
			return err
		}
	}
	big, err := api.createImported(ctx, bad.APIKey, "Big", up.url("/big.ics"), 30*time.Second)
	if err != nil {
		return err
	}
	for _, u := range up.stalling {
		if _, err := api.createImported(ctx, bad.APIKey, "Stalls", u, 30*time.Second); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: 60 * time.Second}
	// Repeated syncs of the big calendar, every one waiting for its poll.
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				send(ctx, client, http.MethodPost, srv.baseURL+"/v1/calendars/"+big.ID+"/sync?wait=true", bad.APIKey, "")
				if sleepCtx(ctx, 30*time.Millisecond) != nil {
					return
				}
			}
		})
	}
	return nil
}

// send makes one request and returns its status (0 on a transport error),
// reading the body to the end.
func send(ctx context.Context, client *http.Client, method, url, bearer, body string) int {
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, url, rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, url, nil)
	}
	if err != nil {
		return 0
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0
	}
	return resp.StatusCode
}

// fairUpstream serves the feeds of the scenario: the hostile tenant's big
// feed, which changes every event every fairFlipEvery, a small feed for
// the well-behaved tenant, and hosts that accept connections and never
// answer.
type fairUpstream struct {
	srv      *http.Server
	ln       net.Listener
	bodies   [2][]byte
	started  time.Time
	stalling []string
	stallLns []net.Listener
	mu       sync.Mutex
	held     []net.Conn
}

func newFairUpstream(events int) (*fairUpstream, error) {
	u := &fairUpstream{started: time.Now()}
	for v := range 2 {
		u.bodies[v] = fairFeed(events, v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u.ln = ln
	small := fairFeed(3, 0)
	u.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/calendar")
		switch r.URL.Path {
		case "/big.ics":
			w.Write(u.bodies[int(time.Since(u.started)/fairFlipEvery)%2])
		default:
			w.Write(small)
		}
	})}
	go u.srv.Serve(ln)
	// Each stalling host is its own loopback address, so each counts as
	// another host.
	for i := range fairStallingHosts {
		sl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 10+i))
		if err != nil {
			u.close()
			return nil, err
		}
		u.stallLns = append(u.stallLns, sl)
		u.stalling = append(u.stalling, "http://"+sl.Addr().String()+"/feed.ics")
		go func() {
			for {
				c, err := sl.Accept()
				if err != nil {
					return
				}
				u.mu.Lock()
				u.held = append(u.held, c)
				u.mu.Unlock()
			}
		}()
	}
	return u, nil
}

func (u *fairUpstream) url(path string) string { return "http://" + u.ln.Addr().String() + path }

func (u *fairUpstream) close() {
	u.srv.Close()
	for _, l := range u.stallLns {
		l.Close()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.held {
		c.Close()
	}
}

// fairFeed returns a feed of n bookings; variant moves every one by a day.
func fairFeed(n, variant int) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//fairness//EN\r\n")
	day0 := time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC).AddDate(0, 0, variant)
	for i := range n {
		start := day0.Add(time.Duration(i) * 2 * time.Hour)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:bk-%d@bench\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n",
			i, start.Format("20060102T150405Z"), start.Add(time.Hour).Format("20060102T150405Z"))
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}
