package memo

import (
	"testing"
	"time"
)

func TestMap(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := New[string, int](10*time.Second, 2)
	if _, ok := m.Get("a", t0); ok {
		t.Fatal("Get on an empty map found a value")
	}
	m.Put("a", 1, t0)
	if v, ok := m.Get("a", t0.Add(9*time.Second)); !ok || v != 1 {
		t.Errorf("Get before expiry = %d, %v; want 1", v, ok)
	}
	if _, ok := m.Get("a", t0.Add(10*time.Second)); ok {
		t.Error("Get at expiry found the value")
	}
	m.Put("a", 2, t0.Add(10*time.Second)) // put again: a fresh ttl
	if v, ok := m.Get("a", t0.Add(15*time.Second)); !ok || v != 2 {
		t.Errorf("Get after a second Put = %d, %v; want 2", v, ok)
	}

	m.Put("b", 3, t0)
	m.Put("c", 4, t0) // over max: one of a and b goes
	n := 0
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := m.Get(k, t0); ok {
			n++
		}
	}
	if _, ok := m.Get("c", t0); !ok || n != 2 {
		t.Errorf("after putting 3 entries into a map of 2: %d entries, c present %v; want 2 with c", n, ok)
	}

	m.DeleteFunc(func(k string, v int) bool { return v == 4 })
	if _, ok := m.Get("c", t0); ok {
		t.Error("DeleteFunc left the entry it matched")
	}
}
