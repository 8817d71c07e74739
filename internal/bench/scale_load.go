package bench

// The scale scenario's loader: the dataset written through the store
// adapters' own write methods.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
	"github.com/calhook/calhook/webhook"
)

// scaleStore is what the loader writes through: the store adapters'
// own write methods, so every row is what the API and the pipeline would
// have written (events and their change rows through the batch route's
// WriteEvents, subscriptions, iCal Hooks registrations, and the delivery
// log through the fan-out's FanOut and the dispatcher's RecordAttempts).
type scaleStore interface {
	CreateAccount(ctx context.Context, a *store.Account) error
	CreateCalendar(ctx context.Context, c *store.Calendar) error
	WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error)
	CreateSubscription(ctx context.Context, s *store.Subscription, admit func(existing int) error) error
	RegisterHook(ctx context.Context, p store.RegisterHookParams) (*store.HookRegistration, error)
	FanOut(ctx context.Context, cursor string, limit int, build store.FanOutFunc) (store.FanOutResult, error)
	RecordAttempts(ctx context.Context, results []*store.AttemptResult, p store.RecordParams) ([]string, error)
	Close() error
}

// scaleBatch is how many events one write of the loader carries, as a
// request of the batch route may.
const scaleBatch = 1000

// The loaded history: its change rows and delivery log are spread evenly
// over scaleHistorySpan, ending scaleHistoryGap before the load, so that
// calhook's default retention (30 days) keeps all of it and a prune with
// a cut scalePruneAge back finds most of it prunable.
const (
	scaleHistorySpan = 29 * 24 * time.Hour
	scaleHistoryGap  = time.Hour
)

// scaleHistory hands out the times of the loaded change rows: the n-th
// row written occurred n/total of the way through the history, so times
// grow with the change ids (the workers commit side by side, so the
// order is only nearly exact).
type scaleHistory struct {
	start   time.Time
	total   int64
	written atomic.Int64
}

// next returns the time of a write of n rows.
func (h *scaleHistory) next(n int) time.Time {
	k := h.written.Add(int64(n)) - int64(n)
	return h.start.Add(time.Duration(float64(scaleHistorySpan) * float64(k) / float64(max(h.total, 1))))
}

// loadScale fills the database at db with size's accounts, calendars,
// events (5 % recurring, spread over two years back and one ahead) and
// updates, through the store adapters' batch writes (calendar by
// calendar, a batch-route request's worth at a time, several calendars at
// once); then subscriptions, iCal Hooks and the delivery log. Event i
// belongs to calendar i mod calendars; update u changes event u mod
// events. It returns the rows loaded and how long each part took, in
// seconds.
func loadScale(ctx context.Context, db string, size scaleSize) (map[string]int, map[string]float64, error) {
	var s scaleStore
	var err error
	pg := strings.HasPrefix(db, "postgres")
	if pg {
		var p *postgres.DB
		if p, err = postgres.Open(ctx, db, nil); err == nil {
			err = p.Migrate(ctx)
		}
		s = p
	} else {
		var q *sqlite.DB
		if q, err = sqlite.Open(ctx, db); err == nil {
			err = q.Migrate(ctx)
		}
		s = q
	}
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	now := time.Now().UTC()
	phases := map[string]float64{}
	mark := now
	phase := func(name string) {
		phases[name] = round2(time.Since(mark).Seconds())
		mark = time.Now()
	}
	hist := &scaleHistory{start: now.Add(-scaleHistoryGap - scaleHistorySpan), total: int64(size.Events + size.Updates)}
	accounts := make([]*store.Account, size.Accounts)
	for i := range accounts {
		a := &store.Account{ID: id.New("acc"), Name: fmt.Sprint("tenant ", i), APIKeyHash: id.HashKey(id.APIKey()),
			FeedToken: id.FeedToken(), CreatedAt: hist.start, UpdatedAt: hist.start}
		if err := s.CreateAccount(ctx, a); err != nil {
			return nil, nil, err
		}
		accounts[i] = a
	}
	cals := make([]*store.Calendar, size.Calendars)
	for i := range cals {
		c := &store.Calendar{ID: id.New("cal"), AccountID: accounts[i%len(accounts)].ID, Name: fmt.Sprint("unit ", i),
			TimeZone: "Europe/Berlin", Kind: store.KindNative, CreatedAt: hist.start, UpdatedAt: hist.start}
		if err := s.CreateCalendar(ctx, c); err != nil {
			return nil, nil, err
		}
		cals[i] = c
	}
	// SQLite's single writer commits the workers' batches in groups;
	// PostgreSQL takes them side by side.
	workers := 4
	if pg {
		workers = 8
	}
	if err := parallel(ctx, workers, len(cals), func(k int) error {
		return loadCalendar(ctx, s, cals[k], size, now, hist)
	}); err != nil {
		return nil, nil, err
	}
	phase("events")
	subs, err := loadSubscriptions(ctx, s, accounts, size.Subscriptions, hist.start)
	if err != nil {
		return nil, nil, fmt.Errorf("subscriptions: %w", err)
	}
	phase("subscriptions")
	if err := loadHooks(ctx, s, accounts, cals, size.Hooks, now, workers); err != nil {
		return nil, nil, fmt.Errorf("icalhooks: %w", err)
	}
	phase("icalhooks")
	msgs, attempts, err := loadDeliveryLog(ctx, s, subs, size)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery log: %w", err)
	}
	phase("delivery_log")
	if err := endCursors(ctx, db, pg); err != nil {
		return nil, nil, fmt.Errorf("cursors: %w", err)
	}
	// Nothing lost: every row is there.
	got, err := countRows(ctx, db, pg)
	if err != nil {
		return nil, nil, fmt.Errorf("count rows: %w", err)
	}
	want := [5]int{size.Events, size.Events + size.Updates, msgs, attempts, size.Hooks}
	if got != want {
		return nil, nil, fmt.Errorf("loaded %v events, changes, messages, attempts and hooks; want %v", got, want)
	}
	return map[string]int{"accounts": size.Accounts, "calendars": size.Calendars, "events": size.Events,
		"changes": size.Events + size.Updates, "subscriptions": size.Subscriptions, "messages": msgs,
		"attempts": attempts, "icalhooks": size.Hooks}, phases, nil
}

// loadSubscriptions creates n webhook subscriptions, to every calendar
// of their account, accounts taking turns, and returns their ids by
// account. Their endpoints are on hosts that do not resolve: the loaded
// accounts write nothing while calhook runs, so nothing is sent to them.
func loadSubscriptions(ctx context.Context, s scaleStore, accounts []*store.Account, n int, at time.Time) (map[string][]string, error) {
	subs := map[string][]string{}
	for i := range n {
		acc := accounts[i%len(accounts)]
		secret, err := webhook.NewSecret()
		if err != nil {
			return nil, err
		}
		sub := &store.Subscription{ID: id.New("sub"), AccountID: acc.ID,
			URL:    fmt.Sprintf("https://hooks.tenant-%d.example/calhook/%d", i%len(accounts), i),
			Secret: secret, RateLimit: 0, CreatedAt: at, UpdatedAt: at}
		if err := s.CreateSubscription(ctx, sub, nil); err != nil {
			return nil, err
		}
		subs[acc.ID] = append(subs[acc.ID], sub.ID)
	}
	return subs, nil
}

// loadHooks registers n iCal Hooks, armed, on the calendars' feeds
// (calendar h mod calendars), as feed GETs with X-ICALHOOKS-URL would,
// served the calendar's current version so that none is pinged;
// registered over the last 20 days, within the default 30-day lease. The
// hook URLs are on 97 consumer hosts that do not resolve: no loaded feed
// changes while calhook runs.
func loadHooks(ctx context.Context, s scaleStore, accounts []*store.Account, cals []*store.Calendar, n int, now time.Time, workers int) error {
	token := make(map[string]string, len(accounts))
	for _, a := range accounts {
		token[a.ID] = id.HashKey(a.FeedToken)
	}
	return parallel(ctx, workers, n, func(h int) error {
		c := cals[h%len(cals)]
		host := fmt.Sprintf("consumer-%d.example", h%97)
		at := now.Add(-time.Duration(h%20) * 24 * time.Hour)
		_, err := s.RegisterHook(ctx, store.RegisterHookParams{
			Hook: store.Hook{AccountID: c.AccountID, CalendarID: c.ID,
				URL: fmt.Sprintf("https://%s/icalhooks/%d", host, h), Host: host, TokenHash: token[c.AccountID],
				ClientIP: "203.0.113.7", UserAgent: "calhookbench-consumer/1", ServedVersion: c.Version},
			Ping: func(h *store.Hook, changeID int64) *store.Message {
				return icalhooks.NewPing(scalePublicURL, h, changeID, at)
			},
			Now: at,
		})
		return err
	})
}

// scalePublicURL is the base of the links in the loaded payloads.
const scalePublicURL = "https://calhook.example"

// loadDeliveryLog fans the loaded change log out to the subscriptions,
// one message for every stride-th change (stride = changes / messages)
// to one of its account's subscriptions, through the store's FanOut (the
// fan-out's own step: it stores the messages claimed and moves the
// fan-out cursor), then records one attempt each through RecordAttempts,
// as the dispatcher does: 99 % delivered, 1 % undeliverable. Times follow
// the changes, so the log is as deep as the history. It returns the
// messages and attempts stored.
func loadDeliveryLog(ctx context.Context, s scaleStore, subs map[string][]string, size scaleSize) (int, int, error) {
	if size.Messages == 0 {
		return 0, 0, nil
	}
	stride := int64(max(1, (size.Events+size.Updates)/size.Messages))
	var built []*store.AttemptResult
	var msgs, attempts int
	build := func(_ context.Context, changes []*store.Change) ([]*store.Message, error) {
		built = built[:0]
		var out []*store.Message
		for _, ch := range changes {
			ids := subs[ch.AccountID]
			if ch.ID%stride != 0 || len(ids) == 0 {
				continue
			}
			at := ch.OccurredAt.Add(50 * time.Millisecond)
			m := &store.Message{ID: id.UUID(), AccountID: ch.AccountID, SubscriptionID: ids[int(ch.ID/stride)%len(ids)],
				ChangeID: ch.ID, EventType: ch.Type, Status: store.MessageDelivering, NextAttemptAt: at.Add(time.Minute),
				CreatedAt: at, ChangedAt: ch.OccurredAt}
			var err error
			if m.Payload, err = delivery.ChangePayload(scalePublicURL, m, ch); err != nil {
				return nil, err
			}
			out = append(out, m)
			r := &store.AttemptResult{Attempt: store.Attempt{MessageID: m.ID, DeliveryID: id.UUID(),
				AttemptedAt: at.Add(time.Millisecond), StatusCode: 204, Latency: 20 * time.Millisecond},
				SubscriptionID: m.SubscriptionID, Outcome: store.OutcomeDelivered}
			if (ch.ID/stride)%100 == 0 {
				r.StatusCode, r.Outcome, r.Error, r.Response = 500, store.OutcomeUndeliverable, "endpoint answered 500", "internal error"
			}
			built = append(built, r)
		}
		return out, nil
	}
	for {
		res, err := s.FanOut(ctx, store.FanOutCursor, 2000, build)
		if err != nil {
			return msgs, attempts, err
		}
		if res.Changes == 0 {
			return msgs, attempts, nil
		}
		if res.Messages != len(built) || len(res.Leased) != len(built) {
			return msgs, attempts, fmt.Errorf("fan-out stored %d messages (%d claimed) of %d", res.Messages, len(res.Leased), len(built))
		}
		msgs += res.Messages
		if len(built) == 0 {
			continue
		}
		seqs := make(map[string]int64, len(res.Leased))
		for _, m := range res.Leased {
			seqs[m.ID] = m.Seq
		}
		for _, r := range built {
			r.MessageSeq = seqs[r.MessageID]
		}
		if _, err := s.RecordAttempts(ctx, built, store.RecordParams{Now: built[len(built)-1].AttemptedAt}); err != nil {
			return msgs, attempts, err
		}
		attempts += len(built)
	}
}

// loadCalendar writes the events of calendar c (event i for every i ≡ k
// mod calendars, k its index) and then their updates, round by round (an
// event is updated once per round that reaches it), in batches.
func loadCalendar(ctx context.Context, s scaleStore, c *store.Calendar, size scaleSize, now time.Time, hist *scaleHistory) error {
	var k int
	if _, err := fmt.Sscanf(c.Name, "unit %d", &k); err != nil {
		return fmt.Errorf("calendar %q: %w", c.Name, err)
	}
	version := c.Version
	write := func(p *store.WriteEventsParams) error {
		n := len(p.Create) + len(p.Update) + len(p.Delete)
		p.AccountID, p.CalendarID, p.Version, p.Now = c.AccountID, c.ID, version, hist.next(n)
		if _, err := s.WriteEvents(ctx, p); err != nil {
			return err
		}
		version++
		c.Version = version
		return nil
	}
	var events []*store.Event
	var batch []*store.Event
	for i := k; i < size.Events; i += size.Calendars {
		rng := rand.New(rand.NewPCG(uint64(i), 23))
		start := now.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour)))).Add(-2 * 365 * 24 * time.Hour).Truncate(time.Hour)
		e := &store.Event{ID: id.Sorted("evt"), AccountID: c.AccountID, CalendarID: c.ID, UID: id.UUIDv7() + "@scale",
			Summary: fmt.Sprint("Booking ", i), Description: "Guest: scale test", Start: start,
			End: start.Add(time.Duration(1+rng.IntN(7*24)) * time.Hour), TimeZone: c.TimeZone, Status: store.StatusConfirmed,
			CreatedAt: now, UpdatedAt: now}
		if i%20 == 0 {
			e.RRule = "FREQ=WEEKLY;COUNT=52"
			e.End = e.Start.Add(2 * time.Hour)
		}
		events = append(events, e)
		if batch = append(batch, e); len(batch) == scaleBatch {
			if err := write(&store.WriteEventsParams{Create: batch}); err != nil {
				return err
			}
			batch = nil
		}
	}
	if len(batch) > 0 {
		if err := write(&store.WriteEventsParams{Create: batch}); err != nil {
			return err
		}
	}
	// Event i (the j-th of this calendar) takes updates u = i + r·events
	// below size.Updates, round r = 0, 1, …
	for r := 0; ; r++ {
		batch = batch[:0]
		n := 0
		for j, i := 0, k; j < len(events); j, i = j+1, i+size.Calendars {
			if i+r*size.Events >= size.Updates {
				break
			}
			n++
			e := *events[j]
			e.Summary = fmt.Sprint("Booking ", i, " v", r+1)
			e.UpdatedAt = time.Now().UTC()
			batch = append(batch, &e)
			if len(batch) == scaleBatch {
				if err := write(&store.WriteEventsParams{Update: batch}); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if n == 0 {
			return nil
		}
		if len(batch) > 0 {
			if err := write(&store.WriteEventsParams{Update: batch}); err != nil {
				return err
			}
		}
	}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines, worker w
// taking i ≡ w (mod workers), and returns the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil; i += workers {
				if err := fn(i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// countRows returns the rows of the events, changes, messages, attempts
// and icalhooks tables.
func countRows(ctx context.Context, db string, pg bool) ([5]int, error) {
	var n [5]int
	const q = `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM changes), (SELECT count(*) FROM messages),
		(SELECT count(*) FROM attempts), (SELECT count(*) FROM icalhooks)`
	dest := []any{&n[0], &n[1], &n[2], &n[3], &n[4]}
	if pg {
		return n, pgQueryRow(ctx, db, q, nil, dest...)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		return n, err
	}
	defer conn.Close()
	return n, conn.QueryRowContext(ctx, q).Scan(dest...)
}

// endCursors moves the change-log consumers (fan-out, conflict detector,
// export pings) to the end of the loaded log: a server that wrote it
// would have processed it as it went.
func endCursors(ctx context.Context, db string, pg bool) error {
	names := []string{store.FanOutCursor, "availability", "exportpings"}
	if pg {
		for _, n := range names {
			if err := pgExec(ctx, db, `INSERT INTO cursors (name, position, xid)
				SELECT '`+n+`', coalesce(max(id), 0), pg_current_xact_id() FROM changes
				ON CONFLICT (name) DO UPDATE SET position = excluded.position, xid = excluded.xid`); err != nil {
				return err
			}
		}
		return nil
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, n := range names {
		if _, err := conn.ExecContext(ctx, `INSERT INTO cursors (name, position) SELECT ?, coalesce(max(id), 0) FROM changes WHERE true
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, n); err != nil {
			return err
		}
	}
	return nil
}
