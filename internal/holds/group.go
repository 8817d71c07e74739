package holds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// Limits of a group of holds (see unitQueues).
const (
	// maxGroup bounds how many holds of a unit one transaction places.
	maxGroup = 64
	// groupTimeout bounds a group's transaction; its holds wait for it
	// whatever their own contexts say, so that none reports failure for a
	// hold that was placed.
	groupTimeout = time.Minute
)

// unitQueues queues a node's holds of each unit and places them in
// groups, one group of a unit at a time (store.PlaceHolds).
//
// The store orders the holds of a unit by itself (PostgreSQL locks the
// unit's row, SQLite has one writer), across nodes too. Without the queue
// every concurrent hold of a unit on a node would take a database
// connection of the pool only to wait on that row lock, and a burst on one
// unit would leave none for other requests. With it, they wait here,
// without a connection, and each node has at most one transaction per
// unit in the database. The first hold of an idle unit places itself at
// once; those that arrive while a group is being placed queue, and when
// it is done the first of them places the whole queue (up to maxGroup)
// in one transaction, which costs about as much as one hold: so a unit's
// holds never wait for more than the group before theirs, however many
// arrive at once. Only the check and the write are queued: the refresh
// of the sources comes before, so the holds of a unit refresh in
// parallel.
type unitQueues struct {
	store Store
	mu    sync.Mutex
	// units are the queues of the units with a group being placed, by
	// account and unit.
	units map[unitKey]*unitQueue
}

type unitKey struct{ accountID, unitID string }

// unitQueue is the holds of one unit waiting for the group being placed.
type unitQueue struct {
	waiting []*placement
}

// placement is one hold in a queue.
type placement struct {
	ctx context.Context
	hp  store.HoldPlacement
	// err is the outcome, set before done is closed.
	err  error
	done chan struct{}
	// lead is closed when the placement is to place its queue.
	lead chan struct{}
}

// place checks and stores the hold hp of the account's unit, in a group
// with the unit's other holds of the moment, and returns its check's
// error, or the group's. A hold that gives up (ctx) before its group
// begins is not placed; once its group has begun, it waits for the
// outcome.
func (q *unitQueues) place(ctx context.Context, accountID, unitID string, hp store.HoldPlacement) error {
	key := unitKey{accountID, unitID}
	pl := &placement{ctx: ctx, hp: hp, done: make(chan struct{}), lead: make(chan struct{})}
	q.mu.Lock()
	if q.units == nil {
		q.units = map[unitKey]*unitQueue{}
	}
	u := q.units[key]
	if u == nil {
		u = &unitQueue{}
		q.units[key] = u
		q.mu.Unlock()
		return q.lead(key, u, pl)
	}
	u.waiting = append(u.waiting, pl)
	q.mu.Unlock()
	select {
	case <-pl.done:
		return pl.err
	case <-pl.lead:
		return q.lead(key, u, pl)
	case <-ctx.Done():
	}
	q.mu.Lock()
	if i := slices.Index(u.waiting, pl); i >= 0 {
		u.waiting = slices.Delete(u.waiting, i, i+1)
		q.mu.Unlock()
		return fmt.Errorf("wait for the unit's other holds: %w", ctx.Err())
	}
	q.mu.Unlock()
	// Taken into a group, or handed the queue: see it through.
	select {
	case <-pl.done:
		return pl.err
	case <-pl.lead:
		return q.lead(key, u, pl)
	}
}

// lead places pl with the holds waiting in u, then hands u to the first
// hold that arrived meanwhile, or removes it, and returns pl's outcome.
func (q *unitQueues) lead(key unitKey, u *unitQueue, pl *placement) error {
	q.mu.Lock()
	n := min(len(u.waiting), maxGroup-1)
	group := append([]*placement{pl}, u.waiting[:n]...)
	u.waiting = slices.Clone(u.waiting[n:])
	q.mu.Unlock()
	// Whatever happens below, a panic included, the group's holds get an
	// outcome and the queue moves on.
	answered := false
	defer func() {
		for _, g := range group {
			if !answered && g.err == nil {
				g.err = errGroupFailed
			}
			if g != pl {
				close(g.done)
			}
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(u.waiting) > 0 {
			next := u.waiting[0]
			u.waiting = u.waiting[1:]
			close(next.lead)
		} else {
			delete(q.units, key)
		}
	}()

	var live []*placement
	var hps []store.HoldPlacement
	for _, g := range group {
		if err := g.ctx.Err(); err != nil {
			g.err = fmt.Errorf("wait for the unit's other holds: %w", err) // gave up before the group began
			continue
		}
		g.hp.Trace = store.TraceFrom(g.ctx)
		live = append(live, g)
		hps = append(hps, g.hp)
	}
	if len(hps) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		errs, err := q.store.PlaceHolds(ctx, hps)
		cancel()
		for i, g := range live {
			if g.err = err; err == nil {
				g.err = errs[i]
			}
		}
	}
	answered = true
	return pl.err
}

// errGroupFailed is the outcome of the holds of a group whose placement
// ended without one (a panic).
var errGroupFailed = errors.New("placing the unit's holds failed")

// busy returns how many units have a group being placed.
func (q *unitQueues) busy() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.units)
}
