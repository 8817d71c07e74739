// Package fault is calhook's one error type for failures a caller can act
// on: an Error carries a Code (not found, invalid, conflict…), for a
// conflict a typed Reason, and a message meant for the client. Domain
// services and store adapters return them (often wrapped with %w); the
// HTTP layer maps Code and Reason to a status and a JSON body in one
// place, and treats any other error as internal.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Code is the kind of a failure.
type Code int

// Codes. The zero Code is Internal: an error that is no *Error.
const (
	Internal Code = iota
	// Invalid: the input breaks a rule; the message says which.
	Invalid
	// NotFound: the record does not exist, or belongs to someone else.
	NotFound
	// Conflict: the request contradicts the current state (see Reason).
	Conflict
	// Gone: the record existed but is no longer kept.
	Gone
	// Forbidden: the credentials do not open this.
	Forbidden
	// RateLimited: too many requests; retry later.
	RateLimited
	// Unavailable: a resource the request needs is out of service for a
	// while (see Reason); retry later.
	Unavailable
)

// Reason qualifies a Code (which conflict, what is gone), for clients
// that act on it.
type Reason string

// Conflict reasons.
const (
	// Exists: the record already exists.
	Exists Reason = "exists"
	// DuplicateUID: another event of the calendar has this UID.
	DuplicateUID Reason = "duplicate_uid"
	// ReadOnly: the events of an imported calendar follow its source.
	ReadOnly Reason = "read_only"
	// Disabled: the subscription is disabled.
	Disabled Reason = "subscription_disabled"
	// CursorExpired: a change cursor is older than the change log keeps
	// (with Gone).
	CursorExpired Reason = "cursor_expired"
	// HookLimit: a feed, feed token or host has as many iCal Hooks as
	// it may.
	HookLimit Reason = "hook_limit"
	// SubscriptionLimit: the account has as many subscriptions as it may.
	SubscriptionLimit Reason = "subscription_limit"
	// NotImported: only an imported calendar has a source feed to sync.
	NotImported Reason = "not_imported"
	// NothingHeld: the calendar holds no deletion to confirm.
	NothingHeld Reason = "nothing_held"
	// HoldExpired: the hold passed its expiry (with Gone).
	HoldExpired Reason = "hold_expired"
	// HoldReleased: the hold was released.
	HoldReleased Reason = "hold_released"
	// HoldConfirmed: the hold is a confirmed booking already.
	HoldConfirmed Reason = "hold_confirmed"
	// KeyReused: an Idempotency-Key was sent with another request.
	KeyReused Reason = "idempotency_key_reused"
	// KeyInUse: the first request with an Idempotency-Key is still being
	// answered.
	KeyInUse Reason = "idempotency_key_in_use"
	// InBatch: another item of the same batch writes the same event or
	// UID.
	InBatch Reason = "duplicate_in_batch"
)

// Forbidden reasons.
const (
	// FeedDisabled: the feed is turned off (the account's or the
	// calendar's feed switch).
	FeedDisabled Reason = "feed_disabled"
)

// Unavailable reasons.
const (
	// StorageFull: the database has no room for the write (disk full,
	// or read-only).
	StorageFull Reason = "storage_full"
	// DatabaseDown: the database does not answer (restarting, or the
	// connection was lost).
	DatabaseDown Reason = "database_unavailable"
	// ShuttingDown: the server is shutting down and ended a long wait.
	ShuttingDown Reason = "shutting_down"
)

// Error is a failure with a code and a message for the client.
type Error struct {
	Code Code
	// Reason qualifies Code; it may be empty.
	Reason Reason
	// Message explains the failure to the client; it must not reveal
	// internals.
	Message string
	// RetryAfter, for RateLimited, is when a retry is accepted.
	RetryAfter time.Duration
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Invalidf returns an Invalid error. A non-empty field prefixes the
// message ("name: is required").
func Invalidf(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &Error{Code: Invalid, Message: msg}
}

// Conflictf returns a Conflict error for the reason.
func Conflictf(reason Reason, format string, args ...any) *Error {
	return &Error{Code: Conflict, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, or nil if there is none.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of the *Error in err's chain: Internal if there
// is none.
func CodeOf(err error) Code {
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}
