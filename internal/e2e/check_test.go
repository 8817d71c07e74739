package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a reporter that keeps the failures.
type recorder struct{ errs []string }

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// fixture is a consistent outcome of a small stream: three changes
// acknowledged, one in doubt that did not happen, each delivered once.
type fixture struct {
	rec       *received
	msgs      []message
	committed []change
	acked     []op
	doubt     []op
}

// deliver records op o as message id, as calhook and the receiver would.
func (f *fixture) deliver(t *testing.T, id string, o op, commit bool) {
	t.Helper()
	var p payload
	p.WebhookID, p.EventType, p.Data.UID, p.Data.EventID = id, o.typ, o.uid, o.eventID
	if !o.start.IsZero() {
		p.Data.Start = o.start.Format(time.RFC3339)
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	f.rec.bodies[id], f.rec.payloads[id] = body, p
	f.rec.ok[id]++
	f.rec.attempts[id]++
	f.msgs = append(f.msgs, message{ID: id, EventType: o.typ, Status: "delivered", Attempts: 1, Payload: body})
	if commit {
		f.committed = append(f.committed, change{Type: o.typ, EventID: o.eventID, UID: o.uid})
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{rec: &received{
		bodies: map[string][]byte{}, payloads: map[string]payload{}, ok: map[string]int{}, attempts: map[string]int{},
	}}
	at := startBase.Add(time.Hour)
	f.acked = []op{
		{typ: typeCreated, uid: "a", eventID: "evt_a", start: at},
		{typ: typeUpdated, uid: "a", eventID: "evt_a", start: at.Add(time.Hour)},
		{typ: typeUpdated, uid: "a", eventID: "evt_a", start: at.Add(2 * time.Hour)},
	}
	f.doubt = []op{{typ: typeDeleted, uid: "a", eventID: "evt_a", start: at.Add(2 * time.Hour)}}
	for i, o := range f.acked {
		f.deliver(t, fmt.Sprintf("msg_%d", i), o, true)
	}
	return f
}

// TestChecks makes sure the crash test's checks catch what they are for.
func TestChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(t *testing.T, f *fixture)
		wantErr string // empty: no failure
	}{
		{"consistent", func(*testing.T, *fixture) {}, ""},
		{"in-doubt change happened", func(t *testing.T, f *fixture) {
			f.deliver(t, "msg_d", f.doubt[0], true)
		}, ""},
		{"acknowledged change lost", func(t *testing.T, f *fixture) {
			delete(f.rec.bodies, "msg_1")
			delete(f.rec.payloads, "msg_1")
			delete(f.rec.ok, "msg_1")
		}, "arrived as 0 distinct webhooks"},
		{"change delivered as two messages", func(t *testing.T, f *fixture) {
			f.deliver(t, "msg_x", f.acked[2], false)
		}, "arrived as 2 distinct webhooks"},
		{"webhook nobody caused", func(t *testing.T, f *fixture) {
			f.deliver(t, "msg_y", op{typ: typeCreated, uid: "ghost", eventID: "evt_g"}, true)
		}, "never acknowledged nor had in flight"},
		{"message left undelivered", func(t *testing.T, f *fixture) {
			f.msgs[0].Status = "pending"
		}, "is pending"},
		{"body changed", func(t *testing.T, f *fixture) {
			f.msgs[1].Payload = json.RawMessage(`{"webhookId":"msg_1"}`)
		}, "differs from the stored payload"},
		{"received but not calhook's", func(t *testing.T, f *fixture) {
			f.msgs = f.msgs[:2]
		}, "not among the subscription's messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tt.mutate(t, f)
			var r recorder
			checkCommitted(&r, f.committed, f.acked, f.doubt)
			checkSubscription(&r, "sub", f.rec, f.msgs, f.committed, f.acked, f.doubt)
			all := strings.Join(r.errs, "\n")
			switch {
			case tt.wantErr == "" && len(r.errs) > 0:
				t.Errorf("checks failed:\n%s\nwant no failure", all)
			case tt.wantErr != "" && !strings.Contains(all, tt.wantErr):
				t.Errorf("checks reported:\n%s\nwant a failure containing %q", all, tt.wantErr)
			}
		})
	}
}
