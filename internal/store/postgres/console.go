package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/calhook/calhook/internal/store"
)

const apiKeyColumns = `id, account_id, name, key_hash, prefix, created_at, last_used_at, revoked_at`

func scanAPIKey(row pgx.Row) (*store.APIKey, error) {
	var k store.APIKey
	var used, revoked pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.KeyHash, &k.Prefix, &k.CreatedAt, &used, &revoked); err != nil {
		return nil, notFound(err)
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = utc(k.CreatedAt), fromOpt(used), fromOpt(revoked)
	return &k, nil
}

// CreateAPIKey stores a new named key of an account.
func (db *DB) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO api_keys (id, account_id, name, key_hash, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, k.AccountID, k.Name, k.KeyHash, k.Prefix, k.CreatedAt)
	switch {
	case isUnique(err):
		return fmt.Errorf("create api key: %w", store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("create api key: account %s: %w", k.AccountID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create api key: %w", err)
	}
	return nil
}

// ListAPIKeys returns an account's keys that are not revoked, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context, accountID string) ([]*store.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE account_id = $1 AND revoked_at IS NULL ORDER BY seq`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.APIKey, error) { return scanAPIKey(row) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// APIKeyByHash returns the key that hashes to keyHash, unless it is revoked.
func (db *DB) APIKeyByHash(ctx context.Context, keyHash string) (*store.APIKey, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE key_hash = $1 AND revoked_at IS NULL`, keyHash))
	if err != nil {
		return nil, fmt.Errorf("get api key: %w", err)
	}
	return k, nil
}

// RevokeAPIKey revokes one key of an account and ends its sessions.
func (db *DB) RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL`,
			now, id, accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "api key "+id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM console_sessions WHERE key_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	return nil
}

// TouchAPIKey records that a key was used, at most once a minute.
func (db *DB) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	_, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $1
		WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`, now, id, now.Add(-time.Minute))
	if err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}

// ListAccounts returns a page of every account, by id.
func (db *DB) ListAccounts(ctx context.Context, afterID string, limit int) ([]*store.Account, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	accounts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Account, error) { return scanAccount(row) })
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return accounts, nil
}

func portalJSON(p *store.PortalScope) (string, error) {
	if p == nil {
		return "", nil
	}
	b, err := json.Marshal(p)
	return string(b), err
}

func parsePortal(s string) (*store.PortalScope, error) {
	if s == "" {
		return nil, nil
	}
	var p store.PortalScope
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("decode portal scope: %w", err)
	}
	return &p, nil
}

// CreateSession stores a new console session.
func (db *DB) CreateSession(ctx context.Context, s *store.Session) error {
	portal, err := portalJSON(s.Portal)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO console_sessions
		(id, account_id, key_id, admin_token_hash, csrf, portal, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ID, s.AccountID, s.KeyID, s.AdminTokenHash, s.CSRF, portal, s.CreatedAt, s.LastSeenAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns a live session.
func (db *DB) Session(ctx context.Context, id string, now time.Time, idle time.Duration) (*store.Session, error) {
	var s store.Session
	var portal string
	err := db.pool.QueryRow(ctx, `SELECT s.id, s.account_id, s.key_id, s.admin_token_hash, s.csrf, s.portal,
			s.created_at, s.last_seen_at, s.expires_at
		FROM console_sessions s
		WHERE s.id = $1 AND s.expires_at > $2 AND s.last_seen_at > $3
			AND (s.key_id = '' OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.key_id AND k.revoked_at IS NULL))`,
		id, now, now.Add(-idle)).Scan(
		&s.ID, &s.AccountID, &s.KeyID, &s.AdminTokenHash, &s.CSRF, &portal, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", notFound(err))
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.LastSeenAt), utc(s.ExpiresAt)
	if s.Portal, err = parsePortal(portal); err != nil {
		return nil, err
	}
	return &s, nil
}

// TouchSession records activity on a session.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE console_sessions SET last_seen_at = $1 WHERE id = $2`, now, id); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// SetSessionAccount makes an admin session show another account.
func (db *DB) SetSessionAccount(ctx context.Context, id, accountID string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE console_sessions SET account_id = $1 WHERE id = $2 AND admin_token_hash <> ''`,
		accountID, id)
	if err != nil {
		return fmt.Errorf("set session account: %w", err)
	}
	return mustAffect(tag, "session")
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes expired and idle sessions and expired portal links.
func (db *DB) PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *txn) error {
		a, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now, idleBefore)
		if err != nil {
			return err
		}
		b, err := tx.Exec(ctx, `DELETE FROM portal_links WHERE expires_at <= $1`, now)
		if err != nil {
			return err
		}
		n = a.RowsAffected() + b.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return n, nil
}

// CreatePortalLink stores a new portal link.
func (db *DB) CreatePortalLink(ctx context.Context, l *store.PortalLink) error {
	portal, err := portalJSON(&l.Scope)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO portal_links
		(id, account_id, key_id, portal, session_ttl_seconds, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		l.ID, l.AccountID, l.KeyID, portal, int64(l.SessionTTL/time.Second), l.CreatedAt, l.ExpiresAt)
	if isForeignKey(err) {
		return fmt.Errorf("create portal link: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create portal link: %w", err)
	}
	return nil
}

// RedeemPortalLink marks a link used and returns it.
func (db *DB) RedeemPortalLink(ctx context.Context, id string, now time.Time) (*store.PortalLink, error) {
	var l store.PortalLink
	var portal string
	var ttl int64
	err := db.pool.QueryRow(ctx, `UPDATE portal_links l SET used_at = $1
		WHERE l.id = $2 AND l.used_at IS NULL AND l.expires_at > $1
			AND EXISTS (SELECT 1 FROM api_keys k WHERE k.id = l.key_id AND k.revoked_at IS NULL)
		RETURNING l.id, l.account_id, l.key_id, l.portal, l.session_ttl_seconds, l.created_at, l.expires_at`,
		now, id).Scan(&l.ID, &l.AccountID, &l.KeyID, &portal, &ttl, &l.CreatedAt, &l.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("redeem portal link: %w", notFound(err))
	}
	p, err := parsePortal(portal)
	if err != nil {
		return nil, err
	}
	l.Scope = *p
	l.SessionTTL = time.Duration(ttl) * time.Second
	l.CreatedAt, l.ExpiresAt = utc(l.CreatedAt), utc(l.ExpiresAt)
	return &l, nil
}

// ConsoleMessages returns a filtered page of a subscription's messages.
// A filter applies to a window of the p.Scan newest messages after the
// cursor, read through messages_subscription_seq, so no index on status
// or event type burdens the delivery path.
func (db *DB) ConsoleMessages(ctx context.Context, p store.ConsoleMessagesParams) ([]*store.Message, int64, error) {
	window, args := `FROM messages WHERE subscription_id = $1 AND account_id = $2`, []any{p.SubscriptionID, p.AccountID}
	if p.After > 0 {
		args = append(args, p.After)
		window += fmt.Sprintf(` AND seq < $%d`, len(args))
	}
	filtered := p.Status != "" || p.EventType != ""
	scan := p.Scan
	if scan <= 0 {
		scan = store.DefaultMessageScan
	}
	query, qargs := `SELECT `+messageColumns+` `+window, append([]any{}, args...)
	if filtered {
		qargs = append(qargs, scan)
		query = fmt.Sprintf(`SELECT `+messageColumns+` FROM (SELECT * %s ORDER BY seq DESC LIMIT $%d) w WHERE true`, window, len(qargs))
		if p.Status != "" {
			qargs = append(qargs, p.Status)
			query += fmt.Sprintf(` AND status = $%d`, len(qargs))
		}
		if p.EventType != "" {
			qargs = append(qargs, p.EventType)
			query += fmt.Sprintf(` AND event_type = $%d`, len(qargs))
		}
	}
	qargs = append(qargs, p.Limit)
	rows, err := db.pool.Query(ctx, query+fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(qargs)), qargs...)
	if err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	if len(msgs) == p.Limit {
		return msgs, msgs[len(msgs)-1].Seq, nil
	}
	if !filtered {
		return msgs, 0, nil
	}
	// Fewer matches than asked: go on after the window, if it was full.
	var n, low int64
	args = append(args, scan)
	err = db.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce(min(seq), 0) FROM (SELECT seq %s ORDER BY seq DESC LIMIT $%d) w`,
		window, len(args)), args...).Scan(&n, &low)
	if err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	if n < int64(scan) {
		return msgs, 0, nil
	}
	return msgs, low, nil
}

// EventsByStart returns a calendar's events starting in a window, by start.
// With p.Ongoing it also reads, along the same index, the events that
// start up to store.LongEvent before the window and reach into it, and
// along events_long the longer ones, as BlockingEvents does.
func (db *DB) EventsByStart(ctx context.Context, p store.EventsByStartParams) ([]*store.Event, error) {
	const cols = `id, summary, location, status, start_at, end_at, all_day, time_zone, rrule, seq`
	query := `SELECT ` + cols + ` FROM events WHERE calendar_id = $1 AND account_id = $2 AND start_at >= $3 AND start_at < $4
		ORDER BY start_at, seq LIMIT $5 OFFSET $6`
	args := []any{p.CalendarID, p.AccountID, p.From, p.To, p.Limit, p.Offset}
	if p.Ongoing {
		query = `SELECT ` + cols + ` FROM events WHERE calendar_id = $1 AND account_id = $2
			AND start_at >= $7 AND start_at < $4 AND (start_at >= $3 OR end_at > $3)
		UNION ALL
		SELECT ` + cols + ` FROM events WHERE calendar_id = $1 AND account_id = $2 AND ` + longEvent + `
			AND start_at < $7 AND end_at > $3
		ORDER BY start_at, seq LIMIT $5 OFFSET $6`
		args = append(args, p.From.Add(-store.LongEvent))
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events by start: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) {
		e := &store.Event{CalendarID: p.CalendarID, AccountID: p.AccountID}
		if err := row.Scan(&e.ID, &e.Summary, &e.Location, &e.Status, &e.Start, &e.End, &e.AllDay, &e.TimeZone, &e.RRule, &e.Seq); err != nil {
			return nil, err
		}
		e.Start, e.End = utc(e.Start), utc(e.End)
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("events by start: %w", err)
	}
	return events, nil
}

// EnqueueMessage stores one message for a subscription outside the change
// log, with the negative of its creation time in microseconds as its
// change id, which no change has. It tells the other nodes that a message
// is due.
func (db *DB) EnqueueMessage(ctx context.Context, m *store.Message) error {
	changeID := -m.CreatedAt.UnixMicro()
	err := db.tx(ctx, func(tx *txn) error {
		if err := tx.QueryRow(ctx, `INSERT INTO messages
			(id, account_id, subscription_id, change_id, event_type, payload, status, next_attempt_at, created_at, updated_at)
			SELECT $1, $2, id, $3, $4, $5, 'pending', $6, $7, $7 FROM subscriptions WHERE id = $8 AND account_id = $2
			RETURNING seq`,
			m.ID, m.AccountID, changeID, m.EventType, m.Payload, m.NextAttemptAt, m.CreatedAt, m.SubscriptionID).Scan(&m.Seq); err != nil {
			return err
		}
		tx.notifyMessages()
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue message: %w", notFound(err))
	}
	m.Status, m.UpdatedAt, m.ChangeID = store.MessagePending, m.CreatedAt, changeID
	return nil
}

// RecentChanges returns an account's newest changes, newest first, without
// their event snapshots.
func (db *DB) RecentChanges(ctx context.Context, accountID string, limit int) ([]*store.Change, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, calendar_id, event_id, event_uid, type, occurred_at FROM changes
		WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent changes: %w", err)
	}
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Change, error) {
		c := &store.Change{AccountID: accountID}
		if err := row.Scan(&c.ID, &c.CalendarID, &c.EventID, &c.EventUID, &c.Type, &c.OccurredAt); err != nil {
			return nil, err
		}
		c.OccurredAt = utc(c.OccurredAt)
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("recent changes: %w", err)
	}
	return changes, nil
}

// ActivityMark is the newest change and attempt ids.
func (db *DB) ActivityMark(ctx context.Context) (string, error) {
	var c, a int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT max(id) FROM changes), 0),
		coalesce((SELECT max(id) FROM attempts), 0)`).Scan(&c, &a)
	if err != nil {
		return "", fmt.Errorf("activity mark: %w", err)
	}
	return strconv.FormatInt(c, 10) + "." + strconv.FormatInt(a, 10), nil
}

// OpenConflictCounts counts the open conflicts of an account's units along
// the conflicts_unit index, one unit at a time.
func (db *DB) OpenConflictCounts(ctx context.Context, accountID string, unitIDs []string) (map[string]int, error) {
	units := `SELECT id FROM units WHERE account_id = $1`
	args := []any{accountID}
	if unitIDs != nil {
		units += ` AND id = ANY($2)`
		args = append(args, unitIDs)
	}
	rows, err := db.pool.Query(ctx, `SELECT u.id, (SELECT count(*) FROM conflicts c WHERE c.unit_id = u.id AND c.state = 'open')
		FROM (`+units+`) u`, args...)
	if err != nil {
		return nil, fmt.Errorf("count open conflicts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count open conflicts: %w", err)
		}
		if n > 0 {
			out[id] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count open conflicts: %w", err)
	}
	return out, nil
}

// LatestConflicts returns a unit's newest conflicts in a state.
func (db *DB) LatestConflicts(ctx context.Context, accountID, unitID, state string, limit int) ([]*store.Conflict, error) {
	out, err := queryConflicts(ctx, db.pool, `WHERE unit_id = $1 AND state = $2 AND account_id = $3 ORDER BY seq DESC LIMIT $4`,
		unitID, state, accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("latest conflicts: %w", err)
	}
	return out, nil
}
