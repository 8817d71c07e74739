package lifecycle_test

import (
	"context"
	"errors"
	"testing"

	"github.com/calhook/calhook/internal/lifecycle"
)

func TestDraining(t *testing.T) {
	t.Parallel()
	t.Run("drain ends it with ErrShuttingDown", func(t *testing.T) {
		drain, start := context.WithCancel(context.Background())
		ctx, stop := lifecycle.Draining(lifecycle.WithDrain(context.Background(), drain))
		defer stop()
		if ctx.Err() != nil {
			t.Fatal("ended before the drain")
		}
		start()
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), lifecycle.ErrShuttingDown) {
			t.Errorf("cause = %v; want ErrShuttingDown", context.Cause(ctx))
		}
	})
	t.Run("parent ends it with its own cause", func(t *testing.T) {
		drain, start := context.WithCancel(context.Background())
		defer start()
		parent, cancel := context.WithCancel(lifecycle.WithDrain(context.Background(), drain))
		ctx, stop := lifecycle.Draining(parent)
		defer stop()
		cancel()
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), context.Canceled) {
			t.Errorf("cause = %v; want context.Canceled", context.Cause(ctx))
		}
	})
	t.Run("without a drain only the parent ends it", func(t *testing.T) {
		ctx, stop := lifecycle.Draining(context.Background())
		if ctx.Err() != nil {
			t.Fatal("ended at once")
		}
		stop()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("after stop: %v; want canceled", ctx.Err())
		}
	})
}
