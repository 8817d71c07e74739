package calendar_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// BenchmarkWriteBatch1000 writes batches of 1,000 new events into a real
// SQLite file through the service, as POST …/events/batch does after
// decoding: events/s is the figure from request to commit
// (target 20,000 with the HTTP layer and the receiver included).
func BenchmarkWriteBatch1000(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "calhook.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc := calendar.NewService(db, nil, nil)
	acct := &store.Account{ID: id.New("acc"), Name: "A", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.CreateAccount(ctx, acct); err != nil {
		b.Fatal(err)
	}
	cal, err := svc.CreateCalendar(ctx, acct.ID, calendar.CalendarInput{Name: ptr("Cottage"), TimeZone: ptr("Europe/Berlin")})
	if err != nil {
		b.Fatal(err)
	}
	day := time.Date(2027, 1, 1, 15, 0, 0, 0, time.UTC)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		items := make([]calendar.BatchItem, calendar.MaxBatch)
		for k := range items {
			start := day.Add(time.Duration(n) * time.Hour)
			n++
			items[k] = calendar.BatchItem{Op: calendar.OpCreate, Event: &calendar.EventInput{
				UID: ptr(fmt.Sprintf("stay-%d@pms.example", n)), Summary: ptr("Stay"),
				Start: ptr(start.Format("2006-01-02T15:04:05")), End: ptr(start.Add(time.Hour).Format("2006-01-02T15:04:05")),
			}}
		}
		res, err := svc.WriteBatch(ctx, acct.ID, cal.ID, items)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.N*calendar.MaxBatch)/b.Elapsed().Seconds(), "events/s")
}
