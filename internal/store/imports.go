package store

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Change types recorded for the health of an imported calendar's source
// feed. Their changes carry the calendar but no event.
const (
	ChangeSyncFailed    = "calendar.sync.failed"
	ChangeSyncRecovered = "calendar.sync.recovered"
)

// IsEventChange reports whether changes of type typ carry an event
// snapshot.
func IsEventChange(typ string) bool {
	return strings.HasPrefix(typ, "calendar.event.")
}

// ImportStore is the part of Store that the importer uses: a due-time index
// of imported calendars claimed with a lease, and one write that applies a
// poll's outcome.
type ImportStore interface {
	// ClaimPolls leases imported calendars whose next poll is due: each
	// is returned at most once until ApplyImport records its outcome or
	// the lease expires (the node polling it died), whichever comes first.
	ClaimPolls(ctx context.Context, p ClaimPollsParams) ([]*Calendar, error)
	// NextPollAt returns when the earliest imported calendar is due (or
	// its lease ends); ok is false when there is none.
	NextPollAt(ctx context.Context) (at time.Time, ok bool, err error)
	// RequestPoll asks for a poll of an imported calendar at the given time
	// (now, for an immediate one). A request that arrives while the
	// calendar is being polled takes effect when that poll is recorded, so
	// a change announced during a fetch is never missed.
	RequestPoll(ctx context.Context, accountID, calendarID string, at time.Time) error
	// CalendarByHookToken returns the imported calendar whose iCal Hooks
	// receiver URL carries token.
	CalendarByHookToken(ctx context.Context, token string) (*Calendar, error)
	// ApplyImport records the outcome of one poll in one transaction: the
	// created, updated and deleted events with a change each, one version
	// bump for the whole batch, an optional sync health change, the sync
	// state and the next poll time; it ends the poll's lease. When it
	// writes events and the calendar is no longer at p.Version (another
	// write came between the read the diff was made from and now), it
	// stores nothing and returns ErrConflict.
	ApplyImport(ctx context.Context, p *ApplyImportParams) ([]*Change, error)
}

// ImportState is the sync state of an imported calendar.
type ImportState struct {
	// HookToken is the secret in the calendar's iCal Hooks receiver URL
	// (/hooks/in/{token}); it is set when the calendar is created.
	HookToken string
	// ETag and LastModified are the validators of the last full response,
	// sent back in a conditional GET.
	ETag         string
	LastModified string
	// BodyHash is the hex SHA-256 of the last body that was parsed, so an
	// unchanged body costs no parse even without validators.
	BodyHash string
	// LastSyncAt is the last poll, whatever its outcome; LastSuccessAt the
	// last one that fetched and understood the feed (or got a 304).
	LastSyncAt    time.Time
	LastSuccessAt time.Time
	// LastChangeAt is the last poll that changed an event; the schedule
	// polls faster while it is recent.
	LastChangeAt time.Time
	// LastError is why the last poll failed; empty after a success.
	LastError string
	// Failures counts the polls that failed in a row.
	Failures int
	// NextPollAt is when the calendar is due to be polled again.
	NextPollAt time.Time
	// EventCount is the number of events the calendar holds.
	EventCount int
}

// ClaimPollsParams selects calendars for ClaimPolls.
type ClaimPollsParams struct {
	Now   time.Time
	Limit int
	// Lease is how long a claim holds before the calendar is due again.
	Lease time.Duration
	// ExcludeHosts lists source hosts (see SourceHost) whose calendars
	// must not be claimed now: they already have as many polls in flight
	// as politeness allows.
	ExcludeHosts []string
}

// ApplyImportParams is the outcome of one poll of an imported calendar.
type ApplyImportParams struct {
	AccountID  string
	CalendarID string
	// Version is the calendar's version the diff was computed against;
	// checked only when events are written.
	Version int64
	// Create, Update and Delete are the events to write. Updated events
	// keep their ID; deleted ones are passed whole so their change records
	// carry what was removed.
	Create []*Event
	Update []*Event
	Delete []*Event
	// SyncChange is ChangeSyncFailed or ChangeSyncRecovered to record, or
	// empty.
	SyncChange string
	// State is the new sync state; HookToken and EventCount are ignored
	// (the store counts the events itself).
	State ImportState
	// Now is when the poll ended: the time of the changes.
	Now time.Time
}

// SourceHost returns the host whose politeness limit a source URL counts
// against: its lowercased host name, without the port.
func SourceHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
