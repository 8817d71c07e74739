package store

import (
	"context"
	"errors"
	"slices"
	"time"
)

// HookStore is the part of Store that iCal Hooks use.
type HookStore interface {
	// RegisterHook creates or re-arms the hook of p's feed and URL, within
	// the caps, in one transaction. If the feed has moved past the version
	// the registration was served, a ping is queued at once.
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

// ErrHookCap is returned by RegisterHook when a cap is reached; the
// message says which.
var ErrHookCap = errors.New("hook limit reached")

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
	// Caps bound the hooks per feed, per token and per target host.
	MaxPerFeed, MaxPerToken, MaxPerHost int
	// PingPayload is the payload of a ping queued at once: the feed URL
	// without its token.
	PingPayload []byte
	Now         time.Time
}

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
