package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/notify"
)

// Backoff bounds of Listen's reconnects.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// Change is what a notification of a write reports: the seam's
// FeedChange, so that no subscriber names a PostgreSQL type.
type Change = notify.FeedChange

// Listen receives the notifications that writes on any node send, on a
// dedicated connection outside the pool, until ctx ends; then it returns
// nil. It publishes to bus's FeedsChanged when a calendar's feed, a
// calendar or an account changed (every such change also changes the
// account's all-calendars feed), and to MessagesDue when messages became
// due, on Listen's goroutine, one note at a time.
//
// Notifications are database-wide: stores on other schemas of the same
// database are heard too, which costs a spurious re-check at worst.
//
// Notifications sent while the connection is down are lost, so after every
// (re)connect, once LISTEN is in effect, Listen publishes MessagesDue and
// a FeedChange that means "anything may have changed": subscribers
// re-check what they cache. The first such note also tells that Listen is
// ready. A lost connection is retried with exponential backoff; its errors
// go to the store's logger.
func (db *DB) Listen(ctx context.Context, bus *notify.Bus) error {
	onChange, onMessages := bus.FeedsChanged.Publish, func() { bus.MessagesDue.Publish(notify.Due{}) }
	cfg := db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "calhook listen"
	}
	backoff := listenMinBackoff
	for {
		err := db.listenOnce(ctx, cfg, onChange, onMessages, func() { backoff = listenMinBackoff })
		if ctx.Err() != nil {
			return nil
		}
		db.logger().Warn("PostgreSQL notifications interrupted; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenOnce connects, listens and dispatches notifications until the
// connection fails or ctx ends. It calls connected once LISTEN is in
// effect.
func (db *DB) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, onChange func(Change),
	onMessages func(), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel+`; LISTEN `+messagesChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	onMessages()
	onChange(Change{})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		switch n.Channel {
		case changesChannel:
			onChange(parseChange(n.Payload))
		case messagesChannel:
			onMessages()
		}
	}
}

// calendarSuffix marks the payload of a change to a calendar itself.
const calendarSuffix = ":calendar"

// changePayload is the payload that parseChange reads back as c.
func changePayload(c Change) string {
	p := c.AccountID + ":" + c.CalendarID
	if c.Calendar {
		p += calendarSuffix
	}
	return p
}

func parseChange(payload string) Change {
	rest, calendar := strings.CutSuffix(payload, calendarSuffix)
	accountID, calendarID, _ := strings.Cut(rest, ":")
	return Change{AccountID: accountID, CalendarID: calendarID, Calendar: calendar}
}
