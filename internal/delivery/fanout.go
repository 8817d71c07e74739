package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

// FanOut turns changes into one message per matching subscription. It
// reads the change log after its cursor and stores the messages together
// with the new cursor position, so a crash replays at most one batch and
// the unique (change, subscription) key keeps replays from doubling
// messages.
//
// With a Direct dispatcher, a webhook that the dispatcher has a free
// worker for is stored already claimed by it and handed over at once,
// saving the queue a claim per message; what is rate-limited or finds no
// free worker is stored pending for any node's dispatcher to claim.
type FanOut struct {
	store   FanOutStore
	log     *slog.Logger
	now     func() time.Time
	baseURL string
	batch   int
	// step is how many changes the next step reads: batch, or fewer
	// when an account with many subscriptions wrote lately (see adapt).
	step atomic.Int64
	// heavy is the most subscriptions of one account whose changes a
	// step read, remembered until heavyUntil; messages is how many
	// webhooks a step may store (see pace).
	heavyMu    sync.Mutex
	heavy      int
	heavyUntil time.Time
	messages   int
	direct     Direct
	// tracer traces fan-out steps; nil is tracing off.
	tracer *tracing.Tracer
	// bus hears that messages were stored pending (MessagesDue), and
	// wakes the fan-out when feeds changed (FeedsChanged).
	bus *notify.Bus

	wake chan struct{}
	loop lifecycle.Loop
}

// FanOutStore is what the fan-out reads changes and their targets from
// and stores messages in.
type FanOutStore interface {
	FanOut(ctx context.Context, cursor string, limit int, build store.FanOutFunc) (store.FanOutResult, error)
	ActiveSubscriptions(ctx context.Context, accountIDs []string) ([]*store.Subscription, error)
	ArmedHooks(ctx context.Context, feeds []store.FeedKey) ([]*store.Hook, error)
	Conflict(ctx context.Context, accountID, id string) (*store.Conflict, error)
}

// FanOutConfig configures a FanOut.
type FanOutConfig struct {
	Store  FanOutStore
	Logger *slog.Logger
	Now    func() time.Time
	// BaseURL is the public URL of this calhook, for the links in payloads.
	BaseURL string
	// Batch is how many changes one transaction handles.
	Batch int
	// Bus wakes the fan-out when feeds changed (FeedsChanged) and hears
	// that new messages were stored pending (MessagesDue). Nil gives the
	// FanOut a Bus of its own.
	Bus *notify.Bus
	// Direct, if set, delivers new webhooks without a claim.
	Direct Direct
	// Tracer traces each step, linked to the spans of the writes whose
	// changes it read; nil is tracing off.
	Tracer *tracing.Tracer
	// HostLimited says webhook deliveries are limited per host (the
	// dispatcher's WebhookHostRate): then every webhook goes through the
	// queue, whose claim applies the limit across nodes, and none is
	// handed to Direct.
	HostLimited bool
}

// Direct is a dispatcher the fan-out hands new messages to (Dispatcher).
type Direct interface {
	// Lease is how long a message stored for Deliver is claimed for.
	Lease() time.Duration
	// Reserve takes a worker for a message to the subscription, if one
	// is free.
	Reserve(subscriptionID string) bool
	// Unreserve gives a worker back.
	Unreserve(subscriptionID string)
	// Deliver sends a message stored claimed on a reserved worker.
	Deliver(d *store.Delivery)
}

// NewFanOut returns a FanOut; call Start to run it.
func NewFanOut(cfg FanOutConfig) *FanOut {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	f := &FanOut{
		store: cfg.Store, log: cfg.Logger, now: cfg.Now, baseURL: cfg.BaseURL, batch: cfg.Batch,
		bus: notify.Or(cfg.Bus), direct: cfg.Direct, wake: make(chan struct{}, 1), tracer: cfg.Tracer,
	}
	if cfg.HostLimited {
		f.direct = nil
	}
	f.messages = maxStepMessages
	f.step.Store(int64(f.batch))
	f.bus.FeedsChanged.Subscribe(func(notify.FeedChange) { f.Notify() })
	return f
}

// Notify tells the fan-out that new changes may be there. It never blocks.
func (f *FanOut) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// pollInterval is the safety net for changes written without a Notify
// (another process, another node).
const pollInterval = time.Second

// Back-off bounds of the retries after a step left unsettled changes (see
// store.FanOutResult): they come within a transaction's time, usually
// milliseconds.
const (
	unsettledMin = time.Millisecond
	unsettledMax = 50 * time.Millisecond
)

// Start runs the fan-out loop until Stop or ctx ends.
func (f *FanOut) Start(ctx context.Context) error {
	f.loop.Go(ctx, f.run)
	return nil
}

// Stop ends the loop and waits for it. It is safe to call more than once,
// and before Start.
func (f *FanOut) Stop(context.Context) { f.loop.Stop() }

// run is the fan-out loop: a step whenever changes may be there. After a
// Busy step another node is fanning out, and it heard of the same writes:
// the loop leaves it to that node until the next tick.
func (f *FanOut) run(ctx context.Context) {
	lifecycle.RunSteps(ctx, lifecycle.Steps{
		Wake: f.wake, Poll: pollInterval, BackoffMin: unsettledMin, BackoffMax: unsettledMax,
		Failed: func(err error) { f.log.Error("fan-out failed", "error", err) },
		Step: func(ctx context.Context, _ bool) (lifecycle.StepResult, error) {
			res, err := f.RunOnce(ctx)
			return lifecycle.StepResult{
				Full: res.Changes >= res.Limit, Progress: res.Changes > 0, Busy: res.Busy, Unsettled: res.Unsettled,
			}, err
		},
	})
}

// errStepTooBig is a fan-out step that read more changes than the
// subscriptions of their busiest account allow (see stepSize): it stores
// nothing and is run again at once with fewer changes.
var errStepTooBig = errors.New("fan-out step too big for its accounts' subscriptions")

// RunOnce runs one fan-out step (see store.Store's FanOut).
func (f *FanOut) RunOnce(ctx context.Context) (FanOutStep, error) {
	var direct map[string]*store.Delivery
	var span trace.Span
	limit := int(f.step.Load())
	perAccount := 0
	fanOut := func(ctx context.Context, changes []*store.Change) ([]*store.Message, error) {
		if f.tracer != nil {
			ctx, span = f.startStep(ctx, span, changes)
		}
		msgs, d, most, err := f.build(ctx, changes)
		direct, perAccount = d, most
		if err == nil && !f.fits(len(changes), most) {
			// The first changes of a tenant with many subscriptions
			// (a big import's first chunk) would make one step store up
			// to batch × subscriptions webhooks, holding the writer for
			// seconds.
			f.unreserve(direct)
			return nil, errStepTooBig
		}
		return msgs, err
	}
	start := time.Now()
	r, err := f.store.FanOut(ctx, store.FanOutCursor, limit, fanOut)
	// Each retry reads fewer changes, down to one, which always fits.
	for errors.Is(err, errStepTooBig) {
		limit = f.adapt(perAccount, f.now())
		f.step.Store(int64(limit))
		start = time.Now()
		r, err = f.store.FanOut(ctx, store.FanOutCursor, limit, fanOut)
	}
	if err == nil && r.Messages > 0 {
		f.pace(time.Since(start))
	}
	if span != nil {
		endStep(span, r, err)
	}
	res := FanOutStep{FanOutResult: r, Limit: limit}
	if r.Changes > 0 {
		f.step.Store(int64(f.adapt(perAccount, f.now())))
	}
	for _, m := range res.Leased {
		if d := direct[m.ID]; d != nil {
			d.Message.Seq = m.Seq
			f.direct.Deliver(d)
			delete(direct, m.ID)
		}
	}
	for _, d := range direct { // not stored: another node got the step
		f.direct.Unreserve(d.Message.SubscriptionID)
	}
	if err != nil {
		return res, err
	}
	if res.Messages > len(res.Leased) {
		f.bus.MessagesDue.Publish(notify.Due{})
	}
	return res, nil
}

// maxLinks bounds the links of a fan-out step's span to the writes it
// fanned out.
const maxLinks = 128

// startStep starts the span of a fan-out step (ending prev, a span of an
// earlier try of the same step), linked to the spans of the writes whose
// changes it reads.
func (f *FanOut) startStep(ctx context.Context, prev trace.Span, changes []*store.Change) (context.Context, trace.Span) {
	if prev != nil {
		prev.End()
	}
	var links []trace.Link
	seen := map[string]bool{}
	for _, ch := range changes {
		if ch.Trace == "" || seen[ch.Trace] || len(links) == maxLinks {
			continue
		}
		seen[ch.Trace] = true
		if l, ok := tracing.Link(ch.Trace); ok {
			links = append(links, l)
		}
	}
	return f.tracer.Start(ctx, "fanout", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("calhook.changes", len(changes))))
}

// endStep ends the span of a fan-out step with what it did.
func endStep(span trace.Span, res store.FanOutResult, err error) {
	span.SetAttributes(attribute.Int("calhook.messages", res.Messages), attribute.Bool("calhook.busy", res.Busy))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// FanOutStep is the outcome of one fan-out step, and the most changes it
// could read.
type FanOutStep struct {
	store.FanOutResult
	Limit int
}

// maxStepMessages bounds the webhooks one fan-out step stores per
// change it reads, over the account with the most subscriptions: a
// tenant whose every change goes to many subscriptions (a big import
// times an account's hundred subscriptions) must not make one step hold
// SQLite's one writer for seconds while other tenants wait to write.
// Steps that take longer than stepBudget lower the bound, down to
// minStepMessages (see pace).
const (
	maxStepMessages = 2000
	minStepMessages = 250
	stepBudget      = 10 * time.Millisecond
)

// heavyMemory is how long a step remembers the busiest account it saw:
// such a tenant's changes come in bursts (each poll of a big feed), and
// the step must be small when the next burst begins, not only after it.
const heavyMemory = 30 * time.Second

// adapt notes the most subscriptions of one account among a step's
// changes and returns how many changes the next step reads: enough that
// the busiest account seen lately fills at most the step's webhooks, from
// 1 to the batch.
func (f *FanOut) adapt(perAccount int, now time.Time) int {
	f.heavyMu.Lock()
	defer f.heavyMu.Unlock()
	if perAccount >= f.heavy || now.After(f.heavyUntil) {
		f.heavy, f.heavyUntil = perAccount, now.Add(heavyMemory)
	}
	return stepSize(f.heavy, f.batch, f.messages)
}

// fits reports whether a step of n changes of which one account has
// perAccount subscriptions stays within the step's webhooks.
func (f *FanOut) fits(n, perAccount int) bool {
	f.heavyMu.Lock()
	defer f.heavyMu.Unlock()
	return n <= stepSize(perAccount, f.batch, f.messages)
}

// pace adjusts the webhooks a step may store to how long a step that
// stored some took: half as many after one over stepBudget, twice as many
// after one under half of it, within [minStepMessages, maxStepMessages].
// A loaded machine or disk thus gets shorter steps, so a step holds
// SQLite's one writer about as long as stepBudget.
func (f *FanOut) pace(took time.Duration) {
	f.heavyMu.Lock()
	defer f.heavyMu.Unlock()
	switch {
	case took > stepBudget:
		f.messages = max(minStepMessages, f.messages/2)
	case took < stepBudget/2:
		f.messages = min(maxStepMessages, f.messages*2)
	}
}

// stepSize is the number of changes of which an account with perAccount
// subscriptions fills messages webhooks, from 1 to batch.
func stepSize(perAccount, batch, messages int) int {
	return min(batch, max(1, messages/max(1, perAccount)))
}

// build returns the messages of changes: one per matching subscription,
// and the iCal Hooks pings of the feeds they touched. The webhooks it
// could reserve a worker of the direct dispatcher for are claimed for it;
// it returns their deliveries by message id.
//
// most is the largest number of subscriptions of one account among the
// changes' accounts.
func (f *FanOut) build(ctx context.Context, changes []*store.Change) ([]*store.Message, map[string]*store.Delivery, int, error) {
	accounts := map[string]bool{}
	var ids []string
	for _, ch := range changes {
		if !accounts[ch.AccountID] {
			accounts[ch.AccountID] = true
			ids = append(ids, ch.AccountID)
		}
	}
	subs, err := f.store.ActiveSubscriptions(ctx, ids)
	if err != nil {
		return nil, nil, 0, err
	}
	byAccount := map[string][]*store.Subscription{}
	most := 0
	for _, s := range subs {
		byAccount[s.AccountID] = append(byAccount[s.AccountID], s)
		most = max(most, len(byAccount[s.AccountID]))
	}
	now := f.now().UTC()
	var msgs []*store.Message
	direct := map[string]*store.Delivery{}
	for _, ch := range changes {
		if store.IsInternalChange(ch.Type) {
			continue
		}
		cfl := ch.Conflict // the change of a deleted unit's conflict carries it
		if cfl == nil && store.IsConflictChange(ch.Type) && len(byAccount[ch.AccountID]) > 0 {
			if cfl, err = f.store.Conflict(ctx, ch.AccountID, ch.EventID); errors.Is(err, store.ErrNotFound) {
				continue // its unit was deleted
			} else if err != nil {
				f.unreserve(direct)
				return nil, nil, 0, err
			}
		}
		for _, s := range byAccount[ch.AccountID] {
			if cfl != nil && !conflictMatches(s, cfl) || cfl == nil && s.CalendarID != "" && s.CalendarID != ch.CalendarID {
				continue
			}
			if ch.OccurredAt.Before(s.CreatedAt) {
				continue // the change predates the subscription (the fan-out was behind)
			}
			typ, ok := subscription.Wants(s, ch.Type)
			if !ok {
				continue
			}
			m := &store.Message{
				ID: id.UUID(), AccountID: ch.AccountID, SubscriptionID: s.ID, ChangeID: ch.ID, EventType: typ,
				NextAttemptAt: now, CreatedAt: now, ChangedAt: ch.OccurredAt, Trace: ch.Trace,
			}
			if cfl != nil {
				m.Payload, err = f.conflictPayload(m, ch, cfl)
			} else {
				m.Payload, err = f.payload(m, ch)
			}
			if err != nil {
				f.unreserve(direct)
				return nil, nil, 0, err
			}
			// A rate limit is the queue's to apply.
			if f.direct != nil && s.RateLimit == 0 && f.direct.Reserve(s.ID) {
				m.Status, m.NextAttemptAt = store.MessageDelivering, now.Add(f.direct.Lease())
				direct[m.ID] = &store.Delivery{Message: m, URL: s.URL, Secrets: s.SigningSecrets(now)}
			}
			msgs = append(msgs, m)
		}
	}
	pings, err := f.pings(ctx, changes, now)
	if err != nil {
		f.unreserve(direct)
		return nil, nil, 0, err
	}
	return append(msgs, pings...), direct, most, nil
}

// unreserve gives back the workers of deliveries that will not be made.
func (f *FanOut) unreserve(direct map[string]*store.Delivery) {
	for _, d := range direct {
		f.direct.Unreserve(d.Message.SubscriptionID)
	}
	clear(direct)
}

// pings returns one iCal Hooks ping per armed hook of every feed whose
// content the changes touched: the calendar's own feed and the account's
// all-calendars feed. Storing a ping disarms its hook (one-shot), so a batch
// of changes costs each hook one HEAD. A hook whose consumer was served
// every one of those changes already (it fetched the feed between their
// commit and this fan-out) is left armed, unpinged.
func (f *FanOut) pings(ctx context.Context, changes []*store.Change, now time.Time) ([]*store.Message, error) {
	touched := map[store.FeedKey][]*store.Change{} // each in log order
	var feeds []store.FeedKey
	for _, ch := range changes {
		if ch.CalendarID == "" || !strings.HasPrefix(ch.Type, "calendar.event.") {
			continue
		}
		for _, k := range []store.FeedKey{{AccountID: ch.AccountID, CalendarID: ch.CalendarID}, {AccountID: ch.AccountID}} {
			if _, ok := touched[k]; !ok {
				feeds = append(feeds, k)
			}
			touched[k] = append(touched[k], ch)
		}
	}
	hooks, err := f.store.ArmedHooks(ctx, feeds)
	if err != nil {
		return nil, err
	}
	msgs := make([]*store.Message, 0, len(hooks))
	for _, h := range hooks {
		chs := touched[store.FeedKey{AccountID: h.AccountID, CalendarID: h.CalendarID}]
		if !slices.ContainsFunc(chs, h.Lacks) {
			continue
		}
		ch := chs[len(chs)-1]
		ping := icalhooks.NewPing(f.baseURL, h, ch.ID, now)
		ping.ChangedAt, ping.Trace = ch.OccurredAt, ch.Trace
		msgs = append(msgs, ping)
	}
	return msgs, nil
}

// Payload is the JSON body of a webhook.
type Payload struct {
	WebhookID string      `json:"webhookId"`
	EventType string      `json:"eventType"`
	Timestamp string      `json:"timestamp"`
	Data      PayloadData `json:"data"`
}

// PayloadData is the minimal description of what changed; receivers fetch
// the details from Links.Self.
type PayloadData struct {
	AccountID  string `json:"accountId"`
	CalendarID string `json:"calendarId,omitempty"`
	EventID    string `json:"eventId,omitempty"`
	UID        string `json:"uid,omitempty"`
	Start      string `json:"start,omitempty"`
	End        string `json:"end,omitempty"`
	AllDay     bool   `json:"allDay,omitempty"`
	Status     string `json:"status,omitempty"`
	Links      Links  `json:"links"`
}

// Links point at the API resources a webhook is about.
type Links struct {
	Self     string `json:"self"`
	Calendar string `json:"calendar,omitempty"`
	Feed     string `json:"feed,omitempty"`
}

func (f *FanOut) payload(m *store.Message, ch *store.Change) ([]byte, error) {
	return ChangePayload(f.baseURL, m, ch)
}

// ChangePayload is the body of webhook m about change ch, its links under
// baseURL (the server's public URL): what the fan-out stores with each
// message of a change.
func ChangePayload(baseURL string, m *store.Message, ch *store.Change) ([]byte, error) {
	p := Payload{
		WebhookID: m.ID, EventType: m.EventType, Timestamp: ch.OccurredAt.UTC().Format(time.RFC3339Nano),
		Data: PayloadData{AccountID: ch.AccountID},
	}
	esc := url.PathEscape
	if ch.CalendarID == "" {
		p.Data.Links.Self = baseURL + "/v1/feed-token"
	} else {
		cal := baseURL + "/v1/calendars/" + esc(ch.CalendarID)
		p.Data.CalendarID, p.Data.EventID, p.Data.UID = ch.CalendarID, ch.EventID, ch.EventUID
		self := cal + "/events/" + esc(ch.EventID)
		if ch.EventID == "" { // a change of the calendar itself, e.g. its sync health
			self = cal
		}
		p.Data.Links = Links{
			Self:     self,
			Calendar: cal,
			Feed:     icalhooks.FeedURL(baseURL, ch.AccountID, ch.CalendarID),
		}
		if e := ch.Event; e != nil {
			p.Data.Start = calendar.FormatTime(e.Start, e.AllDay, e.TimeZone)
			p.Data.End = calendar.FormatTime(e.End, e.AllDay, e.TimeZone)
			p.Data.AllDay, p.Data.Status = e.AllDay, e.Status
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return b, nil
}
