package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHoldCrash kills calhook with SIGKILL in a stream of holds: after the
// restart every acknowledged hold is listed, and every hold is whole — its
// event exists, tentative, and every hold event of the unit's calendar
// belongs to a listed hold — whether or not its answer arrived.
func TestHoldCrash(t *testing.T) {
	const (
		writers   = 4
		killAfter = 40
		total     = 80
		admin     = "adm-0123456789abcdef0123456789abcdef"
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "calhook.db")
	srv := startServer(t, db, admin)
	api := newClient()
	var acc struct{ APIKey string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/accounts", admin, map[string]string{"name": "Crash"}, &acc, 201)
	key := acc.APIKey
	var unit struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/units", key, map[string]string{"name": "Flat"}, &unit, 201)

	g := newGate(srv.baseURL())
	var next atomic.Int64
	var mu sync.Mutex
	acked := map[string]bool{} // hold ids answered 201
	killNow := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > total {
					return
				}
				to, err := g.route(ctx, n)
				if err != nil {
					return
				}
				day := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(2*n))
				var out struct{ Hold struct{ ID string } }
				err = api.do(ctx, "POST", to.base+"/v1/units/"+unit.ID+"/holds", key, map[string]any{
					"start": day.Format(time.DateOnly), "end": day.AddDate(0, 0, 1).Format(time.DateOnly),
					"externalRef": fmt.Sprintf("h-%d", n),
				}, &out, 201)
				if err != nil {
					if to.wentDown() {
						continue // in doubt: it may exist, whole, or not at all
					}
					t.Errorf("hold %d: %v", n, err)
					return
				}
				mu.Lock()
				acked[out.Hold.ID] = true
				if len(acked) >= killAfter {
					killOnce.Do(func() { close(killNow) })
				}
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-killNow:
	case <-done:
		t.Fatal("the stream ended before the kill")
	}
	g.down()
	srv.kill()
	srv = startServer(t, db, admin)
	g.open(srv.baseURL())
	<-done
	if t.Failed() {
		t.FailNow()
	}

	var list struct {
		Data []struct{ ID, CalendarID, EventID, State, ExternalRef string }
	}
	api.mustDo(t, "GET", srv.baseURL()+"/v1/units/"+unit.ID+"/holds?limit=200", key, nil, &list, 200)
	listed := map[string]bool{}
	byEvent := map[string]bool{}
	cal := ""
	for _, h := range list.Data {
		listed[h.ID], byEvent[h.EventID] = true, true
		cal = h.CalendarID
		var ev struct{ Status string }
		if err := api.do(ctx, "GET", srv.baseURL()+"/v1/calendars/"+h.CalendarID+"/events/"+h.EventID, key, nil, &ev, 200); err != nil || ev.Status != "tentative" {
			t.Errorf("hold %s (%s): event %s = %+v, %v; want a tentative event", h.ID, h.ExternalRef, h.EventID, ev, err)
		}
	}
	for id := range acked {
		if !listed[id] {
			t.Errorf("acknowledged hold %s is not listed", id)
		}
	}
	var events struct{ Data []struct{ ID string } }
	api.mustDo(t, "GET", srv.baseURL()+"/v1/calendars/"+cal+"/events?limit=200", key, nil, &events, 200)
	for _, e := range events.Data {
		if !byEvent[e.ID] {
			t.Errorf("event %s of the unit's calendar belongs to no hold", e.ID)
		}
	}
	if len(events.Data) != len(list.Data) {
		t.Errorf("%d hold events for %d holds", len(events.Data), len(list.Data))
	}
	t.Logf("%d holds acknowledged before and after the kill, %d listed", len(acked), len(list.Data))
}
