// Package id generates identifiers and secrets from crypto/rand.
package id

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
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
