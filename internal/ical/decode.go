package ical

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"time"
)

// Parsing limits. They bound the memory and time one hostile or broken feed
// can cost the importer.
const (
	// DefaultMaxBytes is the largest input Parse reads when
	// ParseOptions.MaxBytes is zero. The largest public calendar we have
	// seen is under 2 MiB.
	DefaultMaxBytes = 20 << 20
	// maxLineBytes caps one unfolded content line; longer lines are
	// rejected rather than buffered.
	maxLineBytes = 1 << 20
	// maxDepth caps component nesting (VCALENDAR > VEVENT > VALARM is 3).
	maxDepth = 10
	// maxWarnings caps Calendar.Warnings; further ones are counted.
	maxWarnings = 100
	// maxZoneLookups caps the distinct TZIDs one Parse resolves.
	maxZoneLookups = 200
)

// Sentinel errors that a *ParseError wraps, so that callers can tell the
// kinds of failure apart with errors.Is. Their texts are stable and start
// every ParseError message.
var (
	ErrEmpty       = errors.New("empty input")
	ErrTooLarge    = errors.New("input too large")
	ErrHTML        = errors.New("HTML or XML instead of iCalendar")
	ErrNotCalendar = errors.New("not an iCalendar stream")
	ErrTruncated   = errors.New("truncated input")
	ErrMalformed   = errors.New("malformed iCalendar")
	ErrTooDeep     = errors.New("components nested too deeply")
	ErrLineTooLong = errors.New("content line too long")
	ErrInternal    = errors.New("internal parser error")
)

// ParseOptions tunes Parse. The zero value is ready to use.
type ParseOptions struct {
	// MaxBytes is the largest input accepted; 0 means DefaultMaxBytes.
	// Parse reads at most MaxBytes+1 bytes from the reader.
	MaxBytes int64
	// DefaultZone is where floating times (no TZID, no Z) and all-day
	// dates are placed when the calendar does not name a zone in
	// X-WR-TIMEZONE; nil means UTC.
	DefaultZone *time.Location
}

// Calendar is what Parse returns: the events of every VCALENDAR in the
// stream plus a few calendar-level properties.
type Calendar struct {
	Name     string // X-WR-CALNAME of the first VCALENDAR that has one
	TimeZone string // X-WR-TIMEZONE, as written
	ProdID   string // PRODID, unescaped
	Events   []Event
	// Warnings lists what Parse tolerated or skipped: lines it could not
	// read, events without DTSTART, unknown time zones, duplicate UIDs…
	// Each starts with "line N: " when it can be placed.
	Warnings []string
}

// Event is one VEVENT: a master event (RecurrenceID empty) or an override
// of one occurrence of a recurring event.
type Event struct {
	// UID is the event's UID. When the VEVENT has none, UIDDerived is set
	// and UID is a hash of its DTSTART, DTEND, DURATION, SUMMARY and
	// RECURRENCE-ID, so that re-polling an unchanged feed yields the same
	// UID.
	UID        string
	UIDDerived bool
	// RecurrenceID is the normalised RECURRENCE-ID: "20261201T150000Z"
	// (UTC) for a date-time, "20261201" for a date, "" for a master.
	RecurrenceID string

	Summary, Description, Location string // unescaped TEXT
	// Status is "tentative", "confirmed" or "cancelled"; "confirmed" when
	// the VEVENT has no (or an unknown) STATUS.
	Status string

	// Start and End are the event's instants. End is exclusive and never
	// before Start: DTEND, or DTSTART+DURATION, or one day after an
	// all-day DTSTART, or Start. For AllDay events both are midnights in
	// the floating zone (see Floating) and only their dates matter.
	Start, End time.Time
	AllDay     bool
	// TimeZone is the IANA name of Start's location, e.g. "Europe/Berlin"
	// (also for Windows names and feed zones Parse mapped to IANA); ""
	// when Start is UTC or in a zone defined only by the feed's VTIMEZONE
	// or by a fixed offset.
	TimeZone string
	// Floating reports a DTSTART without TZID or Z, or with a TZID that
	// Parse could not resolve (a warning says which): a wall-clock time,
	// placed in the calendar's X-WR-TIMEZONE when Parse can resolve that,
	// otherwise in ParseOptions.DefaultZone.
	Floating bool

	RRule   string      // RRULE value, spaces removed; "" if none
	ExDates []time.Time // EXDATE values, in their own zones
	RDates  []time.Time // RDATE values (the start of a PERIOD)

	Sequence int
	// Extra holds the VEVENT's X- properties: name (upper case) → value
	// as on the wire (not unescaped). Nil when there are none. The first
	// of repeated names wins.
	Extra map[string]string
}

// ParseError reports why Parse rejected its input.
type ParseError struct {
	Line int    // 1-based line where the problem was found; 0 if none
	Msg  string // starts with the text of Err
	Err  error  // one of the Err* sentinels
}

// Error formats the error as "ical: line N: <kind>: <detail>".
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("ical: line %d: %s", e.Line, e.Msg)
	}
	return "ical: " + e.Msg
}

// Unwrap returns the sentinel, for errors.Is.
func (e *ParseError) Unwrap() error { return e.Err }

// newParseError builds a *ParseError whose message is the sentinel's text
// followed by detail.
func newParseError(line int, kind error, format string, args ...any) *ParseError {
	msg := kind.Error()
	if format != "" {
		msg += ": " + fmt.Sprintf(format, args...)
	}
	return &ParseError{Line: line, Msg: msg, Err: kind}
}

// Parse reads an iCalendar stream (one or more VCALENDARs) and returns its
// events.
//
// Parse is tolerant where real feeds are sloppy and strict where a mistake
// would make the importer delete events. It accepts a UTF-8 BOM, leading
// blank lines, CRLF, LF or bare-CR line ends, folds that split a UTF-8
// sequence, Latin-1 text, lower-case names, Outlook's broken quoting of
// TZID, Windows zone names, feed-defined VTIMEZONEs and events without UID
// or DTSTAMP; unreadable lines and unusable events are skipped with a
// warning. It rejects, with a *ParseError, input that is empty, too large,
// HTML, not iCalendar at all, truncated (a VCALENDAR that is never
// closed) or malformed, so that a bad download is never mistaken for a
// calendar whose events were all deleted. Malformed (ErrMalformed) means
// broken structure inside a VCALENDAR, where a proxy or a failing exporter
// may have replaced events: a line without a name and a ':' separator
// (HTML, JSON, plain text), an invalid component name, or an END that
// closes a component under another name or leaves one inside it open.
// Harmless quirks (unknown properties, bad parameters, text after
// END:VCALENDAR) stay warnings. A valid VCALENDAR without events yields a
// Calendar with no events and a nil error. An error from r is returned
// wrapped, not as a *ParseError.
//
// Text that is not valid UTF-8 is repaired line by line: a line without a
// single valid multi-byte sequence is decoded as Windows-1252 (the usual
// "Latin-1" of old exporters), any other line has its invalid bytes
// replaced by U+FFFD.
func Parse(r io.Reader, opts ParseOptions) (cal *Calendar, err error) {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ical: read: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, newParseError(0, ErrTooLarge, "more than %d bytes", maxBytes)
	}
	return ParseBytes(data, opts)
}

// ParseBytes is Parse for input already in memory; ParseOptions.MaxBytes
// still applies.
func ParseBytes(data []byte, opts ParseOptions) (cal *Calendar, err error) {
	if err := checkSize(len(data), opts); err != nil {
		return nil, err
	}
	return ParseString(string(data), opts)
}

// checkSize refuses an input of n bytes over ParseOptions.MaxBytes.
func checkSize(n int, opts ParseOptions) error {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if int64(n) > maxBytes {
		return newParseError(0, ErrTooLarge, "more than %d bytes", maxBytes)
	}
	return nil
}

// ParseString is ParseBytes for input held in a string, which it does
// not copy: the parsed values are substrings of data (a feed body is
// thus held once, not twice).
func ParseString(data string, opts ParseOptions) (*Calendar, error) {
	var events []Event
	cal, err := ParseEvents(data, opts, func(i, most int, ev *Event) {
		if events == nil {
			events = make([]Event, 0, most)
		}
		ev.Extra = maps.Clone(ev.Extra)
		if i == len(events) {
			events = append(events, *ev)
		} else {
			events[i] = *ev
		}
	})
	if err != nil {
		return nil, err
	}
	cal.Events = events
	return cal, nil
}

// EventFunc receives the events of ParseEvents: ev with its index i in
// what would be Calendar.Events, and most, the number of VEVENTs in the
// input, which no index reaches (to size what holds the events).
type EventFunc func(i, most int, ev *Event)

// ParseEvents is ParseString for a caller that takes the events one at a
// time instead of in Calendar.Events (left nil), so that a big feed's
// events need not all be held twice, as Events and as the caller's own.
// fn receives every event of Calendar.Events with its index there, in
// order; an index already passed means a duplicate (UID, RECURRENCE-ID)
// that replaces the event passed before under it. fn may keep *ev's
// fields, not ev, and not Extra either: that map is emptied and reused
// for a later event, so fn copies what it needs of it. fn is called only once the whole input has been read
// and found to be a calendar; if ParseEvents returns an error all the
// same (a parser bug, or a panic in fn), the events passed are to be
// discarded.
func ParseEvents(data string, opts ParseOptions, fn EventFunc) (cal *Calendar, err error) {
	if err := checkSize(len(data), opts); err != nil {
		return nil, err
	}
	if len(data) > math.MaxInt32 {
		return nil, newParseError(0, ErrTooLarge, "more than %d bytes", math.MaxInt32)
	}
	if opts.DefaultZone == nil {
		opts.DefaultZone = time.UTC
	}
	// A parser bug must cost one feed, not the process.
	defer func() {
		if v := recover(); v != nil {
			cal, err = nil, newParseError(0, ErrInternal, "%v", v)
		}
	}()
	p := newParser(data, opts)
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.calendar(fn), nil
}
