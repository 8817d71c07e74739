package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AvailabilityCursor names the conflict detector's position in the change
// log. The detector also works out the iCal Hooks pings of export feeds
// in the same step (the "exportpings" cursor of older versions is no
// longer read).
const AvailabilityCursor = "availability"

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

// IsConflictChange reports whether a change of type typ is a conflict's
// detection or resolution: its EventID is the conflict's id.
func IsConflictChange(typ string) bool {
	return typ == ChangeConflictDetected || typ == ChangeConflictResolved
}

// conflictRecord is the stored JSON form of a conflict inside its change
// record. Its field names are part of the database format: change them
// only with a migration.
type conflictRecord struct {
	ID           string       `json:"id"`
	UnitID       string       `json:"unitId"`
	A            ConflictSide `json:"a"`
	B            ConflictSide `json:"b"`
	State        string       `json:"state"`
	OverlapStart time.Time    `json:"overlapStart"`
	OverlapEnd   time.Time    `json:"overlapEnd"`
	DetectedAt   time.Time    `json:"detectedAt"`
	ResolvedAt   time.Time    `json:"resolvedAt,omitzero"`
}

// MarshalConflict encodes a conflict as its change record keeps it.
func MarshalConflict(c *Conflict) ([]byte, error) {
	b, err := json.Marshal(conflictRecord{
		ID: c.ID, UnitID: c.UnitID, A: c.A, B: c.B, State: c.State,
		OverlapStart: c.OverlapStart, OverlapEnd: c.OverlapEnd, DetectedAt: c.DetectedAt, ResolvedAt: c.ResolvedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode conflict %s: %w", c.ID, err)
	}
	return b, nil
}

// ResolveWithUnit marks c, an open conflict of a unit being deleted,
// resolved at now, and returns the record its ChangeConflictResolved
// keeps.
func ResolveWithUnit(c *Conflict, now time.Time) ([]byte, error) {
	c.State, c.ResolvedAt = ConflictResolved, now
	return MarshalConflict(c)
}

// UnmarshalConflict decodes what MarshalConflict encoded for a change of
// the account.
func UnmarshalConflict(data []byte, accountID string) (*Conflict, error) {
	var r conflictRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode conflict: %w", err)
	}
	return &Conflict{
		ID: r.ID, AccountID: accountID, UnitID: r.UnitID, A: r.A, B: r.B, State: r.State,
		OverlapStart: r.OverlapStart, OverlapEnd: r.OverlapEnd, DetectedAt: r.DetectedAt, ResolvedAt: r.ResolvedAt,
	}, nil
}

// HasConflictRecord reports whether the stored record of a change of type
// typ holds a conflict: changes of conflicts resolved by their unit's
// deletion do; other changes keep an empty record.
func HasConflictRecord(typ string, data []byte) bool {
	return IsConflictChange(typ) && len(data) > 2
}

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
	// conflicts, in one transaction that first resolves its open
	// conflicts at now: each gets its ChangeConflictResolved, which
	// carries the conflict (Change.Conflict) since its row is gone.
	DeleteUnit(ctx context.Context, accountID, id string, now time.Time) error

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
	// CalendarMembership returns, in one read, the units of the account's
	// calendars among calendarIDs, each with every one of its calendars.
	// The calendars carry what membership needs (identity, name, kind,
	// source URL, feed switch); the rest of their fields are left empty.
	CalendarMembership(ctx context.Context, accountID string, calendarIDs []string) (*Membership, error)
	// BlockingEvents returns the events of the given calendars of an
	// account that may block time in [From, To): those that are not
	// cancelled and overlap it, recurring series that start before To,
	// and every override of a recurring event (a cancelled override
	// removes an occurrence). The events carry what busy time needs
	// (identity, summary, times, zone, status, recurrence, sequence,
	// created and updated times); their description, location, metadata
	// and extra properties are left empty.
	BlockingEvents(ctx context.Context, p BlockingEventsParams) ([]*Event, error)

	// Conflict returns one conflict of an account.
	Conflict(ctx context.Context, accountID, id string) (*Conflict, error)
	// ListConflicts returns a page of a unit's conflicts, oldest first.
	ListConflicts(ctx context.Context, p ListConflictsParams) ([]*Conflict, error)
	// OpenConflicts returns the open conflicts of a unit, or those that
	// involve any of the given events.
	OpenConflicts(ctx context.Context, p OpenConflictsParams) ([]*Conflict, error)

	// DetectConflicts runs one step of the conflict detector: it reads up
	// to p.Limit changes after the AvailabilityCursor (or after
	// p.Resume.Read), calls detect with them, and stores what detect
	// returns while it moves the cursor past the changes, as one unit. A
	// detected conflict whose pair has an open conflict already, and a
	// resolution of a conflict that is not open, store nothing; every
	// conflict stored or resolved appends its ChangeConflictDetected or
	// ChangeConflictResolved to the change log, so the fan-out delivers it
	// once; pings are stored as FanOut stores them. A step that another
	// worker overtook stores nothing and is Busy. A resumed step that has
	// nothing to store runs no write transaction unless p.Save is set.
	DetectConflicts(ctx context.Context, p DetectParams, detect DetectFunc) (DetectResult, error)
}

// DetectParams configure one DetectConflicts step.
type DetectParams struct {
	// Limit is how many changes the step reads at most.
	Limit int
	// Resume, if set, is where this worker's previous step left off: the
	// step reads after Resume.Read, which may be ahead of the stored
	// cursor, and a step with nothing to store leaves the stored cursor
	// where it is (a replay after a crash finds the same conflicts open
	// and stores nothing twice). Without Resume the step reads after the
	// stored cursor and always stores it.
	Resume *DetectResume
	// Save stores the cursor of a resumed step even when it has nothing
	// else to store, and even when it reads no change.
	Save bool
}

// DetectResume is where a worker's last DetectConflicts step left off.
type DetectResume struct {
	// Read is the position of the last change read.
	Read ChangePos
	// Stored is the stored cursor as the worker last knew it: storing
	// moves it from there (a compare-and-set), so a worker that another
	// one overtook stores nothing and is Busy.
	Stored ChangePos
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

// Membership is some units with all of their calendars.
type Membership struct {
	// Units are in creation order.
	Units []*Unit
	// Calendars come unit by unit, in the order of Units, each unit's in
	// creation order.
	Calendars []*UnitCalendar
}

// Add appends a calendar of unit u, read unit by unit, and u itself when
// it is not the last unit added (the adapters' read of Membership).
func (m *Membership) Add(u *Unit, c *Calendar) {
	if n := len(m.Units); n == 0 || m.Units[n-1].ID != u.ID {
		m.Units = append(m.Units, u)
	}
	m.Calendars = append(m.Calendars, &UnitCalendar{UnitID: u.ID, Calendar: c})
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
// and open conflicts that end, and the iCal Hooks pings of the export
// feeds whose busy time the changes may have changed.
type ConflictUpdate struct {
	Detected []*Conflict
	// Resolved are open conflicts with ResolvedAt set.
	Resolved []*Conflict
	// Pings are stored as FanOut stores them: one per arming of a hook.
	Pings []*Message
}

// empty reports whether u stores nothing.
func (u *ConflictUpdate) empty() bool {
	return u == nil || len(u.Detected) == 0 && len(u.Resolved) == 0 && len(u.Pings) == 0
}

// Stores reports whether a step with the update u must run a write
// transaction under p: it has something to store, p asks to save the
// cursor, or the step is not resumed (and so always stores the cursor).
func (p DetectParams) Stores(u *ConflictUpdate) bool {
	return p.Resume == nil || p.Save || !u.empty()
}

// DetectResult is what one DetectConflicts step did.
type DetectResult struct {
	// Changes is how many changes the step read.
	Changes int
	// Detected and Resolved count the conflicts it stored and ended,
	// and Pings the pings it stored.
	Detected, Resolved, Pings int
	// Resume is where the step left off, for the next step's
	// DetectParams.Resume (nil after a Busy step: read the stored cursor
	// again).
	Resume *DetectResume
	// Busy reports that another worker holds the cursor.
	Busy bool
	// Unsettled reports that newer changes exist that the step could not
	// read yet (see FanOutResult).
	Unsettled bool
}
