package console

import (
	"context"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/memo"
	"github.com/calhook/calhook/internal/notify"
)

// availCache keeps the availability that unit pages read, per unit and
// window, until a change of the unit's account (FeedsChanged, from any
// node) or the next day (recurring events block up to a horizon that
// moves with the date). A page viewed again, or refreshed by several
// viewers' live streams after one change, then costs one read of its
// busy time rather than one each.
type availCache struct {
	m *memo.ByAccount[availKey, *availEntry]
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
	c := &availCache{m: memo.NewByAccount[availKey, *availEntry](maxAvail, func(k availKey) string { return k.accountID })}
	// An empty AccountID (another node's notes may have been missed)
	// forgets every window.
	bus.FeedsChanged.Subscribe(func(ch notify.FeedChange) { c.m.Forget(ch.AccountID) })
	return c
}

// get returns the availability of unitID in [from, to) through the cache,
// reading it with read on a miss. Entries are shared: callers must not
// change them.
func (c *availCache) get(ctx context.Context, accountID, unitID string, from, to, now time.Time,
	read func(context.Context) (*availability.UnitAvailability, error)) (*availability.UnitAvailability, error) {
	k := availKey{accountID, unitID, from.UTC(), to.UTC()}
	day := now.UTC().Truncate(24 * time.Hour)
	if e, ok := c.m.Get(k); ok && e.day.Equal(day) {
		return e.ua, nil
	}
	// A change during the read leaves its result uncached.
	epoch := c.m.Epoch(accountID)
	ua, err := read(ctx)
	if err != nil {
		return nil, err
	}
	c.m.Put(k, epoch, &availEntry{ua: ua, day: day})
	return ua, nil
}
