// Package lifecycle is the one start/stop convention of calhook's
// background components (the fan-out, the dispatcher, the importer, the
// pruner, the store's listener): each is constructed from a config
// struct, Start(ctx) sets it running in the background, and Stop(ctx)
// ends it and returns only once its goroutines have exited. Stop's ctx
// bounds how long work in flight may finish before it is cancelled; Stop
// waits for the goroutines either way. Stop is safe to call more than
// once, and before Start.
//
// Loop holds the bookkeeping of a component's goroutine, Func makes a
// component of a blocking function, and Group starts components in order
// and stops them in reverse.
package lifecycle

import (
	"context"
	"sync"
)

// Component is a background part of calhook.
type Component interface {
	// Start sets the component running until Stop; ctx ending stops it
	// too.
	Start(ctx context.Context) error
	// Stop ends the component and waits for its goroutines.
	Stop(ctx context.Context)
}

// Loop runs one goroutine of a component and stops it. Its zero value is
// ready to use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Go runs run on a new goroutine with a context that Stop cancels (and
// that ends with ctx).
func (l *Loop) Go(ctx context.Context, run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.mu.Lock()
	l.cancel, l.done = cancel, done
	l.mu.Unlock()
	go func() {
		defer close(done)
		run(ctx)
	}()
}

// Stop cancels the goroutine's context and waits for it to return. It is
// safe to call more than once, and before Go.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Func returns a Component that runs run, which must return once its
// context ends, on a goroutine of its own.
func Func(run func(ctx context.Context)) Component { return &funcComponent{run: run} }

type funcComponent struct {
	run  func(ctx context.Context)
	loop Loop
}

func (f *funcComponent) Start(ctx context.Context) error {
	f.loop.Go(ctx, f.run)
	return nil
}

func (f *funcComponent) Stop(context.Context) { f.loop.Stop() }

// Group is components started in order and stopped in reverse, so that
// each stops before the ones it hands work to.
type Group struct {
	components []Component
	started    int
}

// NewGroup returns a Group of components, in start order.
func NewGroup(components ...Component) *Group { return &Group{components: components} }

// Start starts the components in order, up to the first that fails,
// whose error it returns; Stop then stops those it started.
func (g *Group) Start(ctx context.Context) error {
	for _, c := range g.components[g.started:] {
		if err := c.Start(ctx); err != nil {
			return err
		}
		g.started++
	}
	return nil
}

// Stop stops the started components in reverse order, each given ctx.
func (g *Group) Stop(ctx context.Context) {
	for ; g.started > 0; g.started-- {
		g.components[g.started-1].Stop(ctx)
	}
}
