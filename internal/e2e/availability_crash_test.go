package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// conflictID reads a conflict webhook's data.conflictId (hookIDs.detail).
func conflictID(data json.RawMessage) string {
	var d struct{ ConflictID string }
	_ = json.Unmarshal(data, &d)
	return d.ConflictID
}

// TestConflictCrash writes overlapping bookings into two calendars of a
// unit as fast as a few clients can, kills calhook with SIGKILL in the
// middle, restarts it on the same database and writes more. Conflict
// detection follows the change log with its own cursor, so every pair
// whose write was acknowledged must end up with exactly one conflict and
// exactly one availability.conflict.detected webhook, whether the kill
// came before, during or after its detection.
func TestConflictCrash(t *testing.T) {
	const (
		writers   = 4
		killAfter = 60 // acknowledged pairs
		total     = 100
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "calhook.db")
	flags := []string{"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32", "--webhook-timeout", "1s"}
	srv := startServer(t, db, "adm-0123456789abcdef0123456789abcdef", flags...)
	api := newClient()
	rcv := &hookIDs{detail: conflictID}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()

	var acc struct{ APIKey string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/accounts", "adm-0123456789abcdef0123456789abcdef", map[string]string{"name": "Crash"}, &acc, 201)
	key := acc.APIKey
	var unit struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/units", key, map[string]string{"name": "Flat"}, &unit, 201)
	calA, calB := newCalendar(t, api, srv.baseURL(), key, "A"), newCalendar(t, api, srv.baseURL(), key, "B")
	for _, c := range []string{calA, calB} {
		api.mustDo(t, "PATCH", srv.baseURL()+"/v1/calendars/"+c, key, map[string]any{"unitId": unit.ID}, nil, 200)
	}
	api.mustDo(t, "POST", srv.baseURL()+"/v1/subscriptions", key, map[string]any{
		"webhookUrl": hooks.URL, "eventTypes": []string{"availability.conflict.detected"},
	}, nil, 201)

	g := newGate(srv.baseURL())
	var next, acked, inDoubt atomic.Int64
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
				// Pair n: a day in calendar A, and an overlapping one in B.
				day := time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(3*n))
				ok := true
				for i, c := range []string{calA, calB} {
					to, err := g.route(ctx, n)
					if err != nil {
						return
					}
					err = api.do(ctx, "POST", to.base+"/v1/calendars/"+c+"/events", key, map[string]any{
						"uid": fmt.Sprintf("pair-%d-%d", n, i), "summary": "Stay",
						"start": day.Format("2006-01-02"), "end": day.AddDate(0, 0, 2-i).Format("2006-01-02"),
					}, nil, 201)
					if err != nil {
						if to.wentDown() {
							inDoubt.Add(1)
							ok = false
							break
						}
						t.Errorf("pair %d: %v", n, err)
						return
					}
				}
				if ok && acked.Add(1) >= killAfter {
					killOnce.Do(func() { close(killNow) })
				}
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
	beforeKill := len(rcv.byKind())
	srv = startServer(t, db, "adm-0123456789abcdef0123456789abcdef", flags...)
	g.open(srv.baseURL())
	<-done
	if t.Failed() {
		t.FailNow()
	}

	// Wait for the conflicts of every pair that was written in full.
	var list struct {
		Data []struct {
			ID, State string
			Events    []struct{ UID string }
		}
	}
	var want int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		api.mustDo(t, "GET", srv.baseURL()+"/v1/units/"+unit.ID+"/conflicts?limit=200", key, nil, &list, 200)
		// A pair in doubt may have one event, or both.
		want = int(acked.Load())
		if len(list.Data) >= want && len(rcv.byKind()) >= len(list.Data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d conflicts and %d webhooks for %d acknowledged pairs; log:\n%s", len(list.Data), len(rcv.byKind()), want, srv.logText())
		}
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive within this
	api.mustDo(t, "GET", srv.baseURL()+"/v1/units/"+unit.ID+"/conflicts?limit=200", key, nil, &list, 200)
	pairs := map[string]int{}
	for _, c := range list.Data {
		if c.State != "open" || len(c.Events) != 2 {
			t.Errorf("conflict %+v; want open, of two events", c)
			continue
		}
		var a, b int
		fmt.Sscanf(c.Events[0].UID, "pair-%d", &a)
		fmt.Sscanf(c.Events[1].UID, "pair-%d", &b)
		if a != b {
			t.Errorf("conflict %s pairs %s with %s", c.ID, c.Events[0].UID, c.Events[1].UID)
		}
		pairs[fmt.Sprint(a)]++
	}
	for p, n := range pairs {
		if n != 1 {
			t.Errorf("pair %s has %d conflicts; want 1", p, n)
		}
	}
	if len(list.Data) < want || len(list.Data) > want+int(inDoubt.Load()) {
		t.Errorf("%d conflicts; want %d acknowledged pairs (+ up to %d in doubt)", len(list.Data), want, inDoubt.Load())
	}
	got := rcv.byKind()
	for _, c := range list.Data {
		if n := got["availability.conflict.detected "+c.ID]; n != 1 {
			t.Errorf("conflict %s: %d distinct detected webhooks; want 1", c.ID, n)
		}
	}
	if len(got) != len(list.Data) {
		t.Errorf("%d distinct webhooks for %d conflicts", len(got), len(list.Data))
	}
	t.Logf("%d pairs acknowledged, %d in doubt; %d conflicts had been announced at the kill, %d after the restart",
		want, inDoubt.Load(), beforeKill, len(got)-beforeKill)
}
