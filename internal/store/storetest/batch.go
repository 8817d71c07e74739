package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

var batchTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"FindEvents", testFindEvents},
	{"WriteEvents", testWriteEvents},
	{"WriteEventsRefused", testWriteEventsRefused},
}

func testFindEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	c, other := newCalendar(t, s, a.ID), newCalendar(t, s, b.ID)
	one, two, three := newEvent(c, "one", base), newEvent(c, "two", base), newEvent(c, "three", base)
	for _, e := range []*store.Event{one, two, three} {
		mustCreateEvent(t, s, e)
	}
	foreign := newEvent(other, "one", base)
	mustCreateEvent(t, s, foreign)
	tests := []struct {
		name      string
		acct, cal string
		ids, uids []string
		want      []string
	}{
		{"by id", a.ID, c.ID, []string{one.ID, "evt_missing"}, nil, []string{"one"}},
		{"by uid", a.ID, c.ID, nil, []string{"two", "nope"}, []string{"two"}},
		{"both, overlapping", a.ID, c.ID, []string{one.ID, three.ID}, []string{"one", "two"}, []string{"one", "three", "two"}},
		{"another account's calendar", a.ID, other.ID, []string{foreign.ID}, []string{"one"}, nil},
		{"another account's event id", a.ID, c.ID, []string{foreign.ID}, nil, nil},
		{"nothing asked", a.ID, c.ID, nil, nil, nil},
	}
	for _, tt := range tests {
		got, err := s.FindEvents(ctx, store.FindEventsParams{AccountID: tt.acct, CalendarID: tt.cal, IDs: tt.ids, UIDs: tt.uids})
		if err != nil {
			t.Errorf("FindEvents(%s) = %v", tt.name, err)
			continue
		}
		var uids []string
		for _, e := range got {
			uids = append(uids, e.UID)
		}
		slices.Sort(uids)
		if !reflect.DeepEqual(uids, tt.want) {
			t.Errorf("FindEvents(%s) = %q; want %q", tt.name, uids, tt.want)
		}
	}
}

func testWriteEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	keep, gone := newEvent(c, "keep", base), newEvent(c, "gone", base.Add(time.Hour))
	mustCreateEvent(t, s, keep)
	mustCreateEvent(t, s, gone)
	cal, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := base.Add(time.Minute)
	moved := *keep
	moved.Summary, moved.Sequence, moved.UpdatedAt = "Moved", 1, now
	// The new event takes the UID of the deleted one: deletes go first.
	again := newEvent(c, "gone", base.Add(3*time.Hour))
	added := newEvent(c, "added", base.Add(2*time.Hour))
	changes, err := s.WriteEvents(ctx, &store.WriteEventsParams{
		AccountID: a.ID, CalendarID: c.ID, Version: cal.Version, Now: now,
		Create: []*store.Event{added, again}, Update: []*store.Event{&moved}, Delete: []*store.Event{gone},
	})
	if err != nil {
		t.Fatalf("WriteEvents: %v", err)
	}
	var types []string
	for _, ch := range changes {
		types = append(types, ch.Type+" "+ch.EventUID)
		if ch.ID == 0 || ch.Event == nil || !ch.OccurredAt.Equal(now) {
			t.Errorf("change %+v; want a numbered change at %v with its event", ch, now)
		}
	}
	want := []string{store.ChangeDeleted + " gone", store.ChangeUpdated + " keep", store.ChangeCreated + " added", store.ChangeCreated + " gone"}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("changes = %q; want %q", types, want)
	}
	after, err := s.Calendar(ctx, a.ID, c.ID)
	if err != nil || after.Version != cal.Version+1 {
		t.Errorf("version after a batch = %d, %v; want %d (one bump per batch)", after.Version, err, cal.Version+1)
	}
	listed, err := s.ListChanges(ctx, store.ListChangesParams{AccountID: a.ID, CalendarID: c.ID, Limit: 100})
	if err != nil || len(listed) != 6 {
		t.Fatalf("ListChanges = %d changes, %v; want 6", len(listed), err)
	}
	if del := listed[2]; del.Type != store.ChangeDeleted || del.Event == nil || del.Event.ID != gone.ID {
		t.Errorf("deletion change = %+v; want the deleted event's snapshot", del)
	}
	got, err := s.Event(ctx, a.ID, c.ID, keep.ID)
	if err != nil || got.Summary != "Moved" || got.Sequence != 1 {
		t.Errorf("updated event = %+v, %v; want summary Moved, sequence 1", got, err)
	}
	if _, err := s.Event(ctx, a.ID, c.ID, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Event(deleted) = %v; want ErrNotFound", err)
	}
	if got, err := s.Event(ctx, a.ID, c.ID, again.ID); err != nil || got.UID != "gone" || got.Seq == 0 {
		t.Errorf("Event(re-created uid) = %+v, %v; want it stored with a position", got, err)
	}
	// An empty batch checks the version and writes nothing.
	if chs, err := s.WriteEvents(ctx, &store.WriteEventsParams{AccountID: a.ID, CalendarID: c.ID, Version: after.Version, Now: now}); err != nil || len(chs) != 0 {
		t.Errorf("WriteEvents(empty) = %d changes, %v; want none", len(chs), err)
	}
	if v, _ := s.Calendar(ctx, a.ID, c.ID); v.Version != after.Version {
		t.Errorf("an empty batch moved the version from %d to %d", after.Version, v.Version)
	}
}

func testWriteEventsRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := newAccount(t, s), newAccount(t, s)
	c := newCalendar(t, s, a.ID)
	stale := c.Version
	mustCreateEvent(t, s, newEvent(c, "first", base))
	cal, _ := s.Calendar(ctx, a.ID, c.ID)
	imported := newImported(t, s, a.ID, "https://feeds.example.com/a.ics", base)
	tests := []struct {
		name    string
		p       store.WriteEventsParams
		wantErr error
	}{
		{"stale version", store.WriteEventsParams{AccountID: a.ID, CalendarID: c.ID, Version: stale}, store.ErrConflict},
		{"duplicate uid", store.WriteEventsParams{AccountID: a.ID, CalendarID: c.ID, Version: cal.Version,
			Create: []*store.Event{newEvent(c, "fresh", base), newEvent(c, "first", base)}}, store.ErrConflict},
		{"another account's calendar", store.WriteEventsParams{AccountID: b.ID, CalendarID: c.ID, Version: cal.Version}, store.ErrNotFound},
		{"imported calendar", store.WriteEventsParams{AccountID: a.ID, CalendarID: imported.ID, Version: imported.Version}, store.ErrNotFound},
		{"missing event", store.WriteEventsParams{AccountID: a.ID, CalendarID: c.ID, Version: cal.Version,
			Create: []*store.Event{newEvent(c, "fresh", base)}, Delete: []*store.Event{newEvent(c, "ghost", base)}}, store.ErrNotFound},
	}
	for _, tt := range tests {
		tt.p.Now = base.Add(time.Minute)
		if tt.p.Version == stale {
			tt.p.Create = []*store.Event{newEvent(c, "late", base)}
		}
		if _, err := s.WriteEvents(ctx, &tt.p); !errors.Is(err, tt.wantErr) {
			t.Errorf("WriteEvents(%s) = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
	evs, err := s.ListEvents(ctx, store.ListEventsParams{AccountID: a.ID, CalendarID: c.ID, Page: store.Page{Limit: 10}})
	if err != nil || len(evs) != 1 {
		t.Errorf("events after refused batches = %d, %v; want only the first", len(evs), err)
	}
	if v, _ := s.Calendar(ctx, a.ID, c.ID); v.Version != cal.Version {
		t.Errorf("refused batches moved the version from %d to %d", cal.Version, v.Version)
	}
}
