package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// SecretPrefix starts every webhook secret, as in Svix and Standard Webhooks.
const SecretPrefix = "whsec_"

const (
	// newSecretBytes is the key size of secrets made by NewSecret: as long as
	// the HMAC-SHA256 output, more than the 24 bytes Svix uses.
	newSecretBytes = 32
	// minSecretBytes is the shortest key ParseSecret accepts. Svix's own
	// secrets are 24 bytes; anything shorter is too weak to sign with.
	minSecretBytes = 24
)

// NewSecret returns a fresh random secret: "whsec_" followed by 32 random
// bytes in padded standard base64. The official Svix and Standard Webhooks
// libraries accept it as is.
func NewSecret() (string, error) {
	key := make([]byte, newSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Secret is a parsed webhook secret. It keeps both forms because calhook's
// two signature schemes key their HMACs differently: the Standard Webhooks
// signature with the decoded bytes, X-Calhook-Signature with the secret
// string itself. The zero Secret is invalid: Sign and Verify reject it with
// ErrNoSecret.
type Secret struct {
	raw string // "whsec_…", exactly as given
	key []byte // base64-decoded part after the prefix
}

// ParseSecret parses a "whsec_<base64>" secret as made by NewSecret (or by
// Svix). The base64 must be standard and padded, with no whitespace, and
// decode to at least 24 bytes.
func ParseSecret(s string) (Secret, error) {
	if s == "" {
		return Secret{}, fmt.Errorf("webhook: secret is empty")
	}
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("webhook: secret does not start with %q", SecretPrefix)
	}
	// encoding/base64 skips CR and LF, so without this check a secret read
	// from a file with its trailing newline would decode to the right key
	// but give the wrong X-Calhook-Signature, which is keyed by the string.
	if i := strings.IndexFunc(enc, func(r rune) bool {
		return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '+' || r == '/' || r == '=')
	}); i >= 0 {
		return Secret{}, fmt.Errorf("webhook: secret has %q at offset %d: want standard base64 after %q", enc[i:i+1], len(SecretPrefix)+i, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return Secret{}, fmt.Errorf("webhook: secret is not valid base64: %w", err)
	}
	if len(key) < minSecretBytes {
		return Secret{}, fmt.Errorf("webhook: secret decodes to %d bytes; want at least %d", len(key), minSecretBytes)
	}
	return Secret{raw: s, key: key}, nil
}

// MustParseSecret is like ParseSecret but panics on error. It is meant for
// tests and examples with constant secrets.
func MustParseSecret(s string) Secret {
	sec, err := ParseSecret(s)
	if err != nil {
		panic(err)
	}
	return sec
}

// IsZero reports whether s is the zero Secret, as in a Verifier that was
// given none.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// String redacts the secret so that logging a Secret or a struct holding one
// does not leak it.
func (s Secret) String() string {
	if s.IsZero() {
		return "<no secret>"
	}
	return SecretPrefix + "<redacted>"
}

// GoString redacts the secret under %#v as well.
func (s Secret) GoString() string { return "webhook.Secret{" + s.String() + "}" }
