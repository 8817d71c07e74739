package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

var consoleTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"APIKeys", testAPIKeys},
	{"Sessions", testSessions},
	{"PortalLinksAreSingleUse", testPortalLinks},
	{"ConsoleMessages", testConsoleMessages},
	{"RecentChangesAndActivity", testRecentChanges},
	{"EventsByStartOngoing", testEventsByStartOngoing},
	{"ConflictReads", testConflictReads},
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	other := newAccount(t, s)
	keys, err := s.ListAPIKeys(ctx, a.ID)
	if err != nil || len(keys) != 1 || keys[0].Name != "default" || keys[0].KeyHash != a.APIKeyHash {
		t.Fatalf("ListAPIKeys of a new account = %+v, %v; want its default key", keys, err)
	}
	second := id.APIKey()
	k := &store.APIKey{ID: id.New("key"), AccountID: a.ID, Name: "ci", KeyHash: id.HashKey(second), Prefix: second[:8], CreatedAt: base}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	if got, err := s.AccountByKeyHash(ctx, k.KeyHash); err != nil || got.ID != a.ID {
		t.Errorf("AccountByKeyHash(second key) = %v, %v; want %s", got, err, a.ID)
	}
	if err := s.TouchAPIKey(ctx, k.ID, base.Add(time.Hour)); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	got, err := s.APIKeyByHash(ctx, k.KeyHash)
	if err != nil || !got.LastUsedAt.Equal(base.Add(time.Hour)) || got.Name != "ci" || got.Prefix != k.Prefix {
		t.Errorf("APIKeyByHash = %+v, %v; want last used %v", got, err, base.Add(time.Hour))
	}
	wantNotFound(t, "RevokeAPIKey(other account)", s.RevokeAPIKey(ctx, other.ID, k.ID, base))
	// Revoking the default key leaves the account reachable by the other.
	if err := s.RevokeAPIKey(ctx, a.ID, store.DefaultKeyID(a.ID), base); err != nil {
		t.Fatalf("RevokeAPIKey(default): %v", err)
	}
	_, err = s.AccountByKeyHash(ctx, a.APIKeyHash)
	wantNotFound(t, "AccountByKeyHash(revoked default key)", err)
	wantNotFound(t, "RevokeAPIKey(twice)", s.RevokeAPIKey(ctx, a.ID, store.DefaultKeyID(a.ID), base))
	keys, err = s.ListAPIKeys(ctx, a.ID)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Errorf("ListAPIKeys after revoking default = %+v, %v; want only %s", keys, err, k.ID)
	}
	dup := *k
	dup.ID = id.New("key")
	if err := s.CreateAPIKey(ctx, &dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateAPIKey(same hash) = %v; want ErrConflict", err)
	}
	accounts, err := s.ListAccounts(ctx, "", 100)
	if err != nil || len(accounts) != 2 {
		t.Errorf("ListAccounts = %d, %v; want 2", len(accounts), err)
	}
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	const idle = time.Hour
	sess := &store.Session{
		ID: id.HashKey(id.APIKey()), AccountID: a.ID, KeyID: store.DefaultKeyID(a.ID), CSRF: "csrf",
		Portal:    &store.PortalScope{Feeds: true, CalendarIDs: []string{"cal_1"}, DisplayName: `<b>"x"</b>`, Accent: "#ff0000"},
		CreatedAt: base, LastSeenAt: base, ExpiresAt: base.Add(24 * time.Hour),
	}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got, err := s.Session(ctx, sess.ID, base.Add(time.Minute), idle)
	if err != nil || got.AccountID != a.ID || got.CSRF != "csrf" || got.Portal == nil || got.Portal.DisplayName != `<b>"x"</b>` ||
		len(got.Portal.CalendarIDs) != 1 || !got.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("Session = %+v, %v; want %+v", got, err, sess)
	}
	_, err = s.Session(ctx, sess.ID, base.Add(idle+time.Second), idle)
	wantNotFound(t, "Session(idle)", err)
	if err := s.TouchSession(ctx, sess.ID, base.Add(idle)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if _, err := s.Session(ctx, sess.ID, base.Add(idle+time.Second), idle); err != nil {
		t.Errorf("Session(after touch) = %v; want it alive", err)
	}
	_, err = s.Session(ctx, sess.ID, base.Add(25*time.Hour), 48*time.Hour)
	wantNotFound(t, "Session(expired)", err)
	wantNotFound(t, "SetSessionAccount(not admin)", s.SetSessionAccount(ctx, sess.ID, "acc_x"))

	admin := &store.Session{ID: id.HashKey(id.APIKey()), AdminTokenHash: "h", CSRF: "c", CreatedAt: base, LastSeenAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateSession(ctx, admin); err != nil {
		t.Fatalf("CreateSession(admin): %v", err)
	}
	if err := s.SetSessionAccount(ctx, admin.ID, a.ID); err != nil {
		t.Fatalf("SetSessionAccount: %v", err)
	}
	if got, err := s.Session(ctx, admin.ID, base, idle); err != nil || got.AccountID != a.ID || !got.Admin() || got.Portal != nil {
		t.Errorf("admin Session = %+v, %v; want account %s", got, err, a.ID)
	}

	// Revoking the key ends its sessions.
	if err := s.RevokeAPIKey(ctx, a.ID, sess.KeyID, base); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	_, err = s.Session(ctx, sess.ID, base.Add(time.Minute), idle)
	wantNotFound(t, "Session(revoked key)", err)

	n, err := s.PruneSessions(ctx, base.Add(2*time.Hour), base.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Errorf("PruneSessions = %d, %v; want 1 (the admin session)", n, err)
	}
	if err := s.DeleteSession(ctx, admin.ID); err != nil {
		t.Errorf("DeleteSession(gone) = %v; want nil", err)
	}
}

func testPortalLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	l := &store.PortalLink{
		ID: id.HashKey(id.APIKey()), AccountID: a.ID, KeyID: store.DefaultKeyID(a.ID),
		Scope: store.PortalScope{DisplayName: "Acme"}, SessionTTL: 24 * time.Hour, CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
	}
	if err := s.CreatePortalLink(ctx, l); err != nil {
		t.Fatalf("CreatePortalLink: %v", err)
	}
	_, err := s.RedeemPortalLink(ctx, l.ID, base.Add(11*time.Minute))
	wantNotFound(t, "RedeemPortalLink(expired)", err)

	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			got, err := s.RedeemPortalLink(ctx, l.ID, base.Add(time.Minute))
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
				if got.AccountID != a.ID || got.Scope.DisplayName != "Acme" || got.SessionTTL != 24*time.Hour {
					t.Errorf("RedeemPortalLink = %+v", got)
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RedeemPortalLink: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent redemptions succeeded; want 1", won)
	}
	missing := *l
	missing.ID, missing.AccountID = id.HashKey("x"), "acc_missing"
	wantNotFound(t, "CreatePortalLink(missing account)", s.CreatePortalLink(ctx, &missing))
}

func testConsoleMessages(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	other := newAccount(t, s)
	sub := newSubscription(t, s, a.ID, 0)
	for i := range 3 {
		m := &store.Message{
			ID: id.UUID(), AccountID: a.ID, SubscriptionID: sub.ID, EventType: "calhook.test", Payload: []byte(`{}`),
			CreatedAt: base.Add(time.Duration(i) * time.Microsecond), NextAttemptAt: base,
		}
		if err := s.EnqueueMessage(ctx, m); err != nil {
			t.Fatalf("EnqueueMessage: %v", err)
		}
	}
	stray := &store.Message{ID: id.UUID(), AccountID: other.ID, SubscriptionID: sub.ID, EventType: "calhook.test",
		Payload: []byte(`{}`), CreatedAt: base.Add(time.Second), NextAttemptAt: base}
	wantNotFound(t, "EnqueueMessage(other account's subscription)", s.EnqueueMessage(ctx, stray))

	tests := []struct {
		p    store.ConsoleMessagesParams
		want int
	}{
		{store.ConsoleMessagesParams{}, 3},
		{store.ConsoleMessagesParams{Status: store.MessagePending}, 3},
		{store.ConsoleMessagesParams{Status: store.MessageUndeliverable}, 0},
		{store.ConsoleMessagesParams{EventType: "calhook.test"}, 3},
		{store.ConsoleMessagesParams{EventType: store.ChangeCreated}, 0},
		{store.ConsoleMessagesParams{Page: store.Page{Limit: 2}}, 2},
	}
	for _, tt := range tests {
		p := tt.p
		p.AccountID, p.SubscriptionID = a.ID, sub.ID
		if p.Limit == 0 {
			p.Limit = 10
		}
		got, _, err := s.ConsoleMessages(ctx, p)
		if err != nil || len(got) != tt.want {
			t.Errorf("ConsoleMessages(%+v) = %d, %v; want %d", tt.p, len(got), err, tt.want)
		}
	}
	got, _, err := s.ConsoleMessages(ctx, store.ConsoleMessagesParams{AccountID: other.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 10}})
	if err != nil || len(got) != 0 {
		t.Errorf("ConsoleMessages(other account) = %d, %v; want none", len(got), err)
	}
	// A filtered read examines a bounded window and says where to go on.
	p := store.ConsoleMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Status: store.MessageUndeliverable, Scan: 2,
		Page: store.Page{Limit: 10}}
	seen := 0
	for range 5 {
		got, next, err := s.ConsoleMessages(ctx, p)
		if err != nil || len(got) != 0 {
			t.Fatalf("ConsoleMessages(window) = %d, %v; want none", len(got), err)
		}
		seen++
		if next == 0 {
			break
		}
		if p.After != 0 && next >= p.After {
			t.Fatalf("ConsoleMessages cursor went from %d to %d; want it to fall", p.After, next)
		}
		p.After = next
	}
	if seen != 2 {
		t.Errorf("reading 3 messages 2 at a time took %d pages; want 2", seen)
	}
	all, next, err := s.ConsoleMessages(ctx, store.ConsoleMessagesParams{AccountID: a.ID, SubscriptionID: sub.ID, Page: store.Page{Limit: 2}})
	if err != nil || len(all) != 2 || next != all[1].Seq {
		t.Errorf("ConsoleMessages(limit 2) = %d, next %d, %v; want 2 and the second's seq", len(all), next, err)
	}
	// The due message is claimed like any other.
	claim, err := s.ClaimMessages(ctx, store.ClaimParams{Now: base.Add(time.Second), Limit: 10, Lease: time.Minute})
	if err != nil || len(claim.Deliveries) != 3 {
		t.Errorf("ClaimMessages = %v, %v; want the 3 enqueued messages", claim, err)
	}
}

func testRecentChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	before, err := s.ActivityMark(ctx)
	if err != nil {
		t.Fatalf("ActivityMark: %v", err)
	}
	for i, uid := range []string{"a", "b", "c"} {
		mustCreateEvent(t, s, newEvent(c, uid, base.Add(time.Duration(i)*time.Hour)))
	}
	got, err := s.RecentChanges(ctx, a.ID, 2)
	if err != nil || len(got) != 2 || got[0].EventUID != "c" || got[1].EventUID != "b" || got[0].Type != store.ChangeCreated {
		t.Errorf("RecentChanges = %+v, %v; want c, b", got, err)
	}
	after, err := s.ActivityMark(ctx)
	if err != nil || after == before {
		t.Errorf("ActivityMark after writes = %q, %v; want other than %q", after, err, before)
	}
}

// testEventsByStartOngoing: a window lists the events that start in it,
// and with Ongoing also those still running at its start, short or long.
func testEventsByStartOngoing(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	from := base.AddDate(0, 0, 60)
	span := func(uid string, start, end time.Time) {
		e := newEvent(c, uid, start)
		e.End = end
		mustCreateEvent(t, s, e)
	}
	span("ended", from.AddDate(0, 0, -3), from)                        // ends as the window begins
	span("stay", from.AddDate(0, 0, -3), from.AddDate(0, 0, 2))        // began three days before
	span("season", from.AddDate(0, 0, -90), from.AddDate(0, 0, 30))    // longer than store.LongEvent
	span("old-long", from.AddDate(0, 0, -90), from.AddDate(0, 0, -40)) // long, over before
	span("inside", from.AddDate(0, 0, 5), from.AddDate(0, 0, 6))       // starts in the window
	span("after", from.AddDate(0, 0, 40), from.AddDate(0, 0, 41))      // after it
	other := newCalendar(t, s, a.ID)
	e := newEvent(other, "other", from.AddDate(0, 0, -1))
	e.End = from.AddDate(0, 0, 1)
	mustCreateEvent(t, s, e)

	uids := func(p store.EventsByStartParams) []string {
		t.Helper()
		got, err := s.EventsByStart(ctx, p)
		if err != nil {
			t.Fatalf("EventsByStart(%+v): %v", p, err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.Summary)
		}
		return out
	}
	p := store.EventsByStartParams{AccountID: a.ID, CalendarID: c.ID, From: from, To: from.AddDate(0, 0, 35), Limit: 10}
	if got := uids(p); !slices.Equal(got, []string{"Booking inside"}) {
		t.Errorf("EventsByStart = %q; want the event that starts in the window", got)
	}
	p.Ongoing = true
	want := []string{"Booking season", "Booking stay", "Booking inside"}
	if got := uids(p); !slices.Equal(got, want) {
		t.Errorf("EventsByStart(Ongoing) = %q; want %q", got, want)
	}
	p.Offset, p.Limit = 1, 1
	if got := uids(p); !slices.Equal(got, want[1:2]) {
		t.Errorf("EventsByStart(Ongoing, offset 1, limit 1) = %q; want %q", got, want[1:2])
	}
	p = store.EventsByStartParams{AccountID: newAccount(t, s).ID, CalendarID: c.ID, From: from, To: from.AddDate(0, 0, 35), Limit: 10, Ongoing: true}
	if got := uids(p); len(got) != 0 {
		t.Errorf("EventsByStart of another account = %q; want none", got)
	}
}

// testConflictReads: open conflicts counted per unit, and a unit's newest
// conflicts of a state first, for its account only.
func testConflictReads(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u1, u2, quiet := newUnit(t, s, a.ID, "one"), newUnit(t, s, a.ID, "two"), newUnit(t, s, a.ID, "quiet")
	c := newCalendar(t, s, a.ID)
	var evs []*store.Event
	for i := range 5 {
		e := newEvent(c, fmt.Sprint("e", i), base.Add(time.Duration(i)*time.Hour))
		mustCreateEvent(t, s, e)
		evs = append(evs, e)
	}
	first, second := conflictOf(u1, evs[0], evs[1], base), conflictOf(u1, evs[1], evs[2], base.Add(time.Minute))
	third := conflictOf(u1, evs[2], evs[3], base.Add(2*time.Minute))
	fourth := conflictOf(u2, evs[3], evs[4], base)
	if res := detectOnce(t, s, &store.ConflictUpdate{Detected: []*store.Conflict{first, second, third, fourth}}); res.Detected != 4 {
		t.Fatalf("detect = %+v; want 4", res)
	}
	mustCreateEvent(t, s, newEvent(c, "next", base.AddDate(0, 0, 1)))
	r1, r2 := *first, *second
	r1.State, r1.ResolvedAt = store.ConflictResolved, base.Add(time.Hour)
	r2.State, r2.ResolvedAt = store.ConflictResolved, base.Add(time.Hour)
	if res := detectOnce(t, s, &store.ConflictUpdate{Resolved: []*store.Conflict{&r1, &r2}}); res.Resolved != 2 {
		t.Fatalf("resolve = %+v; want 2", res)
	}
	counts, err := s.OpenConflictCounts(ctx, a.ID, nil)
	if err != nil || len(counts) != 2 || counts[u1.ID] != 1 || counts[u2.ID] != 1 || counts[quiet.ID] != 0 {
		t.Errorf("OpenConflictCounts = %v, %v; want one each for %s and %s", counts, err, u1.ID, u2.ID)
	}
	counts, err = s.OpenConflictCounts(ctx, a.ID, []string{u2.ID, quiet.ID})
	if err != nil || len(counts) != 1 || counts[u2.ID] != 1 {
		t.Errorf("OpenConflictCounts(two, quiet) = %v, %v; want one for %s", counts, err, u2.ID)
	}
	other := newAccount(t, s)
	if counts, err := s.OpenConflictCounts(ctx, other.ID, []string{u1.ID}); err != nil || len(counts) != 0 {
		t.Errorf("OpenConflictCounts of another account = %v, %v; want none", counts, err)
	}
	ids := func(cs []*store.Conflict) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	got, err := s.LatestConflicts(ctx, a.ID, u1.ID, store.ConflictResolved, 10)
	if err != nil || !slices.Equal(ids(got), []string{second.ID, first.ID}) || !got[0].ResolvedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("LatestConflicts(resolved) = %v, %v; want %s, %s", ids(got), err, second.ID, first.ID)
	}
	if got, err := s.LatestConflicts(ctx, a.ID, u1.ID, store.ConflictResolved, 1); err != nil || !slices.Equal(ids(got), []string{second.ID}) {
		t.Errorf("LatestConflicts(resolved, 1) = %v, %v; want %s", ids(got), err, second.ID)
	}
	if got, err := s.LatestConflicts(ctx, a.ID, u1.ID, store.ConflictOpen, 10); err != nil || !slices.Equal(ids(got), []string{third.ID}) {
		t.Errorf("LatestConflicts(open) = %v, %v; want %s", ids(got), err, third.ID)
	}
	if got, err := s.LatestConflicts(ctx, other.ID, u1.ID, store.ConflictOpen, 10); err != nil || len(got) != 0 {
		t.Errorf("LatestConflicts of another account = %v, %v; want none", ids(got), err)
	}
}
