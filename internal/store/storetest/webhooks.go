package storetest

import (
	"context"
	"errors"
	"fmt"
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
	{"EnqueueIsIdempotentAndGuarded", testEnqueue},
	{"ClaimLeasesAndExpires", testClaimLease},
	{"ClaimRateLimits", testClaimRateLimit},
	{"RecordOutcomes", testRecordOutcomes},
	{"RecordAfterSubscriptionDeleted", testRecordAfterDelete},
	{"DisabledSubscriptionsAreParked", testParked},
	{"PruneKeepsUnreadChanges", testPrune},
}

func newSubscription(t *testing.T, s store.Store, accountID string, rate int) *store.Subscription {
	t.Helper()
	sub := &store.Subscription{
		ID: id.New("sub"), AccountID: accountID, URL: "https://example.com/hook", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
		RateLimit: rate, CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateSubscription(context.Background(), sub); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	return sub
}

// enqueue fans the account's unread changes out to sub, one message each.
func enqueue(t *testing.T, s store.Store, sub *store.Subscription, due time.Time) []*store.Message {
	t.Helper()
	ctx := context.Background()
	changes, from, err := s.ReadChanges(ctx, store.FanOutCursor, 1000)
	if err != nil {
		t.Fatalf("ReadChanges: %v", err)
	}
	var msgs []*store.Message
	for _, ch := range changes {
		if ch.AccountID != sub.AccountID {
			continue
		}
		msgs = append(msgs, &store.Message{
			ID: id.UUID(), AccountID: ch.AccountID, SubscriptionID: sub.ID, ChangeID: ch.ID, EventType: ch.Type,
			Payload: []byte(`{"n":` + fmt.Sprint(ch.ID) + `}`), NextAttemptAt: due, CreatedAt: due,
		})
	}
	to := from
	if len(changes) > 0 {
		to = changes[len(changes)-1].ID
	}
	if err := s.EnqueueMessages(ctx, store.FanOutCursor, from, to, msgs); err != nil {
		t.Fatalf("EnqueueMessages: %v", err)
	}
	return msgs
}

func events(t *testing.T, s store.Store, c *store.Calendar, n int) {
	t.Helper()
	for i := range n {
		mustCreateEvent(t, s, newEvent(c, fmt.Sprintf("%s-%d", c.ID, i), base))
	}
}

func claim(t *testing.T, s store.Store, now time.Time, limit int) []*store.Delivery {
	t.Helper()
	ds, err := s.ClaimMessages(context.Background(), store.ClaimParams{Now: now, Limit: limit, Lease: time.Minute})
	if err != nil {
		t.Fatalf("ClaimMessages: %v", err)
	}
	return ds
}

func testEnqueue(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 3)
	msgs := enqueue(t, s, sub, base)
	if len(msgs) != 3 {
		t.Fatalf("enqueued %d; want 3", len(msgs))
	}
	// A stale writer (cursor moved on) stores nothing.
	dup := *msgs[0]
	dup.ID = id.UUID()
	if err := s.EnqueueMessages(ctx, store.FanOutCursor, 0, msgs[2].ChangeID, []*store.Message{&dup}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("EnqueueMessages from a stale cursor = %v; want ErrConflict", err)
	}
	// Replaying the same (change, subscription) is ignored.
	changes, from, _ := s.ReadChanges(ctx, store.FanOutCursor, 10)
	if len(changes) != 0 {
		t.Errorf("ReadChanges after the fan-out = %d changes; want none", len(changes))
	}
	if err := s.EnqueueMessages(ctx, store.FanOutCursor, from, from, []*store.Message{&dup}); err != nil {
		t.Fatalf("EnqueueMessages replay: %v", err)
	}
	got, _ := s.ListMessages(ctx, store.ListMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 10}})
	if len(got) != 3 {
		t.Errorf("messages after a replay = %d; want 3", len(got))
	}
	if got[0].ChangeID < got[2].ChangeID {
		t.Errorf("ListMessages is not newest first")
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
	if _, err := s.ClaimMessages(ctx, store.ClaimParams{Now: base.Add(time.Hour), Limit: 10, Lease: time.Minute, Exclude: []string{sub.ID}}); err != nil {
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
			Attempt: store.Attempt{MessageID: d.Message.ID, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 500 - i,
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

func testParked(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 2)
	enqueue(t, s, sub, base)
	ds := claim(t, s, base, 1)
	disabled, err := s.RecordAttempts(ctx, []*store.AttemptResult{{
		Attempt:        store.Attempt{MessageID: ds[0].Message.ID, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 410},
		SubscriptionID: sub.ID, Outcome: store.OutcomeUndeliverable, Disable: "gone",
	}}, store.RecordParams{Now: base})
	if err != nil || len(disabled) != 1 {
		t.Fatalf("RecordAttempts with Disable = %v, %v; want the subscription disabled", disabled, err)
	}
	if ds := claim(t, s, base.Add(time.Hour), 10); len(ds) != 0 {
		t.Errorf("claimed %d messages of a disabled subscription", len(ds))
	}
	if _, ok, _ := s.NextDue(ctx); ok {
		t.Errorf("NextDue reports parked messages as due")
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
			Attempt:        store.Attempt{MessageID: d.Message.ID, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 200},
			SubscriptionID: sub.ID, Outcome: store.OutcomeDelivered,
		})
	}
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: base}); err != nil {
		t.Fatal(err)
	}
	events(t, s, newCalendar(t, s, a.ID), 1) // not fanned out yet: must survive
	st, err := s.Prune(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if st.Messages < 2 || st.Attempts < 2 || st.Changes < 2 {
		t.Errorf("Prune = %+v; want the 2 delivered messages, their attempts and changes", st)
	}
	left, _, err := s.ReadChanges(ctx, store.FanOutCursor, 10)
	if err != nil || len(left) != 1 {
		t.Errorf("unread changes after Prune = %d, %v; want the 1 the fan-out has not read", len(left), err)
	}
	if h, err := s.ChangeHorizon(ctx); err != nil || h == 0 {
		t.Errorf("ChangeHorizon = %d, %v; want the newest pruned change", h, err)
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
	changes, from, _ := s.ReadChanges(ctx, store.FanOutCursor, 10)
	var msgs []*store.Message
	for _, sub := range []*store.Subscription{gone, kept} {
		msgs = append(msgs, &store.Message{ID: id.UUID(), AccountID: a.ID, SubscriptionID: sub.ID, ChangeID: changes[0].ID,
			EventType: changes[0].Type, Payload: []byte(`{}`), NextAttemptAt: base, CreatedAt: base})
	}
	if err := s.EnqueueMessages(ctx, store.FanOutCursor, from, changes[0].ID, msgs); err != nil {
		t.Fatal(err)
	}
	ds := claim(t, s, base, 10)
	if err := s.DeleteSubscription(ctx, a.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	var results []*store.AttemptResult
	for _, d := range ds {
		results = append(results, &store.AttemptResult{
			Attempt:        store.Attempt{MessageID: d.Message.ID, DeliveryID: id.UUID(), AttemptedAt: base, StatusCode: 200},
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
