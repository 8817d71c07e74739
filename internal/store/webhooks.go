package store

import (
	"context"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/fault"
)

// ErrGone is returned for a change cursor older than the retention of the
// change log: the client must do a full read.
var ErrGone error = &fault.Error{Code: fault.Gone, Reason: fault.CursorExpired,
	Message: "the cursor is older than the change log's retention: read the calendar's events in full, then start again without since"}

// FanOutCursor names the fan-out's position in the change log.
const FanOutCursor = "fanout"

// WebhookStore is the part of Store that webhook subscriptions and the
// delivery queue use.
type WebhookStore interface {
	// CreateSubscription stores a new subscription. When admit is set, it
	// is called inside the storing transaction with the number of
	// subscriptions the account already has; an error from it stores
	// nothing and is returned, so concurrent creates cannot pass a bound
	// that admit enforces.
	CreateSubscription(ctx context.Context, s *Subscription, admit func(existing int) error) error
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

	// FanOut runs one step of the fan-out that the named cursor tracks: it
	// reads up to limit changes after the cursor, calls build with them,
	// and stores the messages build returns while it moves the cursor past
	// the changes, as one unit: every change is fanned out once, whichever
	// worker or node runs the step. Messages whose (change, target) exists
	// already are skipped, and so is a ping whose hook is no longer armed.
	// A message is stored pending, or already claimed when its Status is
	// MessageDelivering (its NextAttemptAt is then the lease's end): the
	// worker that made it delivers it without a claim.
	FanOut(ctx context.Context, cursor string, limit int, build FanOutFunc) (FanOutResult, error)

	// ClaimMessages leases due messages for delivery and applies the
	// subscriptions' rate limits: a message over its subscription's rate
	// is not returned but rescheduled to its slot. It also tells when to
	// claim again.
	ClaimMessages(ctx context.Context, p ClaimParams) (*Claim, error)
	// ReleaseMessages returns claimed messages to the queue, due at the
	// given time, without counting an attempt.
	ReleaseMessages(ctx context.Context, ids []string, at time.Time) error
	// RecordAttempts stores the outcomes of delivery attempts in one
	// transaction: the attempt log, each message's new state and each
	// subscription's health. Each result names its message by
	// MessageSeq (CheckAttempts). It returns the subscriptions it
	// disabled.
	RecordAttempts(ctx context.Context, results []*AttemptResult, p RecordParams) ([]string, error)

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
	// before, keeping the changes that the fan-out, or the conflict
	// detector once it has stored a cursor, has not read yet.
	Prune(ctx context.Context, before time.Time) (PruneStats, error)
	// ChangeHorizon returns the position of the newest change that has
	// been pruned; cursors before it answer ErrGone.
	ChangeHorizon(ctx context.Context) (ChangePos, error)
}

// FanOutFunc returns the messages that changes cause. It may read from the
// store; it must not write to it.
type FanOutFunc func(ctx context.Context, changes []*Change) ([]*Message, error)

// StoredMessage names a message the store has stored: its id and the Seq
// it was given.
type StoredMessage struct {
	ID  string
	Seq int64
}

// FanOutResult is what one FanOut step did.
type FanOutResult struct {
	// Changes is how many changes the step read and fanned out.
	Changes int
	// Messages is how many messages it stored.
	Messages int
	// Leased lists the stored messages that were stored claimed.
	Leased []StoredMessage
	// Busy reports that another worker holds the cursor: that worker
	// fans out what is there.
	Busy bool
	// Unsettled reports that newer changes exist that the step could not
	// read yet, because a transaction that may still add changes before
	// them is in flight: try again shortly.
	Unsettled bool
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

// SigningSecrets returns the secrets that sign an attempt made at now,
// newest first: the current one, and the previous one until its overlap
// after a rotation ends.
func (s *Subscription) SigningSecrets(now time.Time) []string {
	if s.PrevSecret != "" && s.PrevSecretExpiresAt.After(now) {
		return []string{s.Secret, s.PrevSecret}
	}
	return []string{s.Secret}
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
	// ChangedAt is when that change occurred; zero if unknown.
	ChangedAt time.Time
	EventType string
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
	// Trace is the traceparent of the change's span (Change.Trace): the
	// deliveries continue its trace.
	Trace string
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
	ID        int64
	MessageID string
	// MessageSeq is the message's Seq: the store files the attempt, and
	// finds the message it finishes, by it.
	MessageSeq  int64
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

// CheckAttempts returns an error if an attempt names no message seq:
// RecordAttempts files attempts and finishes messages by seq, and would
// find no message for it.
func CheckAttempts(rs []*AttemptResult) error {
	for _, r := range rs {
		if r.MessageSeq <= 0 {
			return fmt.Errorf("attempt of message %s names no message seq", r.MessageID)
		}
	}
	return nil
}

// Claim is what ClaimMessages leased, and when to claim again.
type Claim struct {
	Deliveries []*Delivery
	// NextDue is when the earliest message left in the queue is due (not
	// after the claim's time if more were due than it took), or the zero
	// time when nothing is left to deliver. Claimed messages count as due
	// when their lease ends; parked ones do not count. A claim that took
	// (or gave a later slot to) every due message it was allowed to take,
	// fewer than its Limit, reports the earliest due time after its own:
	// the due messages it left are of excluded targets or held by another
	// claim, and claiming again at once would find nothing.
	NextDue time.Time
}

// ClaimParams selects messages to claim.
type ClaimParams struct {
	Now   time.Time
	Limit int
	// Lease is how long a claim holds before the message is due again.
	Lease time.Duration
	// ExcludeSubscriptions lists subscriptions, and ExcludeHosts the
	// target hosts of pings, whose messages must not be claimed now: they
	// already have as many deliveries in flight as allowed.
	ExcludeSubscriptions []string
	ExcludeHosts         []string
	// HostRate is the most pings per second to one host; 0 is unlimited.
	HostRate int
	// WebhookHostRate is the most webhook deliveries per second to one
	// host (of the subscriptions' URLs), across every subscription and
	// account; 0 is unlimited. Like every limit it delays, never drops.
	WebhookHostRate int
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

// MessageState returns the state an attempt leaves its message in, and
// when the message is due again (the zero time once it is finished).
func (r *AttemptResult) MessageState() (status string, next time.Time) {
	switch r.Outcome {
	case OutcomeDelivered:
		return MessageDelivered, time.Time{}
	case OutcomeUndeliverable:
		return MessageUndeliverable, time.Time{}
	}
	return MessagePending, r.NextAttemptAt
}

// Health is what a batch of attempts tells of one subscription.
type Health struct {
	SubscriptionID string
	// OK reports that the latest attempt of the batch was delivered and
	// none asked to disable the subscription.
	OK bool
	// At is when the latest attempt was made.
	At time.Time
	// Disable is a reason to disable the subscription at once (such as
	// 410 Gone) from any attempt of the batch.
	Disable string
}

// HealthOf returns the health of each subscription that results have
// attempts of, in the order they first appear; pings are left out.
func HealthOf(results []*AttemptResult) []*Health {
	var out []*Health
	byID := map[string]*Health{}
	for _, r := range results {
		if r.HookID != "" {
			continue
		}
		h := byID[r.SubscriptionID]
		if h == nil {
			h = &Health{SubscriptionID: r.SubscriptionID}
			byID[r.SubscriptionID] = h
			out = append(out, h)
		}
		h.At = r.AttemptedAt
		if r.Disable != "" {
			h.Disable = r.Disable
		}
		h.OK = r.Outcome == OutcomeDelivered && h.Disable == ""
	}
	return out
}

// DisableReason returns why a subscription whose attempts have all failed
// since since is to be disabled after the attempts of h, or "" if it is
// not: the reason an attempt gave, or failures for longer than after
// (when after is positive).
func (h *Health) DisableReason(since time.Time, after time.Duration) string {
	switch {
	case h.Disable != "":
		return h.Disable
	case after > 0 && h.At.Sub(since) >= after:
		return fmt.Sprintf("every delivery attempt failed for %s", after)
	}
	return ""
}
