package store

import (
	"testing"
	"time"
)

// TestPace plays claims as the store adapters make them: each loads the
// stored state, paces its due messages in order and stores the state back.
func TestPace(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	type msg struct {
		reserved bool // holds a slot from an earlier claim
		send     bool
		due      int // when not sent: its new due time, ms after t0
	}
	type claim struct {
		at   int // ms after t0
		msgs []msg
	}
	tests := []struct {
		name   string
		rate   int
		claims []claim
	}{{
		name: "a backlog gets one slot per interval",
		rate: 10,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}, {due: 100}, {due: 200}}},
			{at: 100, msgs: []msg{{reserved: true, send: true}}},
			{at: 200, msgs: []msg{{reserved: true, send: true}}},
		},
	}, {
		name: "reserved slots that came due together go out spaced",
		rate: 10,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}, {due: 100}, {due: 200}, {due: 300}}},
			// The dispatcher comes back late, with all three due.
			{at: 350, msgs: []msg{{reserved: true, send: true}, {reserved: true, due: 450}, {reserved: true, due: 550}}},
			{at: 450, msgs: []msg{{reserved: true, send: true}}},
		},
	}, {
		name: "a claim a little early for its slot sends",
		rate: 1,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}, {due: 1000}}},
			{at: 960, msgs: []msg{{reserved: true, send: true}}},
		},
	}, {
		name: "a claim too early for its slot waits for the spacing",
		rate: 1,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}, {due: 1000}}},
			{at: 700, msgs: []msg{{reserved: true, due: 1000}}},
		},
	}, {
		name: "after a quiet spell the next message goes at once",
		rate: 2,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}}},
			{at: 5000, msgs: []msg{{send: true}, {due: 5500}}},
		},
	}, {
		name: "new messages queue behind the reserved slots",
		rate: 10,
		claims: []claim{
			{at: 0, msgs: []msg{{send: true}, {due: 100}}},
			{at: 50, msgs: []msg{{due: 200}}},
		},
	}, {
		// 100,000 a second is one every 10µs: a claim sends every message
		// whose turn is within PaceWindow, not one per claim.
		name:   "a high rate sends many per claim",
		rate:   100000,
		claims: []claim{{at: 0, msgs: repeat(msg{send: true}, 64)}, {at: 1, msgs: repeat(msg{send: true}, 64)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stored RateState
			for _, c := range tt.claims {
				st := RateState{TAT: stored.TAT, Next: stored.Next}
				now := t0.Add(time.Duration(c.at) * time.Millisecond)
				for i, m := range c.msgs {
					send, at := st.Pace(now, tt.rate, m.reserved)
					due := t0.Add(time.Duration(m.due) * time.Millisecond)
					switch {
					case send != m.send:
						t.Errorf("claim at +%dms, message %d: send = %v; want %v", c.at, i, send, m.send)
					case !send && !at.Equal(due):
						t.Errorf("claim at +%dms, message %d: due at +%v; want +%dms", c.at, i, at.Sub(t0), m.due)
					}
				}
				stored = st
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestPaceHighRateKeepsTheRate checks that the window lets bursts through
// without exceeding the rate over a second of back-to-back claims.
func TestPaceHighRateKeepsTheRate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const rate = 20000
	var st RateState
	sent := 0
	for ms := range 1000 { // a claim every millisecond, each with 100 due
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		for range 100 {
			if ok, _ := st.Pace(now, rate, false); ok {
				sent++
			}
		}
		st.TAT = st.Next // the test drops the slots of unsent messages
	}
	// One second at 20,000/s, plus at most one window's burst.
	if most := rate + rate*int(PaceWindow)/int(time.Second) + 1; sent > most || sent < rate*9/10 {
		t.Errorf("sent %d in 1 s at %d/s; want between %d and %d", sent, rate, rate*9/10, most)
	}
}
