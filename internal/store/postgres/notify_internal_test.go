package postgres

import (
	"slices"
	"testing"
	"time"
)

func TestNotifierRide(t *testing.T) {
	n := newNotifier(nil, nil) // run is not started: nothing goes out alone
	a, b, c := note{changesChannel, "a:1"}, note{changesChannel, "a:2"}, note{messagesChannel, ""}
	ended := func() { n.lastSent = time.Now().Add(-notifyWindow) }
	for _, step := range []struct {
		name  string
		queue []note // sent before the ride
		end   bool   // the window ends before the ride
		own   []note
		want  []note
	}{
		{name: "the first write after a quiet time rides", own: []note{a}, want: []note{a}},
		{name: "within the window nothing rides", own: []note{b}, want: nil},
		{name: "queued notes wait for the window", queue: []note{b, c, b}, own: []note{a}, want: nil},
		{name: "the next ride takes them, without duplicates", end: true, own: []note{a, b}, want: []note{b, c, a}},
		{name: "and leaves nothing queued", end: true, own: []note{a}, want: []note{a}},
	} {
		n.send(step.queue...)
		if step.end {
			ended()
		}
		if got := n.ride(step.own); !slices.Equal(got, step.want) {
			t.Fatalf("%s: ride(%v) = %v; want %v", step.name, step.own, got, step.want)
		}
	}
}
