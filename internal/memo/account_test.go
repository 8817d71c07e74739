package memo_test

import (
	"testing"

	"github.com/calhook/calhook/internal/memo"
)

type key struct{ account, id string }

func TestByAccount(t *testing.T) {
	t.Parallel()
	newCache := func() *memo.ByAccount[key, int] {
		return memo.NewByAccount[key, int](3, func(k key) string { return k.account })
	}
	tests := []struct {
		name string
		run  func(c *memo.ByAccount[key, int])
		want map[key]bool // present after run
	}{
		{"put then get", func(c *memo.ByAccount[key, int]) {
			c.Put(key{"a", "1"}, c.Epoch("a"), 1)
		}, map[key]bool{{"a", "1"}: true}},
		{"a change of the account drops its entries only", func(c *memo.ByAccount[key, int]) {
			c.Put(key{"a", "1"}, c.Epoch("a"), 1)
			c.Put(key{"b", "1"}, c.Epoch("b"), 2)
			c.Forget("a")
		}, map[key]bool{{"a", "1"}: false, {"b", "1"}: true}},
		{"a value begun before a change of its account is not kept", func(c *memo.ByAccount[key, int]) {
			e := c.Epoch("a")
			c.Forget("a")
			c.Put(key{"a", "1"}, e, 1)
			eb := c.Epoch("b")
			c.Forget("a") // another account's change does not matter
			c.Put(key{"b", "1"}, eb, 2)
		}, map[key]bool{{"a", "1"}: false, {"b", "1"}: true}},
		{"forgetting every account", func(c *memo.ByAccount[key, int]) {
			e := c.Epoch("b")
			c.Put(key{"a", "1"}, c.Epoch("a"), 1)
			c.Forget("")
			c.Put(key{"b", "1"}, e, 2)
		}, map[key]bool{{"a", "1"}: false, {"b", "1"}: false}},
		{"a full cache starts afresh", func(c *memo.ByAccount[key, int]) {
			for _, id := range []string{"1", "2", "3", "4"} {
				c.Put(key{"a", id}, c.Epoch("a"), 1)
			}
		}, map[key]bool{{"a", "1"}: false, {"a", "3"}: false, {"a", "4"}: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache()
			tt.run(c)
			for k, want := range tt.want {
				if _, ok := c.Get(k); ok != want {
					t.Errorf("Get(%v) present = %v; want %v", k, ok, want)
				}
			}
		})
	}
}
