package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/store"
)

const subscriptionColumns = `seq, id, account_id, coalesce(calendar_id, ''), url, description, event_types, rate_limit,
	secret, prev_secret, prev_secret_expires_at, disabled, disabled_reason, disabled_at, failing_since, created_at, updated_at`

func scanSubscription(row pgx.Row) (*store.Subscription, error) {
	var s store.Subscription
	var prevExp, disabledAt, failing pgtype.Timestamptz
	if err := row.Scan(&s.Seq, &s.ID, &s.AccountID, &s.CalendarID, &s.URL, &s.Description, &s.EventTypes, &s.RateLimit,
		&s.Secret, &s.PrevSecret, &prevExp, &s.Disabled, &s.DisabledReason, &disabledAt, &failing,
		&s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	if s.EventTypes == nil {
		s.EventTypes = []string{} // as the SQLite adapter decodes "[]"
	}
	s.PrevSecretExpiresAt, s.DisabledAt, s.FailingSince = fromOpt(prevExp), fromOpt(disabledAt), fromOpt(failing)
	s.CreatedAt, s.UpdatedAt = utc(s.CreatedAt), utc(s.UpdatedAt)
	return &s, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func eventTypes(types []string) []string {
	if types == nil {
		return []string{}
	}
	return types
}

// rateKey names a subscription's row in rate_limits; hosts are "host:…".
func rateKey(subscriptionID string) string { return "sub:" + subscriptionID }

// CreateSubscription stores a new subscription; a calendar that is not the
// account's is store.ErrNotFound.
func (db *DB) CreateSubscription(ctx context.Context, s *store.Subscription) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if s.CalendarID != "" {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM calendars WHERE id = $1 AND account_id = $2`,
				s.CalendarID, s.AccountID).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO subscriptions
			(id, account_id, calendar_id, url, description, event_types, rate_limit, secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`,
			s.ID, s.AccountID, nullable(s.CalendarID), s.URL, s.Description, eventTypes(s.EventTypes), s.RateLimit,
			s.Secret, s.CreatedAt, s.UpdatedAt).Scan(&s.Seq)
		if isForeignKey(err) {
			return store.ErrNotFound // the calendar or account was deleted meanwhile
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

// Subscription returns one subscription of an account.
func (db *DB) Subscription(ctx context.Context, accountID, id string) (*store.Subscription, error) {
	s, err := scanSubscription(db.pool.QueryRow(ctx,
		`SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return s, nil
}

func querySubscriptions(ctx context.Context, q querier, where string, args ...any) ([]*store.Subscription, error) {
	rows, err := q.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Subscription, error) { return scanSubscription(row) })
}

// ListSubscriptions returns a page of an account's subscriptions in
// creation order, optionally of one calendar.
func (db *DB) ListSubscriptions(ctx context.Context, p store.ListSubscriptionsParams) ([]*store.Subscription, error) {
	where, args := `WHERE account_id = $1 AND seq > $2`, []any{p.AccountID, p.After}
	if p.CalendarID != "" {
		where += ` AND calendar_id = $3`
		args = append(args, p.CalendarID)
	}
	args = append(args, p.Limit)
	subs, err := querySubscriptions(ctx, db.pool, where+fmt.Sprintf(` ORDER BY seq LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return subs, nil
}

// UpdateSubscription stores a subscription's fields. Disabling parks its
// queued messages; enabling makes them due at once and clears its failure
// streak.
func (db *DB) UpdateSubscription(ctx context.Context, s *store.Subscription) error {
	failingSince := s.FailingSince
	err := db.tx(ctx, func(tx pgx.Tx) error {
		s.FailingSince = failingSince
		var wasDisabled bool
		if err := tx.QueryRow(ctx, `SELECT disabled FROM subscriptions WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE`,
			s.ID, s.AccountID).Scan(&wasDisabled); err != nil {
			return notFound(err)
		}
		if wasDisabled && !s.Disabled {
			s.FailingSince = time.Time{}
		}
		_, err := tx.Exec(ctx, `UPDATE subscriptions SET url = $1, description = $2, event_types = $3, rate_limit = $4,
			secret = $5, prev_secret = $6, prev_secret_expires_at = $7, disabled = $8, disabled_reason = $9, disabled_at = $10,
			failing_since = $11, updated_at = $12 WHERE id = $13`,
			s.URL, s.Description, eventTypes(s.EventTypes), s.RateLimit, s.Secret, s.PrevSecret,
			opt(s.PrevSecretExpiresAt), s.Disabled, s.DisabledReason, opt(s.DisabledAt),
			opt(s.FailingSince), s.UpdatedAt, s.ID)
		if err != nil {
			return err
		}
		switch {
		case s.Disabled && !wasDisabled:
			return parkMessages(ctx, tx, s.ID)
		case !s.Disabled && wasDisabled:
			if _, err := tx.Exec(ctx, `UPDATE messages SET next_attempt_at = $1 WHERE subscription_id = $2 AND status = 'pending'`,
				s.UpdatedAt, s.ID); err != nil {
				return err
			}
			return notifyMessages(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update subscription %s: %w", s.ID, err)
	}
	return nil
}

func parkMessages(ctx context.Context, tx pgx.Tx, subscriptionID string) error {
	_, err := tx.Exec(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = $1
		WHERE subscription_id = $2 AND status IN ('pending', 'delivering')`, parked, subscriptionID)
	return err
}

// DeleteSubscription removes a subscription; its messages and attempts go
// with it.
func (db *DB) DeleteSubscription(ctx context.Context, accountID, id string) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1 AND account_id = $2`, id, accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "subscription "+id); err != nil {
			return err
		}
		// Last: a claim may hold this row while it waits for none of ours.
		_, err = tx.Exec(ctx, `DELETE FROM rate_limits WHERE key = $1`, rateKey(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return nil
}

// ActiveSubscriptions returns the enabled subscriptions of the accounts.
func (db *DB) ActiveSubscriptions(ctx context.Context, accountIDs []string) ([]*store.Subscription, error) {
	if len(accountIDs) == 0 {
		return nil, nil
	}
	subs, err := querySubscriptions(ctx, db.pool, `WHERE NOT disabled AND account_id = ANY($1) ORDER BY seq`, accountIDs)
	if err != nil {
		return nil, fmt.Errorf("active subscriptions: %w", err)
	}
	return subs, nil
}

func cursorPosition(ctx context.Context, q querier, name string) (int64, error) {
	var pos int64
	err := q.QueryRow(ctx, `SELECT coalesce((SELECT position FROM cursors WHERE name = $1), 0)`, name).Scan(&pos)
	return pos, err
}

// ReadChanges returns the changes after the named cursor.
//
// Change ids are drawn when a change is inserted, not when it commits, so a
// transaction may commit id 11 while id 10 is still in flight; a reader that
// moved its cursor past 11 would never see 10. ReadChanges therefore first
// takes the changes lock exclusively, which waits until every transaction
// that appends changes (under the shared lock) has ended, and reads the
// newest id then: every id up to it is committed or rolled back for good.
// The exclusive lock is held for that one read only.
func (db *DB) ReadChanges(ctx context.Context, cursor string, limit int) ([]*store.Change, int64, error) {
	var pos, settled int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, db.changesKey); err != nil {
			return err
		}
		// A new statement: its snapshot is taken after the wait.
		return tx.QueryRow(ctx, `SELECT coalesce((SELECT position FROM cursors WHERE name = $1), 0),
			coalesce((SELECT max(id) FROM changes), 0)`, cursor).Scan(&pos, &settled)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read cursor %s: %w", cursor, err)
	}
	changes, err := queryChanges(ctx, db.pool, `WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3`, pos, settled, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("read changes: %w", err)
	}
	return changes, pos, nil
}

// EnqueueMessages stores messages and moves the cursor in one transaction.
// The cursor moves first, with a compare-and-set on its row, which also
// makes concurrent fan-outs queue behind each other.
func (db *DB) EnqueueMessages(ctx context.Context, cursor string, from, to int64, msgs []*store.Message) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE cursors SET position = $1 WHERE name = $2 AND position = $3`, to, cursor, from)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			moved := true
			if from == 0 {
				// The cursor may not exist yet; if another node creates it
				// first, this insert waits for it and then does nothing.
				tag, err := tx.Exec(ctx, `INSERT INTO cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
					cursor, to)
				if err != nil {
					return err
				}
				moved = tag.RowsAffected() == 0
			}
			if moved {
				pos, err := cursorPosition(ctx, tx, cursor)
				if err != nil {
					return err
				}
				return fmt.Errorf("cursor %s is at %d, not %d: %w", cursor, pos, from, store.ErrConflict)
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		n, err := insertMessages(ctx, tx, msgs)
		if err != nil || n == 0 {
			return err
		}
		return notifyMessages(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("enqueue messages: %w", err)
	}
	return nil
}

// insertMessages stores messages, skipping (change, target) pairs that
// exist, and returns how many it stored. A ping is stored only if it
// disarms its hook: a hook gets one ping per arming.
func insertMessages(ctx context.Context, tx pgx.Tx, msgs []*store.Message) (int, error) {
	var pings []string
	for _, m := range msgs {
		if m.HookID != "" {
			pings = append(pings, m.HookID)
		}
	}
	disarmed := map[string]bool{}
	if len(pings) > 0 {
		rows, err := tx.Query(ctx, `UPDATE icalhooks SET armed = false WHERE id = ANY($1) AND armed AND verified RETURNING id`, pings)
		if err != nil {
			return 0, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return 0, err
		}
		for _, id := range ids {
			disarmed[id] = true
		}
	}
	batch := &pgx.Batch{}
	for _, m := range msgs {
		if m.HookID != "" {
			if !disarmed[m.HookID] {
				continue
			}
			delete(disarmed, m.HookID) // one ping per arming, even within a batch
		}
		batch.Queue(`INSERT INTO messages
			(id, account_id, subscription_id, hook_id, change_id, event_type, payload, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING`,
			m.ID, m.AccountID, nullable(m.SubscriptionID), nullable(m.HookID), m.ChangeID,
			m.EventType, m.Payload, m.NextAttemptAt, m.CreatedAt)
	}
	if batch.Len() == 0 {
		return 0, nil
	}
	res := tx.SendBatch(ctx, batch)
	stored := 0
	for range batch.Len() {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return 0, err
		}
		stored += int(tag.RowsAffected())
	}
	return stored, res.Close()
}

// claimCandidate is a due message locked by a claim.
type claimCandidate struct {
	id, sub, host string
	reserved      bool
	rate          int
}

// ClaimMessages leases due messages, applying rate limits, in one
// transaction. Webhooks are limited per subscription, pings per target
// host; a message over its limit is not claimed but given its slot as due
// time, so limits delay and never drop.
//
// Due messages are locked with FOR UPDATE SKIP LOCKED, so nodes claiming
// at once take disjoint sets. The limiters' rows are then locked in key
// order (never skipped: a node must see the slot another node just gave
// out), so two nodes never both send within one subscription's or host's
// interval. A claim waits only on limiter rows, and only claims lock them,
// which keeps claims free of deadlocks with every other write.
func (db *DB) ClaimMessages(ctx context.Context, p store.ClaimParams) ([]*store.Delivery, error) {
	var out []*store.Delivery
	err := db.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		query := `SELECT m.id, coalesce(m.subscription_id, ''), coalesce(h.host, ''), m.slot_reserved, coalesce(s.rate_limit, 0)
			FROM messages m
			LEFT JOIN subscriptions s ON s.id = m.subscription_id
			LEFT JOIN icalhooks h ON h.id = m.hook_id
			WHERE m.status IN ('pending', 'delivering') AND m.next_attempt_at <= $1 AND NOT coalesce(s.disabled, false)`
		args := []any{p.Now}
		var subs, hosts []string
		for _, k := range p.Exclude {
			if host, ok := strings.CutPrefix(k, "host:"); ok {
				hosts = append(hosts, host)
			} else {
				subs = append(subs, k)
			}
		}
		if len(subs) > 0 {
			args = append(args, subs)
			query += fmt.Sprintf(` AND (m.subscription_id IS NULL OR m.subscription_id <> ALL($%d))`, len(args))
		}
		if len(hosts) > 0 {
			args = append(args, hosts)
			query += fmt.Sprintf(` AND (h.host IS NULL OR h.host <> ALL($%d))`, len(args))
		}
		args = append(args, p.Limit)
		rows, err := tx.Query(ctx, query+fmt.Sprintf(` ORDER BY m.next_attempt_at LIMIT $%d FOR UPDATE OF m SKIP LOCKED`, len(args)), args...)
		if err != nil {
			return err
		}
		cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimCandidate, error) {
			var c claimCandidate
			err := row.Scan(&c.id, &c.sub, &c.host, &c.reserved, &c.rate)
			return c, err
		})
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}

		// Lock the limiters these messages count against.
		keyOf := func(c claimCandidate) (key string, rate int) {
			if c.host != "" {
				return "host:" + c.host, p.HostRate
			}
			return rateKey(c.sub), c.rate
		}
		var keys []string
		for _, c := range cands {
			if key, rate := keyOf(c); rate > 0 && !c.reserved {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		tats := map[string]time.Time{}
		if len(keys) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO rate_limits (key, tat)
				SELECT k, 'epoch' FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (key) DO NOTHING`, keys); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT key, tat FROM rate_limits WHERE key = ANY($1) ORDER BY key FOR UPDATE`, keys)
			if err != nil {
				return err
			}
			var key string
			var tat time.Time
			if _, err := pgx.ForEachRow(rows, []any{&key, &tat}, func() error {
				tats[key] = tat
				return nil
			}); err != nil {
				return err
			}
		}

		var claim, snoozeIDs []string
		var snoozeAt []time.Time
		for _, c := range cands {
			key, rate := keyOf(c)
			if rate <= 0 || c.reserved {
				claim = append(claim, c.id)
				continue
			}
			slot, next := store.NextSlot(tats[key], p.Now, rate)
			tats[key] = next
			if !slot.After(p.Now) {
				claim = append(claim, c.id)
				continue
			}
			snoozeIDs, snoozeAt = append(snoozeIDs, c.id), append(snoozeAt, slot)
		}
		if len(snoozeIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE messages m SET status = 'pending', next_attempt_at = u.at, slot_reserved = true
				FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE m.id = u.id`, snoozeIDs, snoozeAt); err != nil {
				return err
			}
		}
		if len(keys) > 0 {
			newTATs := make([]time.Time, len(keys))
			for i, k := range keys {
				newTATs[i] = tats[k]
			}
			if _, err := tx.Exec(ctx, `UPDATE rate_limits r SET tat = u.tat
				FROM unnest($1::text[], $2::timestamptz[]) AS u(key, tat) WHERE r.key = u.key`, keys, newTATs); err != nil {
				return err
			}
		}
		if len(claim) == 0 {
			return nil
		}
		lease := p.Now.Add(p.Lease)
		rows, err = tx.Query(ctx, `UPDATE messages SET status = 'delivering', next_attempt_at = $1, slot_reserved = false
			WHERE id = ANY($2)
			RETURNING id, account_id, coalesce(subscription_id, ''), coalesce(hook_id, ''), change_id, event_type, payload,
				attempts, schedule_pos, created_at`, lease, claim)
		if err != nil {
			return err
		}
		byID := map[string]*store.Delivery{}
		if _, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
			m := &store.Message{Status: store.MessageDelivering, NextAttemptAt: lease}
			d := &store.Delivery{Message: m}
			err := row.Scan(&m.ID, &m.AccountID, &m.SubscriptionID, &m.HookID, &m.ChangeID, &m.EventType, &m.Payload,
				&m.Attempts, &d.SchedulePos, &m.CreatedAt)
			m.CreatedAt = utc(m.CreatedAt)
			byID[m.ID] = d
			return struct{}{}, err
		}); err != nil {
			return err
		}
		// In due order, as they were chosen.
		for _, id := range claim {
			out = append(out, byID[id])
		}
		return fillTargets(ctx, tx, out, p.Now)
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return out, nil
}

// fillTargets sets the URL, secrets or host of each claimed delivery.
func fillTargets(ctx context.Context, tx pgx.Tx, out []*store.Delivery, now time.Time) error {
	var subIDs, hookIDs []string
	for _, d := range out {
		if d.Message.HookID != "" {
			hookIDs = append(hookIDs, d.Message.HookID)
		} else {
			subIDs = append(subIDs, d.Message.SubscriptionID)
		}
	}
	byID := map[string]*store.Subscription{}
	if len(subIDs) > 0 {
		subs, err := querySubscriptions(ctx, tx, `WHERE id = ANY($1)`, subIDs)
		if err != nil {
			return err
		}
		for _, s := range subs {
			byID[s.ID] = s
		}
	}
	type target struct{ url, host string }
	hooks := map[string]target{}
	if len(hookIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, url, host FROM icalhooks WHERE id = ANY($1)`, hookIDs)
		if err != nil {
			return err
		}
		var id string
		var t target
		if _, err := pgx.ForEachRow(rows, []any{&id, &t.url, &t.host}, func() error {
			hooks[id] = t
			return nil
		}); err != nil {
			return err
		}
	}
	for _, d := range out {
		if d.Message.HookID != "" {
			t := hooks[d.Message.HookID]
			d.URL, d.Host = t.url, t.host
			continue
		}
		s := byID[d.Message.SubscriptionID]
		d.URL = s.URL
		d.Secrets = []string{s.Secret}
		if s.PrevSecret != "" && s.PrevSecretExpiresAt.After(now) {
			d.Secrets = append(d.Secrets, s.PrevSecret)
		}
	}
	return nil
}

// ReleaseMessages puts claimed messages back in the queue.
func (db *DB) ReleaseMessages(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = $1
			WHERE status = 'delivering' AND id = ANY($2)`, at, ids); err != nil {
			return err
		}
		return notifyMessages(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("release messages: %w", err)
	}
	return nil
}

// RecordAttempts stores attempt outcomes in one transaction.
func (db *DB) RecordAttempts(ctx context.Context, results []*store.AttemptResult, p store.RecordParams) ([]string, error) {
	var disabled []string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		disabled = nil
		batch := &pgx.Batch{}
		// health holds, per subscription, the outcome of its latest
		// attempt in this batch.
		type health struct {
			ok      bool
			at      time.Time
			disable string
		}
		subs := map[string]*health{}
		var order []string
		for _, r := range results {
			if r.HookID == "" && subs[r.SubscriptionID] == nil {
				subs[r.SubscriptionID] = &health{}
				order = append(order, r.SubscriptionID)
			}
		}
		// Lock the subscriptions first, in id order: writers that touch a
		// subscription and its messages (UpdateSubscription, disabling)
		// take the subscription first too, and two nodes recording at once
		// queue instead of deadlocking.
		sorted := slices.Clone(order)
		slices.Sort(sorted)
		if len(sorted) > 0 {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, sorted); err != nil {
				return err
			}
		}
		for _, r := range results {
			// A message deleted since its claim has nothing left to record.
			batch.Queue(`INSERT INTO attempts
				(message_id, delivery_id, attempted_at, status_code, latency_us, error, response)
				SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1)`,
				r.MessageID, r.DeliveryID, r.AttemptedAt, r.StatusCode, r.Latency.Microseconds(), r.Error, r.Response)
			status, next := store.MessagePending, any(r.NextAttemptAt)
			switch r.Outcome {
			case store.OutcomeDelivered:
				status, next = store.MessageDelivered, nil
			case store.OutcomeUndeliverable:
				status, next = store.MessageUndeliverable, nil
			}
			var delivered any
			if status == store.MessageDelivered {
				delivered = r.AttemptedAt
			}
			batch.Queue(`UPDATE messages SET status = $1, next_attempt_at = $2, attempts = attempts + 1,
				schedule_pos = schedule_pos + 1, last_status = $3, last_error = $4, updated_at = $5,
				delivered_at = coalesce($6, delivered_at)
				WHERE id = $7 AND status = 'delivering'`,
				status, next, r.StatusCode, r.Error, p.Now, delivered, r.MessageID)
			if r.HookID != "" {
				queuePing(batch, r)
				continue
			}
			h := subs[r.SubscriptionID]
			h.ok, h.at = r.Outcome == store.OutcomeDelivered, r.AttemptedAt
			if r.Disable != "" {
				h.disable = r.Disable
			}
		}
		if batch.Len() > 0 {
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
		}
		disable := map[string]bool{}
		for _, id := range sorted {
			h := subs[id]
			if h.ok && h.disable == "" {
				if _, err := tx.Exec(ctx, `UPDATE subscriptions SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, id); err != nil {
					return err
				}
				continue
			}
			var since time.Time
			var isDisabled bool
			err := tx.QueryRow(ctx, `UPDATE subscriptions SET failing_since = coalesce(failing_since, $1)
				WHERE id = $2 RETURNING failing_since, disabled`, h.at, id).Scan(&since, &isDisabled)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			reason := h.disable
			if reason == "" && p.DisableAfter > 0 && h.at.Sub(since) >= p.DisableAfter {
				reason = fmt.Sprintf("every delivery attempt failed for %s", p.DisableAfter)
			}
			if reason == "" || isDisabled {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE subscriptions SET disabled = true, disabled_reason = $1, disabled_at = $2, updated_at = $2
				WHERE id = $3`, reason, p.Now, id); err != nil {
				return err
			}
			if err := parkMessages(ctx, tx, id); err != nil {
				return err
			}
			disable[id] = true
		}
		for _, id := range order {
			if disable[id] {
				disabled = append(disabled, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	return disabled, nil
}

// queuePing updates a hook's health after a ping; a ping that is
// undeliverable drops the hook.
func queuePing(batch *pgx.Batch, r *store.AttemptResult) {
	if r.Outcome == store.OutcomeUndeliverable {
		batch.Queue(`DELETE FROM icalhooks WHERE id = $1`, r.HookID)
		return
	}
	failures := `failures + 1`
	if r.Outcome == store.OutcomeDelivered {
		failures = `0`
	}
	batch.Queue(`UPDATE icalhooks SET last_ping_at = $1, last_ping_status = $2, last_ping_error = $3,
		failures = `+failures+` WHERE id = $4`, r.AttemptedAt, r.StatusCode, r.Error, r.HookID)
}

// NextDue returns when the earliest queued message is due.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	var at pgtype.Timestamptz
	err := db.pool.QueryRow(ctx, `SELECT min(next_attempt_at) FROM messages
		WHERE status IN ('pending', 'delivering') AND next_attempt_at < $1`, parked).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due message: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return at.Time.UTC(), true, nil
}

const messageColumns = `seq, id, account_id, coalesce(subscription_id, ''), coalesce(hook_id, ''), change_id, event_type, payload,
	status, attempts, next_attempt_at, last_status, last_error, created_at, updated_at, delivered_at`

func scanMessage(row pgx.Row) (*store.Message, error) {
	var m store.Message
	var next, delivered pgtype.Timestamptz
	if err := row.Scan(&m.Seq, &m.ID, &m.AccountID, &m.SubscriptionID, &m.HookID, &m.ChangeID, &m.EventType, &m.Payload,
		&m.Status, &m.Attempts, &next, &m.LastStatus, &m.LastError, &m.CreatedAt, &m.UpdatedAt, &delivered); err != nil {
		return nil, notFound(err)
	}
	if next.Valid && !next.Time.Equal(parked) && m.Status == store.MessagePending {
		m.NextAttemptAt = next.Time.UTC()
	}
	m.CreatedAt, m.UpdatedAt, m.DeliveredAt = utc(m.CreatedAt), utc(m.UpdatedAt), fromOpt(delivered)
	return &m, nil
}

// ListMessages returns a page of a subscription's messages, newest first.
func (db *DB) ListMessages(ctx context.Context, p store.ListMessagesParams) ([]*store.Message, error) {
	if _, err := db.Subscription(ctx, p.AccountID, p.SubscriptionID); err != nil {
		return nil, err
	}
	where, args := `WHERE subscription_id = $1 AND account_id = $2`, []any{p.SubscriptionID, p.AccountID}
	if p.After > 0 {
		args = append(args, p.After)
		where += ` AND seq < $3`
	}
	args = append(args, p.Limit)
	rows, err := db.pool.Query(ctx, `SELECT `+messageColumns+` FROM messages `+where+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return msgs, nil
}

// Message returns one message of an account.
func (db *DB) Message(ctx context.Context, accountID, id string) (*store.Message, error) {
	m, err := scanMessage(db.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1 AND account_id = $2`,
		id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get message %s: %w", id, err)
	}
	return m, nil
}

// ListAttempts returns a page of a message's attempts, oldest first.
func (db *DB) ListAttempts(ctx context.Context, p store.ListAttemptsParams) ([]*store.Attempt, error) {
	if _, err := db.Message(ctx, p.AccountID, p.MessageID); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id, message_id, delivery_id, attempted_at, status_code, latency_us, error, response
		FROM attempts WHERE message_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.MessageID, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	atts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Attempt, error) {
		var a store.Attempt
		var lat int64
		if err := row.Scan(&a.ID, &a.MessageID, &a.DeliveryID, &a.AttemptedAt, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
			return nil, err
		}
		a.AttemptedAt, a.Latency = utc(a.AttemptedAt), time.Duration(lat)*time.Microsecond
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return atts, nil
}

// RedeliverMessage makes a message due now with a fresh retry cycle (or
// parks it, if its subscription is disabled).
func (db *DB) RedeliverMessage(ctx context.Context, accountID, id string, now time.Time) (*store.Message, error) {
	var m *store.Message
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = scanMessage(tx.QueryRow(ctx, `UPDATE messages
			SET status = 'pending', schedule_pos = 0, slot_reserved = false, updated_at = $1,
			    next_attempt_at = CASE WHEN (SELECT disabled FROM subscriptions s WHERE s.id = messages.subscription_id)
			                      THEN $2::timestamptz ELSE $1 END
			WHERE id = $3 AND account_id = $4 RETURNING `+messageColumns, now, parked, id, accountID))
		if err != nil {
			return err
		}
		return notifyMessages(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver message %s: %w", id, err)
	}
	return m, nil
}

// pruneBatch bounds each delete so that no transaction holds many locks.
const pruneBatch = 5000

// Prune deletes what is older than before, in batches.
func (db *DB) Prune(ctx context.Context, before time.Time) (store.PruneStats, error) {
	var st store.PruneStats
	loop := func(query string) (int64, error) {
		var total int64
		for {
			tag, err := db.pool.Exec(ctx, query, before, pruneBatch)
			if err != nil {
				return total, err
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				return total, nil
			}
		}
	}
	var err error
	if st.Attempts, err = loop(`DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < $1 LIMIT $2)`); err != nil {
		return st, fmt.Errorf("prune attempts: %w", err)
	}
	if st.Messages, err = loop(`DELETE FROM messages WHERE seq IN (SELECT seq FROM messages
		WHERE status IN ('delivered', 'undeliverable') AND updated_at < $1 LIMIT $2)`); err != nil {
		return st, fmt.Errorf("prune messages: %w", err)
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		st.Changes = 0
		// Lock the fan-out's cursor so it cannot move while the horizon
		// is computed from it.
		var fanout int64
		err := tx.QueryRow(ctx, `SELECT position FROM cursors WHERE name = $1 FOR SHARE`, store.FanOutCursor).Scan(&fanout)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var horizon pgtype.Int8
		if err := tx.QueryRow(ctx, `SELECT max(id) FROM changes WHERE occurred_at < $1 AND id <= $2`, before, fanout).Scan(&horizon); err != nil {
			return err
		}
		if !horizon.Valid {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM changes WHERE id <= $1`, horizon.Int64)
		if err != nil {
			return err
		}
		st.Changes = tag.RowsAffected()
		_, err = tx.Exec(ctx, `INSERT INTO cursors (name, position) VALUES ('horizon', $1)
			ON CONFLICT (name) DO UPDATE SET position = greatest(cursors.position, excluded.position)`, horizon.Int64)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("prune changes: %w", err)
	}
	return st, nil
}

// ChangeHorizon returns the newest pruned change id.
func (db *DB) ChangeHorizon(ctx context.Context) (int64, error) {
	pos, err := cursorPosition(ctx, db.pool, "horizon")
	if err != nil {
		return 0, fmt.Errorf("change horizon: %w", err)
	}
	return pos, nil
}
