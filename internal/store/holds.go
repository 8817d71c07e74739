package store

import (
	"context"
	"errors"
	"time"
)

// Hold states. A held hold blocks its interval until it expires; a
// confirmed one is a booking; released and expired ones no longer block
// (their event is deleted) and are kept so that a late confirmation gets a
// clear answer.
const (
	HoldHeld      = "held"
	HoldConfirmed = "confirmed"
	HoldReleased  = "released"
	HoldExpired   = "expired"
)

// HoldStore is the part of Store that holds use.
type HoldStore interface {
	// PlaceHold stores a hold atomically with the check of its interval:
	// in one transaction that holds the unit's lock (so that exactly one
	// of overlapping concurrent holds of a unit wins, on any number of
	// nodes) it reads the events of the unit's calendars that may block
	// [From, To) and the unit's held holds, and calls check with them. If
	// check returns an error, nothing is stored and the error is
	// returned. Otherwise the hold's event is stored in the unit's first
	// native calendar — p.NewCalendar, attached to the unit, when it has
	// none — with its created change, and the hold with it. The unit must
	// be the account's (else ErrNotFound).
	PlaceHold(ctx context.Context, p PlaceHoldParams, check HoldCheckFunc) error
	// PlaceHolds is PlaceHold for several holds of one unit of one
	// account in one transaction, which costs about as much as one: the
	// holds are checked in order, each against what is stored and the
	// holds before it that were placed (their events among the events,
	// themselves among the holds), from the events of the union of their
	// windows. It returns each hold's check error at its index (nil: the
	// hold was placed); err is a failure of the whole, which placed
	// none.
	PlaceHolds(ctx context.Context, ps []HoldPlacement) (errs []error, err error)
	// Hold returns one hold of an account.
	Hold(ctx context.Context, accountID, id string) (*Hold, error)
	// ListHolds returns a page of a unit's holds, oldest first.
	ListHolds(ctx context.Context, p ListHoldsParams) ([]*Hold, error)
	// ConfirmHold makes a held hold that has not expired at now a
	// confirmed booking: its event's status becomes confirmed, with the
	// updated change. A hold in any other state is returned unchanged
	// with ErrHoldState.
	ConfirmHold(ctx context.Context, accountID, id string, now time.Time) (*Hold, error)
	// EndHold moves a held hold to state (HoldReleased or HoldExpired)
	// and deletes its event, with the deleted change. A hold in any other
	// state is returned unchanged with ErrHoldState.
	EndHold(ctx context.Context, accountID, id, state string, now time.Time) (*Hold, error)
	// ExpiredHolds returns up to limit held holds whose expiry is not
	// after now, of every account, soonest first.
	ExpiredHolds(ctx context.Context, now time.Time, limit int) ([]*Hold, error)
}

// ErrHoldState is returned when a hold is not in the state an operation
// needs.
var ErrHoldState = errors.New("the hold is not held")

// Hold is a short reservation of a unit's interval, kept as a tentative
// event in the unit's native calendar.
type Hold struct {
	ID         string
	AccountID  string
	UnitID     string
	CalendarID string
	EventID    string
	// Start and End are the held interval as the event stores it (for
	// all-day holds, midnight UTC of the first night and the day after
	// the last).
	Start, End  time.Time
	AllDay      bool
	Summary     string
	ExternalRef string
	State       string
	ExpiresAt   time.Time
	CreatedAt   time.Time
	// EndedAt is when the hold was confirmed, released or expired; zero
	// while it is held.
	EndedAt time.Time
	Seq     int64
}

// Live reports whether the hold blocks its interval at now.
func (h *Hold) Live(now time.Time) bool {
	return h.State == HoldConfirmed || h.State == HoldHeld && now.Before(h.ExpiresAt)
}

// PlaceHoldParams is a hold to place.
type PlaceHoldParams struct {
	// Hold is stored with its CalendarID and EventID set by PlaceHold.
	Hold *Hold
	// Event is the hold's event; PlaceHold sets its CalendarID.
	Event *Event
	// NewCalendar is the native calendar to create and attach to the
	// unit when it has none.
	NewCalendar *Calendar
	// From and To bound the events handed to the check.
	From, To time.Time
}

// HoldPlacement is one hold of PlaceHolds with its check.
type HoldPlacement struct {
	PlaceHoldParams
	Check HoldCheckFunc
	// Trace is the trace of the request that asked for the hold, kept
	// with its change; empty takes the context's (TraceFrom).
	Trace string
}

// HoldsWindow returns the union of the windows of ps (From and To).
func HoldsWindow(ps []HoldPlacement) (from, to time.Time) {
	for i, p := range ps {
		if i == 0 || p.From.Before(from) {
			from = p.From
		}
		if i == 0 || p.To.After(to) {
			to = p.To
		}
	}
	return from, to
}

// HoldCheckFunc decides whether a hold may be placed, given the events
// that may block its window (BlockingEvents' rules) and the unit's held
// holds (expired ones included: the check decides). It must not write.
type HoldCheckFunc func(ctx context.Context, unit *Unit, events []*Event, holds []*Hold) error

// ListHoldsParams selects holds for ListHolds.
type ListHoldsParams struct {
	AccountID string
	UnitID    string
	Page
}

// IdempotencyStore keeps the first answer to requests made with an
// Idempotency-Key, per account and key, so that retries get it again.
type IdempotencyStore interface {
	// BeginIdempotent reserves r's key: when the account has no record of
	// it, or one that expired (ExpiresAt not after now) or was left
	// pending since before staleBefore, r is stored pending (Status 0)
	// and returned with true. Otherwise the record kept is returned with
	// false.
	BeginIdempotent(ctx context.Context, r *IdempotentRequest, now, staleBefore time.Time) (*IdempotentRequest, bool, error)
	// FinishIdempotent stores the answer of a pending key.
	FinishIdempotent(ctx context.Context, accountID, key string, status int, body []byte) error
	// AbandonIdempotent forgets a pending key, so the request may be
	// tried again.
	AbandonIdempotent(ctx context.Context, accountID, key string) error
}

// IdempotentRequest is a request made with an Idempotency-Key and, once
// answered, its answer.
type IdempotentRequest struct {
	AccountID string
	Key       string
	// Fingerprint identifies the request (method, path, body): the same
	// key with another fingerprint is a client error.
	Fingerprint string
	// Status is 0 while the request is being answered.
	Status    int
	Body      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}
