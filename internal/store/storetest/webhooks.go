package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// webhookTests are the conformance tests of the delivery queue.
var webhookTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"EnqueueIsIdempotent", testEnqueue},
	{"FanOutStepsAreExclusive", testFanOutExclusive},
	{"ClaimLeasesAndExpires", testClaimLease},
	{"ClaimRateLimits", testClaimRateLimit},
	{"ClaimRateLimitSpacesLateSlots", testClaimRateLimitLate},
	{"ClaimTellsNextDue", testClaimNextDue},
	{"FanOutStoresClaimedMessages", testFanOutLeased},
	{"RecordOutcomes", testRecordOutcomes},
	{"RecordAfterSubscriptionDeleted", testRecordAfterDelete},
	{"PingsDisarmAndRecordHookHealth", testPings},
	{"DisabledSubscriptionsAreParked", testParked},
	{"PruneKeepsUnreadChanges", testPrune},
	{"PruneKeepsUndetectedChanges", testPruneKeepsUndetected},
	{"PruneStopsAtTheFirstNewChange", testPruneStopsAtNewChange},
	{"SubscriptionLimit", testSubscriptionLimit},
	{"ClaimWebhookHostRate", testClaimWebhookHostRate},
}

func newSubscription(t *testing.T, s store.Store, accountID string, rate int) *store.Subscription {
	t.Helper()
	sub := &store.Subscription{
		ID: id.New("sub"), AccountID: accountID, URL: "https://example.com/hook", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
		RateLimit: rate, CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateSubscription(context.Background(), sub, nil); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	return sub
}

// enqueue fans the account's unread changes out to sub, one message each.
func enqueue(t *testing.T, s store.Store, sub *store.Subscription, due time.Time) []*store.Message {
	t.Helper()
	return FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			if ch.AccountID == sub.AccountID {
				msgs = append(msgs, message(sub, ch, due))
			}
		}
		return msgs
	})
}

// message is a webhook of ch for sub, due at due.
func message(sub *store.Subscription, ch *store.Change, due time.Time) *store.Message {
	return &store.Message{
		ID: id.UUID(), AccountID: ch.AccountID, SubscriptionID: sub.ID, ChangeID: ch.ID, EventType: ch.Type,
		Payload: []byte(`{"n":` + fmt.Sprint(ch.ID) + `}`), NextAttemptAt: due, CreatedAt: due,
	}
}

// FanOut runs fan-out steps on s until it has read every settled change,
// with build making the messages of each step's changes, and returns every
// message build made. Tests of what follows the fan-out use it.
func FanOut(t testing.TB, s store.Store, build func([]*store.Change) []*store.Message) []*store.Message {
	t.Helper()
	msgs, _ := fanOut(t, s, build)
	return msgs
}

// fanOut is FanOut that also returns the messages stored claimed.
func fanOut(t testing.TB, s store.Store, build func([]*store.Change) []*store.Message) (msgs []*store.Message, leased []store.StoredMessage) {
	t.Helper()
	// A change is read once the transactions before it ended, and those
	// may be other tests' (on PostgreSQL, of the whole server).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		res, err := s.FanOut(context.Background(), store.FanOutCursor, 100, func(_ context.Context, changes []*store.Change) ([]*store.Message, error) {
			built := build(changes)
			msgs = append(msgs, built...)
			return built, nil
		})
		if err != nil {
			t.Fatalf("FanOut: %v", err)
		}
		if res.Busy {
			t.Fatalf("FanOut = %+v with no other worker", res)
		}
		leased = append(leased, res.Leased...)
		if res.Changes == 0 && !res.Unsettled {
			return msgs, leased
		}
		if res.Changes == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("FanOut: the change log did not settle within 30 s")
	return nil, nil
}

func events(t *testing.T, s store.Store, c *store.Calendar, n int) {
	t.Helper()
	for i := range n {
		mustCreateEvent(t, s, newEvent(c, fmt.Sprintf("%s-%d", c.ID, i), base))
	}
}

func claim(t *testing.T, s store.Store, now time.Time, limit int) []*store.Delivery {
	t.Helper()
	c, err := s.ClaimMessages(context.Background(), store.ClaimParams{Now: now, Limit: limit, Lease: time.Minute})
	if err != nil {
		t.Fatalf("ClaimMessages: %v", err)
	}
	return c.Deliveries
}

func testEnqueue(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 3)
	// A replayed (change, subscription) within a step is stored once.
	read := 0
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			msgs = append(msgs, message(sub, ch, base), message(sub, ch, base))
		}
		read += len(changes)
		return msgs
	})
	got, _ := s.ListMessages(ctx, store.ListMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 10}})
	if stored := len(got); read != 3 || stored != 3 {
		t.Errorf("fan-out read %d changes, stored %d messages; want 3 and 3 (the repeats skipped)", read, stored)
	}
	if again := enqueue(t, s, sub, base); len(again) != 0 {
		t.Errorf("a second fan-out made %d messages; want none, every change was read", len(again))
	}
	got, _ = s.ListMessages(ctx, store.ListMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 10}})
	if len(got) != 3 {
		t.Errorf("messages = %d; want 3", len(got))
	}
	if got[0].ChangeID < got[2].ChangeID {
		t.Errorf("ListMessages is not newest first")
	}
}

// testFanOutExclusive runs a second fan-out step while the first is still
// building its messages: exactly one of them may store, and every change
// gets its message once.
func testFanOutExclusive(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 4)
	build := func(_ context.Context, changes []*store.Change) ([]*store.Message, error) {
		var msgs []*store.Message
		for _, ch := range changes {
			msgs = append(msgs, message(sub, ch, base))
		}
		return msgs, nil
	}
	var first, second store.FanOutResult
	var err, secondErr error
	for first.Changes == 0 && second.Changes == 0 {
		first, err = s.FanOut(ctx, store.FanOutCursor, 100, func(ctx context.Context, changes []*store.Change) ([]*store.Message, error) {
			// Another worker's step, while this one holds its changes.
			done := make(chan struct{})
			go func() {
				defer close(done)
				second, secondErr = s.FanOut(ctx, store.FanOutCursor, 100, build)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				return nil, errors.New("the second fan-out step waited for the first")
			}
			return build(ctx, changes)
		})
		if err != nil || !first.Unsettled && first.Changes == 0 && !first.Busy {
			t.Fatalf("FanOut = %+v, %v; want the 4 changes", first, err)
		}
	}
	if err != nil || secondErr != nil {
		t.Fatalf("concurrent FanOut steps: %v; %v", err, secondErr)
	}
	if stored := min(first.Messages, 1) + min(second.Messages, 1); stored != 1 || !(first.Busy || second.Busy) {
		t.Errorf("concurrent FanOut steps = %+v and %+v; want one to store, the other busy", first, second)
	}
	enqueue(t, s, sub, base) // whatever is left, as the next step would
	got, _ := s.ListMessages(ctx, store.ListMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 10}})
	seen := map[int64]bool{}
	for _, m := range got {
		if seen[m.ChangeID] {
			t.Errorf("change %d fanned out twice", m.ChangeID)
		}
		seen[m.ChangeID] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d of 4 changes fanned out", len(seen))
	}
}

func testClaimLease(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 5)
	enqueue(t, s, sub, base)
	if ds := claim(t, s, base.Add(-time.Second), 10); len(ds) != 0 {
		t.Errorf("claimed %d messages before they were due", len(ds))
	}
	first := claim(t, s, base, 3)
	if len(first) != 3 || first[0].URL != sub.URL || len(first[0].Secrets) != 1 || string(first[0].Message.Payload) == "" {
		t.Fatalf("claim = %d deliveries (%+v)", len(first), first)
	}
	second := claim(t, s, base, 10)
	if len(second) != 2 {
		t.Errorf("second claim = %d; want the 2 unclaimed messages", len(second))
	}
	if ds := claim(t, s, base.Add(30*time.Second), 10); len(ds) != 0 {
		t.Errorf("claimed %d leased messages before the lease ended", len(ds))
	}
	// A claim whose holder died is taken over after its lease.
	if ds := claim(t, s, base.Add(61*time.Second), 10); len(ds) != 5 {
		t.Errorf("claim after the lease = %d; want all 5 back", len(ds))
	}
	ids := []string{first[0].Message.ID}
	if err := s.ReleaseMessages(ctx, ids, base.Add(62*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ds := claim(t, s, base.Add(62*time.Second), 10); len(ds) != 1 || ds[0].Message.ID != ids[0] {
		t.Errorf("claim after release = %v; want the released message", ds)
	}
	if _, err := s.ClaimMessages(ctx, store.ClaimParams{Now: base.Add(time.Hour), Limit: 10, Lease: time.Minute, ExcludeSubscriptions: []string{sub.ID}}); err != nil {
		t.Fatal(err)
	}
}

func testClaimRateLimit(t *testing.T, s store.Store) {
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 2) // 2 per second: one every 500 ms
	events(t, s, c, 5)
	enqueue(t, s, sub, base)
	got := claim(t, s, base, 10)
	if len(got) != 1 {
		t.Fatalf("first claim under 2/s = %d; want 1, the others get later slots", len(got))
	}
	due := []time.Time{}
	for now := base; now.Before(base.Add(3 * time.Second)); now = now.Add(100 * time.Millisecond) {
		for range claim(t, s, now, 10) {
			due = append(due, now)
		}
	}
	if len(due) != 4 {
		t.Fatalf("claimed %d more within 3 s; want the 4 others", len(due))
	}
	for i, at := range due {
		if want := base.Add(time.Duration(i+1) * 500 * time.Millisecond); at.Before(want) {
			t.Errorf("message %d went out at +%v; want not before +%v", i+2, at.Sub(base), want.Sub(base))
		}
	}
}

func testRecordOutcomes(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 3)
	enqueue(t, s, sub, base)
	ds := claim(t, s, base, 10)
	outcomes := []string{store.OutcomeDelivered, store.OutcomeRetry, store.OutcomeUndeliverable}
	var results []*store.AttemptResult
	for i, d := range ds {
		results = append(results, &store.AttemptResult{
			Attempt: store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 500 - i,
				Latency: time.Millisecond, Error: "x", Response: "body"},
			SubscriptionID: sub.ID, Outcome: outcomes[i], NextAttemptAt: base.Add(time.Minute),
		})
	}
	results[0].StatusCode = 200
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: base, DisableAfter: 5 * 24 * time.Hour}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	for i, d := range ds {
		m, err := s.Message(ctx, a.ID, d.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{store.MessageDelivered, store.MessagePending, store.MessageUndeliverable}[i]
		if m.Status != want || m.Attempts != 1 {
			t.Errorf("message %d = %s with %d attempts; want %s with 1", i, m.Status, m.Attempts, want)
		}
		if i == 1 && !m.NextAttemptAt.Equal(base.Add(time.Minute)) {
			t.Errorf("retry due %v; want %v", m.NextAttemptAt, base.Add(time.Minute))
		}
		att, _ := s.ListAttempts(ctx, store.ListAttemptsParams{AccountID: a.ID, MessageID: d.Message.ID, Page: store.Page{Limit: 10}})
		if len(att) != 1 || att[0].Response != "body" || att[0].Latency != time.Millisecond {
			t.Errorf("attempt log of message %d = %+v", i, att)
		}
	}
	got, _ := s.Subscription(ctx, a.ID, sub.ID)
	if !got.FailingSince.Equal(base) {
		t.Errorf("failingSince = %v; want the failure at %v (the last outcome of the batch)", got.FailingSince, base)
	}
	red, err := s.RedeliverMessage(ctx, a.ID, ds[2].Message.ID, base.Add(time.Hour))
	if err != nil || red.Status != store.MessagePending || !red.NextAttemptAt.Equal(base.Add(time.Hour)) {
		t.Errorf("RedeliverMessage = %+v, %v", red, err)
	}
	_, err = s.RedeliverMessage(ctx, newAccount(t, s).ID, ds[2].Message.ID, base)
	wantNotFound(t, "RedeliverMessage(other account)", err)
}

// registerHooks registers n verified hooks on c's feed at its current
// version, so that no ping is queued at registration.
func registerHooks(t *testing.T, s store.Store, c *store.Calendar, n int) []*store.Hook {
	t.Helper()
	ctx := context.Background()
	st, err := s.FeedVersion(ctx, c.AccountID, c.ID)
	if err != nil {
		t.Fatalf("FeedVersion: %v", err)
	}
	hooks := make([]*store.Hook, n)
	for i := range hooks {
		reg, err := s.RegisterHook(ctx, store.RegisterHookParams{
			Hook: store.Hook{
				AccountID: c.AccountID, CalendarID: c.ID, URL: fmt.Sprintf("https://example.com/ping/%d", i),
				Host: "example.com", TokenHash: "t", ServedVersion: st.Version,
			},
			Now: base,
		})
		if err != nil || reg.Pinged || !reg.Hook.Armed {
			t.Fatalf("RegisterHook %d = %+v, %v; want armed and not pinged", i, reg, err)
		}
		hooks[i] = reg.Hook
	}
	return hooks
}

// pingAll fans the unread changes out as one ping to each armed hook of
// the calendars they touched, as the fan-out does.
func pingAll(t *testing.T, s store.Store) []*store.Message {
	t.Helper()
	return FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var feeds []store.FeedKey
		last := map[store.FeedKey]int64{}
		for _, ch := range changes {
			k := store.FeedKey{AccountID: ch.AccountID, CalendarID: ch.CalendarID}
			if _, ok := last[k]; !ok {
				feeds = append(feeds, k)
			}
			last[k] = ch.ID
		}
		hooks, err := s.ArmedHooks(context.Background(), feeds)
		if err != nil {
			t.Fatalf("ArmedHooks: %v", err)
		}
		var msgs []*store.Message
		for _, h := range hooks {
			msgs = append(msgs, &store.Message{
				ID: id.UUID(), AccountID: h.AccountID, HookID: h.ID, ChangeID: last[store.FeedKey{AccountID: h.AccountID, CalendarID: h.CalendarID}],
				EventType: store.PingEventType, Payload: []byte("https://calhook.example/feed"), NextAttemptAt: base, CreatedAt: base,
			})
		}
		return msgs
	})
}

// testPings checks that storing pings disarms their hooks (one ping per
// arming, however many changes), and that recording a batch of ping
// outcomes sets each hook's health and drops the hooks that are gone.
func testPings(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	hooks := registerHooks(t, s, c, 3)
	events(t, s, c, 2)
	if msgs := pingAll(t, s); len(msgs) != 3 {
		t.Fatalf("fan-out queued %d pings; want one per hook", len(msgs))
	}
	if armed, _ := s.ArmedHooks(ctx, []store.FeedKey{{AccountID: a.ID, CalendarID: c.ID}}); len(armed) != 0 {
		t.Fatalf("%d hooks still armed after their pings were stored", len(armed))
	}
	mustCreateEvent(t, s, newEvent(c, "later", base))
	if msgs := pingAll(t, s); len(msgs) != 0 {
		t.Fatalf("fan-out queued %d more pings to disarmed hooks", len(msgs))
	}
	ds := claim(t, s, base, 10)
	if len(ds) != 3 {
		t.Fatalf("claimed %d pings; want 3", len(ds))
	}
	outcome := map[string]string{
		hooks[0].ID: store.OutcomeDelivered, hooks[1].ID: store.OutcomeRetry, hooks[2].ID: store.OutcomeUndeliverable,
	}
	var results []*store.AttemptResult
	for _, d := range ds {
		if d.URL == "" || d.Host != "example.com" {
			t.Errorf("claimed ping to %q on host %q; want the hook's URL and host", d.URL, d.Host)
		}
		r := &store.AttemptResult{
			Attempt: store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: id.UUID(), AttemptedAt: base.Add(time.Second), StatusCode: 503},
			HookID:  d.Message.HookID, Outcome: outcome[d.Message.HookID], NextAttemptAt: base.Add(time.Minute),
		}
		if r.Outcome == store.OutcomeDelivered {
			r.StatusCode = 200
		}
		results = append(results, r)
	}
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: base}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	left, err := s.ListHooks(ctx, store.ListHooksParams{AccountID: a.ID, Page: store.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*store.Hook{}
	for _, h := range left {
		got[h.ID] = h
	}
	if len(got) != 2 || got[hooks[2].ID] != nil {
		t.Fatalf("hooks left %v; want all but the one whose ping was undeliverable", left)
	}
	if h := got[hooks[0].ID]; h == nil || h.LastPingStatus != 200 || h.Failures != 0 || !h.LastPingAt.Equal(base.Add(time.Second)) {
		t.Errorf("delivered hook = %+v; want last ping 200 at +1s, no failures", h)
	}
	if h := got[hooks[1].ID]; h == nil || h.LastPingStatus != 503 || h.Failures != 1 {
		t.Errorf("failing hook = %+v; want last ping 503, one failure", h)
	}
	for _, d := range ds {
		m, err := s.Message(ctx, a.ID, d.Message.ID)
		if d.Message.HookID == hooks[2].ID {
			wantNotFound(t, "the dropped hook's ping", err)
			continue
		}
		att, _ := s.ListAttempts(ctx, store.ListAttemptsParams{AccountID: a.ID, MessageID: d.Message.ID, Page: store.Page{Limit: 10}})
		if err != nil || m.Attempts != 1 || len(att) != 1 {
			t.Errorf("ping %s: %+v, %d attempts logged, %v; want one attempt", d.Message.ID, m, len(att), err)
		}
	}
}

func testParked(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 2)
	enqueue(t, s, sub, base)
	ds := claim(t, s, base, 1)
	disabled, err := s.RecordAttempts(ctx, []*store.AttemptResult{{
		Attempt:        store.Attempt{MessageID: ds[0].Message.ID, MessageSeq: ds[0].Message.Seq, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 410},
		SubscriptionID: sub.ID, Outcome: store.OutcomeUndeliverable, Disable: "gone",
	}}, store.RecordParams{Now: base})
	if err != nil || len(disabled) != 1 {
		t.Fatalf("RecordAttempts with Disable = %v, %v; want the subscription disabled", disabled, err)
	}
	cl, err := s.ClaimMessages(ctx, store.ClaimParams{Now: base.Add(time.Hour), Limit: 10, Lease: time.Minute})
	if err != nil || len(cl.Deliveries) != 0 {
		t.Errorf("claimed %d messages of a disabled subscription (%v)", len(cl.Deliveries), err)
	}
	if !cl.NextDue.IsZero() {
		t.Errorf("claim reports the parked message due at %v; want nothing due", cl.NextDue)
	}
	got, _ := s.Subscription(ctx, a.ID, sub.ID)
	got.Disabled, got.UpdatedAt = false, base.Add(2*time.Hour)
	if err := s.UpdateSubscription(ctx, got); err != nil {
		t.Fatal(err)
	}
	if ds := claim(t, s, base.Add(2*time.Hour), 10); len(ds) != 1 {
		t.Errorf("after re-enabling, claimed %d; want the parked message", len(ds))
	}
}

func testPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 2)
	enqueue(t, s, sub, base)
	ds := claim(t, s, base, 10)
	var results []*store.AttemptResult
	for _, d := range ds {
		results = append(results, &store.AttemptResult{
			Attempt:        store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 200},
			SubscriptionID: sub.ID, Outcome: store.OutcomeDelivered,
		})
	}
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: base}); err != nil {
		t.Fatal(err)
	}
	for { // the conflict detector has read them too
		if res, _ := detectStep(t, s, store.DetectParams{Limit: 1000}, nil); res.Changes == 0 {
			break
		}
	}
	events(t, s, newCalendar(t, s, a.ID), 1) // not fanned out yet: must survive
	if st, err := s.Prune(ctx, base.Add(-time.Hour)); err != nil || st.Changes+st.Messages+st.Attempts != 0 {
		t.Errorf("Prune before everything = %+v, %v; want nothing pruned", st, err)
	}
	if h, err := s.ChangeHorizon(ctx); err != nil || h != (store.ChangePos{}) {
		t.Errorf("ChangeHorizon after pruning nothing = %+v, %v; want none", h, err)
	}
	st, err := s.Prune(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if st.Messages < 2 || st.Attempts < 2 || st.Changes < 2 {
		t.Errorf("Prune = %+v; want the 2 delivered messages, their attempts and changes", st)
	}
	var left int
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		left += len(changes)
		return nil
	})
	if left != 1 {
		t.Errorf("unread changes after Prune = %d; want the 1 the fan-out had not read", left)
	}
	if h, err := s.ChangeHorizon(ctx); err != nil || h == (store.ChangePos{}) {
		t.Errorf("ChangeHorizon = %+v, %v; want the newest pruned change", h, err)
	}
}

// testPruneStopsAtNewChange: Prune removes the log's oldest changes up to
// the first one that is not older than the cut; a change stamped older
// that the log holds after it waits for a later prune (the log follows
// time but for writes racing by milliseconds, and the prune walks it
// from its start rather than scan it for old rows).
func testPruneStopsAtNewChange(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := newCalendar(t, s, newAccount(t, s).ID)
	at := func(uid string, when time.Time) *store.Change {
		e := newEvent(c, uid, when)
		e.CreatedAt, e.UpdatedAt = when, when
		return mustCreateEvent(t, s, e)
	}
	at("old-1", base)
	old := at("old-2", base.Add(time.Minute))
	at("new", base.Add(2*time.Hour))
	at("late-old", base)
	FanOut(t, s, func([]*store.Change) []*store.Message { return nil })
	for { // the conflict detector has read them too
		if res, _ := detectStep(t, s, store.DetectParams{Limit: 1000}, nil); res.Changes == 0 {
			break
		}
	}
	st, err := s.Prune(ctx, base.Add(time.Hour))
	if err != nil || st.Changes != 2 {
		t.Errorf("Prune(base+1h) = %+v, %v; want the 2 changes before the new one", st, err)
	}
	if h, err := s.ChangeHorizon(ctx); err != nil || h != old.Pos() {
		t.Errorf("ChangeHorizon = %+v, %v; want old-2's change %+v", h, err, old.Pos())
	}
	if st, err := s.Prune(ctx, base.Add(time.Hour)); err != nil || st.Changes != 0 {
		t.Errorf("Prune(base+1h) again = %+v, %v; want nothing pruned", st, err)
	}
	if st, err := s.Prune(ctx, base.Add(3*time.Hour)); err != nil || st.Changes != 2 {
		t.Errorf("Prune(base+3h) = %+v, %v; want the 2 changes left", st, err)
	}
}

// testPruneKeepsUndetected: changes the fan-out has read but the conflict
// detector has not survive Prune.
func testPruneKeepsUndetected(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	events(t, s, newCalendar(t, s, a.ID), 2)
	FanOut(t, s, func([]*store.Change) []*store.Message { return nil })
	if res, _ := detectStep(t, s, store.DetectParams{Limit: 1}, nil); res.Changes != 1 {
		t.Fatalf("detector step read %d changes; want 1", res.Changes)
	}
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if res, _ := detectStep(t, s, store.DetectParams{Limit: 1000}, nil); res.Changes != 1 {
		t.Errorf("changes left for the detector after Prune = %d; want the 1 it had not read", res.Changes)
	}
}

// testRecordAfterDelete: a subscription deleted while its message is in
// flight must not make the batch of outcomes fail.
func testRecordAfterDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	gone, kept := newSubscription(t, s, a.ID, 0), newSubscription(t, s, a.ID, 0)
	events(t, s, c, 1)
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			msgs = append(msgs, message(gone, ch, base), message(kept, ch, base))
		}
		return msgs
	})
	ds := claim(t, s, base, 10)
	if err := s.DeleteSubscription(ctx, a.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	var results []*store.AttemptResult
	for _, d := range ds {
		results = append(results, &store.AttemptResult{
			Attempt:        store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 200},
			SubscriptionID: d.Message.SubscriptionID, Outcome: store.OutcomeDelivered,
		})
	}
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: base}); err != nil {
		t.Fatalf("RecordAttempts with a deleted subscription's message: %v", err)
	}
	for _, d := range ds {
		if d.Message.SubscriptionID != kept.ID {
			continue
		}
		if m, err := s.Message(ctx, a.ID, d.Message.ID); err != nil || m.Status != store.MessageDelivered {
			t.Errorf("the other message = %+v, %v; want delivered", m, err)
		}
	}
}

// testClaimRateLimitLate: a dispatcher that comes back after several
// reserved slots passed sends them spaced by the interval, not together.
func testClaimRateLimitLate(t *testing.T, s store.Store) {
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 10) // one every 100 ms
	events(t, s, c, 4)
	enqueue(t, s, sub, base)
	if got := claim(t, s, base, 10); len(got) != 1 {
		t.Fatalf("first claim = %d; want 1, the others get slots at +100, +200, +300 ms", len(got))
	}
	late := base.Add(350 * time.Millisecond)
	if got := claim(t, s, late, 10); len(got) != 1 {
		t.Errorf("claim at +350ms, with three slots passed = %d; want 1", len(got))
	}
	for _, ms := range []int{400, 449} {
		if got := claim(t, s, base.Add(time.Duration(ms)*time.Millisecond), 10); len(got) != 0 {
			t.Errorf("claim at +%dms = %d; want none, 100 ms after the last send", ms, len(got))
		}
	}
	for _, ms := range []int{450, 550} {
		if got := claim(t, s, base.Add(time.Duration(ms)*time.Millisecond), 10); len(got) != 1 {
			t.Errorf("claim at +%dms = %d; want 1", ms, len(got))
		}
	}
}

// testClaimNextDue: a claim tells when to claim again.
func testClaimNextDue(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	lease := time.Minute
	cl, err := s.ClaimMessages(ctx, store.ClaimParams{Now: base, Limit: 10, Lease: lease})
	if err != nil || len(cl.Deliveries) != 0 || !cl.NextDue.IsZero() {
		t.Fatalf("claim of an empty queue = %+v, %v; want nothing, nothing due", cl, err)
	}
	events(t, s, c, 2)
	due := base.Add(time.Hour)
	enqueue(t, s, sub, due)
	cl, err = s.ClaimMessages(ctx, store.ClaimParams{Now: base, Limit: 10, Lease: lease})
	if err != nil || len(cl.Deliveries) != 0 || !cl.NextDue.Equal(due) {
		t.Errorf("claim before the messages are due = %d deliveries, next %v, %v; want none, next %v", len(cl.Deliveries), cl.NextDue, err, due)
	}
	cl, err = s.ClaimMessages(ctx, store.ClaimParams{Now: due, Limit: 1, Lease: lease})
	if err != nil || len(cl.Deliveries) != 1 || cl.NextDue.After(due) {
		t.Errorf("claim of one of two due messages = %d deliveries, next %v, %v; want one, the other due", len(cl.Deliveries), cl.NextDue, err)
	}
	cl, err = s.ClaimMessages(ctx, store.ClaimParams{Now: due, Limit: 10, Lease: lease})
	if err != nil || len(cl.Deliveries) != 1 || !cl.NextDue.Equal(due.Add(lease)) {
		t.Errorf("claim of the last due message = %d deliveries, next %v, %v; want one, next at the end of the leases %v",
			len(cl.Deliveries), cl.NextDue, err, due.Add(lease))
	}

	// Due messages of an excluded subscription are not the claim's to
	// take: it tells the next due time after its own, not "due now".
	capped, other := newSubscription(t, s, a.ID, 0), newSubscription(t, s, a.ID, 0)
	events(t, s, newCalendar(t, s, a.ID), 1)
	later := due.Add(10 * time.Second)
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			msgs = append(msgs, message(capped, ch, due), message(other, ch, later))
		}
		return msgs
	})
	cl, err = s.ClaimMessages(ctx, store.ClaimParams{Now: due, Limit: 10, Lease: lease, ExcludeSubscriptions: []string{capped.ID}})
	if err != nil || len(cl.Deliveries) != 0 || !cl.NextDue.Equal(later) {
		t.Errorf("claim with only an excluded subscription's messages due = %d deliveries, next %v, %v; want none, next %v",
			len(cl.Deliveries), cl.NextDue, err, later)
	}
	cl, err = s.ClaimMessages(ctx, store.ClaimParams{Now: due, Limit: 10, Lease: lease})
	if err != nil || len(cl.Deliveries) != 1 || cl.Deliveries[0].Message.SubscriptionID != capped.ID {
		t.Errorf("claim without exclusions = %d deliveries, %v; want the excluded subscription's message", len(cl.Deliveries), err)
	}
}

// testFanOutLeased: a message the fan-out stores claimed is reported as
// leased with its seq, is not claimed by others during its lease, and is
// claimed once the lease ends (its maker died); an attempt recorded by the
// reported seq (the fan-out's maker delivers it itself) finishes it.
func testFanOutLeased(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 2)
	lease := base.Add(time.Minute)
	var leasedID string
	msgs, leased := fanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			m := message(sub, ch, base)
			if leasedID == "" {
				m.Status, m.NextAttemptAt, leasedID = store.MessageDelivering, lease, m.ID
			}
			msgs = append(msgs, m)
		}
		return msgs
	})
	if len(msgs) != 2 || len(leased) != 1 || leased[0].ID != leasedID {
		t.Fatalf("fan-out made %d messages, stored %v claimed; want 2, and [%s]", len(msgs), leased, leasedID)
	}
	got := claim(t, s, base, 10)
	if len(got) != 1 || got[0].Message.ID == leasedID {
		t.Errorf("claim during the lease = %v; want only the pending message", got)
	}
	m, err := s.Message(ctx, a.ID, leasedID)
	if err != nil || m.Status != store.MessageDelivering {
		t.Fatalf("leased message = %+v, %v; want delivering", m, err)
	}
	if leased[0].Seq != m.Seq {
		t.Errorf("fan-out reported the leased message's seq as %d; it is %d", leased[0].Seq, m.Seq)
	}
	if got := claim(t, s, lease, 10); len(got) != 2 {
		t.Errorf("claim after the leases = %d; want both, the leased one taken over", len(got))
	}
	for _, d := range got {
		if d.Message.Seq == 0 {
			t.Errorf("claimed message %s has no seq", d.Message.ID)
		}
	}
	res := &store.AttemptResult{
		Attempt:        store.Attempt{MessageID: leasedID, MessageSeq: leased[0].Seq, DeliveryID: id.UUID(), AttemptedAt: lease, StatusCode: 204},
		SubscriptionID: sub.ID, Outcome: store.OutcomeDelivered,
	}
	if _, err := s.RecordAttempts(ctx, []*store.AttemptResult{res}, store.RecordParams{Now: lease}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	if m, err := s.Message(ctx, a.ID, leasedID); err != nil || m.Status != store.MessageDelivered {
		t.Errorf("leased message after its attempt = %+v, %v; want delivered", m, err)
	}
	att, err := s.ListAttempts(ctx, store.ListAttemptsParams{AccountID: a.ID, MessageID: leasedID, Page: store.Page{Limit: 10}})
	if err != nil || len(att) != 1 || att[0].MessageID != leasedID || att[0].MessageSeq != leased[0].Seq || att[0].StatusCode != 204 {
		t.Errorf("attempts of the leased message = %+v, %v; want the one recorded", att, err)
	}
}

// testSubscriptionLimit creates subscriptions concurrently against a bound
// and checks that exactly the bound is stored, per account.
func testSubscriptionLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, other := newAccount(t, s), newAccount(t, s)
	const limit, tries = 5, 20
	errFull := errors.New("full")
	admit := func(existing int) error {
		if existing >= limit {
			return errFull
		}
		return nil
	}
	newSub := func(accountID string) *store.Subscription {
		return &store.Subscription{
			ID: id.New("sub"), AccountID: accountID, URL: "https://example.com/hook", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
			RateLimit: 1, CreatedAt: base, UpdatedAt: base,
		}
	}
	errs := make(chan error, tries)
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() { errs <- s.CreateSubscription(ctx, newSub(a.ID), admit) })
	}
	wg.Wait()
	close(errs)
	created, refused := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			created++
		case errors.Is(err, errFull):
			refused++
		default:
			t.Errorf("CreateSubscription: %v", err)
		}
	}
	if created != limit || refused != tries-limit {
		t.Errorf("%d concurrent creates with limit %d: %d created, %d refused; want %d and %d", tries, limit, created, refused, limit, tries-limit)
	}
	subs, err := s.ListSubscriptions(ctx, store.ListSubscriptionsParams{AccountID: a.ID, Page: store.Page{Limit: 100}})
	if err != nil || len(subs) != limit {
		t.Errorf("ListSubscriptions = %d subscriptions, %v; want %d", len(subs), err, limit)
	}
	// The count is per account, and no admit counts nothing.
	if err := s.CreateSubscription(ctx, newSub(other.ID), admit); err != nil {
		t.Errorf("CreateSubscription(other account) = %v; want it stored", err)
	}
	if err := s.CreateSubscription(ctx, newSub(a.ID), nil); err != nil {
		t.Errorf("CreateSubscription(no admit) = %v; want it stored", err)
	}
}

// testClaimWebhookHostRate: webhooks to one host, from subscriptions of
// two accounts without their own limits, go out at the host rate, each
// later one in its own slot (delayed, never dropped), while another host
// is paced on its own.
func testClaimWebhookHostRate(t *testing.T, s store.Store) {
	ctx := context.Background()
	var busy []*store.Subscription
	for range 2 {
		a := newAccount(t, s)
		c := newCalendar(t, s, a.ID)
		sub := newSubscription(t, s, a.ID, 0)
		sub.URL = "https://busy.example/hook"
		if err := s.UpdateSubscription(ctx, sub); err != nil {
			t.Fatalf("UpdateSubscription: %v", err)
		}
		busy = append(busy, sub)
		events(t, s, c, 3)
		enqueue(t, s, sub, base)
	}
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	other := newSubscription(t, s, a.ID, 0) // https://example.com/hook
	events(t, s, c, 3)
	enqueue(t, s, other, base)

	claimAt := func(now time.Time) []*store.Delivery {
		cl, err := s.ClaimMessages(ctx, store.ClaimParams{Now: now, Limit: 100, Lease: time.Minute, WebhookHostRate: 2})
		if err != nil {
			t.Fatalf("ClaimMessages: %v", err)
		}
		return cl.Deliveries
	}
	first := claimAt(base)
	perSub := map[string]int{}
	for _, d := range first {
		perSub[d.Message.SubscriptionID]++
	}
	if perSub[other.ID] != 1 || perSub[busy[0].ID]+perSub[busy[1].ID] != 1 {
		t.Fatalf("first claim at 2/s per host = %v; want one message to each host", perSub)
	}
	var due []time.Time
	var others int
	for now := base; now.Before(base.Add(4 * time.Second)); now = now.Add(100 * time.Millisecond) {
		for _, d := range claimAt(now) {
			if d.Message.SubscriptionID == other.ID {
				others++
				continue
			}
			due = append(due, now)
		}
	}
	if others != 2 {
		t.Errorf("claimed %d more of example.com; want its 2 others, paced on their own host", others)
	}
	if len(due) != 5 {
		t.Fatalf("claimed %d more of busy.example within 4 s; want the 5 others", len(due))
	}
	for i, at := range due {
		if want := base.Add(time.Duration(i+1) * 500 * time.Millisecond); at.Before(want) {
			t.Errorf("busy.example message %d went out at +%v; want not before +%v", i+2, at.Sub(base), want.Sub(base))
		}
	}
}

// UpgradedAttempts is the delivery log an upgrade test stores, in the
// older schema, for CheckUpgradedAttempts: three messages of account
// "acc" (ids in order of storing) and their attempts' status codes, in
// order of attempting.
var UpgradedAttempts = []struct {
	MessageID string
	Codes     []int
}{{"msg-a", nil}, {"msg-b", []int{500, 204}}, {"msg-c", []int{204}}}

// UpgradedAttemptOrder is the order UpgradedAttempts' attempts were made
// in, by message: interleaved, so that a message's attempts are not
// neighbours.
var UpgradedAttemptOrder = []struct {
	MessageID string
	Code      int
}{{"msg-b", 500}, {"msg-c", 204}, {"msg-b", 204}}

// CheckUpgradedAttempts checks that s, opened on a database that held
// UpgradedAttempts before its migrations ran, keeps every attempt under
// its message.
func CheckUpgradedAttempts(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, want := range UpgradedAttempts {
		m, err := s.Message(ctx, "acc", want.MessageID)
		if err != nil {
			t.Fatalf("Message(%s): %v", want.MessageID, err)
		}
		att, err := s.ListAttempts(ctx, store.ListAttemptsParams{AccountID: "acc", MessageID: want.MessageID, Page: store.Page{Limit: 10}})
		if err != nil {
			t.Fatalf("ListAttempts(%s): %v", want.MessageID, err)
		}
		var codes []int
		for _, a := range att {
			if a.MessageID != want.MessageID || a.MessageSeq != m.Seq {
				t.Errorf("attempt %d of %s reads as message %s (seq %d); want seq %d", a.ID, want.MessageID, a.MessageID, a.MessageSeq, m.Seq)
			}
			codes = append(codes, a.StatusCode)
		}
		if !slices.Equal(codes, want.Codes) {
			t.Errorf("attempts of %s after the upgrade: status codes %v; want %v", want.MessageID, codes, want.Codes)
		}
	}
}
