package lifecycle

import (
	"context"

	"github.com/calhook/calhook/internal/fault"
)

// ErrShuttingDown is the cause of a context that Draining ended because
// the server began to shut down: a 503 with Retry-After, so a client
// retries (on another node, or once this one is back).
var ErrShuttingDown error = &fault.Error{Code: fault.Unavailable, Reason: fault.ShuttingDown,
	Message: "calhook is shutting down; retry"}

type drainKey struct{}

// WithDrain returns a copy of parent that carries drain, a context done
// when the server begins to shut down (an http.Server's BaseContext).
func WithDrain(parent, drain context.Context) context.Context {
	return context.WithValue(parent, drainKey{}, drain)
}

// Draining returns a context that ends with ctx, or with cause
// ErrShuttingDown when the drain that ctx carries (WithDrain) is done.
// Requests that wait long (a sync that waits for its poll, a live
// stream) use it, so that a graceful shutdown does not wait for them
// until its timeout; short requests keep their own context and finish.
func Draining(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancelCause(ctx)
	drain, _ := ctx.Value(drainKey{}).(context.Context)
	if drain == nil {
		return c, func() { cancel(nil) }
	}
	stop := context.AfterFunc(drain, func() { cancel(ErrShuttingDown) })
	return c, func() {
		stop()
		cancel(nil)
	}
}
