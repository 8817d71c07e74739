package calendar

import (
	"fmt"
	"time"
)

// MinTime and MaxTime bound every event time calhook stores, both
// inclusive: years 1–9999 less two days at each end. Within them, the time's wall clock in any zone (offsets
// stay under a day) and a day either side of it — which python-icalendar
// (pytz) computes to resolve a TZID — are still within years 1–9999, the
// range of RFC 3339, of iCalendar's four-digit years and of the clients
// that read feeds (ical.js, python-icalendar). A feed or API answer never
// carries a year 0 or a five-digit year, and no VTIMEZONE starts in year 0.
var (
	MinTime = time.Date(1, 1, 3, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC)
)

// CheckTimeRange reports why t cannot be stored as an event time, or nil
// when it can (see MinTime).
func CheckTimeRange(t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		return fmt.Errorf("%s is outside the supported range %s to %s (UTC midnights): "+
			"times must stay within years 1–9999 in every time zone",
			t.UTC().Format("2006-01-02T15:04:05Z07:00"), MinTime.Format(time.DateOnly), MaxTime.Format(time.DateOnly))
	}
	return nil
}
