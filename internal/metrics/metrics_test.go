package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/metrics"
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
