package store

import (
	"context"
	"errors"
	"time"
)

// ErrGone is returned for a change cursor older than the retention of the
// change log: the client must do a full read.
var ErrGone = errors.New("cursor is older than the change log's retention")

// FanOutCursor names the fan-out's position in the change log.
const FanOutCursor = "fanout"

// WebhookStore is the part of Store that webhook subscriptions and the
// delivery queue use.
type WebhookStore interface {
	// CreateSubscription stores a new subscription.
	CreateSubscription(ctx context.Context, s *Subscription) error
	// Subscription returns one subscription of an account.
	Subscription(ctx context.Context, accountID, id string) (*Subscription, error)
	// ListSubscriptions returns a page of an account's subscriptions.
	ListSubscriptions(ctx context.Context, p ListSubscriptionsParams) ([]*Subscription, error)
	// UpdateSubscription stores a subscription's changed fields.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	// DeleteSubscription removes a subscription and its queued messages.
	DeleteSubscription(ctx context.Context, accountID, id string) error
	// ActiveSubscriptions returns the enabled subscriptions of the given
	// accounts.
	ActiveSubscriptions(ctx context.Context, accountIDs []string) ([]*Subscription, error)

	// ReadChanges returns up to limit changes after the named cursor's
	// position (of every account), and that position.
	ReadChanges(ctx context.Context, cursor string, limit int) (changes []*Change, position int64, err error)
	// EnqueueMessages stores messages and moves the named cursor from
	// position from to position to, in one transaction. Messages whose
	// (change, subscription) already exists are skipped. If the cursor is
	// no longer at from (another worker moved it), nothing is stored and
	// ErrConflict is returned.
	EnqueueMessages(ctx context.Context, cursor string, from, to int64, msgs []*Message) error

	// ClaimMessages leases due messages for delivery and applies the
	// subscriptions' rate limits: a message over its subscription's rate
	// is not returned but rescheduled to its slot.
	ClaimMessages(ctx context.Context, p ClaimParams) ([]*Delivery, error)
	// ReleaseMessages returns claimed messages to the queue, due at the
	// given time, without counting an attempt.
	ReleaseMessages(ctx context.Context, ids []string, at time.Time) error
	// RecordAttempts stores the outcomes of delivery attempts in one
	// transaction: the attempt log, each message's new state and each
	// subscription's health. It returns the subscriptions it disabled.
	RecordAttempts(ctx context.Context, results []*AttemptResult, p RecordParams) ([]string, error)
	// NextDue returns when the earliest queued message is due; ok is false
	// when the queue is empty.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)

	// ListMessages returns a page of a subscription's messages, newest
	// first.
	ListMessages(ctx context.Context, p ListMessagesParams) ([]*Message, error)
	// Message returns one message of an account.
	Message(ctx context.Context, accountID, id string) (*Message, error)
	// ListAttempts returns a page of a message's attempts, oldest first.
	ListAttempts(ctx context.Context, p ListAttemptsParams) ([]*Attempt, error)
	// RedeliverMessage makes a message due now with a fresh retry cycle.
	RedeliverMessage(ctx context.Context, accountID, id string, now time.Time) (*Message, error)

	// Prune deletes attempts, finished messages and changes older than
	// before, keeping the changes the fan-out has not read yet.
	Prune(ctx context.Context, before time.Time) (PruneStats, error)
	// ChangeHorizon returns the newest change id that has been pruned;
	// cursors before it answer ErrGone.
	ChangeHorizon(ctx context.Context) (int64, error)
}

// Message states.
const (
	MessagePending       = "pending"
	MessageDelivering    = "delivering"
	MessageDelivered     = "delivered"
	MessageUndeliverable = "undeliverable"
)

// Subscription is a webhook endpoint of an account.
type Subscription struct {
	ID        string
	AccountID string
	// CalendarID limits the subscription to one calendar; empty means
	// every calendar of the account.
	CalendarID  string
	URL         string
	Description string
	// EventTypes filters what is delivered; empty means every precise type.
	EventTypes []string
	// RateLimit is the most messages per second; 0 means unlimited.
	RateLimit int
	// Secret signs every attempt; PrevSecret signs alongside it until
	// PrevSecretExpiresAt after a rotation.
	Secret              string
	PrevSecret          string
	PrevSecretExpiresAt time.Time
	Disabled            bool
	DisabledReason      string
	DisabledAt          time.Time
	// FailingSince is the first failed attempt since the last success.
	FailingSince time.Time
	Seq          int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Message is one notification: a webhook for a subscription, or an iCal
// Hooks ping for a hook.
type Message struct {
	// ID is the webhookId: a UUID, the same on every attempt.
	ID        string
	AccountID string
	// SubscriptionID or HookID names the target; exactly one is set.
	SubscriptionID string
	HookID         string
	ChangeID       int64
	EventType      string
	// Payload is the exact body, fixed when the message is made; for a
	// ping, the feed URL (without token) it is about.
	Payload       []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	Seq           int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   time.Time
}

// PingEventType is the event type of iCal Hooks pings.
const PingEventType = "icalhooks.ping"

// Delivery is a claimed message with what sending it needs.
type Delivery struct {
	Message *Message
	URL     string
	// Host is the target host of a ping, the key of its rate limit.
	Host string
	// Secrets sign the attempt, newest first.
	Secrets []string
	// SchedulePos is the number of attempts already made in the current
	// retry cycle.
	SchedulePos int
}

// Attempt is one HTTP try of a message.
type Attempt struct {
	ID          int64
	MessageID   string
	DeliveryID  string
	AttemptedAt time.Time
	StatusCode  int
	Latency     time.Duration
	Error       string
	// Response is the start of the response body.
	Response string
}

// Outcomes of an attempt.
const (
	OutcomeDelivered     = "delivered"
	OutcomeRetry         = "retry"
	OutcomeUndeliverable = "undeliverable"
)

// AttemptResult is what one delivery attempt came to.
type AttemptResult struct {
	Attempt
	// SubscriptionID or HookID names the target.
	SubscriptionID string
	HookID         string
	Outcome        string
	// NextAttemptAt is when to retry, for OutcomeRetry.
	NextAttemptAt time.Time
	// Disable, when set, disables the subscription with this reason
	// (e.g. the endpoint answered 410 Gone).
	Disable string
}

// ClaimParams selects messages to claim.
type ClaimParams struct {
	Now   time.Time
	Limit int
	// Lease is how long a claim holds before the message is due again.
	Lease time.Duration
	// Exclude lists subscriptions (and ping hosts) whose messages must not
	// be claimed now: they already have as many deliveries in flight as
	// allowed.
	Exclude []string
	// HostRate is the most pings per second to one host; 0 is unlimited.
	HostRate int
}

// RecordParams are the rules RecordAttempts applies to subscriptions.
type RecordParams struct {
	Now time.Time
	// DisableAfter disables a subscription whose attempts have all failed
	// for this long.
	DisableAfter time.Duration
}

// ListSubscriptionsParams selects subscriptions for ListSubscriptions.
type ListSubscriptionsParams struct {
	AccountID  string
	CalendarID string
	Page
}

// ListMessagesParams selects messages for ListMessages.
type ListMessagesParams struct {
	AccountID      string
	SubscriptionID string
	// Page.After is a Seq; pages go from newest to oldest, so After = 0
	// starts at the newest.
	Page
}

// ListAttemptsParams selects attempts for ListAttempts.
type ListAttemptsParams struct {
	AccountID string
	MessageID string
	Page
}

// PruneStats counts what Prune deleted.
type PruneStats struct {
	Attempts, Messages, Changes int64
}

// NextSlot is the rate limiter shared by every adapter (GCRA without
// burst): given the subscription's theoretical arrival time tat, it returns
// when a message may go out and the new tat.
func NextSlot(tat, now time.Time, perSecond int) (slot, newTAT time.Time) {
	interval := time.Second / time.Duration(perSecond)
	slot = tat
	if slot.Before(now) {
		slot = now
	}
	return slot, slot.Add(interval)
}
