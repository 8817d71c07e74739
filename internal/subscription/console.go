package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// EventTest is the event type of a test message, sent on request to one
// subscription whatever its filter.
const EventTest = "calhook.test"

// SendTest queues a calhook.test message for a subscription, delivered
// through the normal pipeline (signing, retries, the message log).
func (s *Service) SendTest(ctx context.Context, accountID, subID string) (*store.Message, error) {
	sub, err := s.store.Subscription(ctx, accountID, subID)
	if err != nil {
		return nil, err
	}
	if sub.Disabled {
		return nil, ErrDisabled
	}
	now := s.now().UTC()
	m := &store.Message{
		ID: id.UUID(), AccountID: accountID, SubscriptionID: subID, EventType: EventTest,
		CreatedAt: now, NextAttemptAt: now,
	}
	m.Payload, err = json.Marshal(map[string]any{
		"webhookId": m.ID, "eventType": EventTest, "timestamp": now.Format(time.RFC3339),
		"data": map[string]any{"subscriptionId": subID, "message": "This is a test event sent from calhook."},
	})
	if err != nil {
		return nil, fmt.Errorf("encode test message: %w", err)
	}
	if err := s.store.EnqueueMessage(ctx, m); err != nil {
		return nil, err
	}
	s.bus.MessagesDue.Publish(notify.Due{})
	return m, nil
}

// maxRedeliverAll bounds one "redeliver every failed message" request.
const maxRedeliverAll = 1000

// RedeliverFailed sends again every undeliverable message of a
// subscription created at or after since (up to a bound), and returns how
// many.
func (s *Service) RedeliverFailed(ctx context.Context, accountID, subID string, since time.Time) (int, error) {
	sub, err := s.store.Subscription(ctx, accountID, subID)
	if err != nil {
		return 0, err
	}
	if sub.Disabled {
		return 0, ErrDisabled
	}
	var ids []string
	p := store.ConsoleMessagesParams{AccountID: accountID, SubscriptionID: subID, Status: store.MessageUndeliverable,
		Page: store.Page{Limit: 200}}
	for len(ids) < maxRedeliverAll {
		msgs, next, err := s.store.ConsoleMessages(ctx, p)
		if err != nil {
			return 0, err
		}
		old := false
		for _, m := range msgs {
			if m.CreatedAt.Before(since) {
				old = true
				break
			}
			ids = append(ids, m.ID)
		}
		if old || next == 0 {
			break
		}
		p.After = next
	}
	now := s.now().UTC()
	for _, mid := range ids {
		if _, err := s.store.RedeliverMessage(ctx, accountID, mid, now); err != nil {
			return 0, err
		}
	}
	if len(ids) > 0 {
		s.bus.MessagesDue.Publish(notify.Due{})
	}
	return len(ids), nil
}

// FilterMessages returns a page of a subscription's messages, newest
// first, filtered by status and event type when set, and the cursor of
// the next page (0 at the end); see store.ConsoleStore.
func (s *Service) FilterMessages(ctx context.Context, p store.ConsoleMessagesParams) ([]*store.Message, int64, error) {
	return s.store.ConsoleMessages(ctx, p)
}

// Message returns one message of an account.
func (s *Service) Message(ctx context.Context, accountID, messageID string) (*store.Message, error) {
	return s.store.Message(ctx, accountID, messageID)
}
