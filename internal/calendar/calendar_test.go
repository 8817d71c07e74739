package calendar_test

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// readCounter is a real store that counts its reads of calendars.
type readCounter struct {
	store.Store
	reads atomic.Int64
}

func (r *readCounter) Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error) {
	r.reads.Add(1)
	return r.Store.Calendar(ctx, accountID, id)
}

// anyURL accepts every source URL.
type anyURL struct{}

func (anyURL) CheckURL(_ context.Context, raw string) (*url.URL, error) { return url.Parse(raw) }

func ptr[T any](v T) *T { return &v }

// TestEventWritesRememberTheirCalendar: event writes read their calendar
// once, and a change of its zone, through this service or (with Forget)
// another node, is seen by the next write.
func TestEventWritesRememberTheirCalendar(t *testing.T) {
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := &readCounter{Store: b.Open(t)}
			svc := calendar.NewService(db, nil, nil)
			acct := &store.Account{ID: id.New("acc"), Name: "A", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
				CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := db.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			cal, err := svc.CreateCalendar(ctx, acct.ID, calendar.CalendarInput{Name: ptr("Cottage"), TimeZone: ptr("Europe/Berlin")})
			if err != nil {
				t.Fatal(err)
			}
			create := func(uid string) *store.Event {
				t.Helper()
				e, err := svc.CreateEvent(ctx, acct.ID, cal.ID, calendar.EventInput{
					UID: ptr(uid), Summary: ptr("Stay"), Start: ptr("2026-12-01T10:00:00"), End: ptr("2026-12-01T12:00:00"),
				})
				if err != nil {
					t.Fatalf("CreateEvent: %v", err)
				}
				return e
			}
			e1 := create("a@test")
			e2 := create("b@test")
			if err := svc.DeleteEvent(ctx, acct.ID, cal.ID, e2.ID); err != nil {
				t.Fatal(err)
			}
			if n := db.reads.Load(); n != 1 {
				t.Errorf("3 event writes read their calendar %d times; want 1", n)
			}
			if e1.TimeZone != "Europe/Berlin" || e1.Start.Hour() != 9 {
				t.Errorf("event = %s at %v; want Europe/Berlin, 09:00 UTC", e1.TimeZone, e1.Start)
			}

			// Through this service.
			if _, err := svc.UpdateCalendar(ctx, acct.ID, cal.ID, calendar.CalendarInput{TimeZone: ptr("America/New_York")}); err != nil {
				t.Fatal(err)
			}
			if e := create("c@test"); e.TimeZone != "America/New_York" || e.Start.Hour() != 15 {
				t.Errorf("event after the zone changed here = %s at %v; want America/New_York, 15:00 UTC", e.TimeZone, e.Start)
			}

			// Through another node: the store is written directly, and the
			// notification of it makes the app call Forget.
			other, err := db.Calendar(ctx, acct.ID, cal.ID)
			if err != nil {
				t.Fatal(err)
			}
			other.TimeZone, other.UpdatedAt = "Asia/Tokyo", time.Now()
			if err := db.UpdateCalendar(ctx, other); err != nil {
				t.Fatal(err)
			}
			svc.Forget(acct.ID, cal.ID)
			if e := create("d@test"); e.TimeZone != "Asia/Tokyo" || e.Start.Hour() != 1 {
				t.Errorf("event after the zone changed elsewhere = %s at %v; want Asia/Tokyo, 01:00 UTC", e.TimeZone, e.Start)
			}

			// A calendar deleted elsewhere takes no writes, though this
			// service still remembers it: the write itself checks.
			if err := db.DeleteCalendar(ctx, acct.ID, cal.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateEvent(ctx, acct.ID, cal.ID, calendar.EventInput{
				Summary: ptr("x"), Start: ptr("2026-12-01"), End: ptr("2026-12-02"),
			}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("CreateEvent in a deleted calendar = %v; want ErrNotFound", err)
			}
		})
	}
}

// TestImportedCalendarIsReadOnly holds whether or not the calendar is
// remembered.
func TestImportedCalendarIsReadOnly(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	svc := calendar.NewService(db, nil, nil)
	svc.EnableImports(calendar.ImportRules{URLs: anyURL{}, MinPollInterval: time.Minute})
	acct := &store.Account{ID: id.New("acc"), Name: "A", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	cal, err := svc.CreateCalendar(ctx, acct.ID, calendar.CalendarInput{
		Name: ptr("Airbnb"), Source: &calendar.SourceInput{URL: "https://example.com/a.ics"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := svc.CreateEvent(ctx, acct.ID, cal.ID, calendar.EventInput{Summary: ptr("x"), Start: ptr("2026-12-01"), End: ptr("2026-12-02")})
		if !errors.Is(err, calendar.ErrReadOnly) {
			t.Errorf("CreateEvent in an imported calendar = %v; want ErrReadOnly", err)
		}
	}
}
