// Package calendar holds the rules for calendars and events: validation of
// what clients send, UID and sequence handling, and the notification that
// follows every committed write.
package calendar

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/memo"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
)

// invalid reports input that breaks a rule (fault.Invalid).
func invalid(field, format string, args ...any) error {
	return fault.Invalidf(field, format, args...)
}

// ErrReadOnly is returned for event writes to an imported calendar, whose
// events come only from its source feed.
var ErrReadOnly error = &fault.Error{Code: fault.Conflict, Reason: fault.ReadOnly,
	Message: "the events of an imported calendar are read-only: they follow its source feed"}

// ErrDuplicateUID is returned for an event write that would give a
// second event of the calendar the same UID.
var ErrDuplicateUID error = &fault.Error{Code: fault.Conflict, Reason: fault.DuplicateUID,
	Message: "an event with this uid already exists in the calendar"}

// eventConflict turns the store's conflict on an event write, which is a
// duplicate UID (Store.CreateEvent), into ErrDuplicateUID.
func eventConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w (%w)", ErrDuplicateUID, err)
	}
	return err
}

// Limits on what one event may hold, so a single write cannot bloat every
// feed that contains it.
const (
	maxNameBytes        = 255
	maxSummaryBytes     = 1024
	maxLocationBytes    = 1024
	maxDescriptionBytes = 64 << 10
	maxUIDBytes         = 255
	maxMetadataKeys     = 50
	maxMetadataKeyBytes = 64
	maxMetadataValBytes = 1024
)

// Store is what the service keeps calendars, events and their change log
// in.
type Store interface {
	CreateCalendar(ctx context.Context, c *store.Calendar) error
	Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error)
	ListCalendars(ctx context.Context, p store.ListCalendarsParams) ([]*store.Calendar, error)
	UpdateCalendar(ctx context.Context, c *store.Calendar) error
	DeleteCalendar(ctx context.Context, accountID, id string, now time.Time) error

	CreateEvent(ctx context.Context, e *store.Event) (*store.Change, error)
	Event(ctx context.Context, accountID, calendarID, id string) (*store.Event, error)
	ListEvents(ctx context.Context, p store.ListEventsParams) ([]*store.Event, error)
	EventsByStart(ctx context.Context, p store.EventsByStartParams) ([]*store.Event, error)
	UpdateEvent(ctx context.Context, e *store.Event) (*store.Change, error)
	DeleteEvent(ctx context.Context, accountID, calendarID, id string, now time.Time) (*store.Change, error)
	FindEvents(ctx context.Context, p store.FindEventsParams) ([]*store.Event, error)
	WriteEvents(ctx context.Context, p *store.WriteEventsParams) ([]*store.Change, error)

	ListChanges(ctx context.Context, p store.ListChangesParams) ([]*store.Change, error)
	ChangeCursor(ctx context.Context, accountID string) (store.ChangePos, error)
	ChangeHorizon(ctx context.Context) (store.ChangePos, error)
}

// MaxExDates is the most EXDATEs an event may have; imported events are
// cut to it too.
const MaxExDates = 1000

// Service applies the rules and writes through the store.
type Service struct {
	store Store
	now   func() time.Time
	// bus hears of every committed write to a calendar or its events
	// (FeedsChanged), and of imported calendars due for a poll (PollsDue).
	bus *notify.Bus
	// imports, when set, allows imported calendars.
	imports *ImportRules

	// known remembers the calendars event writes went to: an event write
	// needs its calendar's kind and zone, and reading them would cost it
	// a database round trip of its own (see writableCalendar).
	known *memo.Map[calendarKey, *store.Calendar]
	// batches makes the batches of one calendar take turns (WriteBatch).
	batches calendarLocks
}

type calendarKey struct{ accountID, calendarID string }

// Bounds of the calendar cache. An entry outlives neither calendarTTL nor
// a change of its calendar that this node hears of (Forget).
const (
	calendarTTL  = 10 * time.Second
	maxCalendars = 10000
)

// URLChecker validates the source URL of an imported calendar: its scheme,
// and that it does not point at a private address (outbound.Policy).
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) (*url.URL, error)
}

// ImportRules are what imported calendars must respect.
type ImportRules struct {
	// URLs checks source URLs.
	URLs URLChecker
	// MinPollInterval is the shortest pollIntervalSeconds accepted: the
	// importer never polls more often.
	MinPollInterval time.Duration
}

// maxPollInterval is the longest pollIntervalSeconds accepted.
const maxPollInterval = 7 * 24 * time.Hour

// EnableImports allows imported calendars (CalendarInput.Source) under the
// given rules; without it, creating one is refused. Call it before the
// service is used.
func (s *Service) EnableImports(rules ImportRules) {
	s.imports = &rules
}

// NewService returns a Service publishing to and following bus. now may be
// nil for time.Now, bus nil when nobody listens.
func NewService(s Store, now func() time.Time, bus *notify.Bus) *Service {
	if now == nil {
		now = time.Now
	}
	svc := &Service{store: s, now: now, bus: notify.Or(bus), known: memo.New[calendarKey, *store.Calendar](calendarTTL, maxCalendars)}
	svc.bus.FeedsChanged.Subscribe(svc.feedsChanged)
	return svc
}

// feedsChanged forgets the calendars a change may have touched, whichever
// node wrote it: a calendar itself, an account, or anything.
func (s *Service) feedsChanged(c notify.FeedChange) {
	if c.Calendar || c.CalendarID == "" {
		s.Forget(c.AccountID, c.CalendarID)
	}
}

// changed publishes a committed write to a calendar's events.
func (s *Service) changed(accountID, calendarID string) {
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: calendarID})
}

// calendarChanged publishes a committed write to a calendar itself.
func (s *Service) calendarChanged(accountID, calendarID string) {
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID, CalendarID: calendarID, Calendar: true})
}

// CalendarInput is what a client may set on a calendar; nil fields are left
// as they are (or defaulted on create).
type CalendarInput struct {
	Name     *string
	TimeZone *string
	// Source makes the calendar imported; it can only be set on create.
	Source *SourceInput
	// FeedWindow, when set, replaces the calendar's feed window.
	FeedWindow *FeedWindowInput
	// FeedDisabled turns the calendar's feed off (true) or on (false).
	FeedDisabled *bool
}

// FeedWindowInput is a calendar's feed window: how many days after their
// end events stay in its feed. Nil Days means the server's default, 0
// all history.
type FeedWindowInput struct {
	Days *int
}

// maxFeedWindowDays is the longest feed window accepted, a century.
const maxFeedWindowDays = 36600

// SourceInput is the feed an imported calendar follows.
type SourceInput struct {
	// URL is an http(s) URL; webcal:// is read as https://.
	URL string
	// PollIntervalSeconds is the base poll interval; nil means the
	// server's default.
	PollIntervalSeconds *int64
}

// CreateCalendar validates in and stores a new native calendar.
func (s *Service) CreateCalendar(ctx context.Context, accountID string, in CalendarInput) (*store.Calendar, error) {
	now := s.now().UTC()
	c := &store.Calendar{
		ID: id.New("cal"), AccountID: accountID, Kind: store.KindNative, TimeZone: "UTC",
		CreatedAt: now, UpdatedAt: now,
	}
	if in.Name == nil {
		return nil, invalid("name", "is required")
	}
	if err := applyCalendar(c, in); err != nil {
		return nil, err
	}
	if in.Source != nil {
		if err := s.applySource(ctx, c, in.Source); err != nil {
			return nil, err
		}
	}
	if err := s.store.CreateCalendar(ctx, c); err != nil {
		return nil, err
	}
	s.calendarChanged(accountID, c.ID)
	if c.Kind == store.KindImported {
		s.bus.PollsDue.Publish(notify.Due{}) // its first poll is due at once
	}
	return c, nil
}

// applySource makes c an imported calendar of src, due for its first poll
// at once.
func (s *Service) applySource(ctx context.Context, c *store.Calendar, src *SourceInput) error {
	if s.imports == nil {
		return invalid("source", "importing feeds is not enabled on this server")
	}
	raw := strings.TrimSpace(src.URL)
	if raw == "" {
		return invalid("source.url", "is required")
	}
	raw = webcalToHTTPS(raw)
	u, err := s.imports.URLs.CheckURL(ctx, raw)
	if err != nil {
		return invalid("source.url", "%s", outbound.Describe(err))
	}
	if p := src.PollIntervalSeconds; p != nil {
		d := time.Duration(*p) * time.Second
		if d < s.imports.MinPollInterval || d > maxPollInterval {
			return invalid("source.pollIntervalSeconds", "must be from %d to %d seconds",
				int64(s.imports.MinPollInterval/time.Second), int64(maxPollInterval/time.Second))
		}
		c.PollInterval = d
	}
	c.Kind, c.SourceURL = store.KindImported, u.String()
	c.Import = store.ImportState{HookToken: id.FeedToken(), NextPollAt: c.CreatedAt}
	return nil
}

// webcalToHTTPS rewrites the webcal:// (and webcals://) scheme that
// calendar apps use for subscriptions to https://.
func webcalToHTTPS(raw string) string {
	for _, scheme := range []string{"webcal://", "webcals://"} {
		if len(raw) >= len(scheme) && strings.EqualFold(raw[:len(scheme)], scheme) {
			return "https://" + raw[len(scheme):]
		}
	}
	return raw
}

// UpdateCalendar applies in to an existing calendar.
func (s *Service) UpdateCalendar(ctx context.Context, accountID, calendarID string, in CalendarInput) (*store.Calendar, error) {
	c, err := s.store.Calendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	if in.Source != nil {
		return nil, invalid("source", "can only be set when the calendar is created")
	}
	if err := applyCalendar(c, in); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateCalendar(ctx, c); err != nil {
		return nil, err
	}
	s.Forget(accountID, c.ID)
	s.calendarChanged(accountID, c.ID)
	return c, nil
}

// DeleteCalendar removes a calendar; each of its events is recorded as
// deleted.
func (s *Service) DeleteCalendar(ctx context.Context, accountID, calendarID string) error {
	if err := s.store.DeleteCalendar(ctx, accountID, calendarID, s.now().UTC()); err != nil {
		return err
	}
	s.Forget(accountID, calendarID)
	s.calendarChanged(accountID, calendarID)
	return nil
}

// Forget drops what the service remembers of a calendar: of every calendar
// of the account when calendarID is empty, of every calendar when
// accountID is empty too. Call it when another node changed a calendar.
func (s *Service) Forget(accountID, calendarID string) {
	s.known.DeleteFunc(func(k calendarKey, _ *store.Calendar) bool {
		return accountID == "" || k.accountID == accountID && (calendarID == "" || k.calendarID == calendarID)
	})
}

func applyCalendar(c *store.Calendar, in CalendarInput) error {
	if in.FeedDisabled != nil {
		c.FeedDisabled = *in.FeedDisabled
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			return invalid("name", "must not be empty")
		case len(name) > maxNameBytes:
			return invalid("name", "must be at most %d bytes", maxNameBytes)
		case !validText(name, false):
			return invalid("name", "must be valid UTF-8 without control characters")
		}
		c.Name = name
	}
	if in.TimeZone != nil {
		if _, err := LoadZone(*in.TimeZone); err != nil {
			return invalid("timeZone", "%v", err)
		}
		c.TimeZone = *in.TimeZone
	}
	if in.FeedWindow != nil {
		if d := in.FeedWindow.Days; d != nil && (*d < 0 || *d > maxFeedWindowDays) {
			return invalid("feedWindowDays", "must be from 0 (all history) to %d days, or null for the server's default", maxFeedWindowDays)
		}
		c.FeedWindowDays = in.FeedWindow.Days
	}
	return nil
}

// LoadZone returns the IANA time zone with the given name. It refuses the
// empty name and "Local", which would depend on the server's settings.
func LoadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "" || name == "Local" || strings.ContainsAny(name, " \\") {
		return nil, fmt.Errorf("%q is not an IANA time zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name", name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// zones caches loaded time zones: time.LoadLocation reads and parses the
// zone data on every call, and every event shown in the API needs one. It
// only ever holds valid IANA names, so it stays small.
var zones sync.Map

// validText reports whether s is valid UTF-8 without control characters
// (newlines and tabs allowed when multiline).
func validText(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			if multiline && (r == '\n' || r == '\r' || r == '\t') {
				continue
			}
			return false
		}
	}
	return true
}
