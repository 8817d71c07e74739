// Package holds places short reservations of a unit's dates before a
// booking: it refreshes the unit's imported calendars from their sources,
// then checks the interval against every blocking event and live hold
// and stores the hold — a tentative event in the unit's native calendar —
// in one step that exactly one of overlapping concurrent requests wins.
// Holds are confirmed into bookings, released, or expire at their TTL.
package holds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// Defaults and bounds of a hold request.
const (
	DefaultTTL  = 15 * time.Minute
	MaxTTL      = 24 * time.Hour
	DefaultWait = 3 * time.Second
	MaxWait     = 30 * time.Second
	// MaxLength is the longest interval one hold may take.
	MaxLength       = 366 * 24 * time.Hour
	defaultSummary  = "Hold"
	maxTextBytes    = 255
	expireBatch     = 100
	defaultSweepGap = time.Second
)

// Store is what the Service needs of the store.
type Store interface {
	store.HoldStore
	Unit(ctx context.Context, accountID, id string) (*store.Unit, error)
	UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*store.UnitCalendar, error)
}

// Refresher polls an imported calendar now and waits for the outcome of
// a poll whose fetch started after the call (importer.Importer.Refresh:
// concurrent calls share one poll).
type Refresher interface {
	Refresh(ctx context.Context, accountID, calendarID string) (*importer.Result, error)
}

// Options configure a Service.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Bus hears of the calendars holds write to. Nil gives the Service a
	// Bus of its own.
	Bus *notify.Bus
	// Refresher polls imported calendars before a hold; nil reports
	// every imported calendar stale.
	Refresher Refresher
	Logger    *slog.Logger
	// SweepInterval is how often Start's sweep looks for expired holds (default 1 s).
	SweepInterval time.Duration
	// Horizon is how far ahead recurring events block (default
	// availability.DefaultHorizon).
	Horizon time.Duration
}

// Service places, confirms, releases and expires holds.
type Service struct {
	store Store
	opts  Options
	bus   *notify.Bus
	log   *slog.Logger
	loop  lifecycle.Loop
	units unitQueues
}

// NewService returns a Service.
func NewService(s Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = defaultSweepGap
	}
	if opts.Horizon <= 0 {
		opts.Horizon = availability.DefaultHorizon
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: s, opts: opts, bus: notify.Or(opts.Bus), log: opts.Logger, units: unitQueues{store: s}}
}

// PlaceInput is a hold request.
type PlaceInput struct {
	// Start and End are dates (YYYY-MM-DD: the nights from Start to the
	// day before End) or RFC 3339 times.
	Start       *string `json:"start"`
	End         *string `json:"end"`
	TTLSeconds  *int64  `json:"ttlSeconds"`
	Summary     *string `json:"summary"`
	ExternalRef *string `json:"externalRef"`
	// MaxWaitMs bounds the refresh of the unit's sources (default 3 s).
	MaxWaitMs *int64 `json:"maxWaitMs"`
	// RequireFresh refuses the hold when a source could not be refreshed.
	RequireFresh bool `json:"requireFresh"`
}

// Freshness states of a source.
const (
	Fresh = "fresh"
	Stale = "stale"
)

// Source is how fresh one imported calendar of the unit was when a hold
// was checked.
type Source struct {
	CalendarID string
	URL        string
	// State is Fresh when the source answered within the deadline, else
	// Stale.
	State string
	// Outcome is the refresh's poll status (changed, unchanged,
	// not_modified, error), recent when a poll fetched the source
	// successfully less than the importer's sync window ago (so it was
	// not fetched again), or timeout.
	Outcome string
	// LastSuccessAt is the last successful fetch; zero if none.
	LastSuccessAt time.Time
	Error         string
}

// Placed is a hold that was placed, with the freshness of the sources it
// was checked against.
type Placed struct {
	Hold    *store.Hold
	Sources []Source
}

// Conflict is one thing that blocks a requested interval: an event of
// one of the unit's calendars, or another live hold.
type Conflict struct {
	// HoldID is set when the block is another hold.
	HoldID       string
	CalendarID   string
	EventID      string
	UID          string
	RecurrenceID string
	Kind         string
	Start, End   time.Time
	AllDay       bool
	Status       string
}

// ConflictError is the refusal of a hold whose interval is not free.
type ConflictError struct {
	Conflicts []Conflict
	Sources   []Source
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the interval is not available: %d conflicting events or holds", len(e.Conflicts))
}

// StaleError is the refusal of a hold with RequireFresh when a source
// could not be refreshed in time.
type StaleError struct {
	Sources []Source
}

func (e *StaleError) Error() string {
	var names []string
	for _, s := range e.Sources {
		if s.State == Stale {
			names = append(names, s.CalendarID)
		}
	}
	return "requireFresh: these sources could not be refreshed in time: " + strings.Join(names, ", ")
}

// Place refreshes the unit's imported calendars, then checks the interval
// and stores the hold atomically, or refuses it with a *ConflictError
// (or a *StaleError with RequireFresh).
func (s *Service) Place(ctx context.Context, accountID, unitID string, in PlaceInput) (*Placed, error) {
	req, err := parseInput(in)
	if err != nil {
		return nil, err
	}
	unit, err := s.store.Unit(ctx, accountID, unitID)
	if err != nil {
		return nil, err
	}
	cals, err := s.store.UnitCalendars(ctx, accountID, []string{unitID})
	if err != nil {
		return nil, err
	}
	sources := s.refresh(ctx, accountID, cals, req.wait)
	if in.RequireFresh {
		for _, src := range sources {
			if src.State == Stale {
				return nil, &StaleError{Sources: sources}
			}
		}
	}
	now := s.opts.Now().UTC()
	hid := id.New("hold")
	h := &store.Hold{
		ID: hid, AccountID: accountID, UnitID: unitID, Start: req.start, End: req.end, AllDay: req.allDay,
		Summary: req.summary, ExternalRef: req.externalRef, State: store.HoldHeld,
		ExpiresAt: now.Add(req.ttl), CreatedAt: now,
	}
	meta := map[string]string{"holdId": hid}
	if req.externalRef != "" {
		meta["externalRef"] = req.externalRef
	}
	e := &store.Event{
		ID: id.Sorted("evt"), AccountID: accountID, UID: id.UUIDv7() + "@calhook", Summary: req.summary,
		Start: req.start, End: req.end, AllDay: req.allDay, TimeZone: unit.TimeZone, Status: store.StatusTentative,
		Metadata: meta, CreatedAt: now, UpdatedAt: now,
	}
	newCal := &store.Calendar{
		ID: id.New("cal"), AccountID: accountID, Name: unit.Name, TimeZone: unit.TimeZone, Kind: store.KindNative,
		CreatedAt: now, UpdatedAt: now,
	}
	p := store.PlaceHoldParams{Hold: h, Event: e, NewCalendar: newCal,
		From: req.start.Add(-48 * time.Hour), To: req.end.Add(48 * time.Hour)}
	check := func(_ context.Context, u *store.Unit, events []*store.Event, holds []*store.Hold) error {
		conflicts, err := s.conflicts(u, e, events, holds, p.From, p.To)
		if err != nil {
			return err
		}
		if len(conflicts) > 0 {
			return &ConflictError{Conflicts: conflicts, Sources: sources}
		}
		return nil
	}
	if err := s.units.place(ctx, accountID, unitID, store.HoldPlacement{PlaceHoldParams: p, Check: check}); err != nil {
		return nil, err
	}
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: h.CalendarID,
		Calendar: h.CalendarID == newCal.ID})
	return &Placed{Hold: h, Sources: sources}, nil
}

// conflicts returns what blocks the candidate event e among the unit's
// events and held holds: events of expired holds no longer block.
func (s *Service) conflicts(u *store.Unit, e *store.Event, events []*store.Event, holds []*store.Hold,
	from, to time.Time) ([]Conflict, error) {
	now := s.opts.Now()
	holdOf := map[string]*store.Hold{}
	for _, h := range holds {
		holdOf[h.EventID] = h
	}
	live := events[:0:0]
	for _, ev := range events {
		if h := holdOf[ev.ID]; h != nil && !h.Live(now) {
			continue
		}
		live = append(live, ev)
	}
	rules := availability.RulesOf(u, now.Add(s.opts.Horizon))
	mine, err := availability.Blocks([]*store.Event{e}, rules, from, to)
	if err != nil {
		return nil, err
	}
	if len(mine) == 0 {
		return nil, fault.Invalidf("end", "the interval blocks no time under the unit's rules")
	}
	others, err := availability.Blocks(live, rules, from, to)
	if err != nil {
		return nil, err
	}
	var out []Conflict
	seen := map[string]bool{}
	for _, b := range others {
		overlaps := false
		for _, m := range mine {
			if b.Start.Before(m.End) && b.End.After(m.Start) {
				overlaps = true
			}
		}
		if !overlaps || seen[b.Event.ID] {
			continue
		}
		seen[b.Event.ID] = true
		c := Conflict{CalendarID: b.Event.CalendarID, EventID: b.Event.ID, UID: b.Event.UID,
			RecurrenceID: b.Event.RecurrenceID, Start: b.OccStart, End: b.OccEnd, AllDay: b.Event.AllDay,
			Status: b.Event.Status, Kind: "event"}
		if h := holdOf[b.Event.ID]; h != nil {
			c.HoldID, c.Kind = h.ID, "hold"
		}
		out = append(out, c)
	}
	return out, nil
}

// refresh polls every imported calendar in parallel, each bounded by
// wait, and reports how fresh each is.
func (s *Service) refresh(ctx context.Context, accountID string, cals []*store.UnitCalendar, wait time.Duration) []Source {
	var out []Source
	var idx []int
	for _, c := range cals {
		if c.Kind != store.KindImported {
			continue
		}
		idx = append(idx, len(out))
		out = append(out, Source{CalendarID: c.ID, URL: c.SourceURL, State: Stale, LastSuccessAt: c.Import.LastSuccessAt})
	}
	if len(out) == 0 {
		return out
	}
	if s.opts.Refresher == nil {
		for i := range out {
			out[i].Outcome, out[i].Error = importer.StatusError, "importing feeds is not enabled on this server"
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Add(1)
		go func(src *Source) {
			defer wg.Done()
			res, err := s.opts.Refresher.Refresh(ctx, accountID, src.CalendarID)
			switch {
			case err != nil && ctx.Err() != nil:
				src.Outcome, src.Error = "timeout", fmt.Sprintf("the source did not answer within %s", wait)
			case err != nil:
				src.Outcome, src.Error = importer.StatusError, err.Error()
			default:
				src.Outcome = res.Status
				if res.Calendar != nil {
					src.LastSuccessAt = res.Calendar.Import.LastSuccessAt
				}
				if res.Status == importer.StatusError {
					if res.Err != nil {
						src.Error = res.Err.Error()
					}
				} else {
					src.State = Fresh
				}
			}
		}(&out[i])
	}
	wg.Wait()
	return out
}

// request is a validated PlaceInput.
type request struct {
	start, end           time.Time
	allDay               bool
	ttl, wait            time.Duration
	summary, externalRef string
}

func parseInput(in PlaceInput) (*request, error) {
	r := &request{ttl: DefaultTTL, wait: DefaultWait, summary: defaultSummary}
	if in.Start == nil {
		return nil, fault.Invalidf("start", "is required")
	}
	if in.End == nil {
		return nil, fault.Invalidf("end", "is required")
	}
	start, startDay, err := parseWhen("start", *in.Start)
	if err != nil {
		return nil, err
	}
	end, endDay, err := parseWhen("end", *in.End)
	if err != nil {
		return nil, err
	}
	switch {
	case startDay != endDay:
		return nil, fault.Invalidf("end", "start and end must both be dates or both be times")
	case !end.After(start):
		return nil, fault.Invalidf("end", "must be after start")
	case end.Sub(start) > MaxLength:
		return nil, fault.Invalidf("end", "a hold may span at most 366 days")
	}
	r.start, r.end, r.allDay = start, end, startDay
	if in.TTLSeconds != nil {
		ttl := time.Duration(*in.TTLSeconds) * time.Second
		if *in.TTLSeconds <= 0 || ttl > MaxTTL {
			return nil, fault.Invalidf("ttlSeconds", "must be between 1 and %d", int64(MaxTTL/time.Second))
		}
		r.ttl = ttl
	}
	if in.MaxWaitMs != nil {
		wait := time.Duration(*in.MaxWaitMs) * time.Millisecond
		if *in.MaxWaitMs <= 0 || wait > MaxWait {
			return nil, fault.Invalidf("maxWaitMs", "must be between 1 and %d", int64(MaxWait/time.Millisecond))
		}
		r.wait = wait
	}
	if in.Summary != nil {
		if r.summary, err = text("summary", *in.Summary); err != nil {
			return nil, err
		}
		if r.summary == "" {
			return nil, fault.Invalidf("summary", "must not be empty")
		}
	}
	if in.ExternalRef != nil {
		if r.externalRef, err = text("externalRef", *in.ExternalRef); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// parseWhen parses a date (midnight UTC, allDay) or an RFC 3339 time.
func parseWhen(field, s string) (time.Time, bool, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false, fault.Invalidf(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	return t.UTC(), false, nil
}

func text(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) > maxTextBytes:
		return "", fault.Invalidf(field, "must be at most %d bytes", maxTextBytes)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fault.Invalidf(field, "must be valid UTF-8 without control characters")
	}
	return s, nil
}

// Hold returns one hold of an account.
func (s *Service) Hold(ctx context.Context, accountID, holdID string) (*store.Hold, error) {
	return s.store.Hold(ctx, accountID, holdID)
}

// List returns a page of a unit's holds.
func (s *Service) List(ctx context.Context, p store.ListHoldsParams) ([]*store.Hold, error) {
	if _, err := s.store.Unit(ctx, p.AccountID, p.UnitID); err != nil {
		return nil, err
	}
	return s.store.ListHolds(ctx, p)
}

// Confirm turns a live hold into a confirmed booking; confirming a
// confirmed hold again answers it as it is. An expired hold is
// fault.Gone (HoldExpired), a released one a conflict (HoldReleased).
func (s *Service) Confirm(ctx context.Context, accountID, holdID string) (*store.Hold, error) {
	now := s.opts.Now().UTC()
	h, err := s.store.ConfirmHold(ctx, accountID, holdID, now)
	if errors.Is(err, store.ErrHoldState) {
		switch h.State {
		case store.HoldConfirmed:
			return h, nil
		case store.HoldReleased:
			return nil, fault.Conflictf(fault.HoldReleased, "the hold was released at %s", h.EndedAt.Format(time.RFC3339))
		default: // expired, or past its expiry before the sweep
			return nil, &fault.Error{Code: fault.Gone, Reason: fault.HoldExpired,
				Message: "the hold expired at " + h.ExpiresAt.Format(time.RFC3339) + ": place a new one"}
		}
	}
	if err != nil {
		return nil, err
	}
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: h.CalendarID})
	return h, nil
}

// Release ends a held hold and deletes its event; releasing a released or
// expired hold again does nothing. A confirmed hold is a booking: it is
// a conflict (HoldConfirmed), cancelled through its event.
func (s *Service) Release(ctx context.Context, accountID, holdID string) (*store.Hold, error) {
	h, err := s.store.EndHold(ctx, accountID, holdID, store.HoldReleased, s.opts.Now().UTC())
	if errors.Is(err, store.ErrHoldState) {
		if h.State == store.HoldConfirmed {
			return nil, fault.Conflictf(fault.HoldConfirmed, "the hold is a confirmed booking: cancel its event instead")
		}
		return h, nil
	}
	if err != nil {
		return nil, err
	}
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: h.CalendarID})
	return h, nil
}

// ExpireDue ends the held holds whose expiry has passed, deleting their
// events, and returns how many it ended.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.opts.Now().UTC()
		due, err := s.store.ExpiredHolds(ctx, now, expireBatch)
		if err != nil {
			return n, err
		}
		for _, h := range due {
			_, err := s.store.EndHold(ctx, h.AccountID, h.ID, store.HoldExpired, now)
			if errors.Is(err, store.ErrHoldState) {
				continue // confirmed or released meanwhile
			}
			if err != nil {
				return n, err
			}
			n++
			s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: h.AccountID, CalendarID: h.CalendarID})
		}
		if len(due) < expireBatch {
			return n, nil
		}
	}
}

// Start expires holds every SweepInterval in the background until Stop
// (a lifecycle.Component). Several nodes may run it: a hold ends once,
// whichever node gets there first.
func (s *Service) Start(ctx context.Context) error {
	s.loop.Go(ctx, func(ctx context.Context) {
		t := time.NewTicker(s.opts.SweepInterval)
		defer t.Stop()
		for {
			if _, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("expiring holds failed", "error", err) // retried at the next tick
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// Stop ends the sweep started by Start and waits for it.
func (s *Service) Stop(context.Context) { s.loop.Stop() }
