package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// testTraceTravels checks that the trace context of a write reaches its
// change, and through a message made of the change, the claim; and that
// the change's time travels with the message.
func testTraceTravels(t *testing.T, s store.Store) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	sub := newSubscription(t, s, a.ID, 0)
	ctx := store.WithTrace(context.Background(), tp)
	if _, err := s.CreateEvent(ctx, newEvent(c, "traced", base)); err != nil {
		t.Fatal(err)
	}
	mustCreateEvent(t, s, newEvent(c, "untraced", base)) // no trace in its context
	var got []*store.Change
	FanOut(t, s, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range changes {
			got = append(got, ch)
			m := message(sub, ch, base)
			m.ChangedAt, m.Trace = ch.OccurredAt, ch.Trace
			msgs = append(msgs, m)
		}
		return msgs
	})
	if len(got) != 2 || got[0].Trace != tp || got[1].Trace != "" {
		var traces []string
		for _, ch := range got {
			traces = append(traces, ch.Trace)
		}
		t.Fatalf("fanned-out changes have traces %q; want [%q, \"\"]", traces, tp)
	}
	ds := claim(t, s, base.Add(time.Second), 10)
	if len(ds) != 2 {
		t.Fatalf("claimed %d; want 2", len(ds))
	}
	traces := map[string]bool{}
	for _, d := range ds {
		traces[d.Message.Trace] = true
		if !d.Message.ChangedAt.Equal(got[0].OccurredAt) {
			t.Errorf("claimed message ChangedAt = %v; want the change's %v", d.Message.ChangedAt, got[0].OccurredAt)
		}
	}
	if !traces[tp] || !traces[""] {
		t.Errorf("claimed messages have traces %v; want %q and \"\"", traces, tp)
	}
}
