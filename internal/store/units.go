package store

import (
	"context"
	"strings"
	"time"
)

// AvailabilityCursor names the conflict detector's position in the change
// log, and ExportPingCursor that of the iCal Hooks pings of export feeds.
const (
	AvailabilityCursor = "availability"
	ExportPingCursor   = "exportpings"
)

// exportFeedSuffix marks the feed key (FeedKey.CalendarID, Hook.CalendarID)
// of a calendar's blocked-dates export feed.
const exportFeedSuffix = "/blocked"

// ExportFeedKey returns the feed key of a calendar's export feed, under
// which iCal Hooks registered on it are kept.
func ExportFeedKey(calendarID string) string { return calendarID + exportFeedSuffix }

// ExportFeedCalendar returns the calendar of an export feed key, and
// whether key is one. An export feed's version is its account's feed
// version: it changes whenever any calendar of the account does, so it
// never misses a change of the unit's other calendars.
func ExportFeedCalendar(key string) (string, bool) { return strings.CutSuffix(key, exportFeedSuffix) }

// Change types of the availability domain. ChangeUnitChanged is internal:
// it asks the conflict detector to look at a whole unit again (a calendar
// was attached or detached, or the unit's rules changed) and is never
// delivered; the conflict types are delivered like any event type.
const (
	ChangeUnitChanged      = "availability.unit.changed"
	ChangeConflictDetected = "availability.conflict.detected"
	ChangeConflictResolved = "availability.conflict.resolved"
)

// IsInternalChange reports whether a change of type typ is bookkeeping
// for a consumer of the change log rather than news for subscribers.
func IsInternalChange(typ string) bool { return typ == ChangeUnitChanged }

// UnitStore is the part of Store that units, availability and conflicts
// use.
type UnitStore interface {
	// CreateUnit stores a new unit.
	CreateUnit(ctx context.Context, u *Unit) error
	// Unit returns one unit of an account.
	Unit(ctx context.Context, accountID, id string) (*Unit, error)
	// ListUnits returns a page of an account's units in creation order.
	ListUnits(ctx context.Context, p ListUnitsParams) ([]*Unit, error)
	// UnitsByID returns the account's units among ids (unknown ones are
	// left out).
	UnitsByID(ctx context.Context, accountID string, ids []string) ([]*Unit, error)
	// UpdateUnit stores a unit's changed fields and records a
	// ChangeUnitChanged, in one transaction.
	UpdateUnit(ctx context.Context, u *Unit) error
	// DeleteUnit removes a unit, its calendars' membership and its
	// conflicts.
	DeleteUnit(ctx context.Context, accountID, id string) error

	// SetCalendarUnit attaches a calendar to a unit, or detaches it when
	// unitID is empty, and records a ChangeUnitChanged for the unit it
	// left and the one it joined, in one transaction. Both must belong to
	// the account (else ErrNotFound). It returns the unit the calendar
	// was in before ("" for none).
	SetCalendarUnit(ctx context.Context, accountID, calendarID, unitID string, now time.Time) (string, error)
	// CalendarUnits returns the unit of each of the account's calendars
	// in calendarIDs that has one, by calendar id.
	CalendarUnits(ctx context.Context, accountID string, calendarIDs []string) (map[string]string, error)
	// UnitCalendars returns the calendars of the given units of an
	// account, in creation order.
	UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*UnitCalendar, error)
	// BlockingEvents returns the events of the given calendars of an
	// account that may block time in [From, To): those that are not
	// cancelled and overlap it, recurring series that start before To,
	// and every override of a recurring event (a cancelled override
	// removes an occurrence).
	BlockingEvents(ctx context.Context, p BlockingEventsParams) ([]*Event, error)

	// Conflict returns one conflict of an account.
	Conflict(ctx context.Context, accountID, id string) (*Conflict, error)
	// ListConflicts returns a page of a unit's conflicts, oldest first.
	ListConflicts(ctx context.Context, p ListConflictsParams) ([]*Conflict, error)
	// OpenConflicts returns the open conflicts of a unit, or those that
	// involve any of the given events.
	OpenConflicts(ctx context.Context, p OpenConflictsParams) ([]*Conflict, error)

	// DetectConflicts runs one step of the conflict detector: it reads up
	// to limit changes after the AvailabilityCursor, calls detect with
	// them, and stores what detect returns while it moves the cursor past
	// the changes, as one unit. A detected conflict whose pair has an open
	// conflict already, and a resolution of a conflict that is not open,
	// store nothing; every conflict stored or resolved appends its
	// ChangeConflictDetected or ChangeConflictResolved to the change log,
	// so the fan-out delivers it once. A step that another worker
	// overtook stores nothing and is Busy.
	DetectConflicts(ctx context.Context, limit int, detect DetectFunc) (DetectResult, error)
}

// LongEvent is the length beyond which an event counts as long for
// BlockingEvents' indexes (events_long): a window's events are found
// among those that start at most this long before it, and the long ones.
// Changing it needs a migration of those indexes.
const LongEvent = 32 * 24 * time.Hour

// Unit is one bookable thing (a rental, a room, a space) and the rules by
// which its calendars' events block it.
type Unit struct {
	ID        string
	AccountID string
	Name      string
	// TimeZone is the IANA zone in which all-day events block nights.
	TimeZone string
	// SameDayTurnover lets a checkout and a check-in fall on one date
	// without a conflict. Without it, every stay also blocks the rest of
	// its last day.
	SameDayTurnover bool
	// ExportSummary is the SUMMARY of every event in the unit's export
	// feeds.
	ExportSummary string
	Seq           int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// UnitCalendar is a calendar with the unit it belongs to.
type UnitCalendar struct {
	UnitID string
	*Calendar
}

// Conflict states.
const (
	ConflictOpen     = "open"
	ConflictResolved = "resolved"
)

// Conflict is an overlap of two blocking events of one unit.
type Conflict struct {
	ID        string
	AccountID string
	UnitID    string
	// A and B are the two events, A's event id sorting first.
	A, B  ConflictSide
	State string
	// OverlapStart and OverlapEnd are the first overlap of the two
	// events' blocked time, as detected.
	OverlapStart, OverlapEnd time.Time
	DetectedAt               time.Time
	// ResolvedAt is zero while the conflict is open.
	ResolvedAt time.Time
	Seq        int64
}

// Pair returns the conflict's event ids in order.
func (c *Conflict) Pair() [2]string { return [2]string{c.A.EventID, c.B.EventID} }

// ConflictSide is one event of a conflict, as it was when the conflict
// was detected.
type ConflictSide struct {
	CalendarID string `json:"calendarId"`
	EventID    string `json:"eventId"`
	UID        string `json:"uid"`
	// RecurrenceID is set for an override of a recurring event.
	RecurrenceID string `json:"recurrenceId,omitempty"`
	// Kind is the calendar's kind (native or imported) and SourceURL an
	// imported calendar's origin.
	Kind      string    `json:"kind"`
	SourceURL string    `json:"sourceUrl,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	AllDay    bool      `json:"allDay,omitempty"`
	TimeZone  string    `json:"timeZone,omitempty"`
	Status    string    `json:"status"`
	Recurring bool      `json:"recurring,omitempty"`
}

// ListUnitsParams selects units for ListUnits.
type ListUnitsParams struct {
	AccountID string
	Page
}

// BlockingEventsParams selects events for BlockingEvents.
type BlockingEventsParams struct {
	AccountID   string
	CalendarIDs []string
	From, To    time.Time
}

// ListConflictsParams selects conflicts for ListConflicts.
type ListConflictsParams struct {
	AccountID string
	UnitID    string
	// State is ConflictOpen, ConflictResolved, or empty for both.
	State string
	Page
}

// OpenConflictsParams selects open conflicts: those of UnitID when it is
// set, else those that involve any of EventIDs.
type OpenConflictsParams struct {
	UnitID   string
	EventIDs []string
}

// DetectFunc returns what changes did to the conflicts. It may read from
// the store; it must not write to it.
type DetectFunc func(ctx context.Context, changes []*Change) (*ConflictUpdate, error)

// ConflictUpdate is what one detection step found: conflicts that begin
// and open conflicts that end.
type ConflictUpdate struct {
	Detected []*Conflict
	// Resolved are open conflicts with ResolvedAt set.
	Resolved []*Conflict
}

// DetectResult is what one DetectConflicts step did.
type DetectResult struct {
	// Changes is how many changes the step read.
	Changes int
	// Detected and Resolved count the conflicts it stored and ended.
	Detected, Resolved int
	// Busy reports that another worker holds the cursor.
	Busy bool
	// Unsettled reports that newer changes exist that the step could not
	// read yet (see FanOutResult).
	Unsettled bool
}
