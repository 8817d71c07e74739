package lifecycle_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/lifecycle"
)

// stepRecord is one call of a RunSteps step, as the test saw it.
type stepRecord struct {
	tick bool
	at   time.Time
}

// runSteps runs RunSteps with the given results, one per call (the last
// repeats), and returns the calls it saw when ctx ends.
func runSteps(ctx context.Context, s lifecycle.Steps, results []lifecycle.StepResult, errs []error) <-chan stepRecord {
	calls := make(chan stepRecord, 100)
	var n atomic.Int64
	s.Step = func(_ context.Context, tick bool) (lifecycle.StepResult, error) {
		i := int(n.Add(1)) - 1
		calls <- stepRecord{tick: tick, at: time.Now()}
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		return results[min(i, len(results)-1)], err
	}
	if s.Failed == nil {
		s.Failed = func(error) {}
	}
	go lifecycle.RunSteps(ctx, s)
	return calls
}

func TestRunStepsFullStepsRunBackToBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	full := lifecycle.StepResult{Full: true, Progress: true}
	calls := runSteps(ctx, lifecycle.Steps{Poll: time.Hour, BackoffMin: time.Hour, BackoffMax: time.Hour},
		[]lifecycle.StepResult{full, full, {Progress: true}, {}}, nil)
	for i := range 3 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d did not run after a full one", i)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("a step ran at %v after a short one, with nothing to wake the loop", c.at)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestRunStepsWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		result lifecycle.StepResult
		err    error
		// woken: a wake runs the next step; tick: the next step is a
		// tick's; soon: it runs within the back-off without a wake.
		woken, tick, soon bool
	}{
		{name: "short step: a wake runs the next", result: lifecycle.StepResult{}, woken: true},
		{name: "failed step: a wake runs the next", err: errors.New("boom"), woken: true},
		{name: "busy: wakes wait for the tick", result: lifecycle.StepResult{Busy: true}, tick: true},
		{name: "unsettled: retried after the back-off", result: lifecycle.StepResult{Unsettled: true}, soon: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wake := make(chan struct{}, 1)
			poll := 300 * time.Millisecond
			failed := make(chan error, 10)
			calls := runSteps(ctx, lifecycle.Steps{Wake: wake, Poll: poll, BackoffMin: 5 * time.Millisecond,
				BackoffMax: 5 * time.Millisecond, Failed: func(err error) { failed <- err }},
				[]lifecycle.StepResult{tc.result, {}}, []error{tc.err})
			first := <-calls
			if first.tick {
				t.Fatal("the first step is a tick's")
			}
			if tc.err != nil {
				if err := <-failed; !errors.Is(err, tc.err) {
					t.Errorf("Failed heard %v; want %v", err, tc.err)
				}
			}
			if !tc.soon {
				wake <- struct{}{}
			}
			next := <-calls
			waited := next.at.Sub(first.at)
			switch {
			case tc.woken && (next.tick || waited >= poll):
				t.Errorf("the step after a wake came after %v (tick %v); want at once", waited, next.tick)
			case tc.tick && !next.tick:
				t.Errorf("the step after a Busy one came after %v, not on the tick", waited)
			case tc.soon && (next.tick || waited >= poll):
				t.Errorf("the retry of an Unsettled step came after %v (tick %v); want the back-off", waited, next.tick)
			}
		})
	}
}

func TestRunStepsReturnsWhenCtxEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lifecycle.RunSteps(ctx, lifecycle.Steps{Poll: time.Hour, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond,
			Failed: func(error) {}, Step: func(ctx context.Context, _ bool) (lifecycle.StepResult, error) {
				return lifecycle.StepResult{Full: true}, ctx.Err()
			}})
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunSteps did not return after ctx ended")
	}
}
