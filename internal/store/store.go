// Package store defines calhook's storage contract: the Store interface
// (every capability a caller may use, declared rather than found by type
// assertion), the records it keeps, and the sentinel errors its adapters
// return. The adapters, sqlite and postgres, hold SQL and transactions
// only: rules (such as the iCal Hooks caps) and the messages they store
// are decided by domain code and passed in. migrate is the migration
// runner both adapters use; storetest is the conformance suite both pass.
// Domain packages import no adapter: each declares the small part of
// Store it uses as an interface of its own, and the wiring passes a Store.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/notify"
)

// ErrNotFound is returned when a record does not exist or belongs to another
// account: callers must not be able to tell the two apart.
var ErrNotFound error = &fault.Error{Code: fault.NotFound, Message: "not found"}

// ErrConflict is returned when a write would break a uniqueness rule, such as
// a second event with the same UID in one calendar.
var ErrConflict error = &fault.Error{Code: fault.Conflict, Reason: fault.Exists, Message: "the object already exists"}

// Store is everything calhook keeps. Every method is safe for concurrent use.
type Store interface {
	WebhookStore
	ConsoleStore
	ImportStore
	HookStore
	UnitStore
	StatsStore
	HoldStore
	IdempotencyStore
	BatchStore

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
	// SchemaVersion returns the number of the newest applied migration.
	SchemaVersion(ctx context.Context) (int, error)
	// RunExclusive runs fn unless another node sharing the database is
	// running the job of that name, and reports whether it ran: periodic
	// jobs run once per cluster rather than once per node.
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
	// RecoverClaims makes due at now the messages an earlier run of this
	// process left claimed, and returns how many. Only a store that one
	// process uses can tell a dead run's claims from a live node's; a
	// shared store recovers none and leaves them to their leases.
	RecoverClaims(ctx context.Context, now time.Time) (int64, error)
	// ServerSecret returns the secret of the given name, storing value as
	// that secret first if there is none yet: every node and every run of
	// the server gets the same bytes (the first value stored wins).
	ServerSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	// Listen publishes to bus what other nodes sharing the database
	// write (FeedsChanged, MessagesDue) until ctx ends, then returns nil.
	// A store that only this process uses returns nil at once.
	Listen(ctx context.Context, bus *notify.Bus) error

	// CreateAccount stores a new account.
	CreateAccount(ctx context.Context, a *Account) error
	// Account returns the account with the given id.
	Account(ctx context.Context, id string) (*Account, error)
	// AccountByKeyHash returns the account whose API key hashes to keyHash.
	AccountByKeyHash(ctx context.Context, keyHash string) (*Account, error)
	// DeleteAccount removes an account and everything it owns.
	DeleteAccount(ctx context.Context, id string) error
	// SetFeedToken replaces an account's feed token and records a
	// credentials change.
	SetFeedToken(ctx context.Context, accountID, token string, now time.Time) error
	// SetFeedsDisabled turns every feed of an account off or on again, and
	// bumps the account's feed version.
	SetFeedsDisabled(ctx context.Context, accountID string, disabled bool, now time.Time) error

	// CreateCalendar stores a new calendar.
	CreateCalendar(ctx context.Context, c *Calendar) error
	// Calendar returns one calendar of an account.
	Calendar(ctx context.Context, accountID, id string) (*Calendar, error)
	// ListCalendars returns a page of an account's calendars in creation order.
	ListCalendars(ctx context.Context, p ListCalendarsParams) ([]*Calendar, error)
	// UpdateCalendar stores changed calendar fields and bumps its version.
	UpdateCalendar(ctx context.Context, c *Calendar) error
	// DeleteCalendar removes a calendar and its events, recording a
	// deletion change for each event.
	DeleteCalendar(ctx context.Context, accountID, id string, now time.Time) error

	// CreateEvent stores a new event and its "created" change in one
	// transaction and bumps the feed versions; it returns ErrConflict for
	// a duplicate UID in the calendar.
	CreateEvent(ctx context.Context, e *Event) (*Change, error)
	// Event returns one event of an account's calendar.
	Event(ctx context.Context, accountID, calendarID, id string) (*Event, error)
	// ListEvents returns a page of a calendar's events in creation order.
	ListEvents(ctx context.Context, p ListEventsParams) ([]*Event, error)
	// UpdateEvent stores an event's new fields and its "updated" change in
	// one transaction and bumps the feed versions.
	UpdateEvent(ctx context.Context, e *Event) (*Change, error)
	// DeleteEvent removes an event and stores its "deleted" change in one
	// transaction and bumps the feed versions.
	DeleteEvent(ctx context.Context, accountID, calendarID, id string, now time.Time) (*Change, error)

	// FeedVersion returns the current version of a feed: the calendar's
	// version, or the account's feed version when calendarID is empty. It
	// also returns the account's feed token so callers can authorise the
	// request with the same read.
	FeedVersion(ctx context.Context, accountID, calendarID string) (*FeedState, error)
	// FeedContent returns everything needed to render a feed: the calendars
	// (one, or all of the account's when calendarID is empty) and their
	// events, with the feed version they were read at.
	FeedContent(ctx context.Context, accountID, calendarID string) (*FeedContent, error)
	// WindowFeedContent is FeedContent without the events that ended
	// before their calendar's window (FeedWindow.Cutoff). Recurring
	// series and overrides are kept whatever their first end: the caller
	// decides which still recur.
	WindowFeedContent(ctx context.Context, accountID, calendarID string, w FeedWindow) (*FeedContent, error)
	// FeedEvents reads a page of up to limit of c's events within w after
	// pos, for a feed too big to hold (FeedContent.TooBig). c must be one
	// of that content's Calendars: the read names no account. The zero
	// FeedPos starts the read, and the returned one continues it. Each page
	// is a read of its own, in the order FeedPos describes. Like
	// WindowFeedContent it keeps recurring series and overrides whatever
	// their first end.
	FeedEvents(ctx context.Context, c *Calendar, w FeedWindow, pos FeedPos, limit int) ([]*Event, FeedPos, error)

	// ListChanges returns the changes of a calendar after a position, in
	// log order (see ChangePos). A change committed later never takes a
	// position before one it returned.
	ListChanges(ctx context.Context, p ListChangesParams) ([]*Change, error)
	// ChangeCursor returns a position from which ListChanges returns the
	// account's changes that commit from now on (and possibly some that
	// committed just before, never fewer).
	ChangeCursor(ctx context.Context, accountID string) (ChangePos, error)
}

// Account is a tenant: it owns calendars, keys and a feed token.
type Account struct {
	ID   string
	Name string
	// APIKeyHash is the hex SHA-256 of the account's API key; the key
	// itself is never stored.
	APIKeyHash string
	// FeedToken is the 64-hex-character secret that authorises feed reads.
	FeedToken string
	// FeedVersion increases on every change to any of the account's feeds.
	FeedVersion int64
	// FeedsDisabled turns every feed of the account off: they answer 403
	// with the reason until the account's feeds are enabled again.
	FeedsDisabled bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Calendar kinds.
const (
	KindNative   = "native"
	KindImported = "imported"
)

// Calendar is a named set of events.
type Calendar struct {
	ID        string
	AccountID string
	Name      string
	TimeZone  string
	Kind      string
	// SourceURL and PollInterval describe an imported calendar's origin;
	// a zero PollInterval means the server's default.
	SourceURL    string
	PollInterval time.Duration
	// Import is the sync state of an imported calendar.
	Import ImportState
	// FeedWindowDays, when set, is how many days after their end events
	// stay in the calendar's feed (0: all history); nil means the
	// server's default (see FeedCutoff).
	FeedWindowDays *int
	// Version increases on every change to the calendar or its events.
	Version int64
	// Seq is the calendar's position in list order.
	Seq int64
	// FeedDisabled turns the calendar's feed (and its export feed) off,
	// and leaves its events out of the account's all-calendars feed.
	FeedDisabled bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Event statuses.
const (
	StatusTentative = "tentative"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
)

// Event is one VEVENT of a calendar.
type Event struct {
	ID         string
	CalendarID string
	AccountID  string
	UID        string
	// RecurrenceID identifies an override of one occurrence of a
	// recurring event; empty for the series or a single event.
	RecurrenceID string
	Summary      string
	Description  string
	Location     string
	// Start and End are instants; for all-day events they are midnight UTC
	// of the first day and of the day after the last (exclusive end).
	Start  time.Time
	End    time.Time
	AllDay bool
	// TimeZone is the IANA zone the event's times are shown in.
	TimeZone string
	Status   string
	RRule    string
	ExDates  []time.Time
	Sequence int
	Metadata map[string]string
	// Extra holds properties kept verbatim, such as X- properties of an
	// imported event.
	Extra map[string]string
	// Seq is the event's position in list order.
	Seq       int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Change types recorded for event writes.
const (
	ChangeCreated = "calendar.event.created"
	ChangeUpdated = "calendar.event.updated"
	ChangeDeleted = "calendar.event.deleted"
	// ChangeCredentials records a rotated feed token; it has no calendar.
	ChangeCredentials = "enduseraccount.credential.updated"
)

// Change is one entry of the append-only change log: the outbox for
// deliveries and the source of incremental sync cursors.
type Change struct {
	// ID is assigned by the store and increases monotonically.
	ID int64
	// TxID is the id of the database transaction that wrote the change,
	// where the store orders its log by it (see ChangePos); 0 otherwise.
	TxID       uint64
	AccountID  string
	CalendarID string
	EventID    string
	EventUID   string
	Type       string
	// Event is the event as it was after the change (before it, for a
	// deletion); nil for account changes.
	Event *Event
	// Conflict is the conflict of a ChangeConflictResolved written when
	// its unit was deleted (the conflict's row went with it); nil
	// otherwise.
	Conflict   *Conflict
	OccurredAt time.Time
	// Trace is the W3C traceparent of the span that made the change (see
	// WithTrace); "" when tracing is off.
	Trace string
}

// Pos returns the change's position in the log.
func (c *Change) Pos() ChangePos { return ChangePos{TxID: c.TxID, ID: c.ID} }

// ChangePos is a position in the change log: the cursor of incremental
// sync. Positions order by TxID, then ID. A store whose writes commit one
// at a time (SQLite) orders its log by change id alone and leaves TxID 0;
// one whose transactions commit concurrently (PostgreSQL) draws a change's
// id before its commit, so ids alone would not be commit order, and orders
// by the writing transaction's id first, listing only the changes of
// transactions older than any still running.
type ChangePos struct {
	TxID uint64
	ID   int64
}

// Before reports whether p comes before q in the log.
func (p ChangePos) Before(q ChangePos) bool {
	return p.TxID < q.TxID || p.TxID == q.TxID && p.ID < q.ID
}

// FeedState is what a feed request needs before deciding whether to render.
type FeedState struct {
	FeedToken string
	Version   int64
	UpdatedAt time.Time
	// AccountDisabled is the account's switch (Account.FeedsDisabled);
	// CalendarDisabled the calendar's (Calendar.FeedDisabled), for a
	// calendar's feed.
	AccountDisabled, CalendarDisabled bool
}

// FeedContent is the data a feed is rendered from.
type FeedContent struct {
	FeedState
	Calendars []*Calendar
	// Events holds every event of Calendars, ordered by calendar (in
	// creation order), then UID and recurrence id.
	Events []*Event
	// TooBig reports that the calendars hold more events than
	// FeedWindow.MaxEvents: Events is then empty, and the feed is read
	// page by page (FeedEvents).
	TooBig bool
}

// FeedPos is a position in a calendar's feed events as FeedEvents reads
// them: for a calendar with a window, first the series and overrides that
// ended before it, by seq, then the events that end within it, by end and
// seq; for one without, every event by seq. Keys that only grow keep each
// page one index range, however long the calendar's history.
type FeedPos struct {
	// Window is set once the events before the window are read, or for a
	// calendar without one.
	Window bool
	// End and Seq are the last event read.
	End time.Time
	Seq int64
	// Done is set when no event follows.
	Done bool
}

// Next returns the position after page, a page of up to limit events
// read from p by a calendar whose window starts at cutoff (zero: none).
// Adapters call it so that both walk a feed the same way.
func (p FeedPos) Next(page []*Event, limit int, cutoff time.Time) FeedPos {
	if len(page) > 0 {
		last := page[len(page)-1]
		p.End, p.Seq = last.End, last.Seq
	}
	if len(page) == limit {
		return p
	}
	if !p.Window && !cutoff.IsZero() {
		return FeedPos{Window: true, End: cutoff}
	}
	return FeedPos{Window: true, Done: true}
}

// FeedWindow says which events a feed keeps: a calendar's events that
// ended within its window before Now, and everything after.
type FeedWindow struct {
	// Now is the instant the windows count back from; zero keeps all.
	Now time.Time
	// Default is the window of a calendar without its own
	// (Calendar.FeedWindowDays); zero keeps all.
	Default time.Duration
	// Known holds, by id, events that the caller read before (an earlier
	// render of the feed): a feed event whose id and UpdatedAt match one
	// of them is not read again, and the content holds the known *Event
	// itself, so callers must not change them. A feed read after a few
	// writes then reads each event's stamp and only the changed rows.
	Known map[string]*Event
	// MaxEvents, when positive, is the most events a feed read holds: a
	// feed with more is returned without them, marked TooBig.
	MaxEvents int
}

// KnownRead assembles one calendar's events in a feed read with known
// events (FeedWindow.Known): the adapter passes each event's stamp in
// feed order to Stamp, reads the rows Missing names and hands them to
// Events.
type KnownRead struct {
	calendarID string
	known      map[string]*Event
	out        []*Event
	at         map[string]int // missing id → its place in out
	missing    []string
}

// NewKnownRead starts the read of calendarID's events with known ones.
func NewKnownRead(calendarID string, known map[string]*Event) *KnownRead {
	return &KnownRead{calendarID: calendarID, known: known, at: map[string]int{}}
}

// Stamp takes the next event of the feed; id may be a scan buffer that
// the caller reuses (a known event costs no allocation).
func (r *KnownRead) Stamp(id []byte, updated time.Time) {
	if e := r.known[string(id)]; e != nil && e.UpdatedAt.Equal(updated) && e.CalendarID == r.calendarID {
		r.out = append(r.out, e)
		return
	}
	s := string(id)
	r.at[s] = len(r.out)
	r.missing = append(r.missing, s)
	r.out = append(r.out, nil)
}

// Len returns the number of stamped events.
func (r *KnownRead) Len() int { return len(r.out) }

// Missing returns the ids of the stamped events that are not known.
func (r *KnownRead) Missing() []string { return r.missing }

// Events returns the calendar's events with fresh, the rows of Missing,
// in their places. Every stamped row must be among them: the adapters
// read both in one read transaction.
func (r *KnownRead) Events(fresh []*Event) ([]*Event, error) {
	for _, e := range fresh {
		if i, ok := r.at[e.ID]; ok {
			r.out[i] = e
		}
	}
	if slices.Contains(r.out, nil) {
		return nil, fmt.Errorf("read events of %s: %d stamped, %d read", r.calendarID, len(r.missing), len(fresh))
	}
	return r.out, nil
}

// ErrFeedTooBig is what an adapter's read of one calendar's feed events
// returns internally when they pass the read's budget
// (FeedWindow.MaxEvents); the feed read then answers TooBig.
var ErrFeedTooBig = errors.New("feed has more events than the read holds")

// FeedBudget returns how many more events a feed read with maxEvents
// (FeedWindow.MaxEvents) may hold once it holds read; -1 means no limit.
func FeedBudget(maxEvents, read int) int {
	if maxEvents <= 0 {
		return -1
	}
	return max(maxEvents-read, 0)
}

// Cutoff returns the end before which c's events leave its feed; the
// zero time keeps every event.
func (w FeedWindow) Cutoff(c *Calendar) time.Time {
	d := w.Default
	if c.FeedWindowDays != nil {
		d = time.Duration(*c.FeedWindowDays) * 24 * time.Hour
	}
	if w.Now.IsZero() || d <= 0 {
		return time.Time{}
	}
	return w.Now.Add(-d)
}

// Page is the position and size of a page in a list.
type Page struct {
	// After is the position of the last row of the previous page; zero
	// starts at the beginning.
	After int64
	Limit int
}

// ListCalendarsParams selects calendars for ListCalendars.
type ListCalendarsParams struct {
	AccountID string
	Page
}

// ListEventsParams selects events for ListEvents.
type ListEventsParams struct {
	AccountID  string
	CalendarID string
	// From and To, when set, keep events that overlap [From, To);
	// recurring events are kept when their series starts before To.
	From, To time.Time
	Page
}

// ListChangesParams selects changes for ListChanges.
type ListChangesParams struct {
	AccountID  string
	CalendarID string
	After      ChangePos
	Limit      int
}
