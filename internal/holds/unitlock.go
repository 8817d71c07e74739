package holds

import (
	"context"
	"sync"
)

// unitLocks is a keyed mutex: one lock per unit, which Place holds while
// the store checks and stores a hold of the unit.
//
// The store orders the holds of a unit by itself (PostgreSQL locks the
// unit's row, SQLite has one writer), across nodes too. Without this lock
// every concurrent hold of a unit on a node would take a database
// connection of the pool only to wait on that row lock, and a burst on one
// unit would leave none for other requests. With it, they queue here, in
// arrival order (a channel's waiting senders are served first in, first
// out), and each node has at most one transaction per unit in the
// database. Only the check and the write are under the lock: the refresh
// of the sources comes before, so holds of one unit refresh in parallel.
type unitLocks struct {
	mu    sync.Mutex
	locks map[string]*unitLock
}

// unitLock is one unit's lock: held while its channel holds a value.
// users counts the callers holding or waiting for it, so that the last
// one removes it from the map.
type unitLock struct {
	ch    chan struct{}
	users int
}

// lock waits for the lock of key, or for ctx to end, and returns the
// function that releases it.
func (l *unitLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*unitLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &unitLock{ch: make(chan struct{}, 1)}
		l.locks[key] = k
	}
	k.users++
	l.mu.Unlock()
	select {
	case k.ch <- struct{}{}:
		return func() {
			<-k.ch
			l.leave(key, k)
		}, nil
	case <-ctx.Done():
		l.leave(key, k)
		return nil, ctx.Err()
	}
}

// leave drops one user of k, and k itself after its last.
func (l *unitLocks) leave(key string, k *unitLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k.users--; k.users == 0 {
		delete(l.locks, key)
	}
}

// held returns how many units have a lock held or waited for.
func (l *unitLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
