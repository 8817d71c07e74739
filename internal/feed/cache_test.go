package feed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// TestKeep checks which events a feed window keeps: what ends after the
// cutoff, and a recurring series while it still has an occurrence that
// does, whenever it started.
func TestKeep(t *testing.T) {
	t.Parallel()
	cutoff := time.Date(2026, 9, 8, 0, 0, 0, 0, time.UTC)
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		e    store.Event
		want bool
	}{
		{"ended before", store.Event{Start: at(2026, 1, 1), End: at(2026, 1, 2)}, false},
		{"ends after", store.Event{Start: at(2026, 9, 7), End: at(2026, 9, 9)}, true},
		{"ends at the cutoff", store.Event{Start: at(2026, 9, 7), End: cutoff}, true},
		{"series still weekly", store.Event{Start: at(2020, 1, 1), End: at(2020, 1, 2), RRule: "FREQ=WEEKLY"}, true},
		{"series ended by COUNT", store.Event{Start: at(2020, 1, 1), End: at(2020, 1, 2), RRule: "FREQ=WEEKLY;COUNT=3"}, false},
		{"series ended by UNTIL", store.Event{Start: at(2020, 1, 1), End: at(2020, 1, 2), RRule: "FREQ=DAILY;UNTIL=20250101T000000Z"}, false},
		{"series until after the cutoff", store.Event{Start: at(2020, 1, 1), End: at(2020, 1, 2), RRule: "FREQ=YEARLY;UNTIL=20300101T000000Z"}, true},
		{"yearly, last occurrence spans the cutoff", store.Event{Start: at(2025, 9, 6), End: at(2025, 9, 9), RRule: "FREQ=YEARLY;COUNT=2"}, true},
		{"override of a past occurrence", store.Event{Start: at(2020, 1, 8), End: at(2020, 1, 9), RRule: "", RecurrenceID: "20200108T100000Z"}, false},
		{"no cutoff", store.Event{Start: at(2000, 1, 1), End: at(2000, 1, 2)}, true},
	}
	for _, tt := range tests {
		cut := cutoff
		if tt.name == "no cutoff" {
			cut = time.Time{}
		}
		if got := keep(&tt.e, cut); got != tt.want {
			t.Errorf("keep(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// TestCacheByteBudget checks that the render cache holds feeds within its
// byte budget, counts their gzip codings, drops the least recently served
// first, and reports its size and evictions as metrics.
func TestCacheByteBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	acct := &store.Account{ID: id.New("acc"), Name: "Acme", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	cals := make([]string, 3)
	for i := range cals {
		c := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: fmt.Sprint("Cal ", i), TimeZone: "UTC",
			Kind: store.KindNative, CreatedAt: now, UpdatedAt: now}
		if err := db.CreateCalendar(ctx, c); err != nil {
			t.Fatal(err)
		}
		cals[i] = c.ID
		for j := range 20 {
			e := &store.Event{ID: id.New("evt"), AccountID: acct.ID, CalendarID: c.ID, UID: fmt.Sprint("e", j),
				Summary: fmt.Sprint("Booking ", i, "/", j), Start: now.Add(time.Duration(j) * 24 * time.Hour),
				End: now.Add(time.Duration(j)*24*time.Hour + time.Hour), Status: store.StatusConfirmed, CreatedAt: now, UpdatedAt: now}
			if _, err := db.CreateEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg := prometheus.NewRegistry()
	get := func(svc *Service, cal string) *Feed {
		t.Helper()
		f, err := svc.Get(ctx, acct.ID, cal, acct.FeedToken)
		if err != nil {
			t.Fatalf("Get(%s): %v", cal, err)
		}
		return f
	}
	probe := NewService(db, Options{Now: func() time.Time { return now }})
	one := int64(len(get(probe, cals[0]).Body))
	entry, _ := probe.CacheSize() // the body and the events it came from
	// Room for two feeds and a little, not three.
	budget := 2*entry + entry/2
	svc := NewService(db, Options{CacheBytes: budget, StreamBytes: budget, Registerer: reg, Now: func() time.Time { return now }})
	f0 := get(svc, cals[0])
	get(svc, cals[1])
	if b, n := svc.CacheSize(); n != 2 || b > budget {
		t.Fatalf("after two feeds: CacheSize() = %d bytes, %d feeds; want 2 feeds within %d", b, n, budget)
	}
	if get(svc, cals[0]) != f0 { // cals[0] is now the most recently served
		t.Fatalf("a cached feed was rendered again")
	}
	get(svc, cals[2]) // evicts cals[1], the least recently served
	if b, n := svc.CacheSize(); n != 2 || b > budget {
		t.Errorf("after three feeds: CacheSize() = %d bytes, %d feeds; want 2 within %d", b, n, budget)
	}
	if get(svc, cals[0]) != f0 {
		t.Errorf("the most recently served feed was evicted instead of the least")
	}
	before, _ := svc.CacheSize()
	gz := f0.Gzip()
	after, n := svc.CacheSize()
	if gz == nil || after > budget || after != before+int64(len(gz.Body)) && n == 2 {
		t.Errorf("gzip: CacheSize %d → %d (%d feeds); want it to count the %d gzip bytes within %d", before, after, n, len(gz.Body), budget)
	}
	m := gather(t, reg)
	if got := m["calhook_feed_cache_evictions_total"]; got < 1 {
		t.Errorf("calhook_feed_cache_evictions_total = %v; want at least 1", got)
	}
	if got, n := svc.CacheSize(); m["calhook_feed_cache_bytes"] != float64(got) || m["calhook_feed_cache_feeds"] != float64(n) {
		t.Errorf("calhook_feed_cache_bytes, _feeds = %v, %v; want %d, %d", m["calhook_feed_cache_bytes"], m["calhook_feed_cache_feeds"], got, n)
	}
	if _, ok := m["calhook_feed_streamed_total"]; !ok {
		t.Errorf("calhook_feed_streamed_total is not registered")
	}
	// Invalidated feeds leave, with their gzip codings; the events and
	// VEVENTs they came from stay, counted.
	full, _ := svc.CacheSize()
	svc.Invalidate(acct.ID, "")
	if b, n := svc.CacheSize(); b != full-int64(len(gz.Body)) || n != 2 {
		t.Errorf("after Invalidate: CacheSize() = %d, %d; want 2 entries of %d bytes (%d less the gzip body)", b, n,
			full-int64(len(gz.Body)), full)
	}
	if get(svc, cals[0]) == f0 {
		t.Errorf("an invalidated feed was served")
	}
	// A feed over StreamBytes is streamed, never cached.
	small := NewService(db, Options{CacheBytes: budget, StreamBytes: one / 2, Now: func() time.Time { return now }})
	if f := get(small, cals[0]); !f.Streamed() || f.Body != nil {
		t.Errorf("a feed over StreamBytes: Streamed() = %v; want a streamed feed", f.Streamed())
	}
	if _, n := small.CacheSize(); n != 0 {
		t.Errorf("a streamed feed entered the cache")
	}
}

// TestCacheDayChange checks that a feed cached on one day is rendered
// again the next: its window moved.
func TestCacheDayChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	now := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	acct := &store.Account{ID: id.New("acc"), Name: "Acme", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	c := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: "C", TimeZone: "UTC", Kind: store.KindNative, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateCalendar(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Ends an hour before the cutoff of the next day: in today's window, out of tomorrow's.
	end := now.Truncate(24*time.Hour).AddDate(0, 0, -89).Add(-time.Hour)
	e := &store.Event{ID: id.New("evt"), AccountID: acct.ID, CalendarID: c.ID, UID: "edge", Summary: "Edge",
		Start: end.Add(-time.Hour), End: end, Status: store.StatusConfirmed, CreatedAt: now, UpdatedAt: now}
	if _, err := db.CreateEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	clock := now
	svc := NewService(db, Options{Window: 90 * 24 * time.Hour, Now: func() time.Time { return clock }})
	today, err := svc.Get(ctx, acct.ID, c.ID, acct.FeedToken)
	if err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour)
	tomorrow, err := svc.Get(ctx, acct.ID, c.ID, acct.FeedToken)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(today.Body, "SUMMARY:Edge") || contains(tomorrow.Body, "SUMMARY:Edge") || today.ETag == tomorrow.ETag {
		t.Errorf("edge event today %v, tomorrow %v, ETags %s %s; want in, then out with a new ETag",
			contains(today.Body, "SUMMARY:Edge"), contains(tomorrow.Body, "SUMMARY:Edge"), today.ETag, tomorrow.ETag)
	}
	if !tomorrow.LastModified.After(today.LastModified) {
		t.Errorf("Last-Modified %v → %v; want it to move when the window drops an event", today.LastModified, tomorrow.LastModified)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// gather returns the value of each unlabelled metric in reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
