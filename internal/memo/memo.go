// Package memo remembers values for a while: a bounded map whose entries
// expire, for what a service reads often and may serve a few seconds old,
// and a bounded cache whose entries live until their account changes.
package memo

import (
	"sync"
	"time"
)

// Map is a map whose entries expire ttl after they were put and that holds
// at most max entries, evicting an arbitrary one to make room. It is safe
// for concurrent use.
type Map[K comparable, V any] struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[K]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty Map.
func New[K comparable, V any](ttl time.Duration, maxEntries int) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, max: maxEntries, entries: map[K]entry[V]{}}
}

// Get returns the value of k if it was put less than ttl before now.
func (m *Map[K, V]) Get(k K, now time.Time) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put remembers v for k from now on.
func (m *Map[K, V]) Put(k K, v V, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[k]; !ok && len(m.entries) >= m.max {
		for old := range m.entries {
			delete(m.entries, old)
			break
		}
	}
	m.entries[k] = entry[V]{v: v, expires: now.Add(m.ttl)}
}

// DeleteFunc forgets every entry for which del returns true.
func (m *Map[K, V]) DeleteFunc(del func(K, V) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if del(k, e.v) {
			delete(m.entries, k)
		}
	}
}
