package delivery

import (
	"context"
	"testing"
	"time"
)

func TestAdaptiveLimit(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	type answer struct {
		latency    time.Duration
		overloaded bool
		after      time.Duration // since t0
	}
	fast := func(n int) []answer {
		out := make([]answer, n)
		for i := range out {
			out[i] = answer{latency: ms, after: time.Duration(i) * ms}
		}
		return out
	}
	tests := []struct {
		name    string
		ceiling int
		inUse   int
		answers []answer
		want    int
	}{
		{"starts at 4", 64, 0, nil, 4},
		{"starts at a lower ceiling", 2, 0, nil, 2},
		{"grows while in use and fast", 64, 64, fast(100), 14},
		{"stays at the ceiling", 8, 64, fast(500), 8},
		{"does not grow unused", 64, 0, fast(100), 4},
		{"halves on overload", 64, 64, []answer{{ms, true, 0}}, 2},
		{"cuts once per round trip", 64, 64, append(fast(100), answer{400 * ms, false, time.Second}, answer{400 * ms, false, time.Second + 10*ms}), 7},
		{"cuts again a round trip later", 64, 64, append(fast(100), answer{400 * ms, false, time.Second}, answer{400 * ms, false, time.Second + 400*ms}), 4},
		{"slow answers alone stop at the start", 64, 64, []answer{{ms, false, 0}, {time.Second, false, time.Second}, {time.Second, false, 3 * time.Second}}, 4},
		{"a noisy answer below the threshold is no cut", 64, 64, append(fast(100), answer{40 * ms, false, time.Second}), 14},
		{"never below 1", 64, 64, []answer{{ms, true, 0}, {ms, true, time.Second}, {ms, true, 2 * time.Second}, {ms, true, 3 * time.Second}}, 1},
	}
	for _, tt := range tests {
		a := newAdaptive(tt.ceiling)
		a.inUse = tt.inUse
		for _, an := range tt.answers {
			a.observe(an.latency, an.overloaded, t0.Add(an.after))
		}
		if got := a.current(); got != tt.want {
			t.Errorf("%s: limit = %d; want %d", tt.name, got, tt.want)
		}
	}
}

func TestAdaptiveWaits(t *testing.T) {
	t.Parallel()
	a := newAdaptive(1)
	ctx := context.Background()
	if !a.acquire(ctx) {
		t.Fatal("first acquire failed")
	}
	got := make(chan bool)
	go func() { got <- a.acquire(ctx) }()
	select {
	case <-got:
		t.Fatal("a second acquire at limit 1 did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	a.release()
	if !<-got {
		t.Fatal("the waiting acquire failed after a release")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if a.acquire(cctx) {
		t.Error("acquire with an ended context succeeded at the limit")
	}
	a.release()
	if a.inUse != 0 || len(a.waiters) != 0 {
		t.Errorf("after releasing all: inUse %d, waiters %d; want 0, 0", a.inUse, len(a.waiters))
	}
}
