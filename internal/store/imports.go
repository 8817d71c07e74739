package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Change types recorded for the health of an imported calendar's source
// feed. Their changes carry the calendar but no event.
const (
	ChangeSyncFailed    = "calendar.sync.failed"
	ChangeSyncRecovered = "calendar.sync.recovered"
	// ChangeSyncHeld is recorded when a poll holds a mass deletion until
	// a later fetch confirms it (see ImportState.Held).
	ChangeSyncHeld = "calendar.sync.held"
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
	//
	// With p.Partial it writes only the events (one chunk of a big
	// import): their changes and one version bump, with the same version
	// check; it forgets the stored validators (ETag, Last-Modified, body
	// hash), so the next poll fetches and diffs the whole feed, and leaves
	// the rest of the sync state, the next poll time and the lease as they
	// are.
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
	// Skipped lists the events of the last parsed body that calhook
	// could not represent; nil when there were none.
	Skipped *SkippedEvents
	// Held is the mass deletion waiting for confirmation; nil when none.
	Held *HeldDeletes
}

// SkippedEvents are the events of a source feed that a poll left out
// because calhook cannot represent them (a date outside years 1–9999…).
type SkippedEvents struct {
	// Count is how many were skipped; Events lists the first few.
	Count  int            `json:"count"`
	Events []SkippedEvent `json:"events"`
}

// SkippedEvent is one event left out of an import, and why.
type SkippedEvent struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
	Reason       string `json:"reason"`
}

// HeldDeletes is a deletion a poll did not apply because it would remove
// too large a part of an imported calendar: it is applied only when a
// later fetch still lacks the events, or when an operator confirms it.
type HeldDeletes struct {
	// Events are the (UID, RECURRENCE-ID) keys of the held events.
	Events []EventKey `json:"events"`
	// Since is when the deletion was first held.
	Since time.Time `json:"since"`
	// Reason says why it was held.
	Reason string `json:"reason"`
}

// EventKey identifies an imported event within its calendar.
type EventKey struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
}

// MarshalImportNotes encodes the Skipped and Held parts of an import state
// for the drivers' text columns; nil encodes as "".
func MarshalImportNotes(st *ImportState) (skipped, held string, err error) {
	if st.Skipped != nil {
		b, err := json.Marshal(st.Skipped)
		if err != nil {
			return "", "", fmt.Errorf("encode skipped events: %w", err)
		}
		skipped = string(b)
	}
	if st.Held != nil {
		h := *st.Held
		h.Since = h.Since.UTC()
		b, err := json.Marshal(&h)
		if err != nil {
			return "", "", fmt.Errorf("encode held deletes: %w", err)
		}
		held = string(b)
	}
	return skipped, held, nil
}

// UnmarshalImportNotes is the inverse of MarshalImportNotes.
func UnmarshalImportNotes(skipped, held string, st *ImportState) error {
	st.Skipped, st.Held = nil, nil
	if skipped != "" {
		st.Skipped = new(SkippedEvents)
		if err := json.Unmarshal([]byte(skipped), st.Skipped); err != nil {
			return fmt.Errorf("decode skipped events: %w", err)
		}
	}
	if held != "" {
		st.Held = new(HeldDeletes)
		if err := json.Unmarshal([]byte(held), st.Held); err != nil {
			return fmt.Errorf("decode held deletes: %w", err)
		}
	}
	return nil
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
	// ExcludeAccounts lists accounts whose calendars must not be claimed
	// now: they already hold their share of the poll slots.
	ExcludeAccounts []string
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
	// HeldChange records ChangeSyncHeld as well (after SyncChange): the
	// poll started holding a mass deletion.
	HeldChange bool
	// State is the new sync state, Skipped and Held included; HookToken
	// and EventCount are ignored (the store counts the events itself).
	State ImportState
	// Now is when the poll ended: the time of the changes.
	Now time.Time
	// Partial marks one chunk of a big import, written before the last:
	// only the events are written, and the sync state is not recorded, so
	// a poll that stops after a chunk (a crash) leaves the calendar due
	// for a poll that diffs against what the chunks wrote and writes the
	// rest, each change exactly once.
	Partial bool
	// LeaseUntil, with Partial, extends the poll's lease to this time (as
	// a claim would), so a long import in many chunks is not claimed
	// again while it still writes; zero leaves the lease as it is.
	LeaseUntil time.Time
}

// SyncChanges returns the sync changes p records, in order.
func (p *ApplyImportParams) SyncChanges() []string {
	var out []string
	if p.SyncChange != "" {
		out = append(out, p.SyncChange)
	}
	if p.HeldChange {
		out = append(out, ChangeSyncHeld)
	}
	return out
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
