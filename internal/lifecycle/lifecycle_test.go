package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/calhook/calhook/internal/lifecycle"
)

func TestLoopStopWaitsForTheGoroutine(t *testing.T) {
	t.Parallel()
	var l lifecycle.Loop
	l.Stop() // before Go: nothing to stop
	var exited atomic.Bool
	started := make(chan struct{})
	l.Go(context.Background(), func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		exited.Store(true)
	})
	<-started
	l.Stop()
	if !exited.Load() {
		t.Fatal("Stop returned before the goroutine did")
	}
	l.Stop() // again: returns at once
}

func TestLoopEndsWithItsContext(t *testing.T) {
	t.Parallel()
	var l lifecycle.Loop
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.Go(ctx, func(ctx context.Context) {
		<-ctx.Done()
		close(done)
	})
	cancel()
	<-done
	l.Stop()
}

func TestLoopConcurrentStops(t *testing.T) {
	t.Parallel()
	var l lifecycle.Loop
	var exited atomic.Bool
	l.Go(context.Background(), func(ctx context.Context) {
		<-ctx.Done()
		exited.Store(true)
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l.Stop()
			if !exited.Load() {
				t.Error("a concurrent Stop returned before the goroutine did")
			}
		})
	}
	wg.Wait()
}

// recorder is a component that notes its starts and stops in a shared log.
type recorder struct {
	name string
	log  *[]string
	fail error
}

func (r *recorder) Start(context.Context) error {
	if r.fail != nil {
		return r.fail
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r *recorder) Stop(context.Context) { *r.log = append(*r.log, "stop "+r.name) }

func TestGroup(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		failAt  int // -1: none fails
		wantErr error
		want    []string
	}{
		{"all start, stop in reverse", -1, nil, []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}},
		{"a failure stops only the started", 2, boom, []string{"start a", "start b", "stop b", "stop a"}},
		{"the first fails", 0, boom, nil},
	}
	for _, tt := range tests {
		var log []string
		var cs []lifecycle.Component
		for i, n := range []string{"a", "b", "c"} {
			r := &recorder{name: n, log: &log}
			if i == tt.failAt {
				r.fail = boom
			}
			cs = append(cs, r)
		}
		g := lifecycle.NewGroup(cs...)
		ctx := context.Background()
		if err := g.Start(ctx); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Start = %v; want %v", tt.name, err, tt.wantErr)
		}
		g.Stop(ctx)
		g.Stop(ctx) // again: stops nothing twice
		if !slices.Equal(log, tt.want) {
			t.Errorf("%s: log = %q; want %q", tt.name, log, tt.want)
		}
	}
}

func TestFunc(t *testing.T) {
	t.Parallel()
	running := make(chan struct{})
	var exited atomic.Bool
	c := lifecycle.Func(func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		exited.Store(true)
	})
	c.Stop(context.Background()) // before Start
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-running
	c.Stop(context.Background())
	if !exited.Load() {
		t.Fatal("Stop returned before the function did")
	}
}
