// Package account manages tenants: creating them with their API key and
// feed token, authenticating keys, rotating feed tokens, and the
// account-wide feed switch.
package account

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/memo"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// Store is what the account service keeps accounts in.
type Store interface {
	CreateAccount(ctx context.Context, a *store.Account) error
	Account(ctx context.Context, id string) (*store.Account, error)
	AccountByKeyHash(ctx context.Context, keyHash string) (*store.Account, error)
	DeleteAccount(ctx context.Context, id string) error
	SetFeedToken(ctx context.Context, accountID, token string, now time.Time) error
	SetFeedsDisabled(ctx context.Context, accountID string, disabled bool, now time.Time) error
	CreateAPIKey(ctx context.Context, k *store.APIKey) error
	ListAPIKeys(ctx context.Context, accountID string) ([]*store.APIKey, error)
	APIKeyByHash(ctx context.Context, keyHash string) (*store.APIKey, error)
	RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time) error
	TouchAPIKey(ctx context.Context, id string, now time.Time) error
	ListAccounts(ctx context.Context, afterID string, limit int) ([]*store.Account, error)
}

// Service creates and authenticates accounts.
type Service struct {
	store Store
	now   func() time.Time
	// bus hears that an account's feed token changed or that it was
	// deleted (FeedsChanged).
	bus *notify.Bus

	// keys remembers recent authentications by key hash, so that an API
	// call costs no database read for its key (see Authenticate).
	keys *memo.Map[string, keyAuth]
}

// keyAuth is what an authenticated key opens: its account and the key
// record itself.
type keyAuth struct {
	account *store.Account
	key     *store.APIKey
}

// Bounds of the authentication cache. An entry outlives neither keyTTL nor
// a change of its account that this node hears of (Forget).
const (
	keyTTL  = 10 * time.Second
	maxKeys = 10000
)

// NewService returns a Service publishing to and following bus; now and
// bus may be nil.
func NewService(s Store, now func() time.Time, bus *notify.Bus) *Service {
	if now == nil {
		now = time.Now
	}
	svc := &Service{store: s, now: now, bus: notify.Or(bus), keys: memo.New[string, keyAuth](keyTTL, maxKeys)}
	svc.bus.FeedsChanged.Subscribe(svc.feedsChanged)
	return svc
}

// feedsChanged forgets the accounts a change of an account itself (or of
// anything) may have touched, whichever node wrote it.
func (s *Service) feedsChanged(c notify.FeedChange) {
	if c.CalendarID == "" {
		s.Forget(c.AccountID)
	}
}

// Created is a new account with the API key, which is shown only once.
type Created struct {
	*store.Account
	APIKey string
}

// Create stores a new account with a fresh API key and feed token.
func (s *Service) Create(ctx context.Context, name string) (*Created, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, fault.Invalidf("", "name is required")
	case len(name) > 255 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, fault.Invalidf("", "name must be 1 to 255 bytes of text without control characters")
	}
	key := id.APIKey()
	now := s.now().UTC()
	a := &store.Account{
		ID: id.New("acc"), Name: name, APIKeyHash: id.HashKey(key), FeedToken: id.FeedToken(),
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	return &Created{Account: a, APIKey: key}, nil
}

// Authenticate returns the account an API key belongs to, or
// store.ErrNotFound.
//
// A key that authenticated is remembered for up to keyTTL, so that a busy
// client's calls read no account from the database; deleting the account
// or rotating its feed token forgets it at once, on this node directly and
// on the others through Forget when they hear of the write. Unknown keys
// are never remembered. The account returned may be that old: read it
// afresh (Get) where its feed token matters.
func (s *Service) Authenticate(ctx context.Context, key string) (*store.Account, error) {
	a, _, err := s.AuthenticateKey(ctx, key)
	return a, err
}

// AuthenticateKey is Authenticate that also returns the named key used.
// A key that was not remembered has its last-used time recorded (at most
// once a minute).
func (s *Service) AuthenticateKey(ctx context.Context, key string) (*store.Account, *store.APIKey, error) {
	if key == "" {
		return nil, nil, store.ErrNotFound
	}
	hash := id.HashKey(key)
	now := s.now()
	if k, ok := s.keys.Get(hash, now); ok {
		return k.account, k.key, nil
	}
	k, err := s.store.APIKeyByHash(ctx, hash)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.store.Account(ctx, k.AccountID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.store.TouchAPIKey(ctx, k.ID, now.UTC()); err != nil {
		return nil, nil, err
	}
	s.keys.Put(hash, keyAuth{account: a, key: k}, now)
	return a, k, nil
}

// Forget drops what Authenticate remembers of an account, or of every
// account when accountID is empty: the account changed, here or on another
// node.
func (s *Service) Forget(accountID string) {
	s.keys.DeleteFunc(func(_ string, k keyAuth) bool { return accountID == "" || k.account.ID == accountID })
}

// Get returns an account.
func (s *Service) Get(ctx context.Context, accountID string) (*store.Account, error) {
	return s.store.Account(ctx, accountID)
}

// Delete removes an account and everything it owns.
func (s *Service) Delete(ctx context.Context, accountID string) error {
	if err := s.store.DeleteAccount(ctx, accountID); err != nil {
		return err
	}
	s.Forget(accountID)
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID})
	return nil
}

// RotateFeedToken gives the account a new feed token; the old one stops
// working at once.
func (s *Service) RotateFeedToken(ctx context.Context, accountID string) (string, error) {
	token := id.FeedToken()
	if err := s.store.SetFeedToken(ctx, accountID, token, s.now().UTC()); err != nil {
		return "", err
	}
	s.Forget(accountID)
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID})
	return token, nil
}

// SetFeedsDisabled turns every feed of the account off (they answer 403
// with the reason) or on again, at once on every node: the feed caches
// forget the account's feeds when they hear of it.
func (s *Service) SetFeedsDisabled(ctx context.Context, accountID string, disabled bool) (*store.Account, error) {
	if err := s.store.SetFeedsDisabled(ctx, accountID, disabled, s.now().UTC()); err != nil {
		return nil, err
	}
	s.Forget(accountID)
	s.bus.FeedsChanged.Publish(notify.FeedChange{AccountID: accountID})
	return s.store.Account(ctx, accountID)
}
