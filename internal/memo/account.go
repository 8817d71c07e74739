package memo

import "sync"

// ByAccount is a bounded cache of values that each depend on one
// account's data (a unit's availability, a rendered export feed): a change
// of the account forgets its entries, and a value computed while the
// account changed is not kept. Take an Epoch before computing a value and
// Put it with that Epoch. A full cache starts afresh. It is safe for
// concurrent use.
type ByAccount[K comparable, V any] struct {
	account func(K) string
	max     int

	mu      sync.Mutex
	entries map[K]V
	epochs  map[string]uint64
	gen     uint64
}

// Epoch is the state of an account's entries when a value was begun.
type Epoch struct{ account, all uint64 }

// NewByAccount returns an empty cache of at most maxEntries values;
// account names the account a key belongs to.
func NewByAccount[K comparable, V any](maxEntries int, account func(K) string) *ByAccount[K, V] {
	return &ByAccount[K, V]{account: account, max: maxEntries, entries: map[K]V{}, epochs: map[string]uint64{}}
}

// Get returns the value of k, if any.
func (c *ByAccount[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[k]
	return v, ok
}

// Epoch returns the state that a value of the account computed from now
// on must find unchanged to be kept.
func (c *ByAccount[K, V]) Epoch(accountID string) Epoch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Epoch{c.epochs[accountID], c.gen}
}

// Put keeps v for k unless k's account changed since e.
func (c *ByAccount[K, V]) Put(k K, e Epoch, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (Epoch{c.epochs[c.account(k)], c.gen}) != e {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[k] = v
}

// Forget drops the entries of an account, or every entry when accountID
// is empty (a change that may have touched any account).
func (c *ByAccount[K, V]) Forget(accountID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if accountID == "" {
		c.gen++
		clear(c.entries)
		return
	}
	c.epochs[accountID]++
	for k := range c.entries {
		if c.account(k) == accountID {
			delete(c.entries, k)
		}
	}
}
