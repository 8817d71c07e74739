package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// parked is the due time of messages whose subscription is disabled: they
// stay queued, out of the claim query's way, until it is enabled again.
const parked = int64(253402300799000000) // 9999-12-31 in microseconds

const subscriptionColumns = `seq, id, account_id, coalesce(calendar_id, ''), url, description, event_types, rate_limit,
	secret, prev_secret, prev_secret_expires_at, disabled, disabled_reason, disabled_at, failing_since, created_at, updated_at`

func scanSubscription(row interface{ Scan(...any) error }) (*store.Subscription, error) {
	var s store.Subscription
	var types string
	var prevExp, disabledAt, failing, created, updated int64
	if err := row.Scan(&s.Seq, &s.ID, &s.AccountID, &s.CalendarID, &s.URL, &s.Description, &types, &s.RateLimit,
		&s.Secret, &s.PrevSecret, &prevExp, &s.Disabled, &s.DisabledReason, &disabledAt, &failing, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	if err := json.Unmarshal([]byte(types), &s.EventTypes); err != nil {
		return nil, fmt.Errorf("subscription %s: decode event types: %w", s.ID, err)
	}
	s.PrevSecretExpiresAt, s.DisabledAt, s.FailingSince = optMicros(prevExp), optMicros(disabledAt), optMicros(failing)
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &s, nil
}

// optMicros maps 0 to the zero time.
func optMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

// optToMicros maps the zero time to 0.
func optToMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func eventTypesJSON(types []string) string {
	if len(types) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(types) // a []string always marshals
	return string(b)
}

// CreateSubscription stores a new subscription; a calendar that is not the
// account's is store.ErrNotFound.
func (db *DB) CreateSubscription(ctx context.Context, s *store.Subscription, admit func(existing int) error) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		// The single writer makes the count and the insert atomic.
		if admit != nil {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE account_id = ?`,
				s.AccountID).Scan(&n); err != nil {
				return err
			}
			if err := admit(n); err != nil {
				return err
			}
		}
		if s.CalendarID != "" {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM calendars WHERE id = ? AND account_id = ?`,
				s.CalendarID, s.AccountID).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO subscriptions
			(id, account_id, calendar_id, url, description, event_types, rate_limit, secret, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			s.ID, s.AccountID, nullable(s.CalendarID), s.URL, s.Description, eventTypesJSON(s.EventTypes), s.RateLimit,
			s.Secret, micros(s.CreatedAt), micros(s.UpdatedAt)).Scan(&s.Seq)
	})
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

// Subscription returns one subscription of an account.
func (db *DB) Subscription(ctx context.Context, accountID, id string) (*store.Subscription, error) {
	s, err := scanSubscription(db.read.QueryRowContext(ctx,
		`SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return nil, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return s, nil
}

func querySubscriptions(ctx context.Context, q queryer, where string, args ...any) ([]*store.Subscription, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Subscription
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ListSubscriptions returns a page of an account's subscriptions in
// creation order, optionally of one calendar.
func (db *DB) ListSubscriptions(ctx context.Context, p store.ListSubscriptionsParams) ([]*store.Subscription, error) {
	where, args := `WHERE account_id = ? AND seq > ?`, []any{p.AccountID, p.After}
	if p.CalendarID != "" {
		where += ` AND calendar_id = ?`
		args = append(args, p.CalendarID)
	}
	subs, err := querySubscriptions(ctx, db.read, where+` ORDER BY seq LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return subs, nil
}

// UpdateSubscription stores a subscription's fields. Disabling parks its
// queued messages; enabling makes them due at once and clears its failure
// streak.
func (db *DB) UpdateSubscription(ctx context.Context, s *store.Subscription) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var wasDisabled bool
		if err := tx.QueryRowContext(ctx, `SELECT disabled FROM subscriptions WHERE id = ? AND account_id = ?`,
			s.ID, s.AccountID).Scan(&wasDisabled); err != nil {
			return notFound(err)
		}
		if wasDisabled && !s.Disabled {
			s.FailingSince = time.Time{}
		}
		_, err := tx.ExecContext(ctx, `UPDATE subscriptions SET url = ?, description = ?, event_types = ?, rate_limit = ?,
			secret = ?, prev_secret = ?, prev_secret_expires_at = ?, disabled = ?, disabled_reason = ?, disabled_at = ?,
			failing_since = ?, updated_at = ? WHERE id = ?`,
			s.URL, s.Description, eventTypesJSON(s.EventTypes), s.RateLimit, s.Secret, s.PrevSecret,
			optToMicros(s.PrevSecretExpiresAt), s.Disabled, s.DisabledReason, optToMicros(s.DisabledAt),
			optToMicros(s.FailingSince), micros(s.UpdatedAt), s.ID)
		if err != nil {
			return err
		}
		switch {
		case s.Disabled && !wasDisabled:
			return parkMessages(ctx, tx, s.ID)
		case !s.Disabled && wasDisabled:
			_, err := tx.ExecContext(ctx, `UPDATE messages SET next_attempt_at = ? WHERE subscription_id = ? AND status = 'pending'`,
				micros(s.UpdatedAt), s.ID)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update subscription %s: %w", s.ID, err)
	}
	return nil
}

func parkMessages(ctx context.Context, tx *wtx, subscriptionID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = ?
		WHERE subscription_id = ? AND status IN ('pending', 'delivering')`, parked, subscriptionID)
	return err
}

// DeleteSubscription removes a subscription; its messages and attempts go
// with it.
func (db *DB) DeleteSubscription(ctx context.Context, accountID, id string) error {
	res, err := db.exec(ctx, `DELETE FROM subscriptions WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return mustAffect(res, "delete subscription "+id)
}

// ActiveSubscriptions returns the enabled subscriptions of the accounts.
func (db *DB) ActiveSubscriptions(ctx context.Context, accountIDs []string) ([]*store.Subscription, error) {
	if len(accountIDs) == 0 {
		return nil, nil
	}
	subs, err := querySubscriptions(ctx, db.read, `WHERE disabled = 0 AND account_id IN (`+placeholders(len(accountIDs))+`) ORDER BY seq`,
		anys(accountIDs)...)
	if err != nil {
		return nil, fmt.Errorf("active subscriptions: %w", err)
	}
	return subs, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func cursorPosition(ctx context.Context, q queryer, name string) (int64, error) {
	var pos int64
	err := q.QueryRowContext(ctx, `SELECT position FROM cursors WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// FanOut runs one fan-out step. The changes are read, and build runs,
// outside the write transaction, so the single writer never waits for
// them; the messages are then stored with a compare-and-set of the cursor,
// which makes a step that another worker overtook Busy, storing nothing.
// One process writes a SQLite database, and its change ids are handed out
// in commit order, so reading by id misses nothing.
func (db *DB) FanOut(ctx context.Context, cursor string, limit int, build store.FanOutFunc) (store.FanOutResult, error) {
	pos, err := cursorPosition(ctx, db.read, cursor)
	if err != nil {
		return store.FanOutResult{}, fmt.Errorf("read cursor %s: %w", cursor, err)
	}
	changes, err := queryChanges(ctx, db.read, `WHERE id > ? ORDER BY id LIMIT ?`, pos, limit)
	if err != nil || len(changes) == 0 {
		return store.FanOutResult{}, wrapErr("read changes", err)
	}
	msgs, err := build(ctx, changes)
	if err != nil {
		return store.FanOutResult{}, err
	}
	res := store.FanOutResult{Changes: len(changes)}
	// A step can store thousands of messages: a bulk write, after the
	// writes that wait.
	err = db.bulkTx(ctx, func(ctx context.Context, tx *wtx) error {
		res.Messages, res.Leased = 0, nil
		now, err := cursorPosition(ctx, tx, cursor)
		if err != nil {
			return err
		}
		if now != pos {
			return errOvertaken
		}
		if res.Messages, res.Leased, err = insertMessages(ctx, tx, msgs); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cursors (name, position) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, cursor, changes[len(changes)-1].ID)
		return err
	})
	if errors.Is(err, errOvertaken) {
		return store.FanOutResult{Busy: true}, nil
	}
	if err != nil {
		return store.FanOutResult{}, fmt.Errorf("enqueue messages: %w", err)
	}
	return res, nil
}

// errOvertaken is a fan-out step that found the cursor moved by another.
var errOvertaken = errors.New("the cursor moved meanwhile")

// wrapErr adds context to a non-nil error.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// insertMessages stores messages, skipping (change, target) pairs that
// exist, and returns how many it stored and which of them it stored
// claimed (see store.Store's FanOut). A ping is stored only if it disarms
// its hook: a hook gets one ping per arming. Both are multi-row
// statements: one change can ping ten thousand hooks.
func insertMessages(ctx context.Context, tx *wtx, msgs []*store.Message) (int, []store.StoredMessage, error) {
	keep := make([]*store.Message, 0, len(msgs))
	var pings []*store.Message
	for _, m := range msgs {
		if m.HookID != "" {
			pings = append(pings, m)
		} else {
			keep = append(keep, m)
		}
	}
	err := inChunks(pings, func(pings []*store.Message) error {
		disarmed, err := disarmHooks(ctx, tx, pings)
		if err != nil {
			return err
		}
		for _, m := range pings {
			if disarmed[m.HookID] {
				keep = append(keep, m)
				delete(disarmed, m.HookID) // one ping per hook
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	stored := 0
	var leased []store.StoredMessage
	err = inChunks(keep, func(msgs []*store.Message) error {
		args := make([]any, 0, 13*len(msgs))
		for _, m := range msgs {
			status := cmp.Or(m.Status, store.MessagePending)
			args = append(args, m.ID, m.AccountID, nullable(m.SubscriptionID), nullable(m.HookID), m.ChangeID,
				m.EventType, m.Payload, status, micros(m.NextAttemptAt), micros(m.CreatedAt), micros(m.CreatedAt),
				optToMicros(m.ChangedAt), m.Trace)
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO messages
			(id, account_id, subscription_id, hook_id, change_id, event_type, payload, status, next_attempt_at, created_at, updated_at,
			 changed_at, trace)
			VALUES `+valueRows(len(msgs), 13)+` ON CONFLICT DO NOTHING RETURNING seq, id, status`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.StoredMessage
			var status string
			if err := rows.Scan(&m.Seq, &m.ID, &status); err != nil {
				return err
			}
			stored++
			if status == store.MessageDelivering {
				leased = append(leased, m)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, nil, err
	}
	return stored, leased, nil
}

// disarmHooks disarms the armed, verified hooks of pings and returns which
// it disarmed.
func disarmHooks(ctx context.Context, tx *wtx, pings []*store.Message) (map[string]bool, error) {
	ids := make([]any, len(pings))
	for i, m := range pings {
		ids[i] = m.HookID
	}
	rows, err := tx.QueryContext(ctx, `UPDATE icalhooks SET armed = 0
		WHERE armed = 1 AND verified = 1 AND id IN (`+placeholders(len(ids))+`) RETURNING id`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	disarmed := make(map[string]bool, len(pings))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		disarmed[id] = true
	}
	return disarmed, rows.Err()
}

// Limiter key prefixes of ClaimMessages (see store.MessageLimits).
const (
	subKeyPrefix   = "sub:"
	pingHostPrefix = "host:"
)

// ClaimMessages leases due messages, applying rate limits, in one
// transaction. Webhooks are limited per subscription, pings per target
// host; a message over its limit is not claimed but given its slot as due
// time, so limits delay and never drop.
func (db *DB) ClaimMessages(ctx context.Context, p store.ClaimParams) (*store.Claim, error) {
	var out []*store.Delivery
	var next time.Time
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) (err error) {
		out = out[:0]
		// When the claim sees every due message it may take, it reports
		// when the queue is due after now.
		var after time.Time
		defer func() {
			if err == nil {
				next, err = nextDue(ctx, tx, after)
			}
		}()
		query := `SELECT m.seq, coalesce(m.subscription_id, ''), coalesce(h.host, ''), coalesce(h.url, ''), m.slot_reserved,
				coalesce(s.rate_limit, 0), coalesce(s.rate_tat, 0), coalesce(s.rate_next, 0), coalesce(r.tat, 0), coalesce(r.next, 0),
				coalesce(s.url, '')
			FROM messages m
			LEFT JOIN subscriptions s ON s.id = m.subscription_id
			LEFT JOIN icalhooks h ON h.id = m.hook_id
			LEFT JOIN host_rates r ON r.host = h.host
			WHERE m.status IN ('pending', 'delivering') AND m.next_attempt_at <= ? AND coalesce(s.disabled, 0) = 0`
		args := []any{micros(p.Now)}
		subs, hosts := p.ExcludeSubscriptions, p.ExcludeHosts
		if len(subs) > 0 {
			query += ` AND (m.subscription_id IS NULL OR m.subscription_id NOT IN (` + placeholders(len(subs)) + `))`
			args = append(args, anys(subs)...)
		}
		if len(hosts) > 0 {
			query += ` AND (h.host IS NULL OR h.host NOT IN (` + placeholders(len(hosts)) + `))`
			args = append(args, anys(hosts)...)
		}
		rows, err := tx.QueryContext(ctx, query+` ORDER BY m.next_attempt_at LIMIT ?`, append(args, p.Limit)...)
		if err != nil {
			return err
		}
		type candidate struct {
			seq            int64
			sub, host, url string
			reserved       bool
			rate           int
			subRate        [2]int64
			hostRate       [2]int64
			subURL         string // for the webhook host limit
		}
		var cands []candidate
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.seq, &c.sub, &c.host, &c.url, &c.reserved, &c.rate, &c.subRate[0], &c.subRate[1],
				&c.hostRate[0], &c.hostRate[1], &c.subURL); err != nil {
				rows.Close()
				return err
			}
			cands = append(cands, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(cands) < p.Limit {
			after = p.Now
		}

		// The limiters: a subscription's state lives in its row, a ping
		// host's in host_rates under the bare host, a webhook host's in
		// host_rates under store.WebhookHostKey.
		states := map[string]*store.RateState{}
		limits := make([][]store.Limit, len(cands))
		var load []string
		for i, c := range cands {
			limits[i] = store.MessageLimits(p, subKeyPrefix+c.sub, c.rate, c.subURL, c.host)
			for _, l := range limits[i] {
				if states[l.Key] != nil {
					continue
				}
				switch l.Key {
				case subKeyPrefix + c.sub:
					states[l.Key] = &store.RateState{TAT: fromMicros(c.subRate[0]), Next: fromMicros(c.subRate[1])}
				case pingHostPrefix + c.host:
					states[l.Key] = &store.RateState{TAT: fromMicros(c.hostRate[0]), Next: fromMicros(c.hostRate[1])}
				default:
					states[l.Key] = &store.RateState{}
					load = append(load, l.Key)
				}
			}
		}
		if len(load) > 0 {
			rows, err := tx.QueryContext(ctx, `SELECT host, tat, next FROM host_rates WHERE host IN (`+placeholders(len(load))+`)`, anys(load)...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var key string
				var tat, next int64
				if err := rows.Scan(&key, &tat, &next); err != nil {
					rows.Close()
					return err
				}
				states[key].TAT, states[key].Next = fromMicros(tat), fromMicros(next)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		var claim []any
		// A ping's target was read with it.
		pingTargets := map[int64]candidate{}
		for i, c := range cands {
			if c.host != "" {
				pingTargets[c.seq] = c
			}
			if send, at := store.PaceAll(states, limits[i], p.Now, c.reserved); send {
				claim = append(claim, c.seq)
			} else if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = ?, slot_reserved = 1
				WHERE seq = ?`, micros(at), c.seq); err != nil {
				return err
			}
		}
		for key, st := range states {
			if sub, ok := strings.CutPrefix(key, subKeyPrefix); ok {
				if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET rate_tat = ?, rate_next = ? WHERE id = ?`,
					micros(st.TAT), micros(st.Next), sub); err != nil {
					return err
				}
				continue
			}
			host := strings.TrimPrefix(key, pingHostPrefix) // a webhook host keeps its key
			if _, err := tx.ExecContext(ctx, `INSERT INTO host_rates (host, tat, next) VALUES (?, ?, ?)
				ON CONFLICT (host) DO UPDATE SET tat = excluded.tat, next = excluded.next`, host, micros(st.TAT), micros(st.Next)); err != nil {
				return err
			}
		}
		if len(claim) == 0 {
			return nil
		}
		rows, err = tx.QueryContext(ctx, `UPDATE messages SET status = 'delivering', next_attempt_at = ?, slot_reserved = 0
			WHERE seq IN (`+placeholders(len(claim))+`)
			RETURNING seq, id, account_id, coalesce(subscription_id, ''), coalesce(hook_id, ''), change_id, event_type, payload,
				attempts, schedule_pos, created_at, changed_at, trace`,
			append([]any{micros(p.Now.Add(p.Lease))}, claim...)...)
		if err != nil {
			return err
		}
		subIDs := map[string]bool{}
		for rows.Next() {
			m := &store.Message{Status: store.MessageDelivering, NextAttemptAt: p.Now.Add(p.Lease)}
			d := &store.Delivery{Message: m}
			var created, changed int64
			if err := rows.Scan(&m.Seq, &m.ID, &m.AccountID, &m.SubscriptionID, &m.HookID, &m.ChangeID, &m.EventType, &m.Payload,
				&m.Attempts, &d.SchedulePos, &created, &changed, &m.Trace); err != nil {
				rows.Close()
				return err
			}
			m.CreatedAt, m.ChangedAt = fromMicros(created), optMicros(changed)
			out = append(out, d)
			if m.HookID != "" {
				t := pingTargets[m.Seq]
				d.URL, d.Host = t.url, t.host
			} else {
				subIDs[m.SubscriptionID] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return fillSubscriptions(ctx, tx, out, subIDs, p.Now)
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return &store.Claim{Deliveries: out, NextDue: next}, nil
}

// fillSubscriptions sets the URL and secrets of each claimed webhook.
func fillSubscriptions(ctx context.Context, tx *wtx, out []*store.Delivery, subIDs map[string]bool, now time.Time) error {
	if len(subIDs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(subIDs))
	for id := range subIDs {
		ids = append(ids, id)
	}
	subs, err := querySubscriptions(ctx, tx, `WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
	if err != nil {
		return err
	}
	byID := make(map[string]*store.Subscription, len(subs))
	for _, s := range subs {
		byID[s.ID] = s
	}
	for _, d := range out {
		if d.Message.HookID == "" {
			s := byID[d.Message.SubscriptionID]
			d.URL, d.Secrets = s.URL, s.SigningSecrets(now)
		}
	}
	return nil
}

// recoverClaimsSQL is RecoverClaims' statement. It names messages_due's
// condition as well: SQLite does not see that status = 'delivering'
// implies it, and scanned the whole delivery log at every start (0.22-0.4
// s at 514,000 messages, against 0.2 ms now; start-up took 5.6 s at
// 5,000,000) instead of the few queued messages.
const recoverClaimsSQL = `UPDATE messages SET status = 'pending', next_attempt_at = ?
	WHERE status IN ('pending', 'delivering') AND status = 'delivering'`

// RecoverClaims makes every claimed message due at now. Only one process
// uses a SQLite database, so at start-up every claim is a dead run's.
func (db *DB) RecoverClaims(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, recoverClaimsSQL, micros(now))
	if err != nil {
		return 0, fmt.Errorf("recover claims: %w", err)
	}
	return res.RowsAffected()
}

// ReleaseMessages puts claimed messages back in the queue.
func (db *DB) ReleaseMessages(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.exec(ctx, `UPDATE messages SET status = 'pending', next_attempt_at = ?
		WHERE status = 'delivering' AND id IN (`+placeholders(len(ids))+`)`, append([]any{micros(at)}, anys(ids)...)...)
	if err != nil {
		return fmt.Errorf("release messages: %w", err)
	}
	return nil
}

// RecordAttempts stores attempt outcomes in one transaction, with
// multi-row statements: a fan-out of ten thousand pings records ten
// thousand attempts.
func (db *DB) RecordAttempts(ctx context.Context, results []*store.AttemptResult, p store.RecordParams) ([]string, error) {
	if err := store.CheckAttempts(results); err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	var disabled []string
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		disabled = disabled[:0]
		if err := inChunks(results, func(rs []*store.AttemptResult) error { return insertAttempts(ctx, tx, rs) }); err != nil {
			return err
		}
		// A message has one attempt in flight (its claim's): a second
		// result of it in one batch would find it no longer claimed.
		seen := make(map[int64]bool, len(results))
		first := make([]*store.AttemptResult, 0, len(results))
		for _, r := range results {
			if !seen[r.MessageSeq] {
				seen[r.MessageSeq] = true
				first = append(first, r)
			}
		}
		if err := inChunks(first, func(rs []*store.AttemptResult) error { return finishMessages(ctx, tx, rs, p.Now) }); err != nil {
			return err
		}
		if err := recordPings(ctx, tx, results); err != nil {
			return err
		}
		for _, h := range store.HealthOf(results) {
			if h.OK {
				if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET failing_since = 0 WHERE id = ? AND failing_since <> 0`,
					h.SubscriptionID); err != nil {
					return err
				}
				continue
			}
			var since int64
			var isDisabled bool
			err := tx.QueryRowContext(ctx, `UPDATE subscriptions SET failing_since = CASE WHEN failing_since = 0 THEN ? ELSE failing_since END
				WHERE id = ? RETURNING failing_since, disabled`, micros(h.At), h.SubscriptionID).Scan(&since, &isDisabled)
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			reason := h.DisableReason(fromMicros(since), p.DisableAfter)
			if reason == "" || isDisabled {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET disabled = 1, disabled_reason = ?, disabled_at = ?, updated_at = ?
				WHERE id = ?`, reason, micros(p.Now), micros(p.Now), h.SubscriptionID); err != nil {
				return err
			}
			if err := parkMessages(ctx, tx, h.SubscriptionID); err != nil {
				return err
			}
			disabled = append(disabled, h.SubscriptionID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	return disabled, nil
}

// insertAttempts stores attempts. A message deleted since its claim (its
// subscription or hook was deleted) has nothing left to record.
func insertAttempts(ctx context.Context, tx *wtx, rs []*store.AttemptResult) error {
	args := make([]any, 0, 7*len(rs))
	for _, r := range rs {
		args = append(args, r.MessageSeq, r.DeliveryID, micros(r.AttemptedAt), r.StatusCode, r.Latency.Microseconds(),
			r.Error, r.Response)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO attempts
		(message_seq, delivery_id, attempted_at, status_code, latency_us, error, response)
		SELECT * FROM (VALUES `+valueRows(len(rs), 7)+`) AS v
		WHERE EXISTS (SELECT 1 FROM messages WHERE seq = v.column1)`, args...)
	return err
}

// finishMessages moves claimed messages to the state their attempts left
// them in; rs holds one result per message.
func finishMessages(ctx context.Context, tx *wtx, rs []*store.AttemptResult, now time.Time) error {
	args := make([]any, 0, 1+6*len(rs))
	args = append(args, micros(now))
	for _, r := range rs {
		status, next := r.MessageState()
		args = append(args, r.MessageSeq, status, optToMicros(next), r.StatusCode, r.Error, micros(r.AttemptedAt))
	}
	_, err := tx.ExecContext(ctx, `UPDATE messages SET status = v.column2, next_attempt_at = v.column3,
		attempts = attempts + 1, schedule_pos = schedule_pos + 1, last_status = v.column4, last_error = v.column5, updated_at = ?,
		delivered_at = CASE WHEN v.column2 = 'delivered' THEN v.column6 ELSE delivered_at END
		FROM (VALUES `+valueRows(len(rs), 6)+`) AS v
		WHERE messages.seq = v.column1 AND messages.status = 'delivering'`, args...)
	return err
}

// hookPing is what a batch of attempts tells of one hook: its last ping,
// whether a ping of the batch was undeliverable (which drops the hook), and
// its failure count, reset to failures by a delivered ping or otherwise
// increased by them.
type hookPing struct {
	last     *store.AttemptResult
	drop     bool
	reset    bool
	failures int
}

// recordPings updates the health of the hooks pinged; a ping that is
// undeliverable drops its hook.
func recordPings(ctx context.Context, tx *wtx, results []*store.AttemptResult) error {
	byHook := map[string]*hookPing{}
	var order []string
	for _, r := range results {
		if r.HookID == "" {
			continue
		}
		h := byHook[r.HookID]
		if h == nil {
			h = &hookPing{}
			byHook[r.HookID] = h
			order = append(order, r.HookID)
		}
		h.last = r
		switch r.Outcome {
		case store.OutcomeUndeliverable:
			h.drop = true
		case store.OutcomeDelivered:
			h.reset, h.failures = true, 0
		default:
			h.failures++
		}
	}
	var drop []string
	var update []*hookPing
	for _, id := range order {
		if h := byHook[id]; h.drop {
			drop = append(drop, id)
		} else {
			update = append(update, h)
		}
	}
	err := inChunks(drop, func(ids []string) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM icalhooks WHERE id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
		return err
	})
	if err != nil {
		return err
	}
	return inChunks(update, func(hs []*hookPing) error {
		args := make([]any, 0, 6*len(hs))
		for _, h := range hs {
			args = append(args, h.last.HookID, micros(h.last.AttemptedAt), h.last.StatusCode, h.last.Error, h.reset, h.failures)
		}
		_, err := tx.ExecContext(ctx, `UPDATE icalhooks SET last_ping_at = v.column2, last_ping_status = v.column3,
			last_ping_error = v.column4, failures = CASE WHEN v.column5 THEN v.column6 ELSE failures + v.column6 END
			FROM (VALUES `+valueRows(len(hs), 6)+`) AS v WHERE icalhooks.id = v.column1`, args...)
		return err
	})
}

// nextDue returns when the earliest queued message due after after (any,
// if zero) is due, or the zero time.
func nextDue(ctx context.Context, q queryer, after time.Time) (time.Time, error) {
	from := int64(math.MinInt64)
	if !after.IsZero() {
		from = micros(after)
	}
	var at sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM messages
		WHERE status IN ('pending', 'delivering') AND next_attempt_at < ? AND next_attempt_at > ?`, parked, from).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return fromMicros(at.Int64), nil
}

const messageColumns = `seq, id, account_id, coalesce(subscription_id, ''), coalesce(hook_id, ''), change_id, event_type, payload, status, attempts,
	next_attempt_at, last_status, last_error, created_at, updated_at, delivered_at`

func scanMessage(row interface{ Scan(...any) error }) (*store.Message, error) {
	var m store.Message
	var next, created, updated, delivered int64
	if err := row.Scan(&m.Seq, &m.ID, &m.AccountID, &m.SubscriptionID, &m.HookID, &m.ChangeID, &m.EventType, &m.Payload, &m.Status,
		&m.Attempts, &next, &m.LastStatus, &m.LastError, &created, &updated, &delivered); err != nil {
		return nil, notFound(err)
	}
	if next != parked && m.Status == store.MessagePending {
		m.NextAttemptAt = optMicros(next)
	}
	m.CreatedAt, m.UpdatedAt, m.DeliveredAt = fromMicros(created), fromMicros(updated), optMicros(delivered)
	return &m, nil
}

// ListMessages returns a page of a subscription's messages, newest first.
func (db *DB) ListMessages(ctx context.Context, p store.ListMessagesParams) ([]*store.Message, error) {
	if _, err := db.Subscription(ctx, p.AccountID, p.SubscriptionID); err != nil {
		return nil, err
	}
	where, args := `WHERE subscription_id = ? AND account_id = ?`, []any{p.SubscriptionID, p.AccountID}
	if p.After > 0 {
		where += ` AND seq < ?`
		args = append(args, p.After)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages `+where+` ORDER BY seq DESC LIMIT ?`,
		append(args, p.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []*store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// Message returns one message of an account.
func (db *DB) Message(ctx context.Context, accountID, id string) (*store.Message, error) {
	m, err := scanMessage(db.read.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ? AND account_id = ?`,
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
	rows, err := db.read.QueryContext(ctx, `SELECT id, delivery_id, attempted_at, status_code, latency_us, error, response
		FROM attempts WHERE message_seq = ? AND id > ? ORDER BY id LIMIT ?`, m.Seq, p.After, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	var out []*store.Attempt
	for rows.Next() {
		a := store.Attempt{MessageID: m.ID, MessageSeq: m.Seq}
		var at, lat int64
		if err := rows.Scan(&a.ID, &a.DeliveryID, &at, &a.StatusCode, &lat, &a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.AttemptedAt, a.Latency = fromMicros(at), time.Duration(lat)*time.Microsecond
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return out, nil
}

// RedeliverMessage makes a message due now with a fresh retry cycle.
func (db *DB) RedeliverMessage(ctx context.Context, accountID, id string, now time.Time) (*store.Message, error) {
	m, err := scanMessage(db.write.QueryRowContext(ctx, `UPDATE messages
		SET status = 'pending', schedule_pos = 0, slot_reserved = 0, updated_at = ?,
		    next_attempt_at = CASE WHEN (SELECT disabled FROM subscriptions WHERE id = subscription_id) THEN ? ELSE ? END
		WHERE id = ? AND account_id = ? RETURNING `+messageColumns, micros(now), parked, micros(now), id, accountID))
	if err != nil {
		return nil, fmt.Errorf("redeliver message %s: %w", id, classify(err))
	}
	return m, nil
}

// pruneBatch bounds each delete so the single writer is never held long.
const pruneBatch = 5000

// The statements of Prune, each along an index or the rowid (the plan
// test in prune_test.go holds them to it): old attempts and finished
// messages by their time, and the change log from its start.
const (
	pruneAttempts = `DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < ? LIMIT ?)`
	pruneMessages = `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages
		WHERE status IN ('delivered', 'undeliverable') AND updated_at < ? LIMIT ?)`
	// pruneFirstNew finds the oldest change (up to a position) that is
	// not older than the cut, pruneBefore the change before a position,
	// pruneChanges deletes up to the horizon.
	pruneFirstNew = `SELECT id FROM changes WHERE id <= ? AND occurred_at >= ? ORDER BY id LIMIT 1`
	pruneBefore   = `SELECT id FROM changes WHERE id < ? ORDER BY id DESC LIMIT 1`
	pruneChanges  = `DELETE FROM changes WHERE id <= ?`
	pruneHooks    = `DELETE FROM icalhooks WHERE last_registered_at < ?`
)

// Prune deletes what is older than before, in batches.
func (db *DB) Prune(ctx context.Context, before time.Time) (store.PruneStats, error) {
	var st store.PruneStats
	cut := micros(before)
	loop := func(query string, args ...any) (int64, error) {
		var total int64
		for {
			res, err := db.exec(ctx, query, append(args, pruneBatch)...)
			if err != nil {
				return total, err
			}
			n, _ := res.RowsAffected()
			total += n
			if n < pruneBatch {
				return total, nil
			}
		}
	}
	var err error
	if st.Attempts, err = loop(pruneAttempts, cut); err != nil {
		return st, fmt.Errorf("prune attempts: %w", err)
	}
	if st.Messages, err = loop(pruneMessages, cut); err != nil {
		return st, fmt.Errorf("prune messages: %w", err)
	}
	err = db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		// Changes the fan-out or the conflict detector (once it has a
		// cursor) has yet to read stay.
		read, err := cursorPosition(ctx, tx, store.FanOutCursor)
		if err != nil {
			return err
		}
		var detector sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM cursors WHERE name = ?`, store.AvailabilityCursor).
			Scan(&detector); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if detector.Valid {
			read = min(read, detector.Int64)
		}
		// The horizon is the change before the first one (up to read)
		// that is not older than cut. Ids follow time (but for writes a
		// few milliseconds apart, which this leaves a change newer than
		// cut rather than prune it), so the walk from the oldest change
		// reads only the changes it prunes: no index on occurred_at, and
		// no scan of the log's newer rows as max(id) WHERE occurred_at < cut
		// made.
		bound := read + 1
		err = tx.QueryRowContext(ctx, pruneFirstNew, read, cut).Scan(&bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var horizon int64
		err = tx.QueryRowContext(ctx, pruneBefore, bound).Scan(&horizon)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // nothing old enough
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, pruneChanges, horizon)
		if err != nil {
			return err
		}
		st.Changes, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `INSERT INTO cursors (name, position) VALUES ('horizon', ?)
			ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)`, horizon)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("prune changes: %w", err)
	}
	return st, nil
}

// ChangeHorizon returns the position of the newest pruned change.
func (db *DB) ChangeHorizon(ctx context.Context) (store.ChangePos, error) {
	pos, err := cursorPosition(ctx, db.read, "horizon")
	if err != nil {
		return store.ChangePos{}, fmt.Errorf("change horizon: %w", err)
	}
	return store.ChangePos{ID: pos}, nil
}
