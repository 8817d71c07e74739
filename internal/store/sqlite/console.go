package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/calhook/calhook/internal/store"
)

const apiKeyColumns = `id, account_id, name, key_hash, prefix, created_at, last_used_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (*store.APIKey, error) {
	var k store.APIKey
	var created, used, revoked int64
	if err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.KeyHash, &k.Prefix, &created, &used, &revoked); err != nil {
		return nil, notFound(err)
	}
	k.CreatedAt = fromMicros(created)
	if used != 0 {
		k.LastUsedAt = fromMicros(used)
	}
	if revoked != 0 {
		k.RevokedAt = fromMicros(revoked)
	}
	return &k, nil
}

// CreateAPIKey stores a new named key of an account.
func (db *DB) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, key_hash, prefix, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, k.ID, k.AccountID, k.Name, k.KeyHash, k.Prefix, micros(k.CreatedAt))
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
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE account_id = ? AND revoked_at = 0 ORDER BY seq`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []*store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// APIKeyByHash returns the key that hashes to keyHash, unless it is revoked.
func (db *DB) APIKeyByHash(ctx context.Context, keyHash string) (*store.APIKey, error) {
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE key_hash = ? AND revoked_at = 0`, keyHash))
	if err != nil {
		return nil, fmt.Errorf("get api key: %w", err)
	}
	return k, nil
}

// RevokeAPIKey revokes one key of an account and ends its sessions.
func (db *DB) RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at = 0`,
			micros(now), id, accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "api key "+id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE key_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	return nil
}

// TouchAPIKey records that a key was used, at most once a minute.
func (db *DB) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND last_used_at < ?`,
		micros(now), id, micros(now.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}

// ListAccounts returns a page of every account, by id.
func (db *DB) ListAccounts(ctx context.Context, afterID string, limit int) ([]*store.Account, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id > ? ORDER BY id LIMIT ?`,
		afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []*store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
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
	_, err = db.write.ExecContext(ctx, `INSERT INTO console_sessions
		(id, account_id, key_id, admin_token_hash, csrf, portal, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.AccountID, s.KeyID, s.AdminTokenHash, s.CSRF, portal,
		micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns a live session.
func (db *DB) Session(ctx context.Context, id string, now time.Time, idle time.Duration) (*store.Session, error) {
	var s store.Session
	var portal string
	var created, seen, expires int64
	err := db.read.QueryRowContext(ctx, `SELECT s.id, s.account_id, s.key_id, s.admin_token_hash, s.csrf, s.portal,
			s.created_at, s.last_seen_at, s.expires_at
		FROM console_sessions s
		WHERE s.id = ? AND s.expires_at > ? AND s.last_seen_at > ?
			AND (s.key_id = '' OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.key_id AND k.revoked_at = 0))`,
		id, micros(now), micros(now.Add(-idle))).Scan(
		&s.ID, &s.AccountID, &s.KeyID, &s.AdminTokenHash, &s.CSRF, &portal, &created, &seen, &expires)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", notFound(err))
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	if s.Portal, err = parsePortal(portal); err != nil {
		return nil, err
	}
	return &s, nil
}

// TouchSession records activity on a session.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE id = ?`, micros(now), id); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// SetSessionAccount makes an admin session show another account.
func (db *DB) SetSessionAccount(ctx context.Context, id, accountID string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE console_sessions SET account_id = ? WHERE id = ? AND admin_token_hash <> ''`,
		accountID, id)
	if err != nil {
		return fmt.Errorf("set session account: %w", err)
	}
	return mustAffect(res, "session")
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes expired and idle sessions and expired portal links.
func (db *DB) PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen_at <= ?`,
			micros(now), micros(idleBefore))
		if err != nil {
			return err
		}
		a, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, `DELETE FROM portal_links WHERE expires_at <= ?`, micros(now))
		if err != nil {
			return err
		}
		b, _ := res.RowsAffected()
		n = a + b
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
	_, err = db.write.ExecContext(ctx, `INSERT INTO portal_links
		(id, account_id, key_id, portal, session_ttl_seconds, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.AccountID, l.KeyID, portal, int64(l.SessionTTL/time.Second), micros(l.CreatedAt), micros(l.ExpiresAt))
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
	var ttl, created, expires int64
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		return tx.QueryRowContext(ctx, `UPDATE portal_links SET used_at = ?
			WHERE id = ? AND used_at = 0 AND expires_at > ?
				AND EXISTS (SELECT 1 FROM api_keys k WHERE k.id = portal_links.key_id AND k.revoked_at = 0)
			RETURNING id, account_id, key_id, portal, session_ttl_seconds, created_at, expires_at`,
			micros(now), id, micros(now)).Scan(&l.ID, &l.AccountID, &l.KeyID, &portal, &ttl, &created, &expires)
	})
	if err != nil {
		return nil, fmt.Errorf("redeem portal link: %w", notFound(err))
	}
	p, err := parsePortal(portal)
	if err != nil {
		return nil, err
	}
	l.Scope = *p
	l.SessionTTL = time.Duration(ttl) * time.Second
	l.CreatedAt, l.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &l, nil
}

// ConsoleMessages returns a filtered page of a subscription's messages.
// A filter applies to a window of the p.Scan newest messages after the
// cursor, read through messages_subscription_seq, so no index on status
// or event type burdens the delivery path.
func (db *DB) ConsoleMessages(ctx context.Context, p store.ConsoleMessagesParams) ([]*store.Message, int64, error) {
	window, args := `SELECT * FROM messages WHERE subscription_id = ? AND account_id = ?`, []any{p.SubscriptionID, p.AccountID}
	if p.After > 0 {
		window += ` AND seq < ?`
		args = append(args, p.After)
	}
	filtered := p.Status != "" || p.EventType != ""
	scan := p.Scan
	if scan <= 0 {
		scan = store.DefaultMessageScan
	}
	query := `SELECT ` + messageColumns + ` FROM messages ` + strings.TrimPrefix(window, `SELECT * FROM messages `)
	qargs := append([]any{}, args...)
	if filtered {
		// The window is read from the index alone; only its rows are
		// looked up by seq (the rowid) and tested.
		query = `SELECT ` + messageColumns + ` FROM messages WHERE seq IN (` +
			strings.Replace(window, `SELECT *`, `SELECT seq`, 1) + ` ORDER BY seq DESC LIMIT ?)`
		qargs = append(qargs, scan)
		if p.Status != "" {
			query += ` AND status = ?`
			qargs = append(qargs, p.Status)
		}
		if p.EventType != "" {
			query += ` AND event_type = ?`
			qargs = append(qargs, p.EventType)
		}
	}
	rows, err := db.read.QueryContext(ctx, query+` ORDER BY seq DESC LIMIT ?`, append(qargs, p.Limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	defer rows.Close()
	var out []*store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("console messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	if len(out) == p.Limit {
		return out, out[len(out)-1].Seq, nil
	}
	if !filtered {
		return out, 0, nil
	}
	// Fewer matches than asked: go on after the window, if it was full.
	var n, low int64
	err = db.read.QueryRowContext(ctx, `SELECT count(*), coalesce(min(seq), 0) FROM (`+
		strings.Replace(window, `SELECT *`, `SELECT seq`, 1)+` ORDER BY seq DESC LIMIT ?)`, append(args, scan)...).Scan(&n, &low)
	if err != nil {
		return nil, 0, fmt.Errorf("console messages: %w", err)
	}
	if n < int64(scan) {
		return out, 0, nil
	}
	return out, low, nil
}

// EventsByStart returns a calendar's events starting in a window, by start.
// With p.Ongoing it also reads, along the same index, the events that
// start up to store.LongEvent before the window and reach into it, and
// along events_long the longer ones, as BlockingEvents does.
func (db *DB) EventsByStart(ctx context.Context, p store.EventsByStartParams) ([]*store.Event, error) {
	const cols = `id, summary, location, status, start_at, end_at, all_day, time_zone, rrule, seq`
	query := `SELECT ` + cols + ` FROM events WHERE calendar_id = ?1 AND account_id = ?2 AND start_at >= ?3 AND start_at < ?4
		ORDER BY start_at, seq LIMIT ?5 OFFSET ?6`
	if p.Ongoing {
		query = `SELECT ` + cols + ` FROM events WHERE calendar_id = ?1 AND account_id = ?2
			AND start_at >= ?7 AND start_at < ?4 AND (start_at >= ?3 OR end_at > ?3)
		UNION ALL
		SELECT ` + cols + ` FROM events INDEXED BY events_long WHERE calendar_id = ?1 AND account_id = ?2 AND ` + longEvent + `
			AND start_at < ?7 AND end_at > ?3
		ORDER BY start_at, seq LIMIT ?5 OFFSET ?6`
	}
	args := []any{p.CalendarID, p.AccountID, micros(p.From), micros(p.To), p.Limit, p.Offset}
	if p.Ongoing {
		args = append(args, micros(p.From.Add(-store.LongEvent)))
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events by start: %w", err)
	}
	defer rows.Close()
	var out []*store.Event
	for rows.Next() {
		e := &store.Event{CalendarID: p.CalendarID, AccountID: p.AccountID}
		var start, end int64
		if err := rows.Scan(&e.ID, &e.Summary, &e.Location, &e.Status, &start, &end, &e.AllDay, &e.TimeZone, &e.RRule, &e.Seq); err != nil {
			return nil, fmt.Errorf("events by start: %w", err)
		}
		e.Start, e.End = fromMicros(start), fromMicros(end)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events by start: %w", err)
	}
	return out, nil
}

// EnqueueMessage stores one message for a subscription outside the change
// log. Its change id is the negative of its creation time in microseconds,
// which no change has, so it never collides with a fanned-out message.
func (db *DB) EnqueueMessage(ctx context.Context, m *store.Message) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO messages
			(id, account_id, subscription_id, change_id, event_type, payload, status, next_attempt_at, created_at, updated_at)
			SELECT ?, ?, id, ?, ?, ?, 'pending', ?, ?, ? FROM subscriptions WHERE id = ? AND account_id = ?
			RETURNING seq`,
			m.ID, m.AccountID, -micros(m.CreatedAt), m.EventType, m.Payload, micros(m.NextAttemptAt),
			micros(m.CreatedAt), micros(m.CreatedAt), m.SubscriptionID, m.AccountID).Scan(&m.Seq)
	})
	if err != nil {
		return fmt.Errorf("enqueue message: %w", notFound(err))
	}
	m.Status, m.UpdatedAt, m.ChangeID = store.MessagePending, m.CreatedAt, -micros(m.CreatedAt)
	return nil
}

// RecentChanges returns an account's newest changes, newest first, without
// their event snapshots.
func (db *DB) RecentChanges(ctx context.Context, accountID string, limit int) ([]*store.Change, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, calendar_id, event_id, event_uid, type, occurred_at FROM changes
		WHERE account_id = ? ORDER BY id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent changes: %w", err)
	}
	defer rows.Close()
	var out []*store.Change
	for rows.Next() {
		c := &store.Change{AccountID: accountID}
		var at int64
		if err := rows.Scan(&c.ID, &c.CalendarID, &c.EventID, &c.EventUID, &c.Type, &at); err != nil {
			return nil, fmt.Errorf("recent changes: %w", err)
		}
		c.OccurredAt = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent changes: %w", err)
	}
	return out, nil
}

// ActivityMark is the newest change and attempt ids.
func (db *DB) ActivityMark(ctx context.Context) (string, error) {
	var c, a int64
	err := db.read.QueryRowContext(ctx, `SELECT coalesce((SELECT max(id) FROM changes), 0),
		coalesce((SELECT max(id) FROM attempts), 0)`).Scan(&c, &a)
	if err != nil {
		return "", fmt.Errorf("activity mark: %w", err)
	}
	return strconv.FormatInt(c, 10) + "." + strconv.FormatInt(a, 10), nil
}

// isForeignKey reports a violated foreign key: the row referred to does
// not exist.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// OpenConflictCounts counts the open conflicts of an account's units along
// the conflicts_unit index, one unit at a time.
func (db *DB) OpenConflictCounts(ctx context.Context, accountID string, unitIDs []string) (map[string]int, error) {
	units := `SELECT id FROM units WHERE account_id = ?1`
	args := []any{accountID}
	if unitIDs != nil {
		units += ` AND id IN (SELECT value FROM json_each(?2))`
		args = append(args, jsonList(unitIDs))
	}
	rows, err := db.read.QueryContext(ctx, `SELECT u.id, (SELECT count(*) FROM conflicts c WHERE c.unit_id = u.id AND c.state = 'open')
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
	out, err := queryConflicts(ctx, db.read, `WHERE unit_id = ? AND state = ? AND account_id = ? ORDER BY seq DESC LIMIT ?`,
		unitID, state, accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("latest conflicts: %w", err)
	}
	return out, nil
}
