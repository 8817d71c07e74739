package calendar

import (
	"fmt"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/calhook/calhook/internal/store"
)

// Occurrences returns the starts of the occurrences of a recurring event
// that begin in [from, to), without those its EXDATEs remove, oldest
// first; a series without an RRULE has its one start (if in range). Timed
// occurrences repeat at the same wall-clock time in the event's zone, so a
// weekly 10:00 stays 10:00 across a DST switch; all-day ones repeat on
// dates and are returned, as they are stored, at midnight UTC. Overrides
// (RECURRENCE-ID) are separate events and not applied here: see
// RecurrenceStart. At most limit starts are returned.
func Occurrences(e *store.Event, from, to time.Time, limit int) ([]time.Time, error) {
	if e.RRule == "" {
		if !e.Start.Before(from) && e.Start.Before(to) {
			return []time.Time{e.Start}, nil
		}
		return nil, nil
	}
	loc := time.UTC
	if !e.AllDay && e.TimeZone != "" {
		if l, err := LoadZone(e.TimeZone); err == nil {
			loc = l
		}
	}
	opt, err := rrule.StrToROptionInLocation(e.RRule, loc)
	if err != nil {
		return nil, fmt.Errorf("event %s: recurrence rule: %w", e.ID, err)
	}
	opt.Dtstart = e.Start.In(loc)
	if !opt.Until.IsZero() && e.AllDay {
		// An all-day UNTIL is a date: the day's occurrence is included.
		opt.Until = opt.Until.In(time.UTC)
	}
	rr, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, fmt.Errorf("event %s: recurrence rule: %w", e.ID, err)
	}
	excluded := make(map[int64]bool, len(e.ExDates))
	for _, x := range e.ExDates {
		excluded[exKey(x, e.AllDay)] = true
	}
	var out []time.Time
	next := rr.Iterator()
	for {
		t, ok := next()
		if !ok || !t.Before(to) || len(out) >= limit {
			break
		}
		if t.Before(from) {
			continue
		}
		t = t.UTC()
		if excluded[exKey(t, e.AllDay)] {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// exKey identifies an occurrence for EXDATE and RECURRENCE-ID matching:
// the instant, or for all-day events the date.
func exKey(t time.Time, allDay bool) int64 {
	if allDay {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	}
	return t.Unix()
}

// RecurrenceStart returns the start of the occurrence an override's
// RECURRENCE-ID (as stored: "20261201" or "20261201T150000Z") replaces.
func RecurrenceStart(recurrenceID string) (time.Time, bool) {
	for _, layout := range []string{"20060102T150405Z", "20060102"} {
		if t, err := time.Parse(layout, recurrenceID); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// SameOccurrence reports whether an override's recurrence start r names
// the occurrence that starts at t.
func SameOccurrence(r, t time.Time, allDay bool) bool {
	return exKey(r, allDay) == exKey(t, allDay)
}
