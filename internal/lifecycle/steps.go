package lifecycle

import (
	"context"
	"time"
)

// StepResult is what one step of a change-log consumer (the fan-out, the
// conflict detector) tells RunSteps.
type StepResult struct {
	// Full reports that the step read all it may: more may be waiting,
	// so the next step runs at once.
	Full bool
	// Progress reports that the step read changes; it resets the
	// back-off of Unsettled.
	Progress bool
	// Busy reports that another worker holds the consumer's cursor: the
	// loop then ignores wakes until the next tick, which also takes over
	// from a worker that died.
	Busy bool
	// Unsettled reports that newer changes wait for a transaction still
	// in flight: the next step runs after the back-off.
	Unsettled bool
}

// Steps configures RunSteps.
type Steps struct {
	// Step runs one step. tick is set when the poll interval woke the
	// loop (nothing asked for the step: the consumer is idle).
	Step func(ctx context.Context, tick bool) (StepResult, error)
	// Wake asks for a step (a non-blocking send of a Notify).
	Wake <-chan struct{}
	// Poll is the tick: the safety net for changes no one announced.
	Poll time.Duration
	// BackoffMin and BackoffMax bound the wait after an Unsettled step,
	// which doubles while steps make no progress.
	BackoffMin, BackoffMax time.Duration
	// Failed hears of a step's error (never of ctx ending); the loop then
	// waits as after a short step.
	Failed func(error)
}

// RunSteps runs s.Step until ctx ends: steps follow each other while they
// are Full; then it waits for a wake, a tick, or the back-off after an
// Unsettled step.
func RunSteps(ctx context.Context, s Steps) {
	ticker := time.NewTicker(s.Poll)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := s.BackoffMin
	tick := false
	for {
		var last StepResult
		for {
			res, err := s.Step(ctx, tick)
			tick = false
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.Failed(err)
				break
			}
			if res.Progress {
				backoff = s.BackoffMin
			}
			if last = res; !res.Full {
				break
			}
		}
		wake := s.Wake
		switch {
		case last.Busy:
			wake = nil
		case last.Unsettled:
			retry.Reset(backoff)
			backoff = min(2*backoff, s.BackoffMax)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-ticker.C:
			tick = true
		case <-retry.C:
		}
		retry.Stop()
	}
}
