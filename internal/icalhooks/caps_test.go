package icalhooks

import (
	"slices"
	"testing"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

func TestCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                       string
		perFeed, perToken, perHost int
		counts                     []int
		wantScopes                 []store.HookScope
		want                       string // the refusal; "" admits
	}{
		{"no caps", 0, 0, 0, nil, nil, ""},
		{"under every cap", 2, 3, 4, []int{1, 2, 3}, []store.HookScope{store.HooksOfFeed, store.HooksOfToken, store.HooksOfHost}, ""},
		{"feed cap reached", 2, 3, 4, []int{2, 0, 0}, []store.HookScope{store.HooksOfFeed, store.HooksOfToken, store.HooksOfHost},
			"hook limit reached: 2 hooks per feed"},
		{"first cap reached wins", 2, 3, 4, []int{5, 5, 5}, []store.HookScope{store.HooksOfFeed, store.HooksOfToken, store.HooksOfHost},
			"hook limit reached: 2 hooks per feed"},
		{"only the host cap", 0, 0, 1, []int{1}, []store.HookScope{store.HooksOfHost}, "hook limit reached: 1 hooks per target host"},
		{"token cap", 0, 3, 0, []int{3}, []store.HookScope{store.HooksOfToken}, "hook limit reached: 3 hooks per feed token"},
	}
	for _, tt := range tests {
		c := newCaps(tt.perFeed, tt.perToken, tt.perHost)
		if got := c.scopes(); !slices.Equal(got, tt.wantScopes) {
			t.Errorf("%s: scopes() = %v; want %v", tt.name, got, tt.wantScopes)
		}
		err := c.admit(tt.counts)
		got := ""
		if fe := fault.As(err); fe != nil && fe.Reason == fault.HookLimit {
			got = fe.Message
		} else if err != nil {
			t.Errorf("%s: admit(%v) = %v; want a HookLimit fault", tt.name, tt.counts, err)
		}
		if got != tt.want {
			t.Errorf("%s: admit(%v) refused %q; want %q", tt.name, tt.counts, got, tt.want)
		}
	}
}
