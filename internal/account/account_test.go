package account_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

// readCounter is a real store that counts its reads by API key.
type readCounter struct {
	store.Store
	reads atomic.Int64
}

func (r *readCounter) APIKeyByHash(ctx context.Context, keyHash string) (*store.APIKey, error) {
	r.reads.Add(1)
	return r.Store.APIKeyByHash(ctx, keyHash)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAuthenticateRemembersKeys(t *testing.T) {
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := &readCounter{Store: b.Open(t)}
			clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			svc := account.NewService(db, clk.now, nil)
			a, err := svc.Create(ctx, "Beach Rentals")
			if err != nil {
				t.Fatal(err)
			}
			authn := func(key string) (*store.Account, error) {
				t.Helper()
				return svc.Authenticate(ctx, key)
			}
			for range 3 {
				if got, err := authn(a.APIKey); err != nil || got.ID != a.ID {
					t.Fatalf("Authenticate = %v, %v; want %s", got, err, a.ID)
				}
			}
			if n := db.reads.Load(); n != 1 {
				t.Errorf("3 authentications read the store %d times; want 1", n)
			}

			// Unknown keys are never remembered.
			for range 2 {
				if _, err := authn("nope"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Authenticate(unknown) = %v; want ErrNotFound", err)
				}
			}
			if n := db.reads.Load(); n != 3 {
				t.Errorf("after 2 unknown keys the store was read %d times; want 3", n)
			}

			// A remembered key is read again once its time is up.
			clk.advance(11 * time.Second)
			authn(a.APIKey)
			if n := db.reads.Load(); n != 4 {
				t.Errorf("after the cache time the store was read %d times; want 4", n)
			}

			// Forget (another node changed the account) reads it again.
			svc.Forget(a.ID)
			authn(a.APIKey)
			if n := db.reads.Load(); n != 5 {
				t.Errorf("after Forget the store was read %d times; want 5", n)
			}

			// Deleting the account through the service ends the key at once.
			if err := svc.Delete(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := authn(a.APIKey); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Authenticate after Delete = %v; want ErrNotFound", err)
			}
		})
	}
}

// TestRotationForgetsKey: the account Authenticate returns after a feed
// token rotation carries the new token.
func TestRotationForgetsKey(t *testing.T) {
	ctx := context.Background()
	svc := account.NewService(storetest.OpenSQLite(t), nil, nil)
	a, err := svc.Create(ctx, "Beach Rentals")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, a.APIKey); err != nil {
		t.Fatal(err)
	}
	token, err := svc.RotateFeedToken(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Authenticate(ctx, a.APIKey)
	if err != nil || got.FeedToken != token {
		t.Errorf("Authenticate after rotation = %+v, %v; want feed token %s", got, err, token)
	}
}

func TestNamedKeys(t *testing.T) {
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			svc := account.NewService(b.Open(t), nil, nil)
			a, err := svc.Create(ctx, "Beach Rentals")
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"", "  ", "bad\x00name", string(make([]byte, 101))} {
				if _, err := svc.CreateKey(ctx, a.ID, name); err == nil {
					t.Errorf("CreateKey(%q) = nil error; want invalid", name)
				}
			}
			k, err := svc.CreateKey(ctx, a.ID, "deploy <script>")
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			got, key, err := svc.AuthenticateKey(ctx, k.Key)
			if err != nil || got.ID != a.ID || key.ID != k.ID {
				t.Fatalf("AuthenticateKey(new key) = %v, %v, %v; want %s, %s", got, key, err, a.ID, k.ID)
			}
			keys, err := svc.ListKeys(ctx, a.ID)
			if err != nil || len(keys) != 2 || keys[1].LastUsedAt.IsZero() {
				t.Fatalf("ListKeys = %+v, %v; want default and the new key, used", keys, err)
			}
			// Rotation without downtime: revoke the default key, the new one
			// keeps working, the old one stops at once.
			if err := svc.RevokeKey(ctx, a.ID, keys[0].ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if _, err := svc.Authenticate(ctx, a.APIKey); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Authenticate(revoked key) = %v; want ErrNotFound", err)
			}
			if _, err := svc.Authenticate(ctx, k.Key); err != nil {
				t.Errorf("Authenticate(kept key) = %v", err)
			}
			other, err := svc.Create(ctx, "Other")
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.RevokeKey(ctx, other.ID, k.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RevokeKey(other account's key) = %v; want ErrNotFound", err)
			}
		})
	}
}
