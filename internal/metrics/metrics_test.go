package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/metrics"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// gather returns the value of every gauge and counter reg gathers, by
// name and label values.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestStoreCollector scrapes a real SQLite store's figures, then the same
// store closed: the figures read from the database go, and
// calhook_store_stats_up says why.
func TestStoreCollector(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewStoreCollector(metrics.StoreCollectorConfig{Store: db}))
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"calhook_store_stats_up":                              1,
		"calhook_delivery_queue_messages,state=due":           0,
		"calhook_delivery_queue_messages,state=undeliverable": 0,
		"calhook_fanout_lag_seconds":                          0,
		"calhook_imports_overdue":                             0,
		"calhook_db_pool_connections,pool=write,state=max":    1,
		"calhook_db_pool_connections,pool=read,state=in_use":  0,
		"calhook_delivery_oldest_undelivered_age_seconds":     0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", key, v, ok, want)
		}
	}
	db.Close()
	got = gather(t, reg)
	if got["calhook_store_stats_up"] != 0 {
		t.Errorf("calhook_store_stats_up of a closed store = %v; want 0", got["calhook_store_stats_up"])
	}
	if _, ok := got["calhook_delivery_queue_messages,state=due"]; ok {
		t.Error("a closed store still reports queue figures; want none")
	}
}

// TestConflictMetrics runs the conflict detector on a real store of each
// backend: a double booking moves calhook_conflicts_detected_total and
// calhook_conflicts_open, and the end of it
// calhook_conflicts_resolved_total and the gauge back.
func TestConflictMetrics(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			reg := prometheus.NewRegistry()
			reg.MustRegister(metrics.NewStoreCollector(metrics.StoreCollectorConfig{Store: db, Now: clock}))
			det := availability.NewDetector(availability.DetectorConfig{
				Store: db, Now: clock, Observe: metrics.NewConflictMetrics(reg).Observe,
			})
			svc := availability.NewService(db, availability.Options{Now: clock})

			acct := &store.Account{ID: id.New("acc"), Name: "Rentals", APIKeyHash: id.HashKey(id.APIKey()),
				FeedToken: id.FeedToken(), CreatedAt: now, UpdatedAt: now}
			if err := db.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			name := "Beach house"
			u, err := svc.CreateUnit(ctx, acct.ID, availability.UnitInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			// Two calendars of the unit, each with a booking of some
			// nights of June 2027; the second's first night is the
			// first's last.
			var booked []*store.Event
			for i, nights := range [][2]int{{1, 5}, {4, 6}} {
				c := &store.Calendar{ID: id.New("cal"), AccountID: acct.ID, Name: fmt.Sprint("channel ", i), TimeZone: "UTC",
					Kind: store.KindNative, CreatedAt: now, UpdatedAt: now}
				if err := db.CreateCalendar(ctx, c); err != nil {
					t.Fatal(err)
				}
				if err := svc.SetCalendarUnit(ctx, acct.ID, c.ID, u.ID); err != nil {
					t.Fatal(err)
				}
				e := &store.Event{ID: id.New("evt"), AccountID: acct.ID, CalendarID: c.ID, UID: fmt.Sprint("booking-", i),
					Summary: "Guest", Start: time.Date(2027, 6, nights[0], 0, 0, 0, 0, time.UTC),
					End: time.Date(2027, 6, nights[1], 0, 0, 0, 0, time.UTC), AllDay: true, Status: store.StatusConfirmed,
					CreatedAt: now, UpdatedAt: now}
				if _, err := db.CreateEvent(ctx, e); err != nil {
					t.Fatal(err)
				}
				booked = append(booked, e)
			}
			want := func(when string, detected, resolved, open float64) {
				t.Helper()
				got := gather(t, reg)
				for key, w := range map[string]float64{
					"calhook_conflicts_detected_total": detected,
					"calhook_conflicts_resolved_total": resolved,
					"calhook_conflicts_open":           open,
				} {
					if v, ok := got[key]; !ok || v != w {
						t.Errorf("%s: %s = %v (present %v); want %v", when, key, v, ok, w)
					}
				}
			}
			want("before detection", 0, 0, 0)
			settle(t, det)
			want("after the double booking", 1, 0, 1)
			settle(t, det) // nothing new: nothing counted again
			want("after a second run", 1, 0, 1)

			e := booked[1]
			if _, err := db.DeleteEvent(ctx, acct.ID, e.CalendarID, e.ID, now); err != nil {
				t.Fatal(err)
			}
			settle(t, det)
			want("after the cancellation", 1, 1, 0)
		})
	}
}

// settle runs the detector until it has read every change written so far.
func settle(t *testing.T, det *availability.Detector) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		res, err := det.RunOnce(context.Background())
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if res.Changes == 0 && !res.Unsettled && !res.Busy {
			return
		}
		if res.Changes == 0 {
			time.Sleep(time.Millisecond) // another transaction's changes are not visible yet
		}
	}
	t.Fatal("the detector did not catch up")
}
