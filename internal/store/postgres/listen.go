package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backoff bounds of Listen's reconnects.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// Listen receives the notifications that writes on any node send, on a
// dedicated connection outside the pool, until ctx ends; then it returns
// nil. It calls onChange(accountID, calendarID) when a calendar's feed or
// the change log changed (every such change also changes the account's
// all-calendars feed; an empty calendarID is a change to the account
// itself: its feed token, or its deletion), and onMessages when messages
// became due. Both callbacks must be set; they run on Listen's goroutine,
// one at a time, and should return quickly.
//
// Notifications are database-wide: stores on other schemas of the same
// database are heard too, which costs a spurious re-check at worst.
//
// Notifications sent while the connection is down are lost, so after every
// (re)connect, once LISTEN is in effect, Listen calls onMessages() and
// onChange("", ""), which means "anything may have changed": callers
// re-check what they cache. The first such call also tells that Listen is
// ready. A lost connection is retried with exponential backoff; its errors
// go to db.Logger.
func (db *DB) Listen(ctx context.Context, onChange func(accountID, calendarID string), onMessages func()) error {
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
		if db.Logger != nil {
			db.Logger.Warn("PostgreSQL notifications interrupted; reconnecting", "error", err, "retry_in", backoff)
		}
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
func (db *DB) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, onChange func(accountID, calendarID string),
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
	onChange("", "")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		switch n.Channel {
		case changesChannel:
			accountID, calendarID, _ := strings.Cut(n.Payload, ":")
			onChange(accountID, calendarID)
		case messagesChannel:
			onMessages()
		}
	}
}
