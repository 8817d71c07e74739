package calendar

import (
	"fmt"
	"time"
)

// MinYear and MaxYear bound the years of every event time calhook stores,
// in UTC and in the event's own zone: what RFC 3339, iCalendar's
// four-digit years and the clients that read feeds (ical.js,
// python-icalendar) can all represent. The zero instant
// (0001-01-01T00:00:00Z) is refused too, as Go uses it for "no time".
const (
	MinYear = 1
	MaxYear = 9999
)

// CheckTimeRange reports why t cannot be stored as an event time shown in
// loc (nil means UTC), or nil when it can.
func CheckTimeRange(t time.Time, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	if t.IsZero() {
		return fmt.Errorf("0001-01-01T00:00:00Z is not a usable time")
	}
	for _, l := range []*time.Location{time.UTC, loc} {
		if y := t.In(l).Year(); y < MinYear || y > MaxYear {
			return fmt.Errorf("falls in year %d in %s; times must be within years %d–%d", y, l, MinYear, MaxYear)
		}
	}
	return nil
}
