package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/store"
)

const accountColumns = `id, name, api_key_hash, feed_token, feed_version, feeds_disabled, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (*store.Account, error) {
	var a store.Account
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Name, &a.APIKeyHash, &a.FeedToken, &a.FeedVersion, &a.FeedsDisabled, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &a, nil
}

// CreateAccount stores a new account.
func (db *DB) CreateAccount(ctx context.Context, a *store.Account) error {
	if a.FeedVersion == 0 {
		a.FeedVersion = 1
	}
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts
			(id, name, api_key_hash, feed_token, feed_version, feed_updated_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, a.APIKeyHash, a.FeedToken, a.FeedVersion, micros(a.CreatedAt), micros(a.CreatedAt), micros(a.UpdatedAt)); err != nil {
			return err
		}
		// The account's first key is its "default" named key (see
		// AccountByKeyHash).
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, key_hash, created_at) VALUES (?, ?, 'default', ?, ?)`,
			store.DefaultKeyID(a.ID), a.ID, a.APIKeyHash, micros(a.CreatedAt))
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("create account %s: %w", a.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create account %s: %w", a.ID, err)
	}
	return nil
}

// Account returns the account with the given id.
func (db *DB) Account(ctx context.Context, id string) (*store.Account, error) {
	a, err := scanAccount(db.read.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

// AccountByKeyHash returns the account one of whose API keys (not
// revoked) hashes to keyHash.
func (db *DB) AccountByKeyHash(ctx context.Context, keyHash string) (*store.Account, error) {
	a, err := scanAccount(db.read.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE id = (SELECT account_id FROM api_keys WHERE key_hash = ? AND revoked_at = 0)`, keyHash))
	if err != nil {
		return nil, fmt.Errorf("get account by key: %w", err)
	}
	return a, nil
}

// DeleteAccount removes an account; its calendars, events and changes go
// with it through ON DELETE CASCADE.
func (db *DB) DeleteAccount(ctx context.Context, id string) error {
	res, err := db.exec(ctx, `DELETE FROM accounts WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	return mustAffect(res, "delete account "+id)
}

// SetFeedToken replaces an account's feed token, bumps its feed version (so
// cached feeds keyed by version are never served for the old token) and
// records a credentials change, in one transaction.
func (db *DB) SetFeedToken(ctx context.Context, accountID, token string, now time.Time) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts
			SET feed_token = ?, feed_version = feed_version + 1, updated_at = ? WHERE id = ?`,
			token, micros(now), accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "account "+accountID); err != nil {
			return err
		}
		// Hooks were registered with the old token: they go with it.
		if _, err := tx.ExecContext(ctx, `DELETE FROM icalhooks WHERE account_id = ?`, accountID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO changes
			(account_id, calendar_id, event_id, event_uid, type, event, occurred_at, trace)
			VALUES (?, '', '', '', ?, CAST('{}' AS BLOB), ?, ?)`,
			accountID, store.ChangeCredentials, micros(now), store.TraceFrom(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("set feed token of %s: %w", accountID, err)
	}
	return nil
}

// SetFeedsDisabled turns the account's feeds off or on and bumps its feed
// version, so cached renders and ETags of its feeds change.
func (db *DB) SetFeedsDisabled(ctx context.Context, accountID string, disabled bool, now time.Time) error {
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts
			SET feeds_disabled = ?, feed_version = feed_version + 1, feed_updated_at = ?, updated_at = ? WHERE id = ?`,
			disabled, micros(now), micros(now), accountID)
		if err != nil {
			return err
		}
		return mustAffect(res, "account "+accountID)
	})
	if err != nil {
		return fmt.Errorf("set feeds disabled of %s: %w", accountID, err)
	}
	return nil
}

// mustAffect returns store.ErrNotFound when res changed no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
