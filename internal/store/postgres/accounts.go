package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
)

// accountColumns are the columns scanAccount reads from the accounts
// table (unaliased, as the version's subquery names it).
const accountColumns = `id, name, api_key_hash, feed_token, ` + accountVersion + `, feeds_disabled, created_at, updated_at`

func scanAccount(row pgx.Row) (*store.Account, error) {
	var a store.Account
	if err := row.Scan(&a.ID, &a.Name, &a.APIKeyHash, &a.FeedToken, &a.FeedVersion, &a.FeedsDisabled, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	return &a, nil
}

// CreateAccount stores a new account.
func (db *DB) CreateAccount(ctx context.Context, a *store.Account) error {
	if a.FeedVersion == 0 {
		a.FeedVersion = 1
	}
	// The account's first key is its "default" named key (see
	// AccountByKeyHash), stored by the same statement.
	_, err := db.exec(ctx, `WITH a AS (INSERT INTO accounts
		(id, name, api_key_hash, feed_token, feed_version, feed_updated_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id)
		INSERT INTO api_keys (id, account_id, name, key_hash, created_at) SELECT $8, a.id, 'default', $3, $6 FROM a`,
		a.ID, a.Name, a.APIKeyHash, a.FeedToken, a.FeedVersion, a.CreatedAt, a.UpdatedAt, store.DefaultKeyID(a.ID))
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
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

// AccountByKeyHash returns the account one of whose API keys (not
// revoked) hashes to keyHash.
func (db *DB) AccountByKeyHash(ctx context.Context, keyHash string) (*store.Account, error) {
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE id = (SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL)`, keyHash))
	if err != nil {
		return nil, fmt.Errorf("get account by key: %w", err)
	}
	return a, nil
}

// DeleteAccount removes an account; everything it owns goes with it through
// ON DELETE CASCADE.
func (db *DB) DeleteAccount(ctx context.Context, id string) error {
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "account "+id); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	return nil
}

// SetFeedToken replaces an account's feed token, bumps its feed version (so
// cached feeds keyed by version are never served for the old token) and
// records a credentials change, in one transaction.
func (db *DB) SetFeedToken(ctx context.Context, accountID, token string, now time.Time) error {
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts
			SET feed_token = $1, feed_version = feed_version + 1, updated_at = $2 WHERE id = $3`,
			token, now, accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "account "+accountID); err != nil {
			return err
		}
		// Hooks were registered with the old token: they go with it.
		if _, err := tx.Exec(ctx, `DELETE FROM icalhooks WHERE account_id = $1`, accountID); err != nil {
			return err
		}
		if _, err := appendChange(ctx, tx, &store.Change{
			AccountID: accountID, Type: store.ChangeCredentials, OccurredAt: now,
		}, nil); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: accountID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("set feed token of %s: %w", accountID, err)
	}
	return nil
}

// SetFeedsDisabled turns the account's feeds off or on and bumps its feed
// version; the other nodes hear of it and drop their cached feeds.
func (db *DB) SetFeedsDisabled(ctx context.Context, accountID string, disabled bool, now time.Time) error {
	err := db.tx(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts
			SET feeds_disabled = $1, feed_version = feed_version + 1, feed_updated_at = $2, updated_at = $2 WHERE id = $3`,
			disabled, now, accountID)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, "account "+accountID); err != nil {
			return err
		}
		tx.notifyChange(Change{AccountID: accountID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("set feeds disabled of %s: %w", accountID, err)
	}
	return nil
}
