package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/internal/subscription"
)

// Page render targets: p99 under 20 ms per page for a calendar of 10,000
// events and a message log of 100,000 messages. The benchmarks report
// p99-ms beside ns/op; they time the whole request through a real HTTP
// server and store, as a browser would see it (without the network).

// BenchmarkPages times every main page of one account that has a
// calendar of 10,000 events (in a unit) and a subscription with a message
// log of 100,000 messages.
func BenchmarkPages(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			e := newEnv(b, db)
			a := e.newAccount("Bench")
			ctx := context.Background()
			cal, err := e.cals.CreateCalendar(ctx, a.ID, calendar.CalendarInput{Name: ptr("Busy"), TimeZone: ptr("Europe/Berlin")})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
			for i := range 10000 {
				s := start.Add(time.Duration(i) * 53 * time.Minute) // about a year
				_, err := e.cals.CreateEvent(ctx, a.ID, cal.ID, calendar.EventInput{
					Summary: ptr(fmt.Sprintf("Booking %d", i)), Start: ptr(s.Format(time.RFC3339)), End: ptr(s.Add(time.Hour).Format(time.RFC3339)),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			sub, err := e.subs.Create(ctx, a.ID, subscription.Input{URL: ptr("http://127.0.0.1:9/hook")}, nil)
			if err != nil {
				b.Fatal(err)
			}
			base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := range 100000 {
				m := &store.Message{ID: id.UUID(), AccountID: a.ID, SubscriptionID: sub.ID, EventType: store.ChangeCreated,
					Payload: []byte(`{"webhookId":"x"}`), CreatedAt: base.Add(time.Duration(i) * time.Microsecond), NextAttemptAt: base.AddDate(1, 0, 0)}
				if err := db.EnqueueMessage(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			// A unit holding the busy calendar: its timeline reads and
			// draws the 35 days' thousand events.
			unit, err := e.units.CreateUnit(ctx, a.ID, availability.UnitInput{Name: ptr("Busy unit")})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.units.SetCalendarUnit(ctx, a.ID, cal.ID, unit.ID); err != nil {
				b.Fatal(err)
			}
			br := e.browser()
			br.signIn(a.APIKey)
			pages := []struct{ name, path string }{
				{"overview", "/console/overview"},
				{"calendars", "/console/calendars"},
				{"agenda", "/console/calendars/" + cal.ID + "?from=2030-03-01"},
				{"month", "/console/calendars/" + cal.ID + "?view=month&month=2030-03"},
				{"webhooks", "/console/webhooks"},
				{"log", "/console/webhooks/" + sub.ID},
				{"log-pending", "/console/webhooks/" + sub.ID + "?status=pending"},
				{"log-undeliverable", "/console/webhooks/" + sub.ID + "?status=undeliverable"},
				{"log-type", "/console/webhooks/" + sub.ID + "?type=calendar.event.deleted"},
				{"feeds", "/console/feeds"},
				{"keys", "/console/keys"},
				{"units", "/console/units"},
				{"unit", "/console/units/" + unit.ID + "?from=2030-03-01"},
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) { timePage(b, br, p.path, nil) })
			}
			// The unit page right after a change of the account, which
			// drops its cached availability: what a live refresh costs.
			b.Run("unit-cold", func(b *testing.B) {
				timePage(b, br, "/console/units/"+unit.ID+"?from=2030-03-01", func() {
					e.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: a.ID})
				})
			})
		})
	}
}

// timePage fetches path b.N times and reports the median and the 99th
// percentile; before, if set, runs untimed ahead of each fetch. Two
// untimed fetches come first: a page's first views on a new server
// prepare its statements (on PostgreSQL, with 100,000 messages and no
// statistics yet, 50-90 ms once), which is not what a page costs.
func timePage(b *testing.B, br *browser, path string, before func()) {
	for range 2 {
		res, err := br.c.Get(br.e.srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if before != nil {
			before()
		}
		t0 := time.Now()
		res, err := br.c.Get(br.e.srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durs[(len(durs)*99)/100].Microseconds())/1000, "p99-ms")
}

// benchBackends are SQLite, and PostgreSQL when CALHOOK_TEST_POSTGRES is
// set.
func benchBackends(b *testing.B) []storetest.Backend {
	bs := []storetest.Backend{{Name: "sqlite", Open: func(t testing.TB) store.Store { return storetest.OpenSQLite(t) }}}
	if u := os.Getenv(storetest.PostgresEnv); u != "" {
		bs = append(bs, storetest.Backend{Name: "postgres", Open: func(t testing.TB) store.Store { return storetest.OpenPostgres(t, u) }})
	}
	return bs
}
