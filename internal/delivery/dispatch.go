package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/tracing"
	"github.com/calhook/calhook/webhook"
)

// DispatchStore is the delivery queue a Dispatcher claims messages from
// and records attempts in.
type DispatchStore interface {
	ClaimMessages(ctx context.Context, p store.ClaimParams) (*store.Claim, error)
	ReleaseMessages(ctx context.Context, ids []string, at time.Time) error
	RecordAttempts(ctx context.Context, results []*store.AttemptResult, p store.RecordParams) ([]string, error)
	RecoverClaims(ctx context.Context, now time.Time) (int64, error)
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Store  DispatchStore
	Client *http.Client
	// PingClient sends iCal Hooks pings; nil uses Client.
	PingClient *http.Client
	Logger     *slog.Logger
	// Now is the clock; tests inject one to drive retries without sleeping.
	Now   func() time.Time
	Retry RetryPolicy
	// Workers bounds the deliveries in flight; PerSubscription is the
	// ceiling of those to one subscription (one host for pings), so a
	// slow or dead endpoint cannot take every worker. Below the ceiling
	// each one's limit adapts to how it answers (see adaptive): it grows
	// while answers come back fast and shrinks on timeouts, 429 and 503
	// and rising latency. As many claimed deliveries again may wait
	// for a worker, so that a freed worker never waits for a claim and a
	// claim is worth its cost.
	Workers         int
	PerSubscription int
	// Timeout bounds one attempt; a slower answer is a failure.
	Timeout time.Duration
	// DisableAfter disables a subscription whose attempts all failed for
	// this long.
	DisableAfter time.Duration
	// HostRate is the most iCal Hooks pings per second to one host.
	HostRate int
	// WebhookHostRate is the most webhook deliveries per second to one
	// host, across subscriptions and accounts; 0 is unlimited. Over it,
	// messages are delayed, never dropped. A FanOut handing messages to
	// this dispatcher must then be HostLimited.
	WebhookHostRate int
	UserAgent       string
	// FlushEvery is how long attempt results wait to be recorded together.
	FlushEvery time.Duration
	// Registerer receives the delivery metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Rand is the jitter source; nil seeds one.
	Rand *rand.Rand
	// Bus wakes the dispatcher when messages may be due (MessagesDue);
	// nil leaves waking to Notify.
	Bus *notify.Bus
	// Tracer traces each attempt as a child of its change's write (the
	// message's trace context), and sends the attempt's traceparent to the
	// receiver; nil is tracing off.
	Tracer *tracing.Tracer
}

// Dispatcher delivers queued messages. It claims due messages in batches,
// sends each on its own goroutine within the worker bounds, and records
// the outcomes in batches.
type Dispatcher struct {
	cfg   DispatcherConfig
	log   *slog.Logger
	lease time.Duration

	wake  chan struct{}
	freed chan struct{}
	// slots holds a token per delivery being sent (Workers at most), and
	// limits bounds, and adapts, the deliveries being sent to each
	// target key (PerSubscription at most); a subscription's limit is
	// kept while the dispatcher runs, a ping host's while it has
	// deliveries.
	slots  chan struct{}
	limits map[target]*adaptive

	// inflight and total count the deliveries being sent or waiting for
	// a worker, per target key and in all: at most twice the bounds.
	mu       sync.Mutex
	inflight map[target]int
	total    int
	rnd      *rand.Rand

	results  chan *store.AttemptResult
	released chan string

	loop         lifecycle.Loop
	cancelSends  context.CancelFunc
	recorderDone chan struct{}
	sends        sync.WaitGroup
	stopOnce     sync.Once
	// sendCtx is the context of deliveries; running is true between
	// Start and Stop, while reservations are taken (under mu).
	sendCtx context.Context
	running bool

	metrics *dispatchMetrics
}

type dispatchMetrics struct {
	// attempts and pings count attempts by outcome and status class, in
	// counters resolved once (see outcomeIndex, classIndex).
	attempts, pings [3][len(statusClasses)]prometheus.Counter
	duration        prometheus.Histogram
	// latency is the time from a change to its delivery: of webhooks
	// [0], of pings [1].
	latency  [2]prometheus.Observer
	inflight prometheus.Gauge
}

// statusClasses label attempts by their answer: a status class, or the
// failure that left no answer.
var statusClasses = [...]string{"2xx", "3xx", "4xx", "5xx", "timeout", "network"}

// outcomes label attempts by what they came to, in outcomeIndex order.
var outcomes = [...]string{store.OutcomeDelivered, store.OutcomeRetry, store.OutcomeUndeliverable}

func outcomeIndex(o string) int {
	switch o {
	case store.OutcomeDelivered:
		return 0
	case store.OutcomeRetry:
		return 1
	}
	return 2
}

// classIndex returns the statusClasses index of an attempt's answer.
func classIndex(status int, err error) int {
	switch {
	case err == nil && status >= 200 && status < 600:
		return status/100 - 2
	case err == nil:
		return 3 // a status outside 2xx-5xx: count it with the server errors
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return 4
	}
	return 5
}

// isTimeout reports whether err says it is a timeout (as the HTTP
// client's own timeout does).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func newDispatchMetrics(reg prometheus.Registerer) *dispatchMetrics {
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calhook_webhook_attempts_total",
		Help: "Webhook delivery attempts, by outcome (delivered, retry, undeliverable) and answer (status class, timeout, network).",
	}, []string{"outcome", "class"})
	pings := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calhook_icalhooks_pings_total",
		Help: "iCal Hooks pings sent, by outcome (delivered, retry, undeliverable) and answer (status class, timeout, network).",
	}, []string{"outcome", "class"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "calhook_delivery_latency_seconds",
		Help: "Time from a change to its delivery (the 2xx of a webhook, the answer to a ping), retries included, by target (webhook, ping).",
		// 5 ms to about 4 days: first attempts and the whole retry schedule.
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 14),
	}, []string{"target"})
	m := &dispatchMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "calhook_webhook_attempt_duration_seconds", Help: "Time from sending a webhook or ping to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calhook_webhook_inflight", Help: "Webhook deliveries in flight.",
		}),
		latency: [2]prometheus.Observer{latency.WithLabelValues("webhook"), latency.WithLabelValues("ping")},
	}
	for o, outcome := range outcomes {
		for c, class := range statusClasses {
			m.attempts[o][c] = attempts.WithLabelValues(outcome, class)
			m.pings[o][c] = pings.WithLabelValues(outcome, class)
		}
	}
	if reg != nil {
		reg.MustRegister(attempts, pings, latency, m.duration, m.inflight)
	}
	return m
}

// observe counts an attempt's outcome, and the time from its change to
// its delivery.
func (m *dispatchMetrics) observe(dl *store.Delivery, res *store.AttemptResult, err error, now time.Time) {
	o, c := outcomeIndex(res.Outcome), classIndex(res.StatusCode, err)
	target := 0
	if dl.Message.HookID != "" {
		target = 1
		m.pings[o][c].Inc()
	} else {
		m.attempts[o][c].Inc()
	}
	if res.Outcome == store.OutcomeDelivered && !dl.Message.ChangedAt.IsZero() {
		m.latency[target].Observe(now.Sub(dl.Message.ChangedAt).Seconds())
	}
}

// NewDispatcher returns a Dispatcher with defaults filled in.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retry.Schedule == nil {
		cfg.Retry = DefaultRetryPolicy()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.PerSubscription <= 0 {
		cfg.PerSubscription = DefaultPerSubscription
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = 5 * 24 * time.Hour
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 2 * time.Millisecond
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	d := &Dispatcher{
		cfg: cfg, log: cfg.Logger,
		// A claim must outlive the wait for a worker (one attempt ahead of
		// it: a worker frees within Timeout), the attempt, and the wait to
		// record it, or a live delivery would be claimed twice.
		lease:    2*cfg.Timeout + 30*time.Second,
		wake:     make(chan struct{}, 1),
		freed:    make(chan struct{}, 1),
		slots:    make(chan struct{}, cfg.Workers),
		limits:   map[target]*adaptive{},
		inflight: map[target]int{},
		rnd:      cfg.Rand,
		results:  make(chan *store.AttemptResult, 4*cfg.Workers),
		released: make(chan string, 4*cfg.Workers),
	}
	if cfg.Bus != nil {
		cfg.Bus.MessagesDue.Subscribe(func(notify.Due) { d.Notify() })
	}
	d.metrics = newDispatchMetrics(cfg.Registerer)
	return d
}

// Notify tells the dispatcher that messages may be due. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher until Stop. With a single-process store,
// messages claimed by a previous run that died are due again at once
// rather than when their lease ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	n, err := d.cfg.Store.RecoverClaims(ctx, d.cfg.Now())
	if err != nil {
		return fmt.Errorf("recover claims: %w", err)
	}
	if n > 0 {
		d.log.Info("messages claimed by a previous run are due again", "messages", n)
	}
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	d.cancelSends = cancelSends
	d.mu.Lock()
	d.sendCtx, d.running = sendCtx, true
	d.mu.Unlock()
	d.recorderDone = make(chan struct{})
	go d.record()
	d.loop.Go(ctx, func(ctx context.Context) { d.claimLoop(ctx, sendCtx) })
	return nil
}

// Stop stops claiming, lets deliveries in flight finish until ctx ends,
// cancels the rest (their messages go back to the queue, no attempt
// counted), and records every outcome before it returns. It is safe to
// call more than once, and before Start.
func (d *Dispatcher) Stop(ctx context.Context) {
	d.stopOnce.Do(func() {
		if d.cancelSends == nil {
			return
		}
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
		d.loop.Stop()
		done := make(chan struct{})
		go func() { d.sends.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			d.cancelSends()
			<-done
		}
		d.cancelSends()
		close(d.results)
		<-d.recorderDone
	})
}

// claimLoop claims due messages whenever workers are free.
func (d *Dispatcher) claimLoop(ctx, sendCtx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		c, err := d.claim(ctx, sendCtx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim messages", "error", err)
		}
		if err == nil && c.asked > 0 && c.got == c.asked {
			continue // it took all it asked for: more may be due
		}
		// A finished send frees a worker; that is worth another claim
		// only if this one was short of workers or skipped subscriptions
		// at their in-flight cap. Otherwise nothing else is due before
		// the next wake-up or due time, and a claim would find nothing.
		var freed chan struct{}
		wait := pollInterval
		switch {
		case err != nil:
		case c.asked == 0:
			freed = d.freed
		default:
			if c.excluded {
				freed = d.freed
			}
			// Due already (next is not after now) means the claim left
			// due messages it may take: a rate-limited backlog beyond
			// its limit still needs its slots at once, so the loop comes
			// back after a millisecond. (A claim that saw everything it
			// may take reports the next due time after now instead, so
			// subscriptions at their cap do not spin the loop.)
			if !c.next.IsZero() {
				wait = min(max(c.next.Sub(d.cfg.Now()), time.Millisecond), pollInterval)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-freed:
		case <-timer.C:
		}
	}
}

// claimed is what one claim did: it asked the store for asked messages
// (as many as there were free workers), got got of them, and skipped
// subscriptions at their in-flight cap if excluded; the queue's next
// message is due at next.
type claimed struct {
	asked, got int
	excluded   bool
	next       time.Time
}

// claim leases as many due messages as there is room for and starts
// sending them. While deliveries are under way, it waits until there is
// room for half as many as there are workers: a claim costs the store
// about as much for one message as for dozens, and the deliveries waiting
// for a worker keep every worker busy meanwhile.
func (d *Dispatcher) claim(ctx, sendCtx context.Context) (claimed, error) {
	d.mu.Lock()
	free := 2*d.cfg.Workers - d.total
	if d.total > 0 && free < d.cfg.Workers/2 {
		free = 0
	}
	var subs, hosts []string
	for t, n := range d.inflight {
		switch {
		case n < 2*d.limits[t].current():
		case t.ping:
			hosts = append(hosts, t.id)
		default:
			subs = append(subs, t.id)
		}
	}
	d.mu.Unlock()
	c := claimed{excluded: len(subs)+len(hosts) > 0}
	if free <= 0 {
		return c, nil
	}
	c.asked = free
	now := d.cfg.Now()
	cl, err := d.cfg.Store.ClaimMessages(ctx, store.ClaimParams{
		Now: now, Limit: free, Lease: d.lease, ExcludeSubscriptions: subs, ExcludeHosts: hosts, HostRate: d.cfg.HostRate,
		WebhookHostRate: d.cfg.WebhookHostRate,
	})
	if err != nil {
		return c, err
	}
	deliveries := cl.Deliveries
	c.got, c.next = len(deliveries), cl.NextDue
	var release []string
	d.mu.Lock()
	for _, dl := range deliveries {
		if !d.reserveLocked(targetOf(dl)) {
			release = append(release, dl.Message.ID)
			continue
		}
		go d.send(sendCtx, dl)
	}
	d.mu.Unlock()
	if len(release) > 0 {
		c.excluded = true
		if err := d.cfg.Store.ReleaseMessages(ctx, release, now); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Lease is how long a claim of this dispatcher holds: a message stored
// claimed for Deliver must be leased this long.
func (d *Dispatcher) Lease() time.Duration { return d.lease }

// Reserve takes a free worker for a message to the subscription if the
// worker bounds allow one, for the fan-out to hand the message over with
// Deliver, or back with Unreserve. It reports whether it did; a
// dispatcher that is not running reserves nothing.
func (d *Dispatcher) Reserve(subscriptionID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running && d.reserveLocked(target{id: subscriptionID})
}

// reserveLocked counts a delivery to key if the bounds have room for it
// (sent or waiting), and reports whether they had. d.mu must be held.
func (d *Dispatcher) reserveLocked(key target) bool {
	lim := d.limits[key]
	if lim == nil {
		lim = newAdaptive(d.cfg.PerSubscription)
		if key.ping {
			lim = newPingLimit(d.cfg.PerSubscription)
		}
		d.limits[key] = lim
	}
	if d.total >= 2*d.cfg.Workers || d.inflight[key] >= 2*lim.current() {
		return false
	}
	d.inflight[key]++
	d.total++
	d.sends.Add(1)
	return true
}

// Unreserve gives back a reservation that will not be delivered.
func (d *Dispatcher) Unreserve(subscriptionID string) { d.done(target{id: subscriptionID}) }

// Deliver sends a message on the worker Reserve took for it. The message
// must be claimed for this dispatcher in the store (stored with its
// lease), as ClaimMessages would have.
func (d *Dispatcher) Deliver(dl *store.Delivery) {
	go d.send(d.sendCtx, dl)
}

// done frees a worker of the target key.
func (d *Dispatcher) done(key target) {
	d.mu.Lock()
	if d.inflight[key]--; d.inflight[key] <= 0 {
		delete(d.inflight, key)
		if key.ping {
			delete(d.limits, key) // hosts are many; their limits start again
		}
	}
	d.total--
	d.mu.Unlock()
	d.sends.Done()
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

// acquire waits for a worker free to send to key: first a slot of the
// key, then one of all, so a delivery waiting for its busy endpoint holds
// no worker. It reports false if ctx ended first.
func (d *Dispatcher) acquire(ctx context.Context, key target) bool {
	lim := d.limitOf(key)
	if !lim.acquire(ctx) {
		return false
	}
	select {
	case d.slots <- struct{}{}:
		d.metrics.inflight.Inc()
		return true
	case <-ctx.Done():
		lim.release()
		return false
	}
}

// release frees the slots acquire took.
func (d *Dispatcher) release(key target) {
	d.metrics.inflight.Dec()
	<-d.slots
	d.limitOf(key).release()
}

// limitOf returns the limit of key, which is there while a delivery to
// key counts.
func (d *Dispatcher) limitOf(key target) *adaptive {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.limits[key]
}

// maxSnippet is how much of a response body the attempt log keeps.
const maxSnippet = 1024

// send waits for a worker, makes one attempt and hands its outcome to the
// recorder.
func (d *Dispatcher) send(ctx context.Context, dl *store.Delivery) {
	key := targetOf(dl)
	defer d.done(key)
	m := dl.Message
	if !d.acquire(ctx, key) {
		d.released <- m.ID // shutting down: back to the queue as it was
		return
	}
	defer d.release(key)
	var span trace.Span
	if d.cfg.Tracer != nil {
		ctx, span = d.startAttempt(ctx, dl)
	}
	started := d.cfg.Now()
	res := &store.AttemptResult{
		Attempt:        store.Attempt{MessageID: m.ID, MessageSeq: m.Seq, DeliveryID: id.UUID(), AttemptedAt: started},
		SubscriptionID: m.SubscriptionID, HookID: m.HookID,
	}
	var resp *http.Response
	var err error
	if m.HookID != "" {
		resp, err = d.ping(ctx, dl)
	} else {
		resp, err = d.post(ctx, dl, res.DeliveryID, started)
	}
	res.Latency = d.cfg.Now().Sub(started)
	if err != nil && ctx.Err() != nil {
		// Shutting down: the message goes back to the queue as it was.
		if span != nil {
			span.End()
		}
		d.released <- m.ID
		return
	}
	if err != nil {
		res.Error = attemptError(err)
		// The attempt log is the tenant's to read and says only the class
		// of failure; the operator's log gets it in full.
		d.log.Info("delivery attempt failed", "message", m.ID, "account", m.AccountID, "host", dl.Host,
			"class", res.Error, "error", err)
	} else {
		res.StatusCode = resp.StatusCode
		res.Response = snippet(resp.Body)
	}
	d.metrics.duration.Observe(res.Latency.Seconds())
	d.limitOf(key).observe(res.Latency, overloaded(resp, err), started.Add(res.Latency))
	switch {
	case err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.Outcome = store.OutcomeDelivered
	case err == nil && m.HookID != "" && resp.StatusCode == http.StatusGone:
		res.Outcome = store.OutcomeUndeliverable // the consumer is gone: drop the hook
	case err == nil && m.HookID != "" && resp.StatusCode < 400:
		res.Outcome = store.OutcomeDelivered // a ping only needs to reach the consumer: 3xx counts
	case err == nil && m.HookID == "" && resp.StatusCode == http.StatusGone:
		res.Outcome = store.OutcomeUndeliverable
		res.Disable = "the endpoint answered 410 Gone"
	default:
		if res.Error == "" {
			res.Error = fmt.Sprintf("endpoint answered %d", resp.StatusCode)
		}
		d.mu.Lock()
		wait, ok := d.cfg.Retry.Next(dl.SchedulePos+1, retryAfter(resp, started), d.rnd)
		d.mu.Unlock()
		if ok {
			res.Outcome, res.NextAttemptAt = store.OutcomeRetry, started.Add(wait)
		} else {
			res.Outcome = store.OutcomeUndeliverable
		}
	}
	if m.HookID != "" && res.Outcome == store.OutcomeUndeliverable {
		d.log.Info("icalhook dropped: its pings kept failing", "hook", m.HookID, "account", m.AccountID,
			"hook_url", dl.URL, "error", res.Error)
	}
	d.metrics.observe(dl, res, err, started.Add(res.Latency))
	if span != nil {
		endAttempt(span, res)
	}
	d.results <- res
}

// overloaded reports whether an attempt's outcome says the receiver has
// more than it can take: a timeout or failed connection, 429 or 503.
func overloaded(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
}

// startAttempt starts the span of an attempt, a child of the span of the
// write that made its change.
func (d *Dispatcher) startAttempt(ctx context.Context, dl *store.Delivery) (context.Context, trace.Span) {
	m := dl.Message
	name, target := "deliver webhook", attribute.String("calhook.subscription_id", m.SubscriptionID)
	if m.HookID != "" {
		name, target = "ping icalhook", attribute.String("calhook.hook_id", m.HookID)
	}
	return d.cfg.Tracer.Start(tracing.Remote(ctx, m.Trace), name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("calhook.message_id", m.ID), target,
			attribute.String("calhook.event_type", m.EventType), attribute.Int("calhook.attempt", m.Attempts+1)))
}

// endAttempt ends the span of an attempt with its outcome.
func endAttempt(span trace.Span, res *store.AttemptResult) {
	span.SetAttributes(attribute.String("calhook.outcome", res.Outcome))
	if res.StatusCode != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
	}
	if res.Outcome != store.OutcomeDelivered {
		span.SetStatus(codes.Error, res.Error)
	}
	span.End()
}

// post sends the signed request of one attempt. Each attempt is signed
// afresh with its own timestamp, so a late retry still verifies.
func (d *Dispatcher) post(ctx context.Context, dl *store.Delivery, deliveryID string, at time.Time) (*http.Response, error) {
	signer := webhook.Signer{}
	for _, s := range dl.Secrets {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("subscription secret: %w", err)
		}
		signer.Secrets = append(signer.Secrets, sec)
	}
	h, err := signer.Sign(dl.Message.ID, at, dl.Message.Payload)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(dl.Message.Payload))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(webhook.HeaderEvent, dl.Message.EventType)
	req.Header.Set(webhook.HeaderDeliveryID, deliveryID)
	if d.cfg.Tracer != nil {
		tracing.Inject(ctx, req.Header)
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	// The timeout covers the body too: read the snippet before cancel.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// ping sends an iCal Hooks HEAD: no body, no signature; the feed URL is
// informational.
func (d *Dispatcher) ping(ctx context.Context, dl *store.Delivery) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, dl.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set("X-ICALHOOKS-FEED", string(dl.Message.Payload))
	if d.cfg.Tracer != nil {
		tracing.Inject(ctx, req.Header)
	}
	client := d.cfg.PingClient
	if client == nil {
		client = d.cfg.Client
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	resp.Body = http.NoBody
	return resp, nil
}

// target is what the in-flight cap counts by: the subscription of a
// webhook (id is its id), or the host of a ping (ping is set; id is the
// host name).
type target struct {
	ping bool
	id   string
}

// targetOf returns the target a delivery counts against.
func targetOf(dl *store.Delivery) target {
	if dl.Message.HookID != "" {
		return target{ping: true, id: dl.Host}
	}
	return target{id: dl.Message.SubscriptionID}
}

// attemptError describes a transport failure for the attempt log, which
// the subscription's owner reads: the class of failure only (see
// outbound.Describe), never an address calhook resolved or a raw dial
// error.
func attemptError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out waiting for the endpoint"
	}
	return outbound.Describe(err)
}

func snippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxSnippet))
	for !utf8.Valid(b) && len(b) > 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}

// record writes attempt results in batches until the results channel is
// closed, then releases the messages of cancelled sends.
func (d *Dispatcher) record() {
	defer close(d.recorderDone)
	var batch []*store.AttemptResult
	var released []string
	flush := func() {
		if len(batch) > 0 {
			disabled, err := d.cfg.Store.RecordAttempts(context.Background(), batch,
				store.RecordParams{Now: d.cfg.Now(), DisableAfter: d.cfg.DisableAfter})
			if err != nil {
				// The messages stay claimed; their lease runs out and they
				// are delivered again (at least once).
				d.log.Error("record delivery attempts", "error", err, "attempts", len(batch))
			}
			for _, sub := range disabled {
				d.log.Warn("subscription disabled", "subscription", sub)
			}
			// The loop's timer knows nothing of the retries just
			// scheduled: a claim learns when the first is due.
			if err == nil && slices.ContainsFunc(batch, func(r *store.AttemptResult) bool { return r.Outcome == store.OutcomeRetry }) {
				d.Notify()
			}
			batch = batch[:0]
		}
		if len(released) > 0 {
			if err := d.cfg.Store.ReleaseMessages(context.Background(), released, d.cfg.Now()); err != nil {
				d.log.Error("release messages", "error", err)
			}
			released = released[:0]
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	for {
		select {
		case r, ok := <-d.results:
			if !ok {
				for {
					select {
					case id := <-d.released:
						released = append(released, id)
						continue
					default:
					}
					break
				}
				flush()
				return
			}
			batch = append(batch, r)
			if len(batch) >= 512 {
				flush()
				continue
			}
			if !pending {
				timer.Reset(d.cfg.FlushEvery)
				pending = true
			}
		case id := <-d.released:
			released = append(released, id)
			if !pending {
				timer.Reset(d.cfg.FlushEvery)
				pending = true
			}
		case <-timer.C:
			pending = false
			flush()
		}
	}
}
