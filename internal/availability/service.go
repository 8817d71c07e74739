// Package availability is what calhook knows about units: bookable things
// (a rental, a room) whose calendars — native ones and one imported
// calendar per channel — share one availability. It owns the blocking
// rules (Blocks), the availability query, conflict detection as a
// consumer of the change log (Detector), and the blocked-dates export
// feeds that give each channel the busy time of every other one.
package availability

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/memo"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// DefaultExportSummary is the SUMMARY of export feed events unless a unit
// sets its own.
const DefaultExportSummary = "Not available"

// Limits of the availability queries.
const (
	// MaxWindow is the longest from–to of an availability query.
	MaxWindow = 2*366*24*time.Hour + time.Hour
	// MaxUnits is the most units one availability query may name.
	MaxUnits     = 1000
	maxNameBytes = 255
)

// Service manages units and answers availability.
type Service struct {
	store   Store
	now     func() time.Time
	bus     *notify.Bus
	horizon time.Duration
	exports *memo.ByAccount[exportKey, *exportEntry]
	opts    Options
}

// Options configure a Service.
type Options struct {
	Now func() time.Time
	// Bus hears of unit and membership changes (FeedsChanged), and tells
	// the export feed cache what changed. Nil gives the Service a Bus of
	// its own.
	Bus *notify.Bus
	// Horizon is how far ahead recurring events block (default two years).
	Horizon time.Duration
	// ProdID and RefreshInterval are written into export feeds.
	ProdID          string
	RefreshInterval time.Duration
}

// NewService returns a Service.
func NewService(s Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Horizon <= 0 {
		opts.Horizon = DefaultHorizon
	}
	if opts.ProdID == "" {
		opts.ProdID = "-//calhook//calhook//EN"
	}
	svc := &Service{store: s, now: opts.Now, bus: notify.Or(opts.Bus), horizon: opts.Horizon, opts: opts, exports: newExportCache()}
	// An empty AccountID (anything may have changed) forgets every entry.
	svc.bus.FeedsChanged.Subscribe(func(ch notify.FeedChange) { svc.exports.Forget(ch.AccountID) })
	return svc
}

// UnitInput is what a client may set on a unit; nil fields are left as
// they are (or take their defaults on create).
type UnitInput struct {
	Name            *string `json:"name"`
	TimeZone        *string `json:"timeZone"`
	SameDayTurnover *bool   `json:"sameDayTurnover"`
	ExportSummary   *string `json:"exportSummary"`
}

// CreateUnit stores a new unit.
func (s *Service) CreateUnit(ctx context.Context, accountID string, in UnitInput) (*store.Unit, error) {
	now := s.now().UTC()
	u := &store.Unit{
		ID: id.New("unit"), AccountID: accountID, TimeZone: "UTC", SameDayTurnover: true,
		ExportSummary: DefaultExportSummary, CreatedAt: now, UpdatedAt: now,
	}
	if in.Name == nil {
		return nil, fault.Invalidf("name", "is required")
	}
	if err := applyUnit(u, in); err != nil {
		return nil, err
	}
	if err := s.store.CreateUnit(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Unit returns one unit of an account.
func (s *Service) Unit(ctx context.Context, accountID, unitID string) (*store.Unit, error) {
	return s.store.Unit(ctx, accountID, unitID)
}

// ListUnits returns a page of an account's units.
func (s *Service) ListUnits(ctx context.Context, p store.ListUnitsParams) ([]*store.Unit, error) {
	return s.store.ListUnits(ctx, p)
}

// UpdateUnit changes a unit; its conflicts are looked at again.
func (s *Service) UpdateUnit(ctx context.Context, accountID, unitID string, in UnitInput) (*store.Unit, error) {
	u, err := s.store.Unit(ctx, accountID, unitID)
	if err != nil {
		return nil, err
	}
	if err := applyUnit(u, in); err != nil {
		return nil, err
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateUnit(ctx, u); err != nil {
		return nil, err
	}
	s.unitChanged(ctx, u.AccountID, u.ID)
	return u, nil
}

// DeleteUnit removes a unit and its conflicts; its calendars stay, in no
// unit.
func (s *Service) DeleteUnit(ctx context.Context, accountID, unitID string) error {
	cals, err := s.store.UnitCalendars(ctx, accountID, []string{unitID})
	if err != nil {
		return err
	}
	if err := s.store.DeleteUnit(ctx, accountID, unitID, s.now().UTC()); err != nil {
		return err
	}
	for _, c := range cals {
		s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: c.ID, Calendar: true})
	}
	return nil
}

// unitChanged tells the detector and the export feeds that a unit's rules
// or calendars changed.
func (s *Service) unitChanged(ctx context.Context, accountID, unitID string) {
	cals, err := s.store.UnitCalendars(ctx, accountID, []string{unitID})
	if err != nil {
		return // the detector's poll finds the change all the same
	}
	for _, c := range cals {
		s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: c.ID})
	}
}

// SetCalendarUnit attaches a calendar to a unit, or detaches it when
// unitID is empty; both units it touches are looked at again.
func (s *Service) SetCalendarUnit(ctx context.Context, accountID, calendarID, unitID string) error {
	if _, err := s.store.SetCalendarUnit(ctx, accountID, calendarID, unitID, s.now().UTC()); err != nil {
		if fault.CodeOf(err) == fault.NotFound && unitID != "" && strings.Contains(err.Error(), "unit "+unitID) {
			return fault.Invalidf("unitId", "no unit %q in this account", unitID)
		}
		return err
	}
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: calendarID, Calendar: true})
	return nil
}

// CalendarUnits returns the unit of each of the calendars that has one.
func (s *Service) CalendarUnits(ctx context.Context, accountID string, calendarIDs []string) (map[string]string, error) {
	return s.store.CalendarUnits(ctx, accountID, calendarIDs)
}

func applyUnit(u *store.Unit, in UnitInput) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			return fault.Invalidf("name", "must not be empty")
		case len(name) > maxNameBytes:
			return fault.Invalidf("name", "must be at most %d bytes", maxNameBytes)
		case !plainText(name):
			return fault.Invalidf("name", "must be valid UTF-8 without control characters")
		}
		u.Name = name
	}
	if in.TimeZone != nil {
		if _, err := calendar.LoadZone(*in.TimeZone); err != nil {
			return fault.Invalidf("timeZone", "%v", err)
		}
		u.TimeZone = *in.TimeZone
	}
	if in.SameDayTurnover != nil {
		u.SameDayTurnover = *in.SameDayTurnover
	}
	if in.ExportSummary != nil {
		sum := strings.TrimSpace(*in.ExportSummary)
		switch {
		case sum == "":
			return fault.Invalidf("exportSummary", "must not be empty")
		case len(sum) > maxNameBytes:
			return fault.Invalidf("exportSummary", "must be at most %d bytes", maxNameBytes)
		case !plainText(sum):
			return fault.Invalidf("exportSummary", "must be valid UTF-8 without control characters")
		}
		u.ExportSummary = sum
	}
	return nil
}

// plainText reports whether s is valid UTF-8 without control characters.
func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// UnitAvailability is the busy and free time of one unit in a window.
type UnitAvailability struct {
	Unit *store.Unit
	Busy []Busy
	Free []Interval
	// Calendars are the unit's calendars by id, for describing blocks.
	Calendars map[string]*store.Calendar
}

// Availability returns the busy and free time of the given units of an
// account in [from, to), in the order asked. An unknown unit is
// store.ErrNotFound.
func (s *Service) Availability(ctx context.Context, accountID string, unitIDs []string, from, to time.Time) ([]*UnitAvailability, error) {
	switch {
	case !from.Before(to):
		return nil, fault.Invalidf("to", "must be after from")
	case to.Sub(from) > MaxWindow:
		return nil, fault.Invalidf("to", "the window may span at most two years")
	case len(unitIDs) == 0:
		return nil, fault.Invalidf("unit", "name at least one unit")
	case len(unitIDs) > MaxUnits:
		return nil, fault.Invalidf("unit", "at most %d units per query", MaxUnits)
	}
	// The units and their calendars are read side by side.
	var (
		units []*store.Unit
		uerr  error
		wg    sync.WaitGroup
	)
	wg.Go(func() { units, uerr = s.store.UnitsByID(ctx, accountID, unitIDs) })
	cals, err := s.store.UnitCalendars(ctx, accountID, unitIDs)
	wg.Wait()
	if uerr != nil {
		return nil, uerr
	}
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Unit, len(units))
	for _, u := range units {
		byID[u.ID] = u
	}
	for _, uid := range unitIDs {
		if byID[uid] == nil {
			return nil, fmt.Errorf("unit %s: %w", uid, store.ErrNotFound)
		}
	}
	unitOf := make(map[string]string, len(cals))
	calsOf := make(map[string]map[string]*store.Calendar, len(unitIDs))
	ids := make([]string, 0, len(cals))
	for _, c := range cals {
		unitOf[c.ID] = c.UnitID
		if calsOf[c.UnitID] == nil {
			calsOf[c.UnitID] = map[string]*store.Calendar{}
		}
		calsOf[c.UnitID][c.ID] = c.Calendar
		ids = append(ids, c.ID)
	}
	// A day's slack each way: a block may begin before from in UTC terms
	// yet reach in (zones, turnover).
	events, err := s.blockingEvents(ctx, store.BlockingEventsParams{
		AccountID: accountID, CalendarIDs: ids, From: from.Add(-48 * time.Hour), To: to.Add(48 * time.Hour),
	})
	if err != nil {
		return nil, err
	}
	perUnit := map[string][]*store.Event{}
	for _, e := range events {
		perUnit[unitOf[e.CalendarID]] = append(perUnit[unitOf[e.CalendarID]], e)
	}
	horizon := s.now().Add(s.horizon)
	out := make([]*UnitAvailability, 0, len(unitIDs))
	seen := map[string]bool{}
	for _, uid := range unitIDs {
		if seen[uid] {
			continue
		}
		seen[uid] = true
		u := byID[uid]
		bs, err := Blocks(perUnit[uid], RulesOf(u, horizon), from, to)
		if err != nil {
			return nil, err
		}
		for i := range bs { // clip to the window
			bs[i].Start, bs[i].End = maxTime(bs[i].Start, from), minTime(bs[i].End, to)
		}
		busy, free := Merge(bs, from, to)
		ua := &UnitAvailability{Unit: u, Busy: busy, Free: free, Calendars: calsOf[uid]}
		if ua.Calendars == nil {
			ua.Calendars = map[string]*store.Calendar{}
		}
		out = append(out, ua)
	}
	return out, nil
}

// parallelCalendars is how many calendars a blocking-events read needs
// before blockingEvents splits it in two.
const parallelCalendars = 200

// blockingEvents is the store's BlockingEvents, read in two halves side by
// side when p names many calendars: a 500-unit query reads some 5,000
// rows, and the store's readers are a pool. The events come in no
// particular order (Blocks orders what it makes).
func (s *Service) blockingEvents(ctx context.Context, p store.BlockingEventsParams) ([]*store.Event, error) {
	if len(p.CalendarIDs) < parallelCalendars {
		return s.store.BlockingEvents(ctx, p)
	}
	half := len(p.CalendarIDs) / 2
	first, second := p, p
	first.CalendarIDs, second.CalendarIDs = p.CalendarIDs[:half], p.CalendarIDs[half:]
	var (
		rest    []*store.Event
		restErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() { rest, restErr = s.store.BlockingEvents(ctx, second) })
	events, err := s.store.BlockingEvents(ctx, first)
	wg.Wait()
	if err = cmp.Or(err, restErr); err != nil {
		return nil, err
	}
	return append(events, rest...), nil
}

// ListConflicts returns a page of a unit's conflicts.
func (s *Service) ListConflicts(ctx context.Context, p store.ListConflictsParams) ([]*store.Conflict, error) {
	if _, err := s.store.Unit(ctx, p.AccountID, p.UnitID); err != nil {
		return nil, err
	}
	if !slices.Contains([]string{"", store.ConflictOpen, store.ConflictResolved}, p.State) {
		return nil, fault.Invalidf("state", "must be open or resolved")
	}
	return s.store.ListConflicts(ctx, p)
}

// Conflict returns one conflict of an account.
func (s *Service) Conflict(ctx context.Context, accountID, conflictID string) (*store.Conflict, error) {
	return s.store.Conflict(ctx, accountID, conflictID)
}
