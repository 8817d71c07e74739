package availability_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// BenchmarkDetectStep is one detector step for one moved stay of a unit
// of 10 calendars with 1,000 stays each, on a real SQLite file: what
// conflict detection adds to a change (calhookbench availability reports
// its p99 against the 1 ms target).
func BenchmarkDetectStep(b *testing.B) {
	const calendars, stays = 10, 1000
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "detect.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	acct := &store.Account{ID: id.New("acc"), Name: "bench", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAccount(ctx, acct); err != nil {
		b.Fatal(err)
	}
	svc := availability.NewService(db, availability.Options{Now: clock})
	det := availability.NewDetector(availability.DetectorConfig{Store: db, Now: clock})
	unit, err := svc.CreateUnit(ctx, acct.ID, availability.UnitInput{Name: ptr("Big")})
	if err != nil {
		b.Fatal(err)
	}
	// Calendar c's stay i is the night of day 2(i*calendars+c)+1: a free
	// night after each stay.
	var events []*store.Event
	for c := range calendars {
		cal := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: fmt.Sprint("Channel ", c), TimeZone: "UTC",
			Kind: store.KindNative, CreatedAt: now, UpdatedAt: now}
		if err := db.CreateCalendar(ctx, cal); err != nil {
			b.Fatal(err)
		}
		if err := svc.SetCalendarUnit(ctx, acct.ID, cal.ID, unit.ID); err != nil {
			b.Fatal(err)
		}
		for i := range stays {
			day := now.AddDate(0, 0, 1+2*(i*calendars+c))
			e := &store.Event{ID: id.New("evt"), AccountID: acct.ID, CalendarID: cal.ID, UID: fmt.Sprintf("c%d-%d", c, i),
				Summary: "Stay", Start: day, End: day.AddDate(0, 0, 1), AllDay: true, Status: store.StatusConfirmed,
				CreatedAt: now, UpdatedAt: now}
			if _, err := db.CreateEvent(ctx, e); err != nil {
				b.Fatal(err)
			}
			events = append(events, e)
		}
	}
	for {
		res, err := det.RunOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Changes == 0 {
			break
		}
	}
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		b.StopTimer()
		// A stay moves into the free night after it, and back.
		e := events[(k/2*7919)%len(events)]
		shift := 1 - 2*(k%2)
		e.UpdatedAt = e.UpdatedAt.Add(time.Second)
		e.Start, e.End = e.Start.AddDate(0, 0, shift), e.End.AddDate(0, 0, shift)
		if _, err := db.UpdateEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := det.RunOnce(ctx)
		if err != nil || res.Changes != 1 || res.Detected != 0 {
			b.Fatalf("step = %+v, %v; want one change and no conflict", res, err)
		}
	}
}
