package icalhooks_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

func ptr[T any](v T) *T { return &v }

// newFeed opens a SQLite store with an account and one calendar, whose
// feed the tests register hooks for.
func newFeed(t *testing.T) (*sqlite.DB, *store.Account, *calendar.Service, *store.Calendar) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := account.NewService(db, nil, nil).Create(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	cals := calendar.NewService(db, nil, nil)
	cal, err := cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Beach")})
	if err != nil {
		t.Fatal(err)
	}
	return db, a.Account, cals, cal
}

// TestRegistrationRacingAChange: a change that lands between the render of
// the feed and the registration of its hook still pings the hook, at once.
func TestRegistrationRacingAChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, a, cals, cal := newFeed(t)
	pinged := 0
	bus := &notify.Bus{}
	bus.MessagesDue.Subscribe(func(notify.Due) { pinged++ })
	svc := icalhooks.NewService(icalhooks.Config{
		Store: db, BaseURL: "https://calhook.example", Bus: bus,
		URLs: outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	})
	served, err := db.FeedVersion(ctx, a.ID, cal.ID) // the version the GET rendered
	if err != nil {
		t.Fatal(err)
	}
	// The change commits after the render, before the registration.
	if _, err := cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{Summary: ptr("x"), Start: ptr("2026-12-01"), End: ptr("2026-12-02")}); err != nil {
		t.Fatal(err)
	}
	status := svc.Register(ctx, icalhooks.Registration{
		AccountID: a.ID, CalendarID: cal.ID, URL: "http://127.0.0.1:9/hook", Token: a.FeedToken, Version: served.Version,
	})
	if status != icalhooks.StatusActive || pinged != 1 {
		t.Fatalf("Register = %q with %d pings; want active and a ping at once", status, pinged)
	}
	c, err := db.ClaimMessages(ctx, store.ClaimParams{Now: time.Now(), Limit: 10, Lease: time.Minute})
	if err != nil || len(c.Deliveries) != 1 {
		t.Fatalf("queued = %+v, %v; want one ping", c, err)
	}
	ds := c.Deliveries
	if d := ds[0]; d.URL != "http://127.0.0.1:9/hook" || d.Message.EventType != store.PingEventType ||
		string(d.Message.Payload) != "https://calhook.example/feeds/"+a.ID+"/"+cal.ID+".ics" {
		t.Errorf("ping = %+v, payload %q", d, d.Message.Payload)
	}
	// Registering for the current version queues nothing more.
	now, _ := db.FeedVersion(ctx, a.ID, cal.ID)
	svc.Register(ctx, icalhooks.Registration{AccountID: a.ID, CalendarID: cal.ID, URL: "http://127.0.0.1:9/hook", Token: a.FeedToken, Version: now.Version})
	if pinged != 1 {
		t.Errorf("a registration for the current version pinged")
	}
	hooks, _ := db.ArmedHooks(ctx, []store.FeedKey{{AccountID: a.ID, CalendarID: cal.ID}})
	if len(hooks) != 1 {
		t.Errorf("armed hooks after re-registering = %d; want 1", len(hooks))
	}
}

// TestNoPingForAChangeTheConsumerHas: a consumer that fetches the feed
// after a change committed but before its fan-out ran was served that
// change; the fan-out must not spend the consumer's one-shot ping on it,
// but the next change pings.
func TestNoPingForAChangeTheConsumerHas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, a, cals, cal := newFeed(t)
	fanout := delivery.NewFanOut(delivery.FanOutConfig{Store: db, BaseURL: "https://calhook.example"})
	if _, err := fanout.RunOnce(ctx); err != nil { // past the calendar's creation
		t.Fatal(err)
	}
	write := func() {
		t.Helper()
		if _, err := cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{Summary: ptr("x"), Start: ptr("2026-12-01"), End: ptr("2026-12-02")}); err != nil {
			t.Fatal(err)
		}
	}
	pings := func() int {
		t.Helper()
		if _, err := fanout.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := db.ClaimMessages(ctx, store.ClaimParams{Now: time.Now(), Limit: 10, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return len(c.Deliveries)
	}
	svc := icalhooks.NewService(icalhooks.Config{
		Store: db, BaseURL: "https://calhook.example",
		URLs: outbound.Policy{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	})

	write() // committed; its fan-out has not run
	served, err := db.FeedVersion(ctx, a.ID, cal.ID)
	if err != nil {
		t.Fatal(err)
	}
	if status := svc.Register(ctx, icalhooks.Registration{
		AccountID: a.ID, CalendarID: cal.ID, URL: "http://127.0.0.1:9/hook", Token: a.FeedToken, Version: served.Version,
	}); status != icalhooks.StatusActive {
		t.Fatalf("Register = %q; want active", status)
	}
	if n := pings(); n != 0 {
		t.Errorf("fan-out of a change the consumer was served queued %d pings; want none", n)
	}
	write()
	if n := pings(); n != 1 {
		t.Errorf("fan-out of a later change queued %d pings; want 1", n)
	}
}
