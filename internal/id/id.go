// Package id generates identifiers and secrets from crypto/rand.
package id

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// lower is base32 without padding in lower case: URL-safe and unambiguous.
var lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns a random identifier with the given prefix, such as
// "cal_k5q3…", carrying 80 bits of randomness.
func New(prefix string) string {
	var b [10]byte
	rand.Read(b[:]) // never returns an error; it crashes the program instead
	return prefix + "_" + lower.EncodeToString(b[:])
}

// sortable is base32 in an alphabet in ASCII order, so that text order
// is byte order.
var sortable = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// Sorted returns an identifier with the given prefix whose text sorts by
// creation time: 48 bits of milliseconds since 1970, then 80 random bits,
// as in "evt_2c6…". Rows keyed by it are appended to the end of an index
// rather than spread over all of it: a batch of 1,000 new events touches a
// few pages of each index instead of one page per event, and stays in the
// cache as the table grows.
func Sorted(prefix string) string { return sortedAt(prefix, time.Now()) }

func sortedAt(prefix string, t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	rand.Read(b[6:])
	return prefix + "_" + sortable.EncodeToString(b[:])
}

// FeedToken returns a new feed token: 64 lowercase hex characters.
func FeedToken() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// APIKey returns a new account API key with 256 bits of randomness.
func APIKey() string {
	var b [32]byte
	rand.Read(b[:])
	return "chk_" + lower.EncodeToString(b[:])
}

// HashKey returns the hex SHA-256 of an API key, the only form in which keys
// are stored. Keys carry 256 random bits, so a fast hash is enough.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// UUID returns a random (version 4) UUID in its canonical text form.
func UUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// UUIDv7 returns a time-ordered (version 7, RFC 9562) UUID in its
// canonical text form: 48 bits of milliseconds since 1970, then random
// bits. It suits keys that are indexed, such as the UIDs the server
// gives events, for the reason Sorted gives.
func UUIDv7() string { return uuidV7At(time.Now()) }

func uuidV7At(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	rand.Read(b[6:])
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
