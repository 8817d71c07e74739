package postgres

import (
	"context"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// CreateTogether creates events as one group of the group committer, as
// CreateEvent calls that arrive at once would, and returns each write's
// change or error.
func (db *DB) CreateTogether(ctx context.Context, events []*store.Event) ([]*store.Change, []error) {
	group := make([]*eventWrite, len(events))
	for i, e := range events {
		group[i] = &eventWrite{ctx: ctx, kind: store.ChangeCreated, event: e, accountID: e.AccountID,
			calendarID: e.CalendarID, eventID: e.ID, at: e.UpdatedAt, done: make(chan struct{})}
	}
	db.commitGroup(group)
	changes, errs := make([]*store.Change, len(group)), make([]error, len(group))
	for i, w := range group {
		<-w.done
		changes[i], errs[i] = w.change, w.err
	}
	return changes, errs
}

// PauseBeforeCommit makes every pipelined transaction (event writes) call
// f once its statements have run, before it commits. Set it before the
// store is used.
func (db *DB) PauseBeforeCommit(f func()) { db.beforeCommit = f }

// SetSettleWait sets how long ListChanges waits for older transactions.
func (db *DB) SetSettleWait(d time.Duration) { db.settleWait = d }

// SetVersionSlot makes every group of event writes add to version slot n.
func (db *DB) SetVersionSlot(n int16) { db.versionSlot = func() int16 { return n } }

// SetNotifyWindow sets the shortest time between two batches of
// notifications, and how long a batch waits for a write to ride on.
func (db *DB) SetNotifyWindow(window, grace time.Duration) {
	n := db.notifier
	n.mu.Lock()
	defer n.mu.Unlock()
	n.window, n.grace = window, grace
}

// EndNotifyWindow ends the current window, but not the grace after it:
// the next write to commit takes the queued notifications.
func (db *DB) EndNotifyWindow() {
	n := db.notifier
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastSent = time.Now().Add(-n.window)
}

// PruneStatements are Prune's and ExpireHooks' statements with
// arguments of their types, for a plan test.
func PruneStatements(now time.Time) map[string][]any {
	return map[string][]any{
		pruneAttempts: {now, pruneBatch},
		pruneMessages: {now, pruneBatch},
		pruneFirstNew: {now},
		pruneBefore:   {uint64(1000), int64(1)},
		pruneNewest:   nil,
		pruneChanges:  {uint64(1000), int64(1)},
		pruneHooks:    {now},
	}
}
