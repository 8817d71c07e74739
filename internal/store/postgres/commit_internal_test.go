package postgres

import "testing"

func TestLingerAim(t *testing.T) {
	for _, c := range []struct{ last, have, want int }{
		{0, 1, 0},                   // the first group
		{1, 1, 0},                   // a lone writer never waits
		{2, 1, 3},                   // after a group of two, wait for a third
		{2, 2, 3},                   // ... even when two are there already
		{2, 3, 0},                   // more than last came on their own
		{7, 4, 8},                   // busy: aim one past the last group
		{maxGroup, 5, maxGroup},     // never past maxGroup
		{maxGroup, maxGroup, 0},     // a full group goes at once
		{maxGroup + 1, 3, maxGroup}, // (last cannot exceed maxGroup)
	} {
		if got := lingerAim(c.last, c.have); got != c.want {
			t.Errorf("lingerAim(last %d, have %d) = %d; want %d", c.last, c.have, got, c.want)
		}
	}
}
