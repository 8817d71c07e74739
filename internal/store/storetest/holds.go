package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

var holdTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"PlaceHold", testPlaceHold},
	{"PlaceHoldExclusive", testPlaceHoldExclusive},
	{"PlaceHolds", testPlaceHolds},
	{"HoldStates", testHoldStates},
	{"HoldIsolation", testHoldIsolation},
	{"Idempotency", testIdempotency},
}

// holdParams returns the params of a hold of [start, start+d) on a unit.
func holdParams(accountID, unitID string, start time.Time, d time.Duration) store.PlaceHoldParams {
	hid := id.New("hold")
	return store.PlaceHoldParams{
		Hold: &store.Hold{ID: hid, AccountID: accountID, UnitID: unitID, Start: start, End: start.Add(d),
			Summary: "Hold", ExternalRef: "ref-" + hid, State: store.HoldHeld, ExpiresAt: base.Add(15 * time.Minute), CreatedAt: base},
		Event: &store.Event{ID: id.New("evt"), AccountID: accountID, UID: hid + "@test", Summary: "Hold",
			Start: start, End: start.Add(d), TimeZone: "UTC", Status: store.StatusTentative, CreatedAt: base, UpdatedAt: base},
		NewCalendar: &store.Calendar{ID: id.New("cal"), AccountID: accountID, Name: "Unit", TimeZone: "UTC",
			Kind: store.KindNative, CreatedAt: base, UpdatedAt: base},
		From: start.Add(-48 * time.Hour), To: start.Add(d + 48*time.Hour),
	}
}

// overlapCheck refuses a hold whose [from, to) overlaps any event it is
// shown, counting what it saw.
func overlapCheck(from, to time.Time, saw *int) store.HoldCheckFunc {
	return func(_ context.Context, _ *store.Unit, events []*store.Event, _ []*store.Hold) error {
		*saw = len(events)
		for _, e := range events {
			if e.Start.Before(to) && e.End.After(from) {
				return errBusy
			}
		}
		return nil
	}
}

var errBusy = errors.New("busy")

func testPlaceHold(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "Flat")
	start := base.Add(72 * time.Hour)
	p := holdParams(a.ID, u.ID, start, 24*time.Hour)
	var saw int
	if err := s.PlaceHold(ctx, p, overlapCheck(start, start.Add(24*time.Hour), &saw)); err != nil {
		t.Fatalf("PlaceHold: %v", err)
	}
	if p.Hold.CalendarID != p.NewCalendar.ID || p.Event.CalendarID != p.NewCalendar.ID || p.Hold.EventID != p.Event.ID {
		t.Fatalf("hold in calendar %q event %q; want the new calendar %q and event %q",
			p.Hold.CalendarID, p.Hold.EventID, p.NewCalendar.ID, p.Event.ID)
	}
	cals, err := s.UnitCalendars(ctx, a.ID, []string{u.ID})
	if err != nil || len(cals) != 1 || cals[0].ID != p.NewCalendar.ID || cals[0].Kind != store.KindNative {
		t.Fatalf("UnitCalendars = %v, %v; want the new native calendar", cals, err)
	}
	e, err := s.Event(ctx, a.ID, p.NewCalendar.ID, p.Event.ID)
	if err != nil || e.Status != store.StatusTentative {
		t.Fatalf("hold event = %+v, %v; want a tentative event", e, err)
	}
	got, err := s.Hold(ctx, a.ID, p.Hold.ID)
	if err != nil || got.State != store.HoldHeld || !got.Start.Equal(start) || got.ExternalRef != p.Hold.ExternalRef {
		t.Fatalf("Hold = %+v, %v", got, err)
	}

	// A second, overlapping hold sees the first one's event and hold and
	// is refused; nothing of it is stored.
	q := holdParams(a.ID, u.ID, start.Add(12*time.Hour), 24*time.Hour)
	var sawHolds int
	err = s.PlaceHold(ctx, q, func(ctx context.Context, un *store.Unit, events []*store.Event, holds []*store.Hold) error {
		sawHolds = len(holds)
		if un.ID != u.ID {
			t.Errorf("check got unit %s; want %s", un.ID, u.ID)
		}
		return overlapCheck(q.Hold.Start, q.Hold.End, &saw)(ctx, un, events, holds)
	})
	if !errors.Is(err, errBusy) {
		t.Fatalf("overlapping PlaceHold = %v; want the check's error", err)
	}
	if saw != 1 || sawHolds != 1 {
		t.Errorf("check saw %d events and %d holds; want 1 and 1", saw, sawHolds)
	}
	if _, err := s.Hold(ctx, a.ID, q.Hold.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused hold stored: %v", err)
	}
	if cals, _ := s.UnitCalendars(ctx, a.ID, []string{u.ID}); len(cals) != 1 {
		t.Errorf("refused hold made a calendar: %d calendars", len(cals))
	}

	// A disjoint hold goes into the same native calendar, and moves its
	// version and the account's feed version on by one.
	calBefore, err := s.Calendar(ctx, a.ID, p.NewCalendar.ID)
	if err != nil {
		t.Fatal(err)
	}
	accBefore, err := s.Account(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := holdParams(a.ID, u.ID, start.Add(48*time.Hour), 24*time.Hour)
	if err := s.PlaceHold(ctx, r, overlapCheck(r.Hold.Start, r.Hold.End, &saw)); err != nil {
		t.Fatalf("disjoint PlaceHold: %v", err)
	}
	calAfter, err := s.Calendar(ctx, a.ID, p.NewCalendar.ID)
	if err != nil {
		t.Fatal(err)
	}
	accAfter, err := s.Account(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if calAfter.Version != calBefore.Version+1 || accAfter.FeedVersion != accBefore.FeedVersion+1 {
		t.Errorf("versions after a hold: calendar %d, account %d; want %d and %d",
			calAfter.Version, accAfter.FeedVersion, calBefore.Version+1, accBefore.FeedVersion+1)
	}
	if r.Hold.CalendarID != p.NewCalendar.ID {
		t.Errorf("second hold in calendar %s; want %s", r.Hold.CalendarID, p.NewCalendar.ID)
	}
	list, err := s.ListHolds(ctx, store.ListHoldsParams{AccountID: a.ID, UnitID: u.ID, Page: store.Page{Limit: 10}})
	if err != nil || len(list) != 2 || list[0].ID != p.Hold.ID || list[1].ID != r.Hold.ID {
		t.Fatalf("ListHolds = %v, %v; want the two holds in order", list, err)
	}
	types := accountLog(t, s, a.ID)
	if n := countOf(types, store.ChangeCreated); n != 2 {
		t.Errorf("change log has %d created changes; want 2 (%v)", n, types)
	}
}

// accountLog returns the types of an account's event changes, in order.
func accountLog(t *testing.T, s store.Store, accountID string) []string {
	t.Helper()
	var out []string
	for _, ch := range logTypes(t, s, "holdtest-"+id.New("c"), store.ChangeCreated, store.ChangeUpdated, store.ChangeDeleted) {
		if ch.AccountID == accountID {
			out = append(out, ch.Type)
		}
	}
	return out
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// testPlaceHolds places a group of holds in one call: each check sees the
// holds of the group placed before it, a refused hold stores nothing, the
// others are stored in one native calendar created once, and the versions
// move on by the number placed. A group that is all refused stores
// nothing and is no error; a group of two units is.
func testPlaceHolds(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "Flat")
	day := base.Add(72 * time.Hour)
	// Holds 0 and 2 are disjoint; 1 overlaps 0 and 3 overlaps 2.
	starts := []time.Time{day, day.Add(12 * time.Hour), day.Add(96 * time.Hour), day.Add(100 * time.Hour)}
	group := make([]store.HoldPlacement, len(starts))
	saw := make([]int, len(starts))
	for i, st := range starts {
		p := holdParams(a.ID, u.ID, st, 24*time.Hour)
		group[i] = store.HoldPlacement{PlaceHoldParams: p, Check: overlapCheck(p.Hold.Start, p.Hold.End, &saw[i])}
	}
	accBefore, err := s.Account(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := s.PlaceHolds(ctx, group)
	if err != nil {
		t.Fatalf("PlaceHolds: %v", err)
	}
	for i, want := range []error{nil, errBusy, nil, errBusy} {
		if !errors.Is(errs[i], want) || (want == nil) != (errs[i] == nil) {
			t.Errorf("hold %d: %v; want %v", i, errs[i], want)
		}
	}
	if want := []int{0, 1, 1, 2}; saw[0] != want[0] || saw[1] != want[1] || saw[2] != want[2] || saw[3] != want[3] {
		t.Errorf("the checks saw %v events; want %v (each the holds placed before it)", saw, want)
	}
	for i, p := range group {
		_, err := s.Hold(ctx, a.ID, p.Hold.ID)
		if placed := i%2 == 0; placed != (err == nil) {
			t.Errorf("hold %d: Hold = %v; want it stored: %v", i, err, placed)
		}
	}
	cal := group[0].NewCalendar.ID
	if group[2].Hold.CalendarID != cal {
		t.Errorf("the second hold placed is in calendar %s; want the new calendar %s", group[2].Hold.CalendarID, cal)
	}
	if cals, _ := s.UnitCalendars(ctx, a.ID, []string{u.ID}); len(cals) != 1 {
		t.Errorf("unit has %d calendars; want 1", len(cals))
	}
	c, err := s.Calendar(ctx, a.ID, cal)
	if err != nil {
		t.Fatal(err)
	}
	accAfter, err := s.Account(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The new calendar starts at version 1; the account's feed version
	// moves for the calendar too on SQLite, so only its growth is shared.
	if c.Version != 3 || accAfter.FeedVersion < accBefore.FeedVersion+2 {
		t.Errorf("versions after two holds: calendar %d, account %d (from %d); want 3 and at least %d",
			c.Version, accAfter.FeedVersion, accBefore.FeedVersion, accBefore.FeedVersion+2)
	}
	if n := countOf(accountLog(t, s, a.ID), store.ChangeCreated); n != 2 {
		t.Errorf("change log has %d created changes; want 2", n)
	}

	// All refused: nothing stored, no error.
	again := holdParams(a.ID, u.ID, day, 24*time.Hour)
	var n int
	errs, err = s.PlaceHolds(ctx, []store.HoldPlacement{{PlaceHoldParams: again, Check: overlapCheck(again.Hold.Start, again.Hold.End, &n)}})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], errBusy) {
		t.Errorf("PlaceHolds of a taken interval = %v, %v; want [busy], nil", errs, err)
	}
	if _, err := s.Hold(ctx, a.ID, again.Hold.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused hold stored: %v", err)
	}

	// Two units in one call.
	v := newUnit(t, s, a.ID, "Other flat")
	p, q := holdParams(a.ID, u.ID, day.Add(500*time.Hour), time.Hour), holdParams(a.ID, v.ID, day.Add(500*time.Hour), time.Hour)
	if _, err := s.PlaceHolds(ctx, []store.HoldPlacement{{PlaceHoldParams: p, Check: overlapCheck(p.From, p.To, &n)},
		{PlaceHoldParams: q, Check: overlapCheck(q.From, q.To, &n)}}); err == nil {
		t.Error("PlaceHolds of two units' holds succeeded; want an error")
	}
}

// testPlaceHoldExclusive places 20 overlapping holds at once: the checks
// take turns, so exactly one is stored.
func testPlaceHoldExclusive(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "Flat")
	start := base.Add(72 * time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := holdParams(a.ID, u.ID, start.Add(time.Duration(i)*time.Hour), 24*time.Hour)
			var saw int
			err := s.PlaceHold(ctx, p, overlapCheck(p.Hold.Start, p.Hold.End, &saw))
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !errors.Is(err, errBusy):
				t.Errorf("PlaceHold: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 20 overlapping holds were placed; want exactly 1", won)
	}
	if cals, _ := s.UnitCalendars(ctx, a.ID, []string{u.ID}); len(cals) != 1 {
		t.Errorf("unit has %d calendars; want 1 native calendar", len(cals))
	}
}

func testHoldStates(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	u := newUnit(t, s, a.ID, "Flat")
	start := base.Add(72 * time.Hour)
	place := func(at time.Time) *store.Hold {
		p := holdParams(a.ID, u.ID, at, time.Hour)
		var saw int
		if err := s.PlaceHold(ctx, p, overlapCheck(p.Hold.Start, p.Hold.End, &saw)); err != nil {
			t.Fatalf("PlaceHold: %v", err)
		}
		return p.Hold
	}
	confirmed, released, expired := place(start), place(start.Add(2*time.Hour)), place(start.Add(4*time.Hour))

	h, err := s.ConfirmHold(ctx, a.ID, confirmed.ID, base.Add(time.Minute))
	if err != nil || h.State != store.HoldConfirmed || !h.EndedAt.Equal(base.Add(time.Minute)) {
		t.Fatalf("ConfirmHold = %+v, %v", h, err)
	}
	if e, err := s.Event(ctx, a.ID, h.CalendarID, h.EventID); err != nil || e.Status != store.StatusConfirmed {
		t.Errorf("confirmed hold's event = %+v, %v; want confirmed", e, err)
	}
	if _, err := s.ConfirmHold(ctx, a.ID, confirmed.ID, base.Add(time.Minute)); !errors.Is(err, store.ErrHoldState) {
		t.Errorf("second ConfirmHold = %v; want ErrHoldState", err)
	}
	if _, err := s.EndHold(ctx, a.ID, confirmed.ID, store.HoldReleased, base); !errors.Is(err, store.ErrHoldState) {
		t.Errorf("EndHold of a confirmed hold = %v; want ErrHoldState", err)
	}

	h, err = s.EndHold(ctx, a.ID, released.ID, store.HoldReleased, base.Add(time.Minute))
	if err != nil || h.State != store.HoldReleased {
		t.Fatalf("EndHold = %+v, %v", h, err)
	}
	if _, err := s.Event(ctx, a.ID, h.CalendarID, h.EventID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("released hold's event still there: %v", err)
	}

	// Expiry: only the held hold past its expiry is due; confirming it
	// after its expiry is refused even before the sweep.
	due, err := s.ExpiredHolds(ctx, expired.ExpiresAt.Add(-time.Second), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("ExpiredHolds before expiry = %v, %v; want none", due, err)
	}
	if h, err := s.ConfirmHold(ctx, a.ID, expired.ID, expired.ExpiresAt); !errors.Is(err, store.ErrHoldState) || h.State != store.HoldHeld {
		t.Errorf("ConfirmHold at expiry = %+v, %v; want ErrHoldState", h, err)
	}
	due, err = s.ExpiredHolds(ctx, expired.ExpiresAt, 10)
	if err != nil || len(due) != 1 || due[0].ID != expired.ID {
		t.Fatalf("ExpiredHolds = %v, %v; want the held hold", due, err)
	}
	if h, err := s.EndHold(ctx, a.ID, expired.ID, store.HoldExpired, expired.ExpiresAt); err != nil || h.State != store.HoldExpired {
		t.Fatalf("EndHold expired = %+v, %v", h, err)
	}
	if due, _ := s.ExpiredHolds(ctx, expired.ExpiresAt, 10); len(due) != 0 {
		t.Errorf("ExpiredHolds after the expiry = %v; want none", due)
	}
	types := accountLog(t, s, a.ID)
	if countOf(types, store.ChangeUpdated) != 1 || countOf(types, store.ChangeDeleted) != 2 {
		t.Errorf("change log %v; want one updated and two deleted changes", types)
	}
}

func testHoldIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	u := newUnit(t, s, a.ID, "Flat")
	p := holdParams(a.ID, u.ID, base.Add(72*time.Hour), time.Hour)
	var saw int
	if err := s.PlaceHold(ctx, p, overlapCheck(p.Hold.Start, p.Hold.End, &saw)); err != nil {
		t.Fatalf("PlaceHold: %v", err)
	}
	q := holdParams(b.ID, u.ID, base.Add(240*time.Hour), time.Hour)
	if err := s.PlaceHold(ctx, q, overlapCheck(q.Hold.Start, q.Hold.End, &saw)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PlaceHold on another account's unit = %v; want ErrNotFound", err)
	}
	if _, err := s.Hold(ctx, b.ID, p.Hold.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Hold of another account = %v; want ErrNotFound", err)
	}
	if _, err := s.ConfirmHold(ctx, b.ID, p.Hold.ID, base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConfirmHold of another account = %v; want ErrNotFound", err)
	}
	if _, err := s.EndHold(ctx, b.ID, p.Hold.ID, store.HoldReleased, base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EndHold of another account = %v; want ErrNotFound", err)
	}
	if l, err := s.ListHolds(ctx, store.ListHoldsParams{AccountID: b.ID, UnitID: u.ID, Page: store.Page{Limit: 10}}); err != nil || len(l) != 0 {
		t.Errorf("ListHolds of another account = %v, %v; want none", l, err)
	}
}

func testIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	req := func(accountID, fp string, at time.Time) *store.IdempotentRequest {
		return &store.IdempotentRequest{AccountID: accountID, Key: "k1", Fingerprint: fp, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
	}
	stale := base.Add(-time.Minute)
	if _, fresh, err := s.BeginIdempotent(ctx, req(a.ID, "f1", base), base, stale); err != nil || !fresh {
		t.Fatalf("first BeginIdempotent = %v, %v; want a fresh reservation", fresh, err)
	}
	// While pending, the record comes back pending; another account's
	// key of the same name is its own.
	k, fresh, err := s.BeginIdempotent(ctx, req(a.ID, "f1", base), base, stale)
	if err != nil || fresh || k.Status != 0 || k.Fingerprint != "f1" {
		t.Fatalf("BeginIdempotent while pending = %+v, %v, %v", k, fresh, err)
	}
	if _, fresh, err := s.BeginIdempotent(ctx, req(b.ID, "f9", base), base, stale); err != nil || !fresh {
		t.Errorf("BeginIdempotent of another account = %v, %v; want fresh", fresh, err)
	}
	if err := s.FinishIdempotent(ctx, a.ID, "k1", 201, []byte(`{"ok":true}`)); err != nil {
		t.Fatalf("FinishIdempotent: %v", err)
	}
	k, fresh, err = s.BeginIdempotent(ctx, req(a.ID, "f2", base.Add(time.Hour)), base.Add(time.Hour), stale.Add(time.Hour))
	if err != nil || fresh || k.Status != 201 || string(k.Body) != `{"ok":true}` || k.Fingerprint != "f1" {
		t.Fatalf("BeginIdempotent after the answer = %+v, %v, %v; want the first answer", k, fresh, err)
	}
	// After 24 hours the key is free again.
	later := base.Add(24 * time.Hour)
	if _, fresh, err := s.BeginIdempotent(ctx, req(a.ID, "f3", later), later, later.Add(-time.Minute)); err != nil || !fresh {
		t.Errorf("BeginIdempotent after expiry = %v, %v; want fresh", fresh, err)
	}
	// An abandoned key is free at once; a pending one left too long is
	// taken over.
	if err := s.AbandonIdempotent(ctx, a.ID, "k1"); err != nil {
		t.Fatalf("AbandonIdempotent: %v", err)
	}
	if _, fresh, err := s.BeginIdempotent(ctx, req(a.ID, "f4", later), later, later.Add(-time.Minute)); err != nil || !fresh {
		t.Errorf("BeginIdempotent after abandon = %v, %v; want fresh", fresh, err)
	}
	then := later.Add(2 * time.Minute)
	if _, fresh, err := s.BeginIdempotent(ctx, req(a.ID, "f5", then), then, then.Add(-time.Minute)); err != nil || !fresh {
		t.Errorf("BeginIdempotent over a stale pending key = %v, %v; want fresh", fresh, err)
	}
}
