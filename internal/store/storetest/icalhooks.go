package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// hookTests are the conformance tests of iCal Hooks registration.
var hookTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"RegisterHookCountsWhatItIsAsked", testRegisterHookCounts},
	{"RegisterHookStoresTheBuiltPing", testRegisterHookPing},
}

// registration returns the parameters of a registration of calendar c's
// feed (all-calendars when c is nil) by url on host with token, served at
// version served, that counts every scope.
func registration(accountID string, c *store.Calendar, url, host, token string, served int64) store.RegisterHookParams {
	p := store.RegisterHookParams{
		Hook:  store.Hook{AccountID: accountID, URL: url, Host: host, TokenHash: token, ServedVersion: served},
		Count: []store.HookScope{store.HooksOfFeed, store.HooksOfToken, store.HooksOfHost},
		Ping: func(h *store.Hook, changeID int64) *store.Message {
			return &store.Message{ID: id.UUID(), AccountID: h.AccountID, HookID: h.ID, ChangeID: changeID,
				EventType: store.PingEventType, Payload: []byte("feed of " + h.ID), NextAttemptAt: base, CreatedAt: base}
		},
		Now: base,
	}
	if c != nil {
		p.CalendarID = c.ID
	}
	return p
}

func testRegisterHookCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c1, c2 := newCalendar(t, s, a.ID), newCalendar(t, s, a.ID)
	register := func(c *store.Calendar, url, host, token string) (counts []int, err error) {
		t.Helper()
		p := registration(a.ID, c, url, host, token, 0)
		p.Admit = func(n []int) error {
			counts = slices.Clone(n)
			return nil
		}
		_, err = s.RegisterHook(ctx, p)
		return counts, err
	}
	tests := []struct {
		name             string
		cal              *store.Calendar
		url, host, token string
		want             []int // feed, token, host; nil: Admit is not called
	}{
		{"first", c1, "https://a.example/1", "a.example", "t1", []int{0, 0, 0}},
		{"same feed, token and host", c1, "https://a.example/2", "a.example", "t1", []int{1, 1, 1}},
		{"other feed, same token", c2, "https://b.example/1", "b.example", "t1", []int{0, 2, 0}},
		{"all-calendars feed, other token, same host", nil, "https://a.example/3", "a.example", "t2", []int{0, 0, 2}},
		{"re-arming counts nothing", c1, "https://a.example/1", "a.example", "t1", nil},
	}
	for _, tt := range tests {
		got, err := register(tt.cal, tt.url, tt.host, tt.token)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: RegisterHook counted %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}

	refused := errors.New("refused")
	p := registration(a.ID, c1, "https://a.example/4", "a.example", "t1", 0)
	p.Admit = func([]int) error { return refused }
	if _, err := s.RegisterHook(ctx, p); !errors.Is(err, refused) {
		t.Errorf("RegisterHook refused by Admit = %v; want %v", err, refused)
	}
	hooks, err := s.ListHooks(ctx, store.ListHooksParams{AccountID: a.ID, Page: store.Page{Limit: 10}})
	if err != nil || len(hooks) != 4 {
		t.Errorf("ListHooks = %d hooks, %v; want the 4 admitted", len(hooks), err)
	}
}

func testRegisterHookPing(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	st, err := s.FeedVersion(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	served := st.Version
	ch := mustCreateEvent(t, s, newEvent(c, "moved-on", base))

	var built *store.Message
	p := registration(a.ID, c, "https://a.example/hook", "a.example", "t", served)
	ping := p.Ping
	p.Ping = func(h *store.Hook, changeID int64) *store.Message {
		built = ping(h, changeID)
		return built
	}
	reg, err := s.RegisterHook(ctx, p)
	if err != nil || !reg.Pinged || reg.Hook.Armed {
		t.Fatalf("RegisterHook of a stale feed = %+v, %v; want pinged, disarmed", reg, err)
	}
	if built == nil || built.HookID != reg.Hook.ID || built.ChangeID != ch.ID {
		t.Fatalf("Ping built %+v; want one for hook %s about change %d", built, reg.Hook.ID, ch.ID)
	}
	m, err := s.Message(ctx, a.ID, built.ID)
	if err != nil || m.HookID != reg.Hook.ID || string(m.Payload) != "feed of "+reg.Hook.ID || m.Status != store.MessagePending {
		t.Errorf("Message(ping) = %+v, %v; want the built ping, pending", m, err)
	}

	// A registration served the current version pings nothing.
	p = registration(a.ID, c, "https://a.example/other", "a.example", "t", served+1)
	p.Ping = func(*store.Hook, int64) *store.Message {
		t.Error("Ping called for a registration served the current version")
		return nil
	}
	if reg, err := s.RegisterHook(ctx, p); err != nil || reg.Pinged || !reg.Hook.Armed {
		t.Errorf("RegisterHook of a fresh feed = %+v, %v; want armed, no ping", reg, err)
	}
}
