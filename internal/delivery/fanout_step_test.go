package delivery_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store/sqlite"
	"github.com/calhook/calhook/internal/subscription"
)

// TestFirstHeavyStepIsSmall: the first fan-out step that meets an account
// with 100 subscriptions, whose 60 changes wait, stores no more than
// 2,000 webhooks (20 changes' worth) rather than all 6,000 in one
// transaction; the steps after it fan out the rest, each change once per
// subscription.
func TestFirstHeavyStepIsSmall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }
	a, err := account.NewService(db, now, nil).Create(ctx, "Heavy")
	if err != nil {
		t.Fatal(err)
	}
	cals := calendar.NewService(db, now, nil)
	c, err := cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Rooms"), TimeZone: ptr("UTC")})
	if err != nil {
		t.Fatal(err)
	}
	policy := outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	subs := subscription.NewService(db, policy, now, nil)
	const nSubs, nChanges = 100, 60
	for i := range nSubs {
		url := fmt.Sprintf("http://127.0.0.1:9/hook/%d", i)
		if _, err := subs.Create(ctx, a.ID, subscription.Input{URL: &url}, nil); err != nil {
			t.Fatalf("create subscription %d: %v", i, err)
		}
	}
	for i := range nChanges {
		summary := fmt.Sprintf("Booking %d", i)
		if _, err := cals.CreateEvent(ctx, a.ID, c.ID, calendar.EventInput{
			Summary: &summary, Start: ptr("2026-12-01T15:00:00Z"), End: ptr("2026-12-01T16:00:00Z"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	fan := delivery.NewFanOut(delivery.FanOutConfig{Store: db, Now: now, BaseURL: "https://calhook.example"})
	changes, messages := 0, 0
	for step := 0; changes < nChanges; step++ {
		res, err := fan.RunOnce(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if res.Messages > 2000 || res.Changes > 20 {
			t.Fatalf("step %d fanned out %d changes into %d webhooks; want at most 20 changes, 2,000 webhooks",
				step, res.Changes, res.Messages)
		}
		if res.Changes == 0 {
			t.Fatalf("step %d read nothing with %d of %d changes fanned out", step, changes, nChanges)
		}
		changes += res.Changes
		messages += res.Messages
	}
	if messages != nChanges*nSubs {
		t.Errorf("%d webhooks stored for %d changes to %d subscriptions; want %d", messages, nChanges, nSubs, nChanges*nSubs)
	}
}
