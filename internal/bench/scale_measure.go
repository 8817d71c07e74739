package bench

// The scale scenario's pipeline figures: delivered webhooks, the iCal
// Hooks fan-out of one feed, imports with the 80/15/5 mix, and
// retention pruning.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
)

const (
	// scaleFeedHooks is how many iCal Hooks the fan-out figure's feed
	// has, as issue 23 states it.
	scaleFeedHooks = 1000
	// scaleImportRate is the poll rate of the full size: 30,000 imported
	// feeds every 5 minutes.
	scaleImportRate = 100
	// scaleImportWindowMax bounds the import figures' measured window.
	scaleImportWindowMax = time.Minute
	// scalePruneAge is the retention of the loaded round's prune: the
	// history spans 29 days, so about 90 % of it is older.
	scalePruneAge = 3 * 24 * time.Hour
	// scaleKeepUpRate is the write rate pruning must keep up with, in
	// changes per second.
	scaleKeepUpRate = 50
)

// scaleImportInterval returns the poll interval of the import figures:
// the one at which imports feeds are polled at the full size's rate
// (whole seconds, at least 2 s, calhook's floor set to it).
func scaleImportInterval(imports int) time.Duration {
	return time.Duration(max(2, (imports+scaleImportRate-1)/scaleImportRate)) * time.Second
}

// scaleServeArgs are calhook's flags for a round: its defaults, but for
// the loopback receivers and upstreams allowed, the hook caps and the
// per-host ping rate raised (every hook of the figure is on one host),
// the import floor (and the hold of deletes) at the figure's interval,
// and the polls of one host and of one account as many as the polls in
// flight: every imported feed of the figure is one account's on one
// loopback upstream, which the defaults (2 and 4 at once) would hold to
// 2 / poll latency, about 40 polls/s on PostgreSQL, against 100 due.
func scaleServeArgs(hooks int, interval time.Duration) []string {
	capN := strconv.Itoa(max(2*hooks, 20000))
	return []string{
		"--log-level", "warn",
		"--allow-http-webhooks", "--allow-http-feeds", "--allow-private-cidr", "127.0.0.1/32",
		"--icalhooks-max-per-feed", capN, "--icalhooks-max-per-token", capN, "--icalhooks-max-per-host", capN,
		"--icalhooks-host-rate", strconv.Itoa(icalhooksHostRate),
		"--import-min-interval", interval.String(), "--import-interval", interval.String(),
		"--import-max-interval", max(interval, time.Hour).String(),
		// Held deletes wait at least one poll interval (calhook refuses
		// less): at full size the interval is 5 minutes.
		"--import-hold-delay", max(interval, 2*time.Minute).String(),
		"--import-per-host", strconv.Itoa(importer.DefaultConcurrency),
		"--import-per-account", strconv.Itoa(importer.DefaultConcurrency),
	}
}

// scaleDeliveryRuns is how many times a round measures delivered
// webhooks: one run lasts a second or two, so a single one is at the
// mercy of a checkpoint or a collection.
const scaleDeliveryRuns = 3

// deliveryFigure is the delivered-webhooks figure of a round.
type deliveryFigure struct {
	deliveredRPS, writeRPS float64
	duplicates             int64
	// runs are every run's delivered webhooks/s, in order (for
	// measureDeliveries).
	runs []float64
}

// measureDeliveries runs measureDelivery n times, each to a new
// subscription, and returns the run with the median delivered rate, all
// runs' rates and every run's duplicates.
func measureDeliveries(ctx context.Context, cfg Config, srv *calhookServer, rcv *hookReceiver, n int) (deliveryFigure, error) {
	var figs []deliveryFigure
	var rates []float64
	var dups int64
	for range n {
		f, err := measureDelivery(ctx, cfg, srv, rcv)
		if err != nil {
			return f, err
		}
		figs, rates, dups = append(figs, f), append(rates, round1(f.deliveredRPS)), dups+f.duplicates
	}
	slices.SortStableFunc(figs, func(a, b deliveryFigure) int { return cmp.Compare(a.deliveredRPS, b.deliveredRPS) })
	f := figs[len(figs)/2]
	f.runs, f.duplicates = rates, dups
	return f, nil
}

// measureDelivery writes cfg.Changes changes from cfg.Writers clients to
// a calendar with one subscription to rcv, and returns webhooks per
// second from the first write to the last arrival.
func measureDelivery(ctx context.Context, cfg Config, srv *calhookServer, rcv *hookReceiver) (deliveryFigure, error) {
	var f deliveryFigure
	rcv.reset(false)
	setup, err := setupSubscriptions(ctx, srv, rcv, []string{"/scale/0"}, cfg.Writers)
	if err != nil {
		return f, err
	}
	events, err := genEvents(cfg.Changes, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		return f, err
	}
	bodies, err := marshalEvents(events)
	if err != nil {
		return f, err
	}
	w := postAll(ctx, setup.api.http, []string{setup.eventsURL}, setup.acc.APIKey, bodies, cfg.Writers)
	if w.Failed > 0 || w.OK == 0 {
		return f, fmt.Errorf("%w: %d of %d failed: %s", errWrites, w.Failed, len(bodies), w.Detail)
	}
	if err := rcv.waitFor(ctx, w.OK, stallTimeout, srv.proc); err != nil {
		return f, err
	}
	st, last, problem := rcv.stats()
	if problem != "" || st.errors() > 0 {
		return f, fmt.Errorf("receiver: %d bad deliveries, first: %s", st.errors(), problem)
	}
	f.deliveredRPS, f.writeRPS, f.duplicates = perSecond(st.Distinct, last.Sub(w.First)), w.RPS(), st.Duplicates
	return f, nil
}

// measureHookFanout registers hooks iCal Hooks, each its own path on
// pings, on the feed of a new empty calendar (so no earlier change is
// left to ping them), writes one event, and returns the time from just
// before the write until the last hook's HEAD arrived.
func measureHookFanout(ctx context.Context, srv *calhookServer, pings *pingReceiver, hooks int) (float64, error) {
	api := newAPIClient(srv.baseURL, registerClients)
	acc, cal, err := api.createAccountCalendar(ctx, srv.adminToken, "scale-hooks")
	if err != nil {
		return 0, err
	}
	feedPath := "/feeds/" + url.PathEscape(acc.ID) + "/" + url.PathEscape(cal.ID) + ".ics"
	pings.reset(hooks, srv.baseURL+feedPath)
	if _, err := registerHooks(ctx, srv.baseURL+feedPath+"?token="+url.QueryEscape(acc.FeedToken), pings.URL, hooks, registerClients); err != nil {
		return 0, err
	}
	ev := eventInput{Summary: "fan-out", Start: "2027-03-02T10:00:00Z", End: "2027-03-02T11:00:00Z"}
	t0 := time.Now()
	if err := api.do(ctx, http.MethodPost, "/v1/calendars/"+cal.ID+"/events", acc.APIKey, ev, nil, http.StatusCreated); err != nil {
		return 0, err
	}
	if err := pings.wait(ctx, pingsTimeout, srv.proc); err != nil {
		return 0, err
	}
	lat, early, missing := pings.latencies(t0)
	st, problem := pings.stats()
	if early+missing > 0 || st.errors() > 0 {
		return 0, fmt.Errorf("hook pings: %d early, %d missing, %d bad (first: %s)", early, missing, st.errors(), problem)
	}
	return percentile(lat, 100), nil
}

// importFigure is what the import window measured.
type importFigure struct {
	cpuMSPerPoll, pollsPerSecond float64
	info                         map[string]any
}

// measureImports creates n imported calendars through the API, polled
// every interval from up (the 80/15/5 mix), waits until each has been
// imported once, then, from the first poll after that, measures calhook's
// CPU time (/proc) and the polls up answered over one interval (at most
// scaleImportWindowMax, at least 4 s).
func measureImports(ctx context.Context, srv *calhookServer, up *mixUpstream, n int, interval time.Duration) (importFigure, error) {
	var f importFigure
	api := newAPIClient(srv.baseURL, importCreateWorkers)
	acc, err := api.createAccount(ctx, srv.adminToken, "scale-imports")
	if err != nil {
		return f, err
	}
	start := time.Now()
	if err := createImportedCalendars(ctx, api, acc.APIKey, up.URL, n, interval); err != nil {
		return f, err
	}
	for up.firsts.Load() < int64(n) {
		select {
		case <-srv.Exited():
			return f, fmt.Errorf("calhook exited during the first imports; log:\n%s", srv.logTail(20))
		default:
		}
		if limit := firstImportsLimit(n); time.Since(start) > limit {
			return f, fmt.Errorf("first imports: %d of %d feeds fetched after %v", up.firsts.Load(), n, limit)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return f, err
		}
	}
	firstImports := time.Since(start)
	// The window opens with the first poll after the first imports: at
	// full size those take minutes, and the feeds come due one interval
	// after their first poll.
	for c := up.counts(); c.dtstamp+c.notModified+c.changed == 0; c = up.counts() {
		select {
		case <-srv.Exited():
			return f, fmt.Errorf("calhook exited before polling again; log:\n%s", srv.logTail(20))
		default:
		}
		if time.Since(start) > firstImports+2*interval+time.Minute {
			return f, fmt.Errorf("no feed polled again within %v of the first imports", 2*interval+time.Minute)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return f, err
		}
	}
	window := min(max(interval, 4*time.Second), scaleImportWindowMax)
	c0 := up.counts()
	meter := startCPU(srv.cmd.Process.Pid)
	t0 := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		return f, err
	}
	cpu, _, ok := meter.stop()
	elapsed := time.Since(t0)
	if !ok {
		return f, fmt.Errorf("cannot read calhook's CPU time from /proc (Linux only)")
	}
	c := up.counts().minus(c0)
	polls := c.dtstamp + c.notModified + c.changed
	if polls == 0 {
		return f, fmt.Errorf("no poll in the %v window", window)
	}
	f.cpuMSPerPoll = ms(cpu) / float64(polls)
	f.pollsPerSecond = float64(polls) / elapsed.Seconds()
	f.info = map[string]any{
		"feeds":                n,
		"poll_interval_s":      interval.Seconds(),
		"window_s":             round2(elapsed.Seconds()),
		"expected_polls_per_s": round1(float64(n) / interval.Seconds()),
		"dtstamp_only":         c.dtstamp,
		"not_modified":         c.notModified,
		"changed":              c.changed,
		"first_imports_s":      round2(firstImports.Seconds()),
		// What 30,000 feeds every 5 minutes would cost at this CPU per
		// poll, in % of one core.
		"cpu_percent_at_full_rate": round2(f.cpuMSPerPoll * scaleImportRate / 10),
	}
	return f, nil
}

// firstImportsLimit is how long the first imports of n feeds may take:
// four times their due rate's time, at least 10 minutes.
func firstImportsLimit(n int) time.Duration {
	return max(10*time.Minute, time.Duration(4*n/scaleImportRate)*time.Second)
}

// mixCounts are the answers of a mixUpstream by kind.
type mixCounts struct {
	dtstamp, notModified, changed int64
}

func (c mixCounts) minus(d mixCounts) mixCounts {
	return mixCounts{c.dtstamp - d.dtstamp, c.notModified - d.notModified, c.changed - d.changed}
}

// mixUpstream serves imported feeds at feedPath(i) the way issue 23's
// mix behaves: feed i with i mod 20 = 0 (5 %) changes one event on every
// fetch; with i mod 20 in 1–3 (15 %) it sends an ETag and answers 304 to
// a conditional GET; every other feed (80 %) sends no validator and a
// body whose DTSTAMPs are new on each fetch. Every feed holds
// mixEvents bookings.
type mixUpstream struct {
	URL    string
	srv    *http.Server
	served chan struct{}
	// now stamps the bodies; tests replace it before the first fetch.
	now func() time.Time

	mu      sync.Mutex
	fetches map[int]int // by feed
	// firsts counts the feeds fetched at least once.
	firsts                        atomic.Int64
	dtstamp, notModified, changed atomic.Int64
}

// mixEvents is how many bookings each upstream feed holds.
const mixEvents = 20

// newMixUpstream listens on a free loopback port and serves until Close.
func newMixUpstream() (*mixUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mix upstream: %w", err)
	}
	up := &mixUpstream{URL: "http://" + ln.Addr().String(), served: make(chan struct{}), now: time.Now, fetches: map[int]int{}}
	up.srv = &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		defer close(up.served)
		up.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	return up, nil
}

// Close stops the server and waits for it.
func (up *mixUpstream) Close() error {
	err := up.srv.Close()
	<-up.served
	return err
}

// counts returns the answers so far.
func (up *mixUpstream) counts() mixCounts {
	return mixCounts{up.dtstamp.Load(), up.notModified.Load(), up.changed.Load()}
}

func (up *mixUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, ok := strings.CutPrefix(r.URL.Path, "/feeds/")
	i, err := strconv.Atoi(strings.TrimSuffix(s, ".ics"))
	if !ok || err != nil || i < 0 {
		http.NotFound(w, r)
		return
	}
	up.mu.Lock()
	k := up.fetches[i]
	up.fetches[i] = k + 1
	up.mu.Unlock()
	if k == 0 {
		up.firsts.Add(1)
	}
	first := k == 0
	version := 0 // the content's version: only the changing feeds move
	switch class := i % 20; {
	case class == 0:
		version = k
		if !first {
			up.changed.Add(1)
		}
	case class <= 3:
		const etag = `"v1"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			up.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if !first {
			up.dtstamp.Add(1) // a client that dropped the validator
		}
	default:
		if !first {
			up.dtstamp.Add(1)
		}
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Write(mixBody(i, version, up.now()))
}

// mixBody is feed i at a content version, stamped at now: mixEvents
// two-night bookings, the event version mod mixEvents renamed by it.
func mixBody(i, version int, now time.Time) []byte {
	var b strings.Builder
	stamp := now.UTC().Format("20060102T150405Z")
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calhookbench//scale upstream//EN\r\n")
	day := time.Date(2027, 1, 1, 15, 0, 0, 0, time.UTC)
	for e := range mixEvents {
		start := day.AddDate(0, 0, 3*e)
		summary := "Reserved"
		if version > 0 && e == version%mixEvents {
			summary = "Reserved v" + strconv.Itoa(version)
		}
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%d-%d@scale.upstream\r\nDTSTAMP:%s\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\nEND:VEVENT\r\n",
			i, e, stamp, start.Format("20060102T150405Z"), start.Add(46*time.Hour).Format("20060102T150405Z"), summary)
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}

// pruneFigure is what one Prune of the round's database did.
type pruneFigure struct {
	st      store.PruneStats
	elapsed time.Duration
}

// rowsPerSecond is attempts, messages and changes deleted per second.
func (p pruneFigure) rowsPerSecond() float64 {
	return float64(p.st.Attempts+p.st.Messages+p.st.Changes) / p.elapsed.Seconds()
}

// keepUp is how many times over pruning keeps up with scaleKeepUpRate
// changes per second: changes deleted per second (each with the messages
// and attempts it caused) over the rate they are written at.
func (p pruneFigure) keepUp() float64 {
	return float64(p.st.Changes) / p.elapsed.Seconds() / scaleKeepUpRate
}

// measurePrune runs the store's Prune — what calhook's pruner runs at
// start and every hour, with the cut now minus --retention — on the
// stopped calhook's database with the given cut, and times it.
func measurePrune(ctx context.Context, db string, cut time.Time) (pruneFigure, error) {
	var p interface {
		Prune(ctx context.Context, before time.Time) (store.PruneStats, error)
		Close() error
	}
	if strings.HasPrefix(db, "postgres") {
		d, err := postgres.Open(ctx, db, nil)
		if err != nil {
			return pruneFigure{}, err
		}
		p = d
	} else {
		d, err := sqlite.Open(ctx, db)
		if err != nil {
			return pruneFigure{}, err
		}
		p = d
	}
	defer p.Close()
	t0 := time.Now()
	st, err := p.Prune(ctx, cut)
	f := pruneFigure{st: st, elapsed: time.Since(t0)}
	if err != nil {
		return f, fmt.Errorf("prune: %w", err)
	}
	if st.Changes == 0 || st.Messages == 0 || st.Attempts == 0 {
		return f, fmt.Errorf("prune before %v deleted %+v: nothing of some kind", cut.Format(time.RFC3339), st)
	}
	return f, nil
}

// The history feed: an account shaped like the first measurement
// (200 calendars of 1,580 events over three years at full size), whose
// all-calendars feed holds far more than the render cache would.
const (
	historyCalendars = 200
	historyEvents    = 1580
	historyGets      = 3
	// historyGetTimeout bounds one GET of the history feed.
	historyGetTimeout = 5 * time.Minute
)

// historyFigures are the all-calendars feed of an account with history:
// its GET's p50, its bytes, and calhook's RSS before the GETs and at its
// highest during them.
type historyFigures struct {
	getP50, feedMB, rssBeforeMB, rssPeakMB float64
	events                                 int
}

// measureHistoryFeed writes calendars calendars of historyEvents events,
// spread over three years (the last two and the next), through the batch
// route, then GETs the account's all-calendars feed historyGets times in
// a row, sampling calhook's RSS throughout.
func measureHistoryFeed(ctx context.Context, srv *calhookServer, calendars int) (historyFigures, error) {
	var f historyFigures
	api := newAPIClient(srv.baseURL, 4)
	acc, err := api.createAccount(ctx, srv.adminToken, "scale-history")
	if err != nil {
		return f, err
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i := range calendars {
		cal, err := api.createCalendar(ctx, acc.APIKey, fmt.Sprint("history ", i), "Europe/Berlin")
		if err != nil {
			return f, err
		}
		// Each year of the three holds a third of the calendars.
		events, err := genEvents(historyEvents, uint64(1000+i), today.AddDate(i%3-2, 0, 0), cal.TimeZone)
		if err != nil {
			return f, err
		}
		bodies := make([][]byte, len(events))
		for j, e := range events {
			if bodies[j], err = json.Marshal(e); err != nil {
				return f, err
			}
		}
		batches, _ := batchBodies(bodies, 1000)
		for _, b := range batches {
			if err := api.do(ctx, http.MethodPost, "/v1/calendars/"+cal.ID+"/events/batch", acc.APIKey, json.RawMessage(b), nil, http.StatusOK); err != nil {
				return f, err
			}
		}
		f.events += len(events)
	}
	pid := srv.cmd.Process.Pid
	before, err := procRSS(pid)
	if err != nil {
		return f, err
	}
	f.rssBeforeMB = float64(before) / 1e6
	peak := before
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss, err := procRSS(pid); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	}()
	get := func() (int64, error) {
		// A 67 MB feed may take longer than the API client's timeout.
		ctx, cancel := context.WithTimeout(ctx, historyGetTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.baseURL+"/feeds/"+acc.ID+".ics?token="+acc.FeedToken, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := readAllDiscard(resp)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return n, err
	}
	var times []float64
	var size int64
	for range historyGets {
		t0 := time.Now()
		if size, err = get(); err != nil {
			break
		}
		times = append(times, ms(time.Since(t0)))
	}
	close(done)
	<-sampled
	if err != nil {
		return f, fmt.Errorf("history feed: %w", err)
	}
	slices.Sort(times)
	f.getP50 = percentile(times, 50)
	f.feedMB = float64(size) / 1e6
	f.rssPeakMB = float64(peak) / 1e6
	return f, nil
}
