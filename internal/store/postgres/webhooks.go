package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
func (db *DB) CreateSubscription(ctx context.Context, s *store.Subscription, admit func(existing int) error) error {
	err := db.tx(ctx, func(tx *txn) error {
		if admit != nil {
			// Serialise the creates of one account, so that two
			// cannot both see room for one more. An advisory lock
			// rather than the account row, which every event write
			// updates.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('calhook.subscriptions:' || $1, 0))`,
				s.AccountID); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE account_id = $1`,
				s.AccountID).Scan(&n); err != nil {
				return err
			}
			if err := admit(n); err != nil {
				return err
			}
		}
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
	err := db.tx(ctx, func(tx *txn) error {
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
			tx.notifyMessages()
			return nil
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
	err := db.tx(ctx, func(tx *txn) error {
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
	cond, arg := oneOf("account_id", 1, accountIDs)
	subs, err := querySubscriptions(ctx, db.pool, `WHERE NOT disabled AND `+cond+` ORDER BY seq`, arg)
	if err != nil {
		return nil, fmt.Errorf("active subscriptions: %w", err)
	}
	return subs, nil
}

// claimCandidate is a due message locked by a claim.
type claimCandidate struct {
	seq       int64
	sub, host string
	reserved  bool
	rate      int
	url       string // the subscription's, for the webhook host limit
}

// ClaimMessages leases due messages, applying rate limits, in one
// pipelined transaction of two round trips (three when a candidate counts
// against a rate limit). Webhooks are limited per subscription, pings per
// target host; a message over its limit is not claimed but given its slot
// as due time, so limits delay and never drop.
//
// Due messages are locked with FOR UPDATE SKIP LOCKED, so nodes claiming
// at once take disjoint sets. The limiters' rows are then locked in key
// order (never skipped: a node must see the slot another node just gave
// out), so two nodes never both send within one subscription's or host's
// interval. A claim waits only on limiter rows, and only claims lock them,
// which keeps claims free of deadlocks with every other write.
func (db *DB) ClaimMessages(ctx context.Context, p store.ClaimParams) (*store.Claim, error) {
	// Most wake-ups of a dispatcher find nothing due (every node hears of
	// every batch of new messages): a look without locks answers them in
	// one round trip.
	next, err := nextDue(ctx, db.pool)
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	if next.IsZero() || next.After(p.Now) {
		return &store.Claim{NextDue: next}, nil
	}
	var out []*store.Delivery
	err = db.pipe(ctx, func(tx *pipeTx) error {
		out, next = nil, time.Time{}
		var cands []claimCandidate
		b := &pgx.Batch{}
		queueCandidates(b, p, &cands)
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		b = &pgx.Batch{}
		// The batch that commits also tells when the queue is due next:
		// after now if the claim saw every due message it may take.
		var after time.Time
		if len(cands) < p.Limit {
			after = p.Now
		}
		commit := func() error {
			queueNextDue(b, after, &next)
			return tx.commit(ctx, b)
		}
		if len(cands) == 0 {
			return commit()
		}

		// Lock the limiters these messages count against.
		limits := make([][]store.Limit, len(cands))
		var keys []string
		for i, c := range cands {
			limits[i] = store.MessageLimits(p, rateKey(c.sub), c.rate, c.url, c.host)
			for _, l := range limits[i] {
				keys = append(keys, l.Key)
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		states := map[string]*store.RateState{}
		if len(keys) > 0 {
			b.Queue(`INSERT INTO rate_limits (key, tat)
				SELECT k, 'epoch' FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (key) DO NOTHING`, keys)
			b.Queue(`SELECT key, tat, next FROM rate_limits WHERE key = ANY($1) ORDER BY key FOR UPDATE`, keys).
				Query(func(rows pgx.Rows) error {
					var key string
					var st store.RateState
					_, err := pgx.ForEachRow(rows, []any{&key, &st.TAT, &st.Next}, func() error {
						states[key] = &store.RateState{TAT: st.TAT, Next: st.Next}
						return nil
					})
					return err
				})
			if err := tx.send(ctx, b); err != nil {
				return err
			}
			b = &pgx.Batch{}
		}

		var claim, snoozeSeqs []int64
		var snoozeAt []time.Time
		for i, c := range cands {
			if send, at := store.PaceAll(states, limits[i], p.Now, c.reserved); send {
				claim = append(claim, c.seq)
			} else {
				snoozeSeqs, snoozeAt = append(snoozeSeqs, c.seq), append(snoozeAt, at)
			}
		}
		if len(snoozeSeqs) > 0 {
			b.Queue(`UPDATE messages m SET status = 'pending', next_attempt_at = u.at, slot_reserved = true
				FROM unnest($1::bigint[], $2::timestamptz[]) AS u(seq, at) WHERE m.seq = u.seq`, snoozeSeqs, snoozeAt)
		}
		if len(keys) > 0 {
			tats, nexts := make([]time.Time, len(keys)), make([]time.Time, len(keys))
			for i, k := range keys {
				tats[i], nexts[i] = states[k].TAT, states[k].Next
			}
			b.Queue(`UPDATE rate_limits r SET tat = u.tat, next = u.next
				FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(key, tat, next) WHERE r.key = u.key`,
				keys, tats, nexts)
		}
		if len(claim) > 0 {
			queueClaim(b, claim, p, func(ds []*store.Delivery) { out = ds })
		}
		return commit()
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return &store.Claim{Deliveries: out, NextDue: next}, nil
}

// queueCandidates adds to b the query that locks the due messages a claim
// may take and sets *cands to them.
func queueCandidates(b *pgx.Batch, p store.ClaimParams, cands *[]claimCandidate) {
	query := `SELECT m.seq, coalesce(m.subscription_id, ''), coalesce(h.host, ''), m.slot_reserved, coalesce(s.rate_limit, 0),
			coalesce(s.url, '')
		FROM messages m
		LEFT JOIN subscriptions s ON s.id = m.subscription_id
		LEFT JOIN icalhooks h ON h.id = m.hook_id
		WHERE m.status IN ('pending', 'delivering') AND m.next_attempt_at <= $1 AND NOT coalesce(s.disabled, false)`
	args := []any{p.Now}
	subs, hosts := p.ExcludeSubscriptions, p.ExcludeHosts
	if len(subs) > 0 {
		args = append(args, subs)
		query += fmt.Sprintf(` AND (m.subscription_id IS NULL OR m.subscription_id <> ALL($%d))`, len(args))
	}
	if len(hosts) > 0 {
		args = append(args, hosts)
		query += fmt.Sprintf(` AND (h.host IS NULL OR h.host <> ALL($%d))`, len(args))
	}
	args = append(args, p.Limit)
	b.Queue(query+fmt.Sprintf(` ORDER BY m.next_attempt_at LIMIT $%d FOR UPDATE OF m SKIP LOCKED`, len(args)), args...).
		Query(func(rows pgx.Rows) error {
			var err error
			*cands, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimCandidate, error) {
				var c claimCandidate
				err := row.Scan(&c.seq, &c.sub, &c.host, &c.reserved, &c.rate, &c.url)
				return c, err
			})
			return err
		})
}

// queueClaim adds to b the update that leases the messages seqs and
// returns them, in that order, with what sending them needs: the URL and
// secrets of a webhook's subscription, the URL and host of a ping's hook.
func queueClaim(b *pgx.Batch, seqs []int64, p store.ClaimParams, done func([]*store.Delivery)) {
	lease := p.Now.Add(p.Lease)
	b.Queue(`UPDATE messages m SET status = 'delivering', next_attempt_at = $1, slot_reserved = false
		FROM (SELECT x.seq, coalesce(s.url, h.url, '') AS url, coalesce(h.host, '') AS host, coalesce(s.secret, '') AS secret,
				coalesce(s.prev_secret, '') AS prev_secret, s.prev_secret_expires_at
			FROM messages x
			LEFT JOIN subscriptions s ON s.id = x.subscription_id
			LEFT JOIN icalhooks h ON h.id = x.hook_id
			WHERE x.seq = ANY($2)) t
		WHERE m.seq = t.seq
		RETURNING m.seq, m.id, m.account_id, coalesce(m.subscription_id, ''), coalesce(m.hook_id, ''), m.change_id, m.event_type,
			m.payload, m.attempts, m.schedule_pos, m.created_at, m.changed_at, m.trace, t.url, t.host, t.secret, t.prev_secret, t.prev_secret_expires_at`,
		lease, seqs).Query(func(rows pgx.Rows) error {
		bySeq := map[int64]*store.Delivery{}
		for rows.Next() {
			m := &store.Message{Status: store.MessageDelivering, NextAttemptAt: lease}
			d := &store.Delivery{Message: m}
			var secret, prev string
			var prevExp, changed pgtype.Timestamptz
			if err := rows.Scan(&m.Seq, &m.ID, &m.AccountID, &m.SubscriptionID, &m.HookID, &m.ChangeID, &m.EventType, &m.Payload,
				&m.Attempts, &d.SchedulePos, &m.CreatedAt, &changed, &m.Trace, &d.URL, &d.Host, &secret, &prev, &prevExp); err != nil {
				return err
			}
			m.CreatedAt, m.ChangedAt = utc(m.CreatedAt), fromOpt(changed)
			if m.HookID == "" {
				sub := store.Subscription{Secret: secret, PrevSecret: prev, PrevSecretExpiresAt: fromOpt(prevExp)}
				d.Host, d.Secrets = "", sub.SigningSecrets(p.Now)
			}
			bySeq[m.Seq] = d
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// In due order, as they were chosen.
		out := make([]*store.Delivery, 0, len(seqs))
		for _, seq := range seqs {
			if d := bySeq[seq]; d != nil {
				out = append(out, d)
			}
		}
		done(out)
		return nil
	})
}

// ReleaseMessages puts claimed messages back in the queue.
func (db *DB) ReleaseMessages(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.tx(ctx, func(tx *txn) error {
		if _, err := tx.Exec(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = $1
			WHERE status = 'delivering' AND id = ANY($2)`, at, ids); err != nil {
			return err
		}
		tx.notifyMessages()
		return nil
	})
	if err != nil {
		return fmt.Errorf("release messages: %w", err)
	}
	return nil
}

// RecordAttempts stores attempt outcomes in one transaction and one round
// trip: the attempts and the messages' new states as one statement each.
// Disabling a subscription, rarely needed, follows in a transaction of its
// own.
//
// A subscription's row is written only when its health changes (its first
// failure after a success, the first success after failures, disabling),
// so that nodes recording deliveries to one busy endpoint at once do not
// queue on its row lock.
func (db *DB) RecordAttempts(ctx context.Context, results []*store.AttemptResult, p store.RecordParams) ([]string, error) {
	if err := store.CheckAttempts(results); err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	n := len(results)
	var (
		msgSeqs                                = make([]int64, n)
		deliveryIDs, statuses, errs, responses = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempted                              = make([]time.Time, n)
		codes                                  = make([]int32, n)
		latencies                              = make([]int64, n)
		nexts, delivered                       = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	)
	for i, r := range results {
		status, next := r.MessageState()
		msgSeqs[i], deliveryIDs[i], statuses[i], errs[i], responses[i] = r.MessageSeq, r.DeliveryID, status, r.Error, r.Response
		attempted[i], codes[i], latencies[i] = r.AttemptedAt, int32(r.StatusCode), r.Latency.Microseconds()
		nexts[i] = pgtype.Timestamptz{Time: next, Valid: !next.IsZero()}
		delivered[i] = pgtype.Timestamptz{Time: r.AttemptedAt, Valid: status == store.MessageDelivered}
	}
	var healthy, failing []string
	var failingAt []time.Time
	health := store.HealthOf(results)
	for _, h := range health {
		if h.OK {
			healthy = append(healthy, h.SubscriptionID)
		} else {
			failing, failingAt = append(failing, h.SubscriptionID), append(failingAt, h.At)
		}
	}
	var since map[string]time.Time
	err := db.batch(ctx, func() *pgx.Batch {
		since = map[string]time.Time{}
		batch := &pgx.Batch{}
		// A message deleted since its claim has nothing left to record.
		batch.Queue(`INSERT INTO attempts (message_seq, delivery_id, attempted_at, status_code, latency_us, error, response)
			SELECT u.* FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::int[], $5::bigint[], $6::text[], $7::text[])
				AS u(message_seq, delivery_id, attempted_at, status_code, latency_us, error, response)
			WHERE EXISTS (SELECT 1 FROM messages WHERE seq = u.message_seq)`,
			msgSeqs, deliveryIDs, attempted, codes, latencies, errs, responses)
		batch.Queue(`UPDATE messages m SET status = u.status, next_attempt_at = u.next, attempts = m.attempts + 1,
				schedule_pos = m.schedule_pos + 1, last_status = u.code, last_error = u.error, updated_at = $7,
				delivered_at = coalesce(u.delivered, m.delivered_at)
			FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::int[], $5::text[], $6::timestamptz[])
				AS u(seq, status, next, code, error, delivered)
			WHERE m.seq = u.seq AND m.status = 'delivering'`,
			msgSeqs, statuses, nexts, codes, errs, delivered, p.Now)
		for _, r := range results {
			if r.HookID != "" {
				queuePing(batch, r)
			}
		}
		if len(healthy) > 0 {
			cond, arg := oneOf("id", 1, healthy)
			batch.Queue(`UPDATE subscriptions SET failing_since = NULL WHERE `+cond+` AND failing_since IS NOT NULL`, arg)
		}
		if len(failing) > 0 {
			// The first failure of an outage starts its clock.
			batch.Queue(`UPDATE subscriptions s SET failing_since = u.at
				FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE s.id = u.id AND s.failing_since IS NULL`,
				failing, failingAt)
			batch.Queue(`SELECT id, failing_since FROM subscriptions WHERE id = ANY($1) AND NOT disabled`, failing).
				Query(func(rows pgx.Rows) error {
					var id string
					var at time.Time
					_, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error {
						since[id] = at
						return nil
					})
					return err
				})
		}
		return batch
	})
	if err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	var disabled []string
	for _, h := range health {
		at, ok := since[h.SubscriptionID]
		if h.OK || !ok {
			continue // healthy, disabled already, or deleted meanwhile
		}
		reason := h.DisableReason(at, p.DisableAfter)
		if reason == "" {
			continue
		}
		ok, err := db.disableSubscription(ctx, h.SubscriptionID, reason, p.Now)
		if err != nil {
			return disabled, fmt.Errorf("record attempts: %w", err)
		}
		if ok {
			disabled = append(disabled, h.SubscriptionID)
		}
	}
	return disabled, nil
}

// disableSubscription disables an enabled subscription and parks its
// messages, and reports whether it did.
func (db *DB) disableSubscription(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	var done bool
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `UPDATE subscriptions SET disabled = true, disabled_reason = $1, disabled_at = $2, updated_at = $2
			WHERE id = $3 AND NOT disabled`, reason, now, id)
		if err != nil {
			return err
		}
		if done = tag.RowsAffected() > 0; !done {
			return nil
		}
		return parkMessages(ctx, tx, id)
	})
	if err != nil {
		return false, fmt.Errorf("disable subscription %s: %w", id, err)
	}
	return done, nil
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

// nextDueSQL returns when the earliest queued message due after $2 is
// due; parked messages do not count.
const nextDueSQL = `SELECT min(next_attempt_at) FROM messages
	WHERE status IN ('pending', 'delivering') AND next_attempt_at < $1 AND next_attempt_at > $2`

// nextDue returns when the earliest queued message is due, or the zero
// time.
func nextDue(ctx context.Context, q querier) (time.Time, error) {
	var at pgtype.Timestamptz
	if err := q.QueryRow(ctx, nextDueSQL, parked, dueAfter(time.Time{})).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("next due message: %w", err)
	}
	return fromOpt(at), nil
}

// queueNextDue adds to b the query of when the earliest queued message
// due after after (any, if zero) is due, which sets *at.
func queueNextDue(b *pgx.Batch, after time.Time, at *time.Time) {
	b.Queue(nextDueSQL, parked, dueAfter(after)).QueryRow(func(row pgx.Row) error {
		var t pgtype.Timestamptz
		err := row.Scan(&t)
		*at = fromOpt(t)
		return err
	})
}

// dueAfter is nextDueSQL's lower bound: after, or none if it is zero.
func dueAfter(after time.Time) pgtype.Timestamptz {
	if after.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: after, Valid: true}
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
	rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages `+where+
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
	m, err := db.Message(ctx, p.AccountID, p.MessageID)
	if err != nil {
		return nil, err
	}
	rows, err := db.query(ctx, `SELECT id, delivery_id, attempted_at, status_code, latency_us, error, response
		FROM attempts WHERE message_seq = $1 AND id > $2 ORDER BY id LIMIT $3`, m.Seq, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	atts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Attempt, error) {
		a := store.Attempt{MessageID: m.ID, MessageSeq: m.Seq}
		var lat int64
		if err := row.Scan(&a.ID, &a.DeliveryID, &a.AttemptedAt, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
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
	err := db.tx(ctx, func(tx *txn) error {
		var err error
		m, err = scanMessage(tx.QueryRow(ctx, `UPDATE messages
			SET status = 'pending', schedule_pos = 0, slot_reserved = false, updated_at = $1,
			    next_attempt_at = CASE WHEN (SELECT disabled FROM subscriptions s WHERE s.id = messages.subscription_id)
			                      THEN $2::timestamptz ELSE $1 END
			WHERE id = $3 AND account_id = $4 RETURNING `+messageColumns, now, parked, id, accountID))
		if err != nil {
			return err
		}
		tx.notifyMessages()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver message %s: %w", id, err)
	}
	return m, nil
}

// pruneBatch bounds each delete so that no transaction holds many locks.
const pruneBatch = 5000

// The statements of Prune, each along an index (the plan test in
// postgres_test.go holds them to it): old attempts and finished messages
// by their time, and the change log from its start in log order.
const (
	pruneAttempts = `DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < $1 LIMIT $2)`
	pruneMessages = `DELETE FROM messages WHERE id IN (SELECT id FROM messages
		WHERE status IN ('delivered', 'undeliverable') AND updated_at < $1 LIMIT $2)`
	// pruneFirstNew finds the oldest change that is not older than the
	// cut, pruneBefore the change before a position, pruneNewest the
	// newest change, pruneChanges deletes up to the horizon.
	pruneFirstNew = `SELECT xid, id FROM changes WHERE occurred_at >= $1 ORDER BY xid, id LIMIT 1`
	pruneBefore   = `SELECT xid, id FROM changes WHERE (xid, id) < ($1, $2) ORDER BY xid DESC, id DESC LIMIT 1`
	pruneNewest   = `SELECT xid, id FROM changes ORDER BY xid DESC, id DESC LIMIT 1`
	pruneChanges  = `DELETE FROM changes WHERE (xid, id) <= ($1, $2)`
	pruneHooks    = `DELETE FROM icalhooks WHERE last_registered_at < $1`
)

// Prune deletes what is older than before, in batches.
func (db *DB) Prune(ctx context.Context, before time.Time) (store.PruneStats, error) {
	var st store.PruneStats
	loop := func(query string) (int64, error) {
		var total int64
		for {
			tag, err := db.exec(ctx, query, before, pruneBatch)
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
	if st.Attempts, err = loop(pruneAttempts); err != nil {
		return st, fmt.Errorf("prune attempts: %w", err)
	}
	if st.Messages, err = loop(pruneMessages); err != nil {
		return st, fmt.Errorf("prune messages: %w", err)
	}
	err = db.tx(ctx, func(tx *txn) error {
		st.Changes = 0
		// The horizon is the change before the first one in log order
		// that is not older than before, or the fan-out's cursor or the
		// conflict detector's (once it has one) if that comes first
		// (reading the cursors without a lock: they only move on, and a
		// stale one prunes less). Positions are (xid, id), as ListChanges
		// and the fan-out read the log. The log follows time (but for
		// writes a few milliseconds apart, which this leaves a change
		// newer than before rather than prune it), so the walk along
		// changes_xid from the oldest change reads only the changes it
		// prunes, where the newest change older than before was a walk
		// back over every newer one.
		var old, fanout, first store.ChangePos
		err := tx.QueryRow(ctx, pruneFirstNew, before).Scan(&first.TxID, &first.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // every change is old enough
			err = tx.QueryRow(ctx, pruneNewest).Scan(&old.TxID, &old.ID)
		case err == nil:
			err = tx.QueryRow(ctx, pruneBefore, first.TxID, first.ID).Scan(&old.TxID, &old.ID)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // nothing old enough
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT xid, position FROM cursors WHERE name = $1`, store.FanOutCursor).
			Scan(&fanout.TxID, &fanout.ID); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		horizon := old
		if fanout.Before(old) {
			horizon = fanout
		}
		var detector store.ChangePos
		err = tx.QueryRow(ctx, `SELECT xid, position FROM cursors WHERE name = $1`, store.AvailabilityCursor).
			Scan(&detector.TxID, &detector.ID)
		switch {
		case err == nil:
			if detector.Before(horizon) {
				horizon = detector
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		tag, err := tx.Exec(ctx, pruneChanges, horizon.TxID, horizon.ID)
		if err != nil {
			return err
		}
		st.Changes = tag.RowsAffected()
		_, err = tx.Exec(ctx, `INSERT INTO cursors (name, xid, position) VALUES ('horizon', $1, $2)
			ON CONFLICT (name) DO UPDATE SET xid = excluded.xid, position = excluded.position
			WHERE (cursors.xid, cursors.position) < (excluded.xid, excluded.position)`, horizon.TxID, horizon.ID)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("prune changes: %w", err)
	}
	return st, nil
}

// ChangeHorizon returns the position of the newest pruned change.
func (db *DB) ChangeHorizon(ctx context.Context) (store.ChangePos, error) {
	var pos store.ChangePos
	err := db.pool.QueryRow(ctx, `SELECT xid, position FROM cursors WHERE name = 'horizon'`).Scan(&pos.TxID, &pos.ID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return pos, fmt.Errorf("change horizon: %w", err)
	}
	return pos, nil
}
