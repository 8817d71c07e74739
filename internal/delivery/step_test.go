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
		if got := stepSize(tt.perAccount, tt.batch, maxStepMessages); got != tt.want {
			t.Errorf("stepSize(%d, %d, %d) = %d; want %d", tt.perAccount, tt.batch, maxStepMessages, got, tt.want)
		}
	}
}

// TestAdaptRemembersTheHeavyAccount: after a step with an account of 100
// subscriptions, steps stay small while only light accounts write, until
// heavyMemory has passed, so the heavy account's next burst does not
// come in one big step.
func TestAdaptRemembersTheHeavyAccount(t *testing.T) {
	t.Parallel()
	f := &FanOut{batch: 500, messages: maxStepMessages}
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

// TestPaceFollowsStepTime: steps over stepBudget halve the webhooks a step
// may store, down to minStepMessages; quick ones double it, up to
// maxStepMessages; and the changes a step reads follow.
func TestPaceFollowsStepTime(t *testing.T) {
	t.Parallel()
	f := &FanOut{batch: 500, messages: maxStepMessages}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		took         time.Duration
		wantMessages int
		wantStep     int // for an account with 100 subscriptions
	}{
		{stepBudget * 3, 1000, 10},
		{stepBudget * 3, 500, 5},
		{stepBudget * 3, 250, 2},
		{stepBudget * 3, 250, 2},
		{stepBudget * 3 / 4, 250, 2},
		{stepBudget / 4, 500, 5},
		{stepBudget / 4, 1000, 10},
		{stepBudget / 4, 2000, 20},
		{stepBudget / 4, 2000, 20},
	} {
		f.pace(tt.took)
		if f.messages != tt.wantMessages {
			t.Errorf("after a step of %s: %d webhooks a step; want %d", tt.took, f.messages, tt.wantMessages)
		}
		if got := f.adapt(100, now); got != tt.wantStep {
			t.Errorf("after a step of %s: steps of %d changes; want %d", tt.took, got, tt.wantStep)
		}
		if !f.fits(tt.wantStep, 100) || f.fits(tt.wantStep+1, 100) {
			t.Errorf("after a step of %s: fits(%d) = %v, fits(%d) = %v; want true, false",
				tt.took, tt.wantStep, f.fits(tt.wantStep, 100), tt.wantStep+1, f.fits(tt.wantStep+1, 100))
		}
	}
}
