package delivery

import (
	"testing"
	"time"
)

func TestStepSize(t *testing.T) {
	t.Parallel()
	tests := []struct{ perAccount, batch, want int }{
		{0, 500, 500},  // no subscriptions: full batches
		{1, 500, 500},  // one each: 2,000 a step, capped at the batch
		{100, 500, 20}, // an account at the subscription cap: 2,000 messages a step
		{5000, 500, 1}, // more than maxStepMessages: one change at a time
		{100, 10, 10},  // never above the batch
	}
	for _, tt := range tests {
		if got := stepSize(tt.perAccount, tt.batch); got != tt.want {
			t.Errorf("stepSize(%d, %d) = %d; want %d", tt.perAccount, tt.batch, got, tt.want)
		}
	}
}

// TestAdaptRemembersTheHeavyAccount: after a step with an account of 100
// subscriptions, steps stay small while only light accounts write, until
// heavyMemory has passed, so the heavy account's next burst does not
// come in one big step.
func TestAdaptRemembersTheHeavyAccount(t *testing.T) {
	t.Parallel()
	f := &FanOut{batch: 500}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got := f.adapt(100, now); got != 20 {
		t.Fatalf("after a heavy step: %d; want 20", got)
	}
	if got := f.adapt(1, now.Add(heavyMemory/2)); got != 20 {
		t.Errorf("a light step soon after: %d; want still 20", got)
	}
	if got := f.adapt(1, now.Add(heavyMemory+time.Second)); got != 500 {
		t.Errorf("a light step after heavyMemory: %d; want 500", got)
	}
}
