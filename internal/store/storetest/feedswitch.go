package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// testFeedSwitch checks the account's and a calendar's feed switches:
// stored, read back by Account, Calendar, FeedVersion and FeedContent,
// and bumping the account's feed version so cached renders change.
func testFeedSwitch(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	other := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	before, err := s.FeedVersion(ctx, a.ID, "")
	if err != nil {
		t.Fatalf("FeedVersion: %v", err)
	}
	if before.AccountDisabled || before.CalendarDisabled {
		t.Fatalf("new account's FeedVersion = %+v; want its feeds on", before)
	}

	if err := s.SetFeedsDisabled(ctx, a.ID, true, base.Add(time.Minute)); err != nil {
		t.Fatalf("SetFeedsDisabled(true): %v", err)
	}
	got, err := s.Account(ctx, a.ID)
	if err != nil || !got.FeedsDisabled {
		t.Errorf("Account after SetFeedsDisabled(true) = %+v, %v; want FeedsDisabled", got, err)
	}
	st, err := s.FeedVersion(ctx, a.ID, "")
	if err != nil || !st.AccountDisabled || st.Version <= before.Version {
		t.Errorf("FeedVersion after disabling = %+v, %v; want AccountDisabled and a version above %d", st, err, before.Version)
	}
	if st, err := s.FeedVersion(ctx, a.ID, c.ID); err != nil || !st.AccountDisabled || st.CalendarDisabled {
		t.Errorf("calendar FeedVersion with the account off = %+v, %v; want AccountDisabled only", st, err)
	}
	if o, err := s.Account(ctx, other.ID); err != nil || o.FeedsDisabled {
		t.Errorf("another account = %+v, %v; want its feeds on", o, err)
	}
	if err := s.SetFeedsDisabled(ctx, a.ID, false, base.Add(2*time.Minute)); err != nil {
		t.Fatalf("SetFeedsDisabled(false): %v", err)
	}
	if got, _ := s.Account(ctx, a.ID); got.FeedsDisabled {
		t.Errorf("Account after SetFeedsDisabled(false) still has FeedsDisabled")
	}
	wantNotFound(t, "SetFeedsDisabled(missing)", s.SetFeedsDisabled(ctx, "acc_missing", true, base))

	c.FeedDisabled, c.UpdatedAt = true, base.Add(3*time.Minute)
	if err := s.UpdateCalendar(ctx, c); err != nil {
		t.Fatalf("UpdateCalendar(FeedDisabled): %v", err)
	}
	if got, err := s.Calendar(ctx, a.ID, c.ID); err != nil || !got.FeedDisabled {
		t.Errorf("Calendar after disabling its feed = %+v, %v; want FeedDisabled", got, err)
	}
	if st, err := s.FeedVersion(ctx, a.ID, c.ID); err != nil || st.AccountDisabled || !st.CalendarDisabled {
		t.Errorf("calendar FeedVersion = %+v, %v; want CalendarDisabled only", st, err)
	}
	fc, err := s.FeedContent(ctx, a.ID, "")
	if err != nil || len(fc.Calendars) != 1 || !fc.Calendars[0].FeedDisabled {
		t.Errorf("FeedContent of the account = %+v, %v; want its calendar with FeedDisabled", fc, err)
	}
	if fc, err := s.FeedContent(ctx, a.ID, c.ID); err != nil || !fc.CalendarDisabled {
		t.Errorf("FeedContent of the calendar = %+v, %v; want CalendarDisabled", fc, err)
	}

	created := newCalendarWith(t, s, a.ID, true)
	if got, err := s.Calendar(ctx, a.ID, created.ID); err != nil || !got.FeedDisabled {
		t.Errorf("Calendar created with its feed off = %+v, %v; want FeedDisabled", got, err)
	}
}

// newCalendarWith is newCalendar with the calendar's feed switch set.
func newCalendarWith(t *testing.T, s store.Store, accountID string, feedDisabled bool) *store.Calendar {
	t.Helper()
	c := &store.Calendar{
		ID: id.New("cal"), AccountID: accountID, Name: "Cal", TimeZone: "UTC", Kind: store.KindNative,
		FeedDisabled: feedDisabled, CreatedAt: base, UpdatedAt: base,
	}
	if err := s.CreateCalendar(context.Background(), c); err != nil {
		t.Fatalf("CreateCalendar: %v", err)
	}
	return c
}
