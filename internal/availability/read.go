package availability

import (
	"context"

	"github.com/calhook/calhook/internal/store"
)

// UnitsByID returns the account's units among unitIDs, in creation order;
// unknown ones are left out.
func (s *Service) UnitsByID(ctx context.Context, accountID string, unitIDs []string) ([]*store.Unit, error) {
	if len(unitIDs) == 0 {
		return nil, nil
	}
	return s.store.UnitsByID(ctx, accountID, unitIDs)
}

// UnitCalendars returns the calendars of the given units of an account,
// in creation order, each with its unit.
func (s *Service) UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*store.UnitCalendar, error) {
	return s.store.UnitCalendars(ctx, accountID, unitIDs)
}
