package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

var statsTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"StatsQueueByState", testStatsQueue},
	{"StatsFanOutLagHooksImports", testStatsLag},
	{"StatsConflictsOpen", testStatsConflicts},
	{"PoolStats", testPoolStats},
	{"TraceTravelsWithChangesAndMessages", testTraceTravels},
}

func stats(t *testing.T, s store.Store, now time.Time) *store.Stats {
	t.Helper()
	st, err := s.Stats(context.Background(), store.StatsParams{Now: now, OverdueAfter: time.Minute})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// testStatsQueue puts messages in every state of the queue and checks
// that Stats counts each where it belongs.
func testStatsQueue(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	if got := stats(t, s, base); got.Queue != (store.QueueStats{}) || !got.OldestUndelivered.IsZero() {
		t.Fatalf("Stats of an empty store = %+v; want zeros", got)
	}
	plain := newSubscription(t, s, a.ID, 0)
	limited := newSubscription(t, s, a.ID, 1)
	doomed := newSubscription(t, s, a.ID, 0)
	events(t, s, c, 6)
	// Messages made at base+i seconds, all due at base+10s.
	due := base.Add(10 * time.Second)
	var made []*store.Message
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			// Counted across steps: a store may hand the changes over in
			// more than one.
			i := len(made) + len(msgs)
			// 2 for plain, 3 for limited, 1 for doomed.
			sub := plain
			switch {
			case i >= 2 && i < 5:
				sub = limited
			case i == 5:
				sub = doomed
			}
			m := message(sub, ch, due)
			m.CreatedAt = base.Add(time.Duration(i+1) * time.Second)
			msgs = append(msgs, m)
		}
		made = append(made, msgs...)
		return msgs
	})
	if len(made) != 6 {
		t.Fatalf("fanned out %d messages; want 6", len(made))
	}
	if got := stats(t, s, base); got.Queue != (store.QueueStats{Retrying: 6}) {
		// Not due yet, and never attempted: they wait for their time
		// like a retry does.
		t.Errorf("Stats before due: Queue = %+v; want 6 waiting", got.Queue)
	}
	st := stats(t, s, due)
	if st.Queue != (store.QueueStats{Due: 6}) {
		t.Errorf("Stats at due: Queue = %+v; want 6 due", st.Queue)
	}
	if want := base.Add(time.Second); !st.OldestUndelivered.Equal(want) {
		t.Errorf("OldestUndelivered = %v; want %v", st.OldestUndelivered, want)
	}

	// Disabling doomed parks its message.
	doomed.Disabled, doomed.DisabledReason, doomed.DisabledAt, doomed.UpdatedAt = true, "test", due, due
	if err := s.UpdateSubscription(ctx, doomed); err != nil {
		t.Fatal(err)
	}
	// One claim: plain's two go, limited's first goes and the other two
	// get later slots.
	// (How many of the rate-limited ones a claim takes at once is the
	// limiter's business; the counts must follow whatever it did.)
	got := claim(t, s, due, 10)
	if len(got) < 3 || len(got) > 4 {
		t.Fatalf("claimed %d; want 2 plain and 1 or 2 of the rate-limited", len(got))
	}
	limitedLeft := int64(5 - len(got))
	st = stats(t, s, due)
	if want := (store.QueueStats{InFlight: int64(len(got)), RateLimited: limitedLeft, Parked: 1}); st.Queue != want {
		t.Errorf("Stats after claim: Queue = %+v; want %+v", st.Queue, want)
	}
	if st.SubscriptionsDisabled != 1 {
		t.Errorf("SubscriptionsDisabled = %d; want 1", st.SubscriptionsDisabled)
	}
	// Record: one delivered, one to retry, one undeliverable.
	var results []*store.AttemptResult
	for i, d := range got {
		r := &store.AttemptResult{
			Attempt:        store.Attempt{MessageID: d.Message.ID, MessageSeq: d.Message.Seq, DeliveryID: id.UUID(), AttemptedAt: due, StatusCode: 500},
			SubscriptionID: d.Message.SubscriptionID,
		}
		switch i {
		case 0:
			r.Outcome, r.StatusCode = store.OutcomeDelivered, 200
		case 1:
			r.Outcome, r.NextAttemptAt = store.OutcomeRetry, due.Add(time.Hour)
		default:
			r.Outcome = store.OutcomeUndeliverable
		}
		results = append(results, r)
	}
	if _, err := s.RecordAttempts(ctx, results, store.RecordParams{Now: due}); err != nil {
		t.Fatal(err)
	}
	st = stats(t, s, due)
	if want := (store.QueueStats{Retrying: 1, RateLimited: limitedLeft, Parked: 1, Undeliverable: int64(len(got) - 2)}); st.Queue != want {
		t.Errorf("Stats after record: Queue = %+v; want %+v", st.Queue, want)
	}
	// An hour later the retry and the slots are due.
	if want := (store.QueueStats{Due: 1 + limitedLeft, Parked: 1, Undeliverable: int64(len(got) - 2)}); stats(t, s, due.Add(time.Hour)).Queue != want {
		t.Errorf("Stats an hour later: Queue = %+v; want %+v", stats(t, s, due.Add(time.Hour)).Queue, want)
	}
}

// testStatsLag checks the fan-out's lag, armed hooks and overdue imports.
func testStatsLag(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	first := mustCreateEvent(t, s, newEvent(c, "lag-1", base))
	mustCreateEvent(t, s, newEvent(c, "lag-2", base))
	if st := stats(t, s, base); !st.OldestUnfanned.Equal(first.OccurredAt) {
		t.Errorf("OldestUnfanned before the fan-out = %v; want the first change's %v", st.OldestUnfanned, first.OccurredAt)
	}
	FanOut(t, s, func([]*store.Change) []*store.Message { return nil })
	if st := stats(t, s, base); !st.OldestUnfanned.IsZero() {
		t.Errorf("OldestUnfanned after the fan-out = %v; want zero", st.OldestUnfanned)
	}

	fs, err := s.FeedVersion(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"https://example.com/a", "https://example.com/b"} {
		reg, err := s.RegisterHook(ctx, registration(a.ID, c, url, "example.com", "t", fs.Version))
		if err != nil || !reg.Hook.Armed {
			t.Fatalf("RegisterHook = %+v, %v; want armed", reg, err)
		}
	}
	if st := stats(t, s, base); st.HooksArmed != 2 {
		t.Errorf("HooksArmed = %d; want 2", st.HooksArmed)
	}

	// Due 2 minutes ago (overdue), 30 s ago (not yet overdue), in an
	// hour; and one that a poller holds.
	newImported(t, s, a.ID, "https://example.com/1.ics", base.Add(-2*time.Minute))
	newImported(t, s, a.ID, "https://example.com/2.ics", base.Add(-30*time.Second))
	newImported(t, s, a.ID, "https://example.com/3.ics", base.Add(time.Hour))
	if st := stats(t, s, base); st.ImportsOverdue != 1 {
		t.Errorf("ImportsOverdue = %d; want 1", st.ImportsOverdue)
	}
	if n := len(claimIDs(t, s, store.ClaimPollsParams{Now: base, Limit: 10, Lease: time.Hour})); n != 2 {
		t.Fatalf("claimed %d polls; want the 2 due", n)
	}
	if st := stats(t, s, base.Add(time.Minute)); st.ImportsOverdue != 0 {
		t.Errorf("ImportsOverdue with both held = %d; want 0", st.ImportsOverdue)
	}
}

// testStatsConflicts checks that ConflictsOpen counts an open conflict
// until its overlap ends or it is resolved.
func testStatsConflicts(t *testing.T, s store.Store) {
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "u")
	c := newCalendar(t, s, a.ID)
	x, y := newEvent(c, "x", base), newEvent(c, "y", base.Add(time.Hour))
	mustCreateEvent(t, s, x)
	mustCreateEvent(t, s, y)
	if st := stats(t, s, base); st.ConflictsOpen != 0 {
		t.Errorf("ConflictsOpen before any = %d; want 0", st.ConflictsOpen)
	}
	cf := conflictOf(u, x, y, base) // overlap base+1h–base+2h
	if res := detectOnce(t, s, &store.ConflictUpdate{Detected: []*store.Conflict{cf}}); res.Detected != 1 {
		t.Fatalf("detect = %+v; want one detected", res)
	}
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base, 1},
		{cf.OverlapEnd.Add(-time.Second), 1},
		{cf.OverlapEnd, 0}, // over: history, not a double booking to sort out
	} {
		if st := stats(t, s, tc.at); st.ConflictsOpen != tc.want {
			t.Errorf("ConflictsOpen at %v = %d; want %d", tc.at, st.ConflictsOpen, tc.want)
		}
	}
	mustCreateEvent(t, s, newEvent(c, "z", base.Add(24*time.Hour)))
	r := *cf
	r.State, r.ResolvedAt = store.ConflictResolved, base
	if res := detectOnce(t, s, &store.ConflictUpdate{Resolved: []*store.Conflict{&r}}); res.Resolved != 1 {
		t.Fatalf("resolve = %+v; want one resolved", res)
	}
	if st := stats(t, s, base); st.ConflictsOpen != 0 {
		t.Errorf("ConflictsOpen after the resolution = %d; want 0", st.ConflictsOpen)
	}
}

// testPoolStats checks that every store reports at least one pool.
func testPoolStats(t *testing.T, s store.Store) {
	ps := s.PoolStats()
	if len(ps) == 0 {
		t.Fatal("PoolStats() is empty")
	}
	for _, p := range ps {
		if p.Name == "" || p.Max <= 0 || p.Open < p.InUse {
			t.Errorf("PoolStats() has %+v; want a name, a positive Max and no more in use than open", p)
		}
	}
}
