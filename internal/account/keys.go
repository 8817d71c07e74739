package account

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// maxKeysPerAccount bounds an account's named keys; a rotation needs two.
const maxKeysPerAccount = 20

// CreatedKey is a new named key with its secret, which is shown only once.
type CreatedKey struct {
	*store.APIKey
	Key string
}

// CreateKey gives an account a new named API key.
func (s *Service) CreateKey(ctx context.Context, accountID, name string) (*CreatedKey, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, fault.Invalidf("name", "is required")
	case len(name) > 100 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, fault.Invalidf("name", "must be 1 to 100 bytes of text without control characters")
	}
	keys, err := s.store.ListAPIKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if len(keys) >= maxKeysPerAccount {
		return nil, fault.Conflictf(fault.Exists, "the account already has %d keys, the most it may have: revoke one first", maxKeysPerAccount)
	}
	key := id.APIKey()
	k := &store.APIKey{
		ID: id.New("key"), AccountID: accountID, Name: name, KeyHash: id.HashKey(key), Prefix: key[:10],
		CreatedAt: s.now().UTC(),
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return nil, fmt.Errorf("create api key: %w", err)
	}
	return &CreatedKey{APIKey: k, Key: key}, nil
}

// ListKeys returns an account's keys that are not revoked.
func (s *Service) ListKeys(ctx context.Context, accountID string) ([]*store.APIKey, error) {
	return s.store.ListAPIKeys(ctx, accountID)
}

// RevokeKey revokes one key of an account: it stops working at once on
// this node, and on the others once they forget it (keyTTL), and the
// console sessions opened with it end.
func (s *Service) RevokeKey(ctx context.Context, accountID, keyID string) error {
	if err := s.store.RevokeAPIKey(ctx, accountID, keyID, s.now().UTC()); err != nil {
		return err
	}
	s.Forget(accountID)
	// What else on this node remembers the account forgets it too.
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID})
	return nil
}

// List returns a page of every account, by id, after afterID.
func (s *Service) List(ctx context.Context, afterID string, limit int) ([]*store.Account, error) {
	return s.store.ListAccounts(ctx, afterID, limit)
}
