// Package subscription holds the rules for webhook subscriptions: which
// event types exist and which a subscription receives, URL and rate limit
// validation, secrets and their rotation.
package subscription

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/webhook"
)

// Event types a subscription can ask for.
const (
	EventCreated            = store.ChangeCreated
	EventUpdated            = store.ChangeUpdated
	EventDeleted            = store.ChangeDeleted
	EventChanged            = "calendar.event.changed"
	EventUnknown            = "calendar.event.unknown"
	EventSyncFailed         = "calendar.sync.failed"
	EventSyncRecovered      = "calendar.sync.recovered"
	EventSyncHeld           = store.ChangeSyncHeld
	EventAccountCreated     = "enduseraccount.created"
	EventAccountUpdated     = "enduseraccount.updated"
	EventAccountDeleted     = "enduseraccount.deleted"
	EventAccountCredentials = store.ChangeCredentials
	EventConflictDetected   = store.ChangeConflictDetected
	EventConflictResolved   = store.ChangeConflictResolved
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{
	EventCreated, EventUpdated, EventDeleted, EventChanged, EventUnknown, EventSyncFailed, EventSyncRecovered,
	EventSyncHeld, EventAccountCreated, EventAccountUpdated, EventAccountDeleted, EventAccountCredentials,
	EventConflictDetected, EventConflictResolved,
}

// OneCalEventTypes is the filter of subscriptions made through the
// OneCal-shaped routes: the coarse calendar types and the account types.
var OneCalEventTypes = []string{
	EventChanged, EventUnknown, EventAccountCreated, EventAccountUpdated, EventAccountDeleted, EventAccountCredentials,
}

// Wants returns the event type that sub receives for a change of type
// changeType, if any. An empty filter receives every precise type. The
// coarse calendar.event.changed stands in for created, updated and
// deleted for a subscription that asks for it but not for the precise
// type, so no subscription gets two messages for one change.
func Wants(sub *store.Subscription, changeType string) (string, bool) {
	if len(sub.EventTypes) == 0 {
		return changeType, true
	}
	if slices.Contains(sub.EventTypes, changeType) {
		return changeType, true
	}
	switch changeType {
	case EventCreated, EventUpdated, EventDeleted:
		if slices.Contains(sub.EventTypes, EventChanged) {
			return EventChanged, true
		}
	}
	return "", false
}

// invalid reports input that breaks a rule (fault.Invalid).
func invalid(field, format string, args ...any) error {
	return fault.Invalidf(field, format, args...)
}

// ErrDisabled is returned when redelivering to a disabled subscription.
var ErrDisabled error = &fault.Error{Code: fault.Conflict, Reason: fault.Disabled,
	Message: "the subscription is disabled: re-enable it with PATCH {\"disabled\":false} first"}

// DefaultMaxPerAccount is how many subscriptions an account may have when
// Service.MaxPerAccount is not set: every event write is matched against
// each of them, so one account's subscriptions are a cost to all.
const DefaultMaxPerAccount = 100

// limitError is returned when an account already has limit subscriptions,
// as many as it may.
func limitError(limit int) error {
	return fault.Conflictf(fault.SubscriptionLimit,
		"the account already has %d subscriptions, the most it may have: delete one first, or subscribe to all calendars with one", limit)
}

// URLChecker validates a webhook URL: scheme, and that it does not point
// at a private address.
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) (*url.URL, error)
}

// Limits.
const (
	maxRateLimit        = 100000
	maxDescriptionBytes = 1024
)

// Store is what the service keeps subscriptions and their messages in.
type Store interface {
	CreateSubscription(ctx context.Context, s *store.Subscription, admit func(existing int) error) error
	Subscription(ctx context.Context, accountID, id string) (*store.Subscription, error)
	ListSubscriptions(ctx context.Context, p store.ListSubscriptionsParams) ([]*store.Subscription, error)
	UpdateSubscription(ctx context.Context, s *store.Subscription) error
	DeleteSubscription(ctx context.Context, accountID, id string) error

	ListMessages(ctx context.Context, p store.ListMessagesParams) ([]*store.Message, error)
	Message(ctx context.Context, accountID, id string) (*store.Message, error)
	ListAttempts(ctx context.Context, p store.ListAttemptsParams) ([]*store.Attempt, error)
	RedeliverMessage(ctx context.Context, accountID, id string, now time.Time) (*store.Message, error)
	ConsoleMessages(ctx context.Context, p store.ConsoleMessagesParams) ([]*store.Message, int64, error)
	EnqueueMessage(ctx context.Context, m *store.Message) error
}

// Service creates and changes subscriptions.
type Service struct {
	store Store
	urls  URLChecker
	now   func() time.Time
	bus   *notify.Bus
	// Overlap is how long the previous secret keeps signing after a
	// rotation.
	overlap time.Duration
	// MaxPerAccount bounds an account's subscriptions; zero or less
	// means DefaultMaxPerAccount. Set it before the Service is used.
	MaxPerAccount int
}

// NewService returns a Service that tells bus of messages made due
// again (MessagesDue); now and bus may be nil.
func NewService(s Store, urls URLChecker, now func() time.Time, bus *notify.Bus) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, urls: urls, now: now, bus: notify.Or(bus), overlap: 24 * time.Hour}
}

// Input is what a client may set; nil fields keep their value (or the
// default on create).
type Input struct {
	CalendarID  *string
	URL         *string
	EventTypes  *[]string
	RateLimit   *int
	Description *string
	Disabled    *bool
}

// Create validates in and stores a new subscription with a fresh secret.
// defaultTypes is the filter used when in names none.
func (s *Service) Create(ctx context.Context, accountID string, in Input, defaultTypes []string) (*store.Subscription, error) {
	if in.URL == nil {
		return nil, invalid("webhookUrl", "is required")
	}
	if in.Disabled != nil {
		return nil, invalid("disabled", "can only be changed on an existing subscription")
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, fmt.Errorf("new secret: %w", err)
	}
	now := s.now().UTC()
	sub := &store.Subscription{
		ID: id.New("sub"), AccountID: accountID, EventTypes: defaultTypes, Secret: secret,
		CreatedAt: now, UpdatedAt: now,
	}
	if in.CalendarID != nil {
		sub.CalendarID = *in.CalendarID
	}
	if err := s.apply(ctx, sub, in); err != nil {
		return nil, err
	}
	limit := s.MaxPerAccount
	if limit <= 0 {
		limit = DefaultMaxPerAccount
	}
	admit := func(existing int) error {
		if existing >= limit {
			return limitError(limit)
		}
		return nil
	}
	if err := s.store.CreateSubscription(ctx, sub, admit); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid("calendarId", "no calendar %q in this account", sub.CalendarID)
		}
		return nil, err
	}
	return sub, nil
}

// Update applies in to a subscription. Setting disabled to false enables a
// subscription that was disabled, by an operator or by failures.
func (s *Service) Update(ctx context.Context, accountID, subID string, in Input) (*store.Subscription, error) {
	sub, err := s.store.Subscription(ctx, accountID, subID)
	if err != nil {
		return nil, err
	}
	if in.CalendarID != nil && *in.CalendarID != sub.CalendarID {
		return nil, invalid("calendarId", "cannot be changed; create a new subscription")
	}
	if err := s.apply(ctx, sub, in); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if in.Disabled != nil && *in.Disabled != sub.Disabled {
		sub.Disabled = *in.Disabled
		if sub.Disabled {
			sub.DisabledReason, sub.DisabledAt = "disabled through the API", now
		} else {
			sub.DisabledReason, sub.DisabledAt = "", time.Time{}
		}
	}
	sub.UpdatedAt = now
	if err := s.store.UpdateSubscription(ctx, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// RotateSecret gives a subscription a new secret; the old one keeps
// signing alongside it for 24 hours.
func (s *Service) RotateSecret(ctx context.Context, accountID, subID string) (*store.Subscription, error) {
	sub, err := s.store.Subscription(ctx, accountID, subID)
	if err != nil {
		return nil, err
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, fmt.Errorf("new secret: %w", err)
	}
	now := s.now().UTC()
	sub.PrevSecret, sub.PrevSecretExpiresAt = sub.Secret, now.Add(s.overlap)
	sub.Secret, sub.UpdatedAt = secret, now
	if err := s.store.UpdateSubscription(ctx, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Redeliver sends a message again now, with a fresh retry cycle.
func (s *Service) Redeliver(ctx context.Context, accountID, messageID string) (*store.Message, error) {
	m, err := s.store.Message(ctx, accountID, messageID)
	if err != nil {
		return nil, err
	}
	sub, err := s.store.Subscription(ctx, accountID, m.SubscriptionID)
	if err != nil {
		return nil, err
	}
	if sub.Disabled {
		return nil, ErrDisabled
	}
	m, err = s.store.RedeliverMessage(ctx, accountID, messageID, s.now().UTC())
	if err != nil {
		return nil, err
	}
	s.bus.MessagesDue.Publish(notify.Due{})
	return m, nil
}

func (s *Service) apply(ctx context.Context, sub *store.Subscription, in Input) error {
	if in.URL != nil {
		u, err := s.urls.CheckURL(ctx, strings.TrimSpace(*in.URL))
		if err != nil {
			return invalid("webhookUrl", "%s", outbound.Describe(err))
		}
		sub.URL = u.String()
	}
	if in.EventTypes != nil {
		types := []string{}
		for _, t := range *in.EventTypes {
			if !slices.Contains(EventTypes, t) {
				return invalid("eventTypes", "unknown event type %q; known: %s", t, strings.Join(EventTypes, ", "))
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		sub.EventTypes = types
	}
	if in.RateLimit != nil {
		if *in.RateLimit < 1 || *in.RateLimit > maxRateLimit {
			return invalid("rateLimit", "must be from 1 to %d messages per second; leave it out for no limit", maxRateLimit)
		}
		sub.RateLimit = *in.RateLimit
	}
	if in.Description != nil {
		if len(*in.Description) > maxDescriptionBytes || !utf8.ValidString(*in.Description) {
			return invalid("description", "must be at most %d bytes of UTF-8 text", maxDescriptionBytes)
		}
		sub.Description = *in.Description
	}
	return nil
}

// Get returns one of an account's subscriptions.
func (s *Service) Get(ctx context.Context, accountID, subID string) (*store.Subscription, error) {
	return s.store.Subscription(ctx, accountID, subID)
}

// List returns a page of an account's subscriptions.
func (s *Service) List(ctx context.Context, p store.ListSubscriptionsParams) ([]*store.Subscription, error) {
	return s.store.ListSubscriptions(ctx, p)
}

// Delete removes one of an account's subscriptions.
func (s *Service) Delete(ctx context.Context, accountID, subID string) error {
	return s.store.DeleteSubscription(ctx, accountID, subID)
}

// ListMessages returns a page of a subscription's messages.
func (s *Service) ListMessages(ctx context.Context, p store.ListMessagesParams) ([]*store.Message, error) {
	return s.store.ListMessages(ctx, p)
}

// ListAttempts returns a page of a message's delivery attempts.
func (s *Service) ListAttempts(ctx context.Context, p store.ListAttemptsParams) ([]*store.Attempt, error) {
	return s.store.ListAttempts(ctx, p)
}
