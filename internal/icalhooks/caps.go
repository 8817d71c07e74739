package icalhooks

import (
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

// hookCap bounds the hooks of one scope.
type hookCap struct {
	scope store.HookScope
	max   int
	// what names the bound in a refusal.
	what string
}

// caps are the bounds a new hook must stay within, in the order they are
// checked; a bound of zero or less is no bound.
type caps []hookCap

func newCaps(perFeed, perToken, perHost int) caps {
	var c caps
	for _, b := range []hookCap{
		{store.HooksOfFeed, perFeed, "hooks per feed"},
		{store.HooksOfToken, perToken, "hooks per feed token"},
		{store.HooksOfHost, perHost, "hooks per target host"},
	} {
		if b.max > 0 {
			c = append(c, b)
		}
	}
	return c
}

// scopes lists the sets of hooks the store counts for admit.
func (c caps) scopes() []store.HookScope {
	out := make([]store.HookScope, len(c))
	for i, b := range c {
		out[i] = b.scope
	}
	return out
}

// admit refuses a new hook when the hooks already in a bound's scope
// (counts, in the order of scopes) have reached it.
func (c caps) admit(counts []int) error {
	for i, b := range c {
		if counts[i] >= b.max {
			return fault.Conflictf(fault.HookLimit, "hook limit reached: %d %s", b.max, b.what)
		}
	}
	return nil
}
