package calendar

import (
	"context"

	"github.com/calhook/calhook/internal/store"
)

// Calendar returns one of an account's calendars.
func (s *Service) Calendar(ctx context.Context, accountID, calendarID string) (*store.Calendar, error) {
	return s.store.Calendar(ctx, accountID, calendarID)
}

// ListCalendars returns a page of an account's calendars in creation
// order.
func (s *Service) ListCalendars(ctx context.Context, p store.ListCalendarsParams) ([]*store.Calendar, error) {
	return s.store.ListCalendars(ctx, p)
}

// Event returns one event of an account's calendar.
func (s *Service) Event(ctx context.Context, accountID, calendarID, eventID string) (*store.Event, error) {
	return s.store.Event(ctx, accountID, calendarID, eventID)
}

// ListEvents returns a page of a calendar's events in creation order.
func (s *Service) ListEvents(ctx context.Context, p store.ListEventsParams) ([]*store.Event, error) {
	return s.store.ListEvents(ctx, p)
}

// Changes returns up to limit changes of an account's calendar after
// since, in log order, and the position it read after. A nil since starts
// from the newest change, so that a client first reads everything and
// then follows; a since older than the change log keeps is
// store.ErrGone. The caller has looked the calendar up for the account.
func (s *Service) Changes(ctx context.Context, accountID, calendarID string, since *store.ChangePos, limit int) ([]*store.Change, store.ChangePos, error) {
	var after store.ChangePos
	if since != nil {
		horizon, err := s.store.ChangeHorizon(ctx)
		if err != nil {
			return nil, after, err
		}
		if since.Before(horizon) {
			return nil, after, store.ErrGone
		}
		after = *since
	} else {
		var err error
		if after, err = s.store.ChangeCursor(ctx, accountID); err != nil {
			return nil, after, err
		}
	}
	changes, err := s.store.ListChanges(ctx, store.ListChangesParams{
		AccountID: accountID, CalendarID: calendarID, After: after, Limit: limit,
	})
	return changes, after, err
}

// EventsByStart returns a calendar's events that start in a window, by
// start time, with the fields a list shows.
func (s *Service) EventsByStart(ctx context.Context, p store.EventsByStartParams) ([]*store.Event, error) {
	return s.store.EventsByStart(ctx, p)
}
