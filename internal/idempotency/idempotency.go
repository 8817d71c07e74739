// Package idempotency keeps the first answer to a request sent with an
// Idempotency-Key, per account and key, for 24 hours: a retried request
// gets that answer again instead of acting twice, the convention of
// payment and booking APIs.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

// Retention is how long an answer is kept; PendingTimeout how long a key
// whose first request never finished (the node died) stays reserved.
const (
	Retention      = 24 * time.Hour
	PendingTimeout = time.Minute
	maxKeyBytes    = 255
)

// Keeper reserves keys and keeps answers.
type Keeper struct {
	store store.IdempotencyStore
	now   func() time.Time
}

// New returns a Keeper; a nil now means time.Now.
func New(s store.IdempotencyStore, now func() time.Time) *Keeper {
	if now == nil {
		now = time.Now
	}
	return &Keeper{store: s, now: now}
}

// Fingerprint identifies a request by its method, path and body.
func Fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Begin reserves key for a request with fingerprint fp. It returns the
// kept answer of an earlier request with the key (Status set), or nil when
// the request is the first and must be answered, then Finished or
// Abandoned. The key sent with another request is a conflict (KeyReused),
// as is one whose first request is still being answered (KeyInUse).
func (k *Keeper) Begin(ctx context.Context, accountID, key, fp string) (*store.IdempotentRequest, error) {
	if len(key) > maxKeyBytes || !printable(key) {
		return nil, fault.Invalidf("Idempotency-Key", "must be 1 to %d printable ASCII characters", maxKeyBytes)
	}
	now := k.now().UTC()
	r := &store.IdempotentRequest{AccountID: accountID, Key: key, Fingerprint: fp, CreatedAt: now, ExpiresAt: now.Add(Retention)}
	kept, fresh, err := k.store.BeginIdempotent(ctx, r, now, now.Add(-PendingTimeout))
	switch {
	case err != nil:
		return nil, err
	case fresh:
		return nil, nil
	case kept.Fingerprint != fp:
		return nil, fault.Conflictf(fault.KeyReused, "this Idempotency-Key was used with another request: use a new key for a new request")
	case kept.Status == 0:
		return nil, fault.Conflictf(fault.KeyInUse, "the first request with this Idempotency-Key is still being answered: retry shortly")
	}
	return kept, nil
}

// Finish keeps the answer of a request that Begin let through.
func (k *Keeper) Finish(ctx context.Context, accountID, key string, status int, body []byte) error {
	return k.store.FinishIdempotent(ctx, accountID, key, status, body)
}

// Abandon frees the key of a request that failed, so a retry runs again.
func (k *Keeper) Abandon(ctx context.Context, accountID, key string) error {
	return k.store.AbandonIdempotent(ctx, accountID, key)
}

func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
