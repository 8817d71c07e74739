package console

import (
	"context"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/notify"
)

// availCache keeps the availability that unit pages read, per unit and
// window, until a change of the unit's account (FeedsChanged, from any
// node) or the next day (recurring events block up to a horizon that
// moves with the date). A page viewed again, or refreshed by several
// viewers' live streams after one change, then costs one read of its
// busy time rather than one each.
type availCache struct {
	mu      sync.Mutex
	entries map[availKey]*availEntry
	epochs  map[string]uint64
	gen     uint64
}

type availKey struct {
	accountID, unitID string
	from, to          time.Time
}

type availEntry struct {
	ua  *availability.UnitAvailability
	day time.Time
}

// maxAvail bounds the cached windows; a full cache starts afresh.
const maxAvail = 1000

func newAvailCache(bus *notify.Bus) *availCache {
	c := &availCache{entries: map[availKey]*availEntry{}, epochs: map[string]uint64{}}
	bus.FeedsChanged.Subscribe(c.changed)
	return c
}

// get returns the availability of unitID in [from, to) through the cache,
// reading it with read on a miss. Entries are shared: callers must not
// change them.
func (c *availCache) get(ctx context.Context, accountID, unitID string, from, to, now time.Time,
	read func(context.Context) (*availability.UnitAvailability, error)) (*availability.UnitAvailability, error) {
	k := availKey{accountID, unitID, from.UTC(), to.UTC()}
	day := now.UTC().Truncate(24 * time.Hour)
	c.mu.Lock()
	e, ok := c.entries[k]
	epoch, gen := c.epochs[accountID], c.gen
	c.mu.Unlock()
	if ok && e.day.Equal(day) {
		return e.ua, nil
	}
	ua, err := read(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A change during the read leaves its result uncached.
	if c.epochs[accountID] == epoch && c.gen == gen {
		if len(c.entries) >= maxAvail {
			clear(c.entries)
		}
		c.entries[k] = &availEntry{ua: ua, day: day}
	}
	return ua, nil
}

// changed drops what a change may have touched: an account's windows, or
// every window when another node's notes may have been missed.
func (c *availCache) changed(ch notify.FeedChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.All() {
		c.gen++
		clear(c.entries)
		return
	}
	c.epochs[ch.AccountID]++
	for k := range c.entries {
		if k.accountID == ch.AccountID {
			delete(c.entries, k)
		}
	}
}
