package id_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
)

// times are instants in increasing order, a millisecond apart at the
// closest.
var times = []time.Time{
	time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
	time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC),
	time.Date(2026, 12, 7, 11, 0, 0, int(time.Millisecond), time.UTC),
	time.Date(2026, 12, 7, 11, 0, 1, 0, time.UTC),
	time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
}

// TestSorted: identifiers of later times sort later as text, and carry
// their prefix and 26 characters of the sortable alphabet.
func TestSorted(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^evt_[2-7a-z]{26}$`)
	var ids []string
	for _, at := range times {
		ids = append(ids, id.SortedAt("evt", at))
	}
	for _, s := range append(ids, id.Sorted("evt")) {
		if !shape.MatchString(s) {
			t.Errorf("Sorted id %q; want %s", s, shape)
		}
	}
	if !slices.IsSorted(ids) {
		t.Errorf("SortedAt of increasing times = %q; want them in text order", ids)
	}
	if a, b := id.SortedAt("evt", times[1]), id.SortedAt("evt", times[1]); a == b {
		t.Errorf("two ids of one millisecond are both %q; want random bits to tell them apart", a)
	}
}

// TestUUIDv7: version 7 and the RFC 9562 variant, in time order.
func TestUUIDv7(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	var uuids []string
	for _, at := range times {
		uuids = append(uuids, id.UUIDv7At(at))
	}
	for _, u := range append(uuids, id.UUIDv7()) {
		if !shape.MatchString(u) {
			t.Errorf("UUIDv7 %q; want %s", u, shape)
		}
	}
	if !slices.IsSorted(uuids) {
		t.Errorf("UUIDv7At of increasing times = %q; want them in text order", uuids)
	}
}
