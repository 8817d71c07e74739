package calendar

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// EventInput is what a client may set on an event. On create, Summary,
// Start and End are required; on update, nil fields keep their value.
type EventInput struct {
	UID         *string
	Summary     *string
	Description *string
	Location    *string
	// Start and End are RFC 3339 date-times ("2026-12-01T15:00:00+01:00"),
	// local date-times in TimeZone ("2026-12-01T15:00:00"), or dates
	// ("2026-12-01") for all-day events, whose End is exclusive.
	Start    *string
	End      *string
	AllDay   *bool
	TimeZone *string
	Status   *string
	RRule    *string
	ExDates  *[]string
	Metadata *map[string]string
}

// Date layouts accepted for event times.
const (
	dateLayout      = "2006-01-02"
	localTimeLayout = "2006-01-02T15:04:05"
)

// CreateEvent validates in and stores a new event with its change record.
func (s *Service) CreateEvent(ctx context.Context, accountID, calendarID string, in EventInput) (*store.Event, error) {
	cal, err := s.writableCalendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	if in.Summary == nil {
		return nil, invalid("summary", "is required")
	}
	if in.Start == nil {
		return nil, invalid("start", "is required")
	}
	if in.End == nil {
		return nil, invalid("end", "is required")
	}
	now := s.now().UTC()
	e := &store.Event{
		ID: id.Sorted("evt"), AccountID: accountID, CalendarID: calendarID,
		Status: store.StatusConfirmed, TimeZone: cal.TimeZone, CreatedAt: now, UpdatedAt: now,
	}
	if in.UID == nil {
		e.UID = id.UUIDv7() + "@calhook"
	}
	if err := applyEvent(e, in, true); err != nil {
		return nil, err
	}
	if _, err := s.store.CreateEvent(ctx, e); err != nil {
		return nil, eventConflict(err)
	}
	s.changed(accountID, calendarID)
	return e, nil
}

// UpdateEvent applies in to an event, increases its sequence and records
// the change.
func (s *Service) UpdateEvent(ctx context.Context, accountID, calendarID, eventID string, in EventInput) (*store.Event, error) {
	if _, err := s.writableCalendar(ctx, accountID, calendarID); err != nil {
		return nil, err
	}
	e, err := s.store.Event(ctx, accountID, calendarID, eventID)
	if err != nil {
		return nil, err
	}
	if err := applyEvent(e, in, false); err != nil {
		return nil, err
	}
	e.Sequence++
	e.UpdatedAt = s.now().UTC()
	if _, err := s.store.UpdateEvent(ctx, e); err != nil {
		return nil, eventConflict(err)
	}
	s.changed(accountID, calendarID)
	return e, nil
}

// DeleteEvent removes an event and records the change.
func (s *Service) DeleteEvent(ctx context.Context, accountID, calendarID, eventID string) error {
	if _, err := s.writableCalendar(ctx, accountID, calendarID); err != nil {
		return err
	}
	if _, err := s.store.DeleteEvent(ctx, accountID, calendarID, eventID, s.now().UTC()); err != nil {
		return err
	}
	s.changed(accountID, calendarID)
	return nil
}

// writableCalendar returns the calendar an event write goes to, or
// ErrReadOnly for an imported one. The calendar comes from memory when a
// write went to it within calendarTTL; it is then as it was when read
// (its kind never changes, its zone only through UpdateCalendar, which
// forgets it). The write itself checks that the calendar still exists and
// is the account's. The returned calendar must not be modified.
func (s *Service) writableCalendar(ctx context.Context, accountID, calendarID string) (*store.Calendar, error) {
	k, now := calendarKey{accountID, calendarID}, s.now()
	cal, ok := s.known.Get(k, now)
	if !ok {
		var err error
		if cal, err = s.store.Calendar(ctx, accountID, calendarID); err != nil {
			return nil, err
		}
		s.known.Put(k, cal, now)
	}
	if cal.Kind == store.KindImported {
		return nil, ErrReadOnly
	}
	return cal, nil
}

// applyEvent validates in and copies it onto e. Times are re-validated as a
// whole on every update, because a new start can invalidate an old end.
func applyEvent(e *store.Event, in EventInput, create bool) error {
	if in.UID != nil {
		uid := *in.UID
		switch {
		case strings.TrimSpace(uid) == "":
			return invalid("uid", "must not be empty")
		case len(uid) > maxUIDBytes:
			return invalid("uid", "must be at most %d bytes", maxUIDBytes)
		case !validText(uid, false):
			return invalid("uid", "must be valid UTF-8 without control characters")
		}
		e.UID = uid
	}
	if in.Summary != nil {
		if strings.TrimSpace(*in.Summary) == "" {
			return invalid("summary", "must not be empty")
		}
		if err := setText(&e.Summary, "summary", *in.Summary, maxSummaryBytes, true); err != nil {
			return err
		}
	}
	if in.Location != nil {
		if err := setText(&e.Location, "location", *in.Location, maxLocationBytes, true); err != nil {
			return err
		}
	}
	if in.Description != nil {
		if err := setText(&e.Description, "description", *in.Description, maxDescriptionBytes, true); err != nil {
			return err
		}
	}
	if in.Status != nil {
		switch *in.Status {
		case store.StatusTentative, store.StatusConfirmed, store.StatusCancelled:
			e.Status = *in.Status
		default:
			return invalid("status", "must be one of tentative, confirmed, cancelled; got %q", *in.Status)
		}
	}
	if in.Metadata != nil {
		if err := validMetadata(*in.Metadata); err != nil {
			return err
		}
		e.Metadata = *in.Metadata
	}
	if err := applyTimes(e, in, create); err != nil {
		return err
	}
	if in.RRule != nil {
		r, err := ValidRRule(*in.RRule)
		if err != nil {
			return invalid("rrule", "%v", err)
		}
		e.RRule = r
	}
	return nil
}

// newlines maps CRLF and lone CR to LF: iCalendar TEXT has one newline
// escape, so the API stores what the feeds can carry.
var newlines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

func setText(dst *string, field, v string, maxBytes int, multiline bool) error {
	if multiline {
		v = newlines.Replace(v)
	}
	switch {
	case len(v) > maxBytes:
		return invalid(field, "must be at most %d bytes", maxBytes)
	case !validText(v, multiline):
		return invalid(field, "must be valid UTF-8 without control characters")
	}
	*dst = v
	return nil
}

func validMetadata(m map[string]string) error {
	if len(m) > maxMetadataKeys {
		return invalid("metadata", "may hold at most %d keys", maxMetadataKeys)
	}
	for k, v := range m {
		if k == "" || len(k) > maxMetadataKeyBytes || !validText(k, false) {
			return invalid("metadata", "key %q must be 1 to %d bytes of text", k, maxMetadataKeyBytes)
		}
		if len(v) > maxMetadataValBytes || !validText(v, true) {
			return invalid("metadata", "value of %q must be at most %d bytes of text", k, maxMetadataValBytes)
		}
	}
	return nil
}

// applyTimes resolves start, end, all-day, zone and exdates together.
func applyTimes(e *store.Event, in EventInput, create bool) error {
	zone := e.TimeZone
	if in.TimeZone != nil {
		zone = *in.TimeZone
	}
	allDay := e.AllDay
	switch {
	case in.AllDay != nil:
		allDay = *in.AllDay
	case in.Start != nil:
		allDay = isDate(*in.Start)
	}
	if zone == "" {
		zone = "UTC"
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return invalid("timeZone", "%v", err)
	}
	// On update, times not given keep their value, shown in the event's
	// (possibly new) form so they can be parsed like input.
	start, end := formatTime(e.Start, allDay, loc), formatTime(e.End, allDay, loc)
	if in.Start != nil {
		start = *in.Start
	}
	if in.End != nil {
		end = *in.End
	}
	if !create && allDay != e.AllDay && (in.Start == nil || in.End == nil) {
		return invalid("allDay", "changing allDay needs both start and end")
	}
	st, err := parseTime("start", start, allDay, loc)
	if err != nil {
		return err
	}
	en, err := parseTime("end", end, allDay, loc)
	if err != nil {
		return err
	}
	if err := CheckTimeRange(st); err != nil {
		return invalid("start", "%v", err)
	}
	if err := CheckTimeRange(en); err != nil {
		return invalid("end", "%v", err)
	}
	if en.Before(st) {
		return invalid("end", "must not be before start")
	}
	if allDay && !en.After(st) {
		return invalid("end", "of an all-day event is exclusive and must be after start")
	}
	exdates := e.ExDates
	if in.ExDates != nil {
		if len(*in.ExDates) > MaxExDates {
			return invalid("exdates", "may hold at most %d dates", MaxExDates)
		}
		exdates = make([]time.Time, 0, len(*in.ExDates))
		for i, s := range *in.ExDates {
			field := fmt.Sprintf("exdates[%d]", i)
			t, err := parseTime(field, s, allDay, loc)
			if err != nil {
				return err
			}
			if err := CheckTimeRange(t); err != nil {
				return invalid(field, "%v", err)
			}
			exdates = append(exdates, t)
		}
	} else if allDay != e.AllDay && len(exdates) > 0 {
		return invalid("exdates", "must be given again when allDay changes")
	}
	e.Start, e.End, e.AllDay, e.ExDates = st, en, allDay, exdates
	e.TimeZone = zone
	if allDay {
		e.TimeZone = ""
	}
	return nil
}

func isDate(s string) bool {
	_, err := time.Parse(dateLayout, s)
	return err == nil
}

// parseTime reads one event time: a date for all-day events, otherwise an
// RFC 3339 date-time or a local date-time in loc.
func parseTime(field, s string, allDay bool, loc *time.Location) (time.Time, error) {
	if allDay {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			return time.Time{}, invalid(field, "an all-day event takes a date like 2026-12-01; got %q", s)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(localTimeLayout, s, loc); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, invalid(field, "must be an RFC 3339 date-time like 2026-12-01T15:00:00+01:00, or a date for all-day events; got %q", s)
}

// formatTime is the inverse of parseTime, for showing event times.
func formatTime(t time.Time, allDay bool, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if allDay {
		return t.UTC().Format(dateLayout)
	}
	return t.In(loc).Format(time.RFC3339)
}

// FormatTime shows an event time as the API returns it: a date for all-day
// events, otherwise RFC 3339 in the event's zone.
func FormatTime(t time.Time, allDay bool, zone string) string {
	loc, err := LoadZone(zone)
	if err != nil {
		loc = time.UTC
	}
	return formatTime(t, allDay, loc)
}

// ValidRRule checks an RFC 5545 recurrence rule and returns it in the form
// stored and served: without an "RRULE:" prefix, upper case, no spaces.
func ValidRRule(s string) (string, error) {
	r := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	r = strings.TrimPrefix(r, "RRULE:")
	if r == "" {
		return "", nil
	}
	if strings.Contains(r, "DTSTART") || strings.ContainsAny(r, ":\r\n") {
		return "", fmt.Errorf("must be a single RRULE value such as FREQ=WEEKLY;COUNT=10")
	}
	opt, err := rrule.StrToROption(r)
	if err != nil {
		return "", fmt.Errorf("invalid recurrence rule %q: %v", s, err)
	}
	if _, err := rrule.NewRRule(*opt); err != nil {
		return "", fmt.Errorf("invalid recurrence rule %q: %v", s, err)
	}
	return r, nil
}
