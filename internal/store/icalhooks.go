package store

import (
	"context"
	"slices"
	"time"
)

// HookStore is the part of Store that iCal Hooks use.
type HookStore interface {
	// RegisterHook creates or re-arms the hook of p's feed and URL in one
	// transaction. Before creating one it counts the hooks of p.Count and
	// lets p.Admit refuse it. If the feed has moved past the version the
	// registration was served, it stores the ping p.Ping builds at once.
	RegisterHook(ctx context.Context, p RegisterHookParams) (*HookRegistration, error)
	// VerifyHook records the outcome of a hook's challenge: verified hooks
	// become active, failed ones are deleted.
	VerifyHook(ctx context.Context, id string, ok bool) error
	// ListHooks returns a page of an account's hooks.
	ListHooks(ctx context.Context, p ListHooksParams) ([]*Hook, error)
	// DeleteHook removes one hook of an account.
	DeleteHook(ctx context.Context, accountID, id string) error
	// ArmedHooks returns the armed, verified hooks of the given feeds.
	ArmedHooks(ctx context.Context, feeds []FeedKey) ([]*Hook, error)
	// ExpireHooks deletes hooks not registered since before.
	ExpireHooks(ctx context.Context, before time.Time) (int64, error)
}

// FeedKey names a feed: one calendar, or the account's all-calendars feed
// when CalendarID is empty.
type FeedKey struct {
	AccountID  string
	CalendarID string
}

// Hook is an iCal Hooks registration.
type Hook struct {
	ID         string
	AccountID  string
	CalendarID string
	URL        string
	Host       string
	TokenHash  string
	ClientIP   string
	UserAgent  string
	Armed      bool
	Verified   bool
	// ServedVersion is the feed version the latest registration was served.
	ServedVersion int64
	// ArmedAt is the change log position from which changes ping the
	// hook: every change before it, bar those of ArmedRunning, was in the
	// feed version its latest registration was served, so the consumer
	// has it already.
	ArmedAt ChangePos
	// ArmedRunning lists the transactions that were still running when
	// the latest registration read the feed (PostgreSQL): their changes
	// ping the hook though they come before ArmedAt.
	ArmedRunning      []uint64
	FirstRegisteredAt time.Time
	LastRegisteredAt  time.Time
	LastPingAt        time.Time
	LastPingStatus    int
	LastPingError     string
	// Failures counts failed pings since the last successful one.
	Failures int
	Seq      int64
}

// Lacks reports whether the hook's consumer lacks the change: whether the
// change was not in the feed version its latest registration was served.
func (h *Hook) Lacks(ch *Change) bool {
	return !ch.Pos().Before(h.ArmedAt) || ch.TxID != 0 && slices.Contains(h.ArmedRunning, ch.TxID)
}

// RegisterHookParams describe one registration.
type RegisterHookParams struct {
	Hook
	// Verify makes a new hook wait for its challenge before it is armed.
	Verify bool
	// Count lists the sets of hooks to count before a new hook is
	// stored. Admit, if set, is called with their sizes, in the same
	// order, inside the registering transaction, so that registrations
	// racing each other cannot both pass a bound; an error from it stores
	// nothing and is returned. Re-arming a hook counts nothing.
	Count []HookScope
	Admit func(counts []int) error
	// Ping builds the ping to store when the feed has moved past
	// ServedVersion: for hook h, about the account's newest change.
	Ping func(h *Hook, changeID int64) *Message
	Now  time.Time
}

// HookScope names a set of hooks that a cap on new hooks counts.
type HookScope int

// Hook scopes.
const (
	// HooksOfFeed are the hooks of the registration's feed.
	HooksOfFeed HookScope = iota + 1
	// HooksOfToken are the hooks registered with the registration's
	// feed token (same TokenHash).
	HooksOfToken
	// HooksOfHost are the hooks whose URL has the registration's Host.
	HooksOfHost
)

// HookRegistration is the outcome of RegisterHook.
type HookRegistration struct {
	Hook *Hook
	// Created is true for a new hook.
	Created bool
	// Pinged is true when the feed had moved on and a ping was queued.
	Pinged bool
}

// ListHooksParams selects hooks for ListHooks.
type ListHooksParams struct {
	AccountID string
	Page
}
