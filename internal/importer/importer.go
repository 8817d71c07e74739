// Package importer watches the source feeds of imported calendars: it polls
// them politely (conditional GET, gzip, adaptive intervals, concurrency
// limits), parses what changed with package ical, diffs it against the
// stored events by (UID, RECURRENCE-ID) over the fields that matter, and
// writes the differences — events, change records and sync state — in one
// store transaction, so the delivery pipeline turns them into webhooks like
// any API write.
//
// A poll deletes events only when the upstream really said so: a body
// that is not a well-formed calendar is a failed poll that changes
// nothing, a mass deletion is held until a later fetch confirms it (see
// Guard), and an event calhook cannot represent is skipped with a warning
// rather than failing the calendar.
//
// Polls are claimed from the store's due-time index with a lease, so a
// poller that dies leaves nothing stuck. A poll is requested early by the
// sync API or by an upstream iCal Hooks ping to /hooks/in/{token}.
package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/ical"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/tracing"
)

// ErrNotImported is returned when a sync is asked of a native calendar.
var ErrNotImported error = &fault.Error{Code: fault.Conflict, Reason: fault.NotImported,
	Message: "the calendar is not imported: only imported calendars have a source feed to sync"}

// rateLimited is returned when an account asks for syncs faster than
// Config.SyncRate allows: a RateLimited fault whose RetryAfter is when
// the next sync of the account is accepted.
func rateLimited(wait time.Duration) error {
	return &fault.Error{Code: fault.RateLimited, RetryAfter: wait,
		Message: fmt.Sprintf("too many sync requests for this account: retry in %s", wait.Round(time.Millisecond))}
}

// Poll outcomes, as the sync API reports them.
const (
	StatusChanged     = "changed"
	StatusUnchanged   = "unchanged"
	StatusNotModified = "not_modified"
	StatusError       = "error"
	// StatusRecent is Refresh's outcome for a calendar that a poll fetched
	// successfully less than SyncWindow ago: it counts as fresh, and no
	// new fetch is made.
	StatusRecent = "recent"
)

// Result is the outcome of one poll.
type Result struct {
	Status                    string
	Created, Updated, Deleted int
	// Held is the number of deletes the calendar holds after the poll
	// (see Guard).
	Held int
	// Err is why the poll failed, for StatusError, in full (for logs).
	Err error
	// Message is why the poll failed in words the calendar's owner may
	// read (the calendar's lastError): the class of failure, no internals.
	Message string
	// Calendar is the calendar as it was claimed, with the sync state the
	// poll left it in.
	Calendar *store.Calendar
}

// Store is what the importer keeps imported calendars in: the import
// role of the store, the reads a diff starts from, and the batch write
// that replaces a native calendar's content (Replace).
type Store interface {
	store.ImportStore
	Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error)
	FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error)
	// WriteEvents replaces a native calendar's events (Replace).
	WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error)
}

// Config configures an Importer. Zero fields take the defaults.
type Config struct {
	Store Store
	// Client fetches the feeds: outbound.NewClient, which applies the
	// SSRF rules on every connection and redirect.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand returns numbers in [0, 1) for the jitter; nil means
	// math/rand/v2.
	Rand func() float64
	// Schedule decides the poll intervals.
	Schedule Schedule
	// Concurrency bounds polls in flight (default 8), PerHost those to
	// one source host (default 2), PerAccount those of one account
	// (default half of Concurrency, at least 1): an account whose feeds
	// hang, on as many host names as it likes, cannot hold every slot
	// while another account's calendar waits for its poll.
	Concurrency int
	PerHost     int
	PerAccount  int
	// MaxBytes bounds a feed body, after decompression (default 20 MiB).
	MaxBytes int64
	// MaxEvents bounds the events of one imported calendar (default
	// 50,000): a feed with more fails its poll with a clear error and
	// changes nothing.
	MaxEvents int
	// ChunkSize bounds the event writes of one transaction (default
	// 500): a bigger import is written in chunks, so that it never holds
	// the database's writer for long (see applyChunks).
	ChunkSize int
	// ChunkTime is how long one chunk should hold the writer (default
	// 10 ms): a chunk that took longer halves the next one (down to
	// MinChunkSize events), one that took less than half of it doubles
	// the next (up to ChunkSize). A busy or slow machine thus gets
	// smaller chunks, an idle one fewer commits.
	ChunkTime time.Duration
	// Timeout bounds one fetch, from connecting to the last body byte
	// (default 30 s).
	Timeout time.Duration
	// IdleTimeout abandons a fetch that has received nothing for this
	// long — no response headers, or no further body byte — however
	// much of Timeout is left (default 10 s): a feed that stalls frees its
	// poll slot long before the overall timeout. It should be below
	// Timeout to matter.
	IdleTimeout time.Duration
	// Lease is how long a claimed poll is held before another poller may
	// take it. It must cover the wait behind the host's limit as well as
	// the fetch: default max(5 min, 4 × Timeout).
	Lease time.Duration
	// PublicURL, when set, is calhook's public base URL: each fetch then
	// sends X-ICALHOOKS-URL: PublicURL/hooks/in/{token}.
	PublicURL string
	// Registerer receives the import metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Tracer traces each poll; the changes it stores link to its span.
	// Nil is tracing off.
	Tracer *tracing.Tracer
	// PingWindow is the least time between two polls triggered by iCal
	// Hooks pings of one calendar; pings in between are coalesced into
	// one poll at the end of the window (default 1 s: an upstream cannot make
	// calhook poll it more than once a second).
	PingWindow time.Duration
	// SyncWindow is the least time between two polls of one calendar
	// requested by the sync API or by holds (default and maximum 1 s, so
	// that sync?wait=true and holds stay fresh): the syncs in between
	// share one poll at the end of the window. Repeating the sync call
	// thus cannot make calhook fetch a feed more than about once a window,
	// while every sync?wait=true caller still gets a poll whose fetch
	// started after its request. Refresh (holds) also takes a calendar
	// fetched successfully less than a window ago as fresh.
	SyncWindow time.Duration
	// SyncRate bounds the sync requests of one account, per second, with
	// bursts of twice as many (default 10); more are refused with a
	// RateLimited fault. It bounds what one account's syncs of many
	// calendars cost; SyncWindow already bounds each calendar's fetches.
	SyncRate int
	// Guard holds mass deletions until a later fetch confirms them; the
	// zero value is on with the defaults.
	Guard Guard
	// Bus hears of polls that stored changes (FeedsChanged: events or
	// sync health), and wakes the scheduler when polls become due
	// (PollsDue). Nil gives the Importer a Bus of its own.
	Bus *notify.Bus
}

// Defaults of Config.
const (
	DefaultConcurrency = 8
	DefaultPerHost     = 2
	DefaultTimeout     = 30 * time.Second
	DefaultIdleTimeout = 10 * time.Second
	DefaultMaxEvents   = 50_000
	DefaultChunkSize   = 500
	DefaultChunkTime   = 10 * time.Millisecond
	// MinChunkSize is the fewest events a chunk of a big import writes.
	MinChunkSize      = 32
	DefaultPingWindow = time.Second
	DefaultSyncWindow = time.Second
	DefaultSyncRate   = 10
)

// Importer polls imported calendars.
type Importer struct {
	cfg   Config
	store Store
	log   *slog.Logger
	sched Schedule
	// metrics count polls, parse time and changed events.
	metrics *pollMetrics

	// chunk is the chunk size the last big import adapted to (0: none
	// yet), which the next one starts from: on a machine where ChunkSize
	// events hold the writer too long, each poll's first chunk would.
	chunk atomic.Int64

	wake chan struct{}
	// done is signalled when a poll ends, freeing a slot.
	done chan struct{}

	mu sync.Mutex
	// running counts polls in flight, by source host and in all.
	running     int
	hostRunning map[string]int
	// accountClaimed counts the claimed polls of each account, running
	// or queued behind a host.
	accountClaimed map[string]int
	// queued holds claimed calendars waiting for their host's limit.
	queued map[string][]*store.Calendar
	nQueue int
	// inflight holds the calendars claimed and not yet recorded, and
	// again those of them for which a poll was requested meanwhile: the
	// end of such a poll must wake the scheduler, since the store has
	// made the calendar due again.
	inflight map[string]bool
	again    map[string]bool
	// waiters are sync?wait=true callers, by calendar id; a poll takes
	// the waiters present when it starts fetching.
	waiters map[string][]chan *Result
	// fetching holds the polls of this node that are fetching, by
	// calendar id: Refresh joins them.
	fetching map[string]*pollRun
	// succeeded holds the calendars as this node's last successful poll
	// of each left them, for Refresh.
	succeeded map[string]*store.Calendar
	// pinged and synced are when the last poll of each calendar that a
	// ping, or the sync API, triggered was requested for.
	pinged, synced map[string]time.Time
	// syncTAT is each account's theoretical arrival time for the sync
	// rate (GCRA): a request is accepted while it is at most a burst
	// ahead of the clock.
	syncTAT map[string]time.Time
	polls   sync.WaitGroup

	loop lifecycle.Loop
}

// New returns an Importer; call Start to run its scheduler.
func New(cfg Config) *Importer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PerHost <= 0 {
		cfg.PerHost = DefaultPerHost
	}
	if cfg.PerAccount <= 0 {
		cfg.PerAccount = max(1, cfg.Concurrency/2)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkTime <= 0 {
		cfg.ChunkTime = DefaultChunkTime
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Lease <= 0 {
		cfg.Lease = max(5*time.Minute, 4*cfg.Timeout)
	}
	if cfg.PingWindow <= 0 {
		cfg.PingWindow = DefaultPingWindow
	}
	if cfg.SyncWindow <= 0 || cfg.SyncWindow > DefaultSyncWindow {
		cfg.SyncWindow = DefaultSyncWindow
	}
	if cfg.SyncRate <= 0 {
		cfg.SyncRate = DefaultSyncRate
	}
	cfg.Bus = notify.Or(cfg.Bus)
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	sched := cfg.Schedule.withDefaults()
	cfg.Guard = cfg.Guard.withDefaults(sched.Min)
	i := &Importer{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, sched: sched, metrics: newPollMetrics(cfg.Registerer),
		wake: make(chan struct{}, 1), done: make(chan struct{}, 1),
		hostRunning: map[string]int{}, queued: map[string][]*store.Calendar{},
		accountClaimed: map[string]int{},
		inflight:       map[string]bool{}, again: map[string]bool{},
		waiters: map[string][]chan *Result{}, fetching: map[string]*pollRun{}, succeeded: map[string]*store.Calendar{},
		pinged: map[string]time.Time{}, synced: map[string]time.Time{},
		syncTAT: map[string]time.Time{},
	}
	cfg.Bus.PollsDue.Subscribe(func(notify.Due) { i.Notify() })
	return i
}

// changed publishes that a poll stored changes to a calendar.
func (i *Importer) changed(accountID, calendarID string) {
	i.cfg.Bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: calendarID})
}

// Notify tells the scheduler that a poll may have become due (a calendar
// was created, a sync was requested). It never blocks.
func (i *Importer) Notify() {
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

// safetyPoll bounds the scheduler's sleep, for polls made due by another
// node or process.
const safetyPoll = 5 * time.Second

// Start runs the scheduler until Stop or ctx ends.
func (i *Importer) Start(ctx context.Context) error {
	i.loop.Go(ctx, i.schedule)
	return nil
}

// Stop ends the scheduler and waits for polls in flight (their requests are
// cancelled). It is safe to call more than once, and before Start.
func (i *Importer) Stop(context.Context) {
	i.loop.Stop()
	i.polls.Wait()
}

// schedule starts the polls that are due whenever a slot is free, a poll
// is requested, or the next one falls due.
func (i *Importer) schedule(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var st dispatchState
	force := true
	for {
		timer.Reset(i.dispatch(ctx, force, &st))
		select {
		case <-ctx.Done():
			return
		case <-i.wake:
			force = true
		case <-i.done:
			force = false
		case <-timer.C:
			force = true
		}
	}
}

// dispatch claims due calendars for the free slots, starts their polls and
// returns how long the scheduler may sleep. A dispatch that is not forced
// (a poll ended, so a slot is free) skips the claim while the last one
// left nothing claimable: nothing due at all until its wake-up time, or
// nothing due but on the same busy hosts. At a steady 150 polls/s, or with
// one busy host and a backlog, every ending poll would otherwise cost a
// claim that finds nothing.
func (i *Importer) dispatch(ctx context.Context, force bool, st *dispatchState) time.Duration {
	i.mu.Lock()
	free := i.cfg.Concurrency - i.running - i.nQueue
	var exclude []string
	for h, n := range i.hostRunning {
		if n+len(i.queued[h]) >= i.cfg.PerHost {
			exclude = append(exclude, h)
		}
	}
	// One claim may take all its calendars from the account nearest its
	// share, so it takes no more than that account's room.
	var excludeAccounts []string
	limit := free
	for a, n := range i.accountClaimed {
		if n >= i.cfg.PerAccount {
			excludeAccounts = append(excludeAccounts, a)
		} else {
			limit = min(limit, i.cfg.PerAccount-n)
		}
	}
	limit = min(limit, i.cfg.PerAccount)
	i.mu.Unlock()
	if free <= 0 {
		return safetyPoll // a finishing poll wakes the loop
	}
	slices.Sort(exclude)
	slices.Sort(excludeAccounts)
	now := i.cfg.Now()
	if !force && now.Before(st.skipUntil) &&
		(st.nothingDue || slices.Equal(exclude, st.skipExclude) && slices.Equal(excludeAccounts, st.skipAccounts)) {
		return st.skipUntil.Sub(now)
	}
	st.skipUntil = time.Time{}
	cals, err := i.store.ClaimPolls(ctx, store.ClaimPollsParams{
		Now: now, Limit: limit, Lease: i.cfg.Lease, ExcludeHosts: exclude, ExcludeAccounts: excludeAccounts,
	})
	if err != nil {
		if ctx.Err() == nil {
			i.log.Error("claim polls failed", "error", err)
		}
		return time.Second
	}
	for _, c := range cals {
		i.enqueue(ctx, c)
	}
	if len(cals) == limit {
		return 0 // more may be due
	}
	at, ok, err := i.store.NextPollAt(ctx)
	if err != nil {
		if ctx.Err() == nil {
			i.log.Error("next poll time failed", "error", err)
		}
		return time.Second
	}
	switch d := at.Sub(i.cfg.Now()); {
	case !ok || d > 0:
		// Nothing is due, on any host, before the wake-up.
		wait := safetyPoll
		if ok {
			wait = min(d, safetyPoll)
		}
		st.skipUntil, st.nothingDue = now.Add(wait), true
		return wait
	case len(exclude) == 0 && len(excludeAccounts) == 0:
		// It became due after the claim looked: claim again at once.
		return 0
	default:
		// Due, but perhaps on a busy host or of a busy account: a
		// finishing poll wakes the loop; look again soon in case it is
		// on another host.
		if len(cals) == 0 {
			st.skipUntil, st.nothingDue = now.Add(hostBusyRetry), false
			st.skipExclude, st.skipAccounts = exclude, excludeAccounts
		}
		return hostBusyRetry
	}
}

// dispatchState is what the scheduler loop remembers between dispatches.
type dispatchState struct {
	// Until skipUntil, an unforced dispatch need not claim: nothing is
	// due (nothingDue), or only calendars of the busy hosts skipExclude
	// and busy accounts skipAccounts.
	skipUntil    time.Time
	nothingDue   bool
	skipExclude  []string
	skipAccounts []string
}

// hostBusyRetry is how soon the scheduler looks again when a due poll may
// be waiting for its host's limit.
const hostBusyRetry = 100 * time.Millisecond

// enqueue starts a claimed poll, or queues it behind its host's limit.
func (i *Importer) enqueue(ctx context.Context, c *store.Calendar) {
	host := store.SourceHost(c.SourceURL)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.inflight[c.ID] = true
	i.accountClaimed[c.AccountID]++
	if i.hostRunning[host] >= i.cfg.PerHost {
		i.queued[host] = append(i.queued[host], c)
		i.nQueue++
		return
	}
	i.startLocked(ctx, c, host)
}

func (i *Importer) startLocked(ctx context.Context, c *store.Calendar, host string) {
	i.running++
	i.hostRunning[host]++
	i.polls.Add(1)
	go func() {
		defer i.polls.Done()
		i.poll(ctx, c)
		i.mu.Lock()
		delete(i.inflight, c.ID)
		again := i.again[c.ID]
		delete(i.again, c.ID)
		i.running--
		if i.hostRunning[host]--; i.hostRunning[host] == 0 {
			delete(i.hostRunning, host)
		}
		if i.accountClaimed[c.AccountID]--; i.accountClaimed[c.AccountID] == 0 {
			delete(i.accountClaimed, c.AccountID)
		}
		if q := i.queued[host]; len(q) > 0 && ctx.Err() == nil {
			next := q[0]
			if i.queued[host] = q[1:]; len(i.queued[host]) == 0 {
				delete(i.queued, host)
			}
			i.nQueue--
			i.startLocked(ctx, next, host)
		}
		i.mu.Unlock()
		if again {
			i.Notify()
			return
		}
		select {
		case i.done <- struct{}{}:
		default:
		}
	}()
}

// requested notes that a poll of calendarID was requested and wakes the
// scheduler.
func (i *Importer) requested(calendarID string) {
	i.mu.Lock()
	if i.inflight[calendarID] {
		i.again[calendarID] = true
	}
	i.mu.Unlock()
	i.Notify()
}

// RunOnce claims the calendars due now and polls them, concurrently within
// the limits, and returns how many it polled. It is the scheduler's work
// without the loop, for tests and tools.
func (i *Importer) RunOnce(ctx context.Context) (int, error) {
	cals, err := i.store.ClaimPolls(ctx, store.ClaimPollsParams{
		Now: i.cfg.Now(), Limit: i.cfg.Concurrency, Lease: i.cfg.Lease,
	})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range cals {
		wg.Go(func() { i.poll(ctx, c) })
	}
	wg.Wait()
	return len(cals), nil
}

// Sync requests an immediate poll of an imported calendar; requests within
// SyncWindow of the last one share one poll at the end of the window.
func (i *Importer) Sync(ctx context.Context, accountID, calendarID string) error {
	if err := i.allowSync(accountID); err != nil {
		return err
	}
	c, err := i.store.Calendar(ctx, accountID, calendarID)
	if err != nil {
		return err
	}
	if c.Kind != store.KindImported {
		return ErrNotImported
	}
	i.mu.Lock()
	at, _ := i.windowLocked(i.synced, calendarID, i.cfg.SyncWindow)
	i.mu.Unlock()
	return i.requestPoll(ctx, accountID, calendarID, at)
}

// allowSync applies the account's sync rate: it returns a RateLimited fault
// when the account has used up its burst.
func (i *Importer) allowSync(accountID string) error {
	interval := time.Second / time.Duration(i.cfg.SyncRate)
	burst := 2 * time.Duration(i.cfg.SyncRate) * interval
	now := i.cfg.Now()
	i.mu.Lock()
	defer i.mu.Unlock()
	tat := i.syncTAT[accountID]
	if tat.Before(now) {
		tat = now
	}
	if wait := tat.Add(interval).Sub(now) - burst; wait > 0 {
		return rateLimited(wait)
	}
	i.syncTAT[accountID] = tat.Add(interval)
	// Forget accounts whose burst is whole again, so the map stays small.
	if len(i.syncTAT) > 1024 {
		for a, t := range i.syncTAT {
			if !t.After(now) {
				delete(i.syncTAT, a)
			}
		}
	}
	return nil
}

// requestPoll asks the store for a poll of the calendar at the given time
// and wakes the scheduler.
func (i *Importer) requestPoll(ctx context.Context, accountID, calendarID string, at time.Time) error {
	if err := i.store.RequestPoll(ctx, accountID, calendarID, at); err != nil {
		return err
	}
	i.requested(calendarID)
	return nil
}

// windowLocked coalesces requests for polls of one calendar, at most one
// per window: it returns when the requested poll should run (now, or the
// end of the window of the last request) and whether a request for that
// time was already made. last remembers the requests; i.mu must be held.
//
// Syncs request again even then: the store keeps the earliest request of
// a calendar that is not being polled and a claim clears it, so a claim
// between two requests could otherwise leave the second unserved. The
// write is small; what the window bounds is the fetches.
func (i *Importer) windowLocked(last map[string]time.Time, calendarID string, window time.Duration) (time.Time, bool) {
	now := i.cfg.Now()
	at := now
	if prev, ok := last[calendarID]; ok && now.Before(prev.Add(window)) {
		if prev.After(now) {
			return prev, true
		}
		at = prev.Add(window)
	}
	last[calendarID] = at
	// Forget calendars whose window has passed, so the map stays small.
	if len(last) > 1024 {
		for k, t := range last {
			if now.Sub(t) > window {
				delete(last, k)
			}
		}
	}
	return at, false
}

// SyncWait requests an immediate poll and waits for its outcome: a poll
// whose fetch starts after the request, so it sees the feed as it is now.
// Requests within SyncWindow of the last one share one poll at the end of
// the window. The scheduler must be running.
func (i *Importer) SyncWait(ctx context.Context, accountID, calendarID string) (*Result, error) {
	if err := i.allowSync(accountID); err != nil {
		return nil, err
	}
	return i.pollWait(ctx, accountID, calendarID)
}

// Refresh brings an imported calendar up to date for the check of a
// booking (holds), under the rule of manual syncs (issue 18): a calendar
// that a poll fetched successfully less than SyncWindow ago is fresh as it
// is (StatusRecent, no fetch); else a poll of it that is fetching on this
// node is joined; else one is requested, at most one per SyncWindow per
// calendar (shared with SyncWait), and waited for. So however many holds
// an account places, each source is fetched at most about once a
// SyncWindow per node, and Concurrency, PerHost and PerAccount bound the
// fetches as they bound every poll.
//
// Refresh is not counted against the account's SyncRate: the window
// already bounds each source's fetches, PerAccount keeps the account's
// polls to its share of the slots, and a hold must not be refused, or
// checked against a stale source, because the account synced other
// calendars.
func (i *Importer) Refresh(ctx context.Context, accountID, calendarID string) (*Result, error) {
	c, err := i.importedCalendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	now := i.cfg.Now()
	if i.recent(c, now) {
		return &Result{Status: StatusRecent, Calendar: c}, nil
	}
	ch := make(chan *Result, 1)
	i.mu.Lock()
	// A poll of this node may have succeeded since the read, or be
	// fetching: both are looked at under i.mu with the waiter's
	// registration, so that no poll slips in between and leaves the
	// caller for the next window.
	if last := i.succeeded[calendarID]; last != nil && i.recent(last, now) {
		i.mu.Unlock()
		return &Result{Status: StatusRecent, Calendar: last}, nil
	}
	if run := i.fetching[calendarID]; run != nil {
		run.waiters = append(run.waiters, ch)
		i.mu.Unlock()
		return waitResult(ctx, calendarID, ch)
	}
	at := i.waitLocked(calendarID, ch)
	i.mu.Unlock()
	return i.requestWait(ctx, accountID, calendarID, at, ch)
}

// recent reports whether a poll fetched c successfully less than
// SyncWindow before now.
func (i *Importer) recent(c *store.Calendar, now time.Time) bool {
	last := c.Import.LastSuccessAt
	return !last.IsZero() && now.Sub(last) < i.cfg.SyncWindow
}

// rememberSuccessLocked keeps c, just polled successfully, for Refresh,
// forgetting calendars whose window has passed so that the map stays
// small. i.mu must be held.
func (i *Importer) rememberSuccessLocked(c *store.Calendar) {
	i.succeeded[c.ID] = c
	if len(i.succeeded) > 1024 {
		now := i.cfg.Now()
		for id, k := range i.succeeded {
			if !i.recent(k, now) {
				delete(i.succeeded, id)
			}
		}
	}
}

// pollRun is a poll that is fetching and the callers waiting for its
// outcome.
type pollRun struct {
	waiters []chan *Result
}

// importedCalendar returns an account's imported calendar, or
// ErrNotImported for a native one.
func (i *Importer) importedCalendar(ctx context.Context, accountID, calendarID string) (*store.Calendar, error) {
	c, err := i.store.Calendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	if c.Kind != store.KindImported {
		return nil, ErrNotImported
	}
	return c, nil
}

// pollWait requests a poll of the calendar at most once per SyncWindow and
// waits for the outcome of a poll whose fetch starts after the request.
func (i *Importer) pollWait(ctx context.Context, accountID, calendarID string) (*Result, error) {
	if _, err := i.importedCalendar(ctx, accountID, calendarID); err != nil {
		return nil, err
	}
	ch := make(chan *Result, 1)
	i.mu.Lock()
	at := i.waitLocked(calendarID, ch)
	i.mu.Unlock()
	return i.requestWait(ctx, accountID, calendarID, at, ch)
}

// waitLocked registers ch (buffered, so that a poll never blocks on a
// caller that gave up) for the next poll of the calendar to start, and
// returns when that poll should be requested for: at most one per
// SyncWindow. i.mu must be held.
func (i *Importer) waitLocked(calendarID string, ch chan *Result) time.Time {
	i.waiters[calendarID] = append(i.waiters[calendarID], ch)
	at, _ := i.windowLocked(i.synced, calendarID, i.cfg.SyncWindow)
	return at
}

// requestWait requests a poll of the calendar at the given time and waits
// for the outcome on ch, registered by waitLocked.
func (i *Importer) requestWait(ctx context.Context, accountID, calendarID string, at time.Time, ch chan *Result) (*Result, error) {
	defer i.dropWaiter(calendarID, ch)
	if err := i.requestPoll(ctx, accountID, calendarID, at); err != nil {
		return nil, err
	}
	return waitResult(ctx, calendarID, ch)
}

// waitResult waits for a poll's outcome on ch.
func waitResult(ctx context.Context, calendarID string, ch chan *Result) (*Result, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the poll of %s: %w", calendarID, context.Cause(ctx))
	}
}

func (i *Importer) dropWaiter(calendarID string, ch chan *Result) {
	i.mu.Lock()
	defer i.mu.Unlock()
	ws := i.waiters[calendarID]
	for k, w := range ws {
		if w == ch {
			ws = append(ws[:k], ws[k+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(i.waiters, calendarID)
	} else {
		i.waiters[calendarID] = ws
	}
}

// Ping handles an iCal Hooks ping from upstream (HEAD /hooks/in/{token}):
// the calendar's feed changed, so it is polled now — or, when a ping-
// triggered poll was requested less than PingWindow ago, once at the end
// of that window, however many pings arrive in between. An unknown token
// is store.ErrNotFound.
func (i *Importer) Ping(ctx context.Context, token string) error {
	c, err := i.store.CalendarByHookToken(ctx, token)
	if err != nil {
		return err
	}
	i.mu.Lock()
	at, pending := i.windowLocked(i.pinged, c.ID, i.cfg.PingWindow)
	i.mu.Unlock()
	if pending {
		return nil // a coalesced poll is already requested
	}
	return i.requestPoll(ctx, c.AccountID, c.ID, at)
}

// bigBody is the body size from which a poll collects its garbage when a
// phase ends, after the read and after the parse (see pollCalendar): the
// collector paces the heap by what was live at its last cycle, so without
// these a big body's read and parse, which leave tens of MB of garbage,
// would let the next phase's heap grow to twice their peak.
const bigBody = 4 << 20

// maxConflictRetries bounds how often a poll re-reads the stored events
// after another write moved the calendar's version under it.
const maxConflictRetries = 3

// poll fetches, diffs and records one claimed calendar, and hands the
// outcome to any waiters.
func (i *Importer) poll(ctx context.Context, c *store.Calendar) {
	run := &pollRun{}
	i.mu.Lock()
	run.waiters = i.waiters[c.ID]
	delete(i.waiters, c.ID)
	i.fetching[c.ID] = run
	i.mu.Unlock()

	var span trace.Span
	if i.cfg.Tracer != nil {
		ctx, span = i.cfg.Tracer.Start(ctx, "import poll", trace.WithAttributes(
			attribute.String("calhook.calendar_id", c.ID), attribute.String("calhook.account_id", c.AccountID)))
		ctx = store.WithTrace(ctx, tracing.Parent(ctx))
	}
	res, err := i.pollCalendar(ctx, c)
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
		// What stops a poll (a store write that failed, conflicts that
		// did not settle) is recorded and notified like a failed fetch,
		// never only logged; only when even that fails is it logged.
		res, err = i.failed(ctx, c, err)
	}
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
			i.log.Error("poll failed", "calendar", c.ID, "error", err)
		}
		res = &Result{Status: StatusError, Err: err, Message: quietError(err), Calendar: c}
	}
	if ctx.Err() == nil && !errors.Is(res.Err, store.ErrNotFound) {
		i.metrics.observe(res)
	}
	if span != nil {
		span.SetAttributes(attribute.String("calhook.outcome", pollOutcome(res)),
			attribute.Int("calhook.created", res.Created), attribute.Int("calhook.updated", res.Updated),
			attribute.Int("calhook.deleted", res.Deleted))
		if res.Err != nil {
			span.SetStatus(codes.Error, res.Err.Error())
		}
		span.End()
	}
	i.mu.Lock()
	if i.fetching[c.ID] == run {
		delete(i.fetching, c.ID)
	}
	if res.Status != StatusError && res.Calendar != nil {
		i.rememberSuccessLocked(res.Calendar)
	}
	waiters := run.waiters
	i.mu.Unlock()
	for _, w := range waiters {
		w <- res
	}
}

// pollCalendar is one poll. It returns an error only when the outcome could
// not be recorded; a feed that failed is a Result with StatusError.
func (i *Importer) pollCalendar(ctx context.Context, c *store.Calendar) (*Result, error) {
	fctx, cancel := context.WithTimeout(ctx, i.cfg.Timeout)
	defer cancel()
	req := fetchRequest{
		url: c.SourceURL, etag: c.Import.ETag, lastModified: c.Import.LastModified, maxBytes: i.cfg.MaxBytes,
		idle: i.cfg.IdleTimeout,
	}
	if c.Import.Held != nil {
		// A held deletion is confirmed only by a body that still lacks
		// the events: ask for one, not for a 304.
		req.etag, req.lastModified = "", ""
	}
	if i.cfg.PublicURL != "" && c.Import.HookToken != "" {
		req.hookURL = i.cfg.PublicURL + "/hooks/in/" + url.PathEscape(c.Import.HookToken)
	}
	started := i.cfg.Now()
	f, err := fetch(fctx, i.cfg.Client, req, started)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // shutting down: the lease brings it back
		}
		return i.failed(ctx, c, err)
	}
	now := i.cfg.Now()
	st := c.Import
	st.LastSyncAt, st.LastSuccessAt, st.LastError, st.Failures = now, now, "", 0
	if f.notModified {
		if f.etag != "" {
			st.ETag = f.etag
		}
		return i.record(ctx, c, st, f.maxAge, StatusNotModified, nil)
	}
	st.ETag, st.LastModified = f.etag, f.lastModified
	hash := bodyHash(f.body)
	if hash == c.Import.BodyHash && c.Import.Held == nil {
		return i.record(ctx, c, st, f.maxAge, StatusUnchanged, nil)
	}
	bodySize := len(f.body)
	if bodySize >= bigBody {
		// Reading a body of unknown length left its grown-out buffers
		// as garbage, as big as the body. Collecting them now paces the
		// parse by the body it reads rather than by the read's peak.
		runtime.GC()
	}
	parseStart := time.Now()
	events, skipped, skippedKeys, err := parseFeed(f.body, c, i.cfg.MaxBytes, i.log)
	i.metrics.observeParse(time.Since(parseStart))
	f.body = "" // the events hold copies of what they need: the body can go before the writes
	if err != nil {
		return i.failed(ctx, c, err)
	}
	if bodySize >= bigBody {
		// The body and the parser's state are garbage now. Collecting
		// them before the diff and the writes lets the collector pace
		// those by what the poll still holds, its events, instead of by
		// the parse's peak, which would let the heap grow to twice that.
		runtime.GC()
	}
	if len(events) > i.cfg.MaxEvents {
		return i.failed(ctx, c, &FetchError{Msg: fmt.Sprintf(
			"the feed has %d events, more than the %d an imported calendar may hold", len(events), i.cfg.MaxEvents)})
	}
	st.BodyHash = hash
	st.Skipped = skipped
	for attempt := 0; ; attempt++ {
		fc, err := i.store.FeedContent(ctx, c.AccountID, c.ID)
		if err != nil {
			return nil, fmt.Errorf("read events of %s: %w", c.ID, err)
		}
		d := diffEvents(fc.Events, events, skippedKeys, now)
		plan := i.cfg.Guard.plan(c.Import.Held, d.delete, len(fc.Events), now)
		d.delete, st.Held = plan.apply, plan.held
		a := &applied{version: fc.Version, diff: d, heldStarted: plan.started}
		if d.empty() {
			return i.record(ctx, c, st, f.maxAge, StatusUnchanged, a)
		}
		st.LastChangeAt = now
		res, err := i.record(ctx, c, st, f.maxAge, StatusChanged, a)
		if errors.Is(err, store.ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		return res, err
	}
}

// parseFeed parses a feed body into the events to store for calendar c,
// and those skipped (listed, and all their keys): an event calhook cannot
// represent (checkEvent) is left out with a reason rather than failing the
// whole calendar. A body that is not a well-formed calendar is an error,
// so that it never yields deletions. The events hold no part of body.
func parseFeed(body string, c *store.Calendar, maxBytes int64, log *slog.Logger) ([]feedEvent, *store.SkippedEvents, map[eventKey]bool, error) {
	var (
		events []feedEvent
		// bad and exDates note, by index, the events that cannot be
		// stored and those with more EXDATEs than kept; a duplicate
		// that wins replaces its index's note.
		bad     map[int]error
		exDates map[int]int
		names   = map[string]string{}
	)
	_, err := ical.ParseEvents(body, ical.ParseOptions{MaxBytes: maxBytes, DefaultZone: zone(c.TimeZone)}, func(k, most int, ev *ical.Event) {
		if events == nil {
			events = make([]feedEvent, 0, most)
		}
		f := newFeedEvent(ev, names)
		if k == len(events) {
			events = append(events, f)
		} else {
			events[k] = f
			delete(bad, k)
			delete(exDates, k)
		}
		if err := checkEvent(&f, ev.RDates); err != nil {
			if bad == nil {
				bad = map[int]error{}
			}
			bad[k] = err
		}
		if n := len(ev.ExDates); n > calendar.MaxExDates {
			if exDates == nil {
				exDates = map[int]int{}
			}
			exDates[k] = n
		}
	})
	if err != nil {
		return nil, nil, nil, &FetchError{Msg: "unparsable feed: " + strings.TrimPrefix(err.Error(), "ical: "), Err: err}
	}
	for k := range events {
		if n, ok := exDates[k]; ok {
			log.Warn("imported event has too many EXDATEs: only the latest are kept",
				"calendar", c.ID, "account", c.AccountID, "uid", events[k].uid(), "exdates", n, "kept", calendar.MaxExDates)
		}
	}
	if len(bad) == 0 {
		return events, nil, nil, nil
	}
	skipped, keys := &store.SkippedEvents{}, map[eventKey]bool{}
	ok := events[:0]
	for k := range events {
		e := &events[k]
		err, isBad := bad[k]
		if !isBad {
			ok = append(ok, *e)
			continue
		}
		keys[e.key()] = true
		skipped.Count++
		if len(skipped.Events) < maxSkippedListed {
			skipped.Events = append(skipped.Events, store.SkippedEvent{
				UID: e.uid(), RecurrenceID: e.recurrenceID(), Reason: err.Error(),
			})
		}
	}
	clear(events[len(ok):])
	return ok, skipped, keys, nil
}

// bodyHash is the hex SHA-256 of a feed body, hashed in pieces so the
// body is never copied whole.
func bodyHash(body string) string {
	h := sha256.New()
	const piece = 64 << 10
	buf := make([]byte, 0, piece)
	for len(body) > 0 {
		n := min(piece, len(body))
		buf = append(buf[:0], body[:n]...)
		h.Write(buf)
		body = body[n:]
	}
	return hex.EncodeToString(h.Sum(nil))
}

// applied is the event part of a poll's outcome.
type applied struct {
	version int64
	diff    *diff
	// heldStarted reports that the poll started holding deletes.
	heldStarted bool
}

// failed records a failed poll: the error, a backoff and, at the start of
// an outage, calendar.sync.failed. Events are never touched.
func (i *Importer) failed(ctx context.Context, c *store.Calendar, fetchErr error) (*Result, error) {
	now := i.cfg.Now()
	st := c.Import
	msg := quietError(fetchErr)
	st.LastSyncAt, st.LastError, st.Failures = now, msg, c.Import.Failures+1
	next := i.sched.Backoff(c.PollInterval, st.Failures)
	var fe *FetchError
	if errors.As(fetchErr, &fe) && fe.RetryAfter > 0 {
		next = Later(next, fe.RetryAfter, maxRetryAfter)
	}
	st.NextPollAt = now.Add(i.sched.Jittered(next, i.cfg.Rand()))
	p := &store.ApplyImportParams{AccountID: c.AccountID, CalendarID: c.ID, State: st, Now: now}
	if c.Import.Failures == 0 {
		p.SyncChange = store.ChangeSyncFailed
	}
	changes, err := i.store.ApplyImport(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("record failed poll of %s: %w", c.ID, err)
	}
	if len(changes) > 0 {
		i.changed(c.AccountID, c.ID)
	}
	// The tenant reads msg; the operator gets the cause in full (the
	// address a name resolved to, the dial error).
	log := i.log.With("calendar", c.ID, "account", c.AccountID, "error", fetchErr, "failures", st.Failures, "next", st.NextPollAt)
	if fe != nil && fe.Err != nil {
		log = log.With("cause", fe.Err.Error())
	}
	if fe == nil {
		log.Warn("poll failed")
	} else {
		log.Info("poll failed")
	}
	return &Result{Status: StatusError, Err: fetchErr, Message: msg, Calendar: after(c, st)}, nil
}

// internalPollError is the lastError of a poll that failed inside calhook
// (a store write refused, conflicts that did not settle): the detail is
// for the operator's log.
const internalPollError = "internal error: the poll could not be recorded; it is retried"

// quietError is what the calendar's owner reads about a failed poll: a
// FetchError's quiet message, or internalPollError.
func quietError(err error) string {
	if fe := (*FetchError)(nil); errors.As(err, &fe) {
		return fe.Msg
	}
	return internalPollError
}

// record stores a successful poll.
func (i *Importer) record(ctx context.Context, c *store.Calendar, st store.ImportState, maxAge time.Duration, status string, a *applied) (*Result, error) {
	now := st.LastSyncAt
	next := i.sched.Healthy(c.PollInterval, st.LastChangeAt, c.CreatedAt, now)
	next = Later(next, maxAge, i.sched.ceiling(i.sched.base(c.PollInterval)))
	st.NextPollAt = now.Add(i.sched.Jittered(next, i.cfg.Rand()))
	if st.Held != nil {
		// The confirming fetch comes when the delay is over.
		if due := st.Held.Since.Add(i.cfg.Guard.Delay); due.After(now) && due.Before(st.NextPollAt) {
			st.NextPollAt = due
		}
	}
	p := &store.ApplyImportParams{AccountID: c.AccountID, CalendarID: c.ID, State: st, Now: now}
	if c.Import.Failures > 0 {
		p.SyncChange = store.ChangeSyncRecovered
	}
	res := &Result{Status: status}
	if st.Held != nil {
		res.Held = len(st.Held.Events)
	}
	if a != nil {
		p.Version, p.HeldChange = a.version, a.heldStarted
		res.Created, res.Updated, res.Deleted = len(a.diff.create), len(a.diff.update), len(a.diff.delete)
		if err := i.applyChunks(ctx, c, p, a.diff); err != nil {
			return nil, fmt.Errorf("record poll of %s: %w", c.ID, err)
		}
	}
	changes, err := i.store.ApplyImport(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("record poll of %s: %w", c.ID, err)
	}
	if len(changes) > 0 {
		i.changed(c.AccountID, c.ID)
	}
	st.EventCount = c.Import.EventCount + res.Created - res.Deleted
	res.Calendar = after(c, st)
	return res, nil
}

// applyChunks writes the events of d, a big import, in chunks of at most
// ChunkSize, each its own transaction with its changes, so that other
// writers (on SQLite's one writer, every other account) get in between;
// the chunk size adapts to ChunkTime, starting from where the last big
// import left it. It leaves the last chunk in p for the write that
// records the poll. Deletes go first, then updates, then creates, as in
// one write; the store.Events of a chunk are made for it. A poll that
// stops between chunks has recorded no sync state: its calendar is
// polled again when the lease ends, and that poll diffs against what the
// chunks wrote, so it writes only the rest and each change happens once.
//
// A written chunk makes the store forget the calendar's validators; so
// does c, the claimed calendar, so that a failed poll does not record
// them again.
func (i *Importer) applyChunks(ctx context.Context, c *store.Calendar, p *store.ApplyImportParams, d *diff) error {
	n := i.cfg.ChunkSize
	if last := int(i.chunk.Load()); last > 0 {
		n = min(last, n)
	}
	defer func() { i.chunk.Store(int64(n)) }()
	del, upd, cre := d.delete, d.update, d.create
	for len(del)+len(upd)+len(cre) > n {
		chunk := &store.ApplyImportParams{
			AccountID: p.AccountID, CalendarID: p.CalendarID, Version: p.Version, Now: p.Now, Partial: true,
			// Each chunk renews the lease, so that no other poller takes
			// the calendar while this poll still writes.
			LeaseUntil: i.cfg.Now().Add(i.cfg.Lease),
		}
		left := n
		var us []update
		var cs []*feedEvent
		chunk.Delete, del = cut(del, &left)
		us, upd = cut(upd, &left)
		cs, cre = cut(cre, &left)
		chunk.Update, chunk.Create = d.storeUpdates(c, us), d.storeCreates(c, cs)
		start := time.Now()
		changes, err := i.store.ApplyImport(ctx, chunk)
		if err != nil {
			return err
		}
		n = nextChunk(n, time.Since(start), i.cfg.ChunkTime, i.cfg.ChunkSize)
		c.Import.ETag, c.Import.LastModified, c.Import.BodyHash = "", "", ""
		if len(changes) > 0 {
			i.changed(p.AccountID, p.CalendarID)
		}
		p.Version++ // each write of events bumps the version once
	}
	p.Delete, p.Update, p.Create = del, d.storeUpdates(c, upd), d.storeCreates(c, cre)
	return nil
}

// nextChunk is the size of the chunk after one of n events that took
// took: half when it took longer than budget, twice when less than half
// of it, within [MinChunkSize, most].
func nextChunk(n int, took, budget time.Duration, most int) int {
	switch {
	case took > budget:
		n /= 2
	case took < budget/2:
		n *= 2
	}
	return max(min(n, most), min(MinChunkSize, most))
}

// cut takes up to *left events off the front of es: it returns them and
// the rest, and counts them off *left.
func cut[E any](es []E, left *int) (taken, rest []E) {
	k := min(*left, len(es))
	*left -= k
	return es[:k:k], es[k:]
}

// after returns c with the sync state a poll left it in.
func after(c *store.Calendar, st store.ImportState) *store.Calendar {
	out := *c
	out.Import = st
	return &out
}

// zone returns the calendar's zone for floating times, or UTC.
func zone(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}
