// Package webhook signs and verifies calhook webhooks.
//
// Every delivery carries two independent signatures, so that a receiver can
// check it with whatever it already has:
//
//   - Standard Webhooks (https://www.standardwebhooks.com): the headers
//     webhook-id, webhook-timestamp and webhook-signature, where the signature
//     is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//     and key is the base64-decoded part of the "whsec_…" secret. The same
//     three values are repeated as svix-id, svix-timestamp and svix-signature,
//     so the official Standard Webhooks and Svix libraries, in any language,
//     verify calhook deliveries unchanged. While a secret is being rotated the
//     signature header lists one signature per secret, newest first, separated
//     by spaces, and a receiver holding either secret accepts the delivery.
//     This scheme binds the message id and the time, so a receiver can
//     reject replays; prefer it.
//
//   - X-Calhook-Signature: "sha256=" + lowercase hex HMAC-SHA256 of the raw
//     body, keyed by the secret string "whsec_…" itself (its UTF-8 bytes, not
//     the decoded key), with the newest secret only. It is the scheme of the
//     Mobile Calendar API's webhooks: their verifyWebhookSignature(rawBody,
//     header, secret) example works when given the calhook secret as is. It
//     has no timestamp, so it cannot detect a replayed delivery.
//
// Signer produces the headers of one delivery attempt, Verifier checks an
// incoming request. The package uses only the standard library.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names. http.Header canonicalizes them (webhook-id is stored as
// Webhook-Id), which does not matter on the wire: HTTP header names are
// case-insensitive.
const (
	// HeaderID is the Standard Webhooks message id. It stays the same across
	// retries of one message, so receivers can deduplicate on it.
	HeaderID = "webhook-id"
	// HeaderTimestamp is the Standard Webhooks send time, in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature holds the space-separated "v1,<base64>" signatures.
	HeaderSignature = "webhook-signature"

	// HeaderSvixID, HeaderSvixTimestamp and HeaderSvixSignature repeat the
	// Standard Webhooks headers under the names Svix's libraries look for
	// first.
	HeaderSvixID        = "svix-id"
	HeaderSvixTimestamp = "svix-timestamp"
	HeaderSvixSignature = "svix-signature"

	// HeaderEvent names the event type, such as "calendar.event.created".
	// Sign does not set it: the delivery code does.
	HeaderEvent = "X-Calhook-Event"
	// HeaderDeliveryID identifies the delivery. Sign does not set it: the
	// delivery code does.
	HeaderDeliveryID = "X-Calhook-Delivery-Id"
	// HeaderSHA256 holds "sha256=<hex>", the body-only signature.
	HeaderSHA256 = "X-Calhook-Signature"
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, in either direction, when Verifier.Tolerance is zero. It is the
// Standard Webhooks libraries' value.
const DefaultTolerance = 5 * time.Minute

// Errors returned, wrapped with details, by Signer and Verifier. Test for
// them with errors.Is.
var (
	// ErrMissingHeaders means the request lacks the headers of the scheme
	// being verified.
	ErrMissingHeaders = errors.New("webhook: missing signature headers")
	// ErrTimestamp means webhook-timestamp is not a Unix time, or is further
	// from now than the tolerance: a stale, replayed or future delivery.
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
	// ErrSignature means no signature matches: the body, id or timestamp was
	// changed, or the secret is not the one the sender used.
	ErrSignature = errors.New("webhook: no matching signature")
	// ErrNoSecret means a Signer or Verifier was used without a secret.
	ErrNoSecret = errors.New("webhook: no secret")
)

const (
	sigVersion   = "v1"
	sha256Prefix = "sha256="
)

// Signer produces the headers of one delivery attempt. Secrets[0] is the
// newest secret; while a secret is rotated there are two, and deliveries
// carry a Standard Webhooks signature for each.
type Signer struct {
	Secrets []Secret
}

// Sign returns the signature headers for a delivery of body with message id
// msgID, sent at t:
//
//	webhook-id, svix-id                msgID
//	webhook-timestamp, svix-timestamp  t in Unix seconds
//	webhook-signature, svix-signature  "v1,<base64>" per secret, newest first
//	X-Calhook-Signature                "sha256=<hex>" with Secrets[0]
//
// msgID should stay the same across retries of one message, and t should be
// the time of the attempt, not of the event, or receivers will reject
// retries as stale. Copy the result into the request with maps.Copy.
func (s Signer) Sign(msgID string, t time.Time, body []byte) (http.Header, error) {
	if len(s.Secrets) == 0 {
		return nil, ErrNoSecret
	}
	for i, sec := range s.Secrets {
		if sec.IsZero() {
			return nil, fmt.Errorf("%w: Secrets[%d] is the zero Secret", ErrNoSecret, i)
		}
	}
	if err := checkMsgID(msgID); err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(t.Unix(), 10)
	sigs := make([]string, len(s.Secrets))
	for i, sec := range s.Secrets {
		sigs[i] = sigVersion + "," + signature(sec.key, msgID, ts, body)
	}
	sig := strings.Join(sigs, " ")

	h := make(http.Header, 7)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSvixID, msgID)
	h.Set(HeaderSvixTimestamp, ts)
	h.Set(HeaderSvixSignature, sig)
	h.Set(HeaderSHA256, sha256Prefix+hex.EncodeToString(bodyMAC(s.Secrets[0], body)))
	return h, nil
}

// checkMsgID rejects ids that cannot travel in a header or that would make
// the signed "id.timestamp.body" ambiguous to a reader.
func checkMsgID(id string) error {
	if id == "" {
		return errors.New("webhook: empty message id")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("webhook: message id %q has a space or control character", id)
		}
	}
	return nil
}

// signature is the base64 Standard Webhooks signature of one message.
func signature(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// bodyMAC is the X-Calhook-Signature MAC, keyed by the secret string.
func bodyMAC(sec Secret, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(sec.raw))
	m.Write(body)
	return m.Sum(nil)
}

// Verifier checks incoming deliveries against one secret. During a rotation
// deliveries are signed with both the old and the new secret, so a receiver
// can switch its Verifier to the new secret at any time.
type Verifier struct {
	Secret Secret
	// Tolerance bounds the distance between webhook-timestamp and Now, in
	// either direction. Zero means DefaultTolerance.
	Tolerance time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Verify checks the Standard Webhooks signature of a delivery: body is the
// raw request body, exactly as received, and h the request headers. It reads
// the webhook-* headers, or the svix-* ones when a webhook-* header is
// missing. The delivery is accepted when its timestamp is within the
// tolerance and any one of its v1 signatures matches. The returned error
// wraps ErrMissingHeaders, ErrTimestamp, ErrSignature or ErrNoSecret.
func (v Verifier) Verify(body []byte, h http.Header) error {
	if v.Secret.IsZero() {
		return ErrNoSecret
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Values(HeaderSignature)
	if id == "" || ts == "" || len(sigs) == 0 {
		id, ts, sigs = h.Get(HeaderSvixID), h.Get(HeaderSvixTimestamp), h.Values(HeaderSvixSignature)
	}
	if id == "" || ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want %s, %s and %s", ErrMissingHeaders, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	if err := v.checkTimestamp(ts); err != nil {
		return err
	}
	want := []byte(signature(v.Secret.key, id, ts, body))
	n := 0
	for _, value := range sigs {
		for _, field := range strings.Fields(value) {
			version, sig, ok := strings.Cut(field, ",")
			if !ok || version != sigVersion {
				continue // another scheme, such as v1a (ed25519)
			}
			n++
			if hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w among %d v1 signatures", ErrSignature, n)
}

// checkTimestamp parses ts and checks it against the tolerance. The signed
// content uses the header as sent, so only its canonical decimal form is
// accepted: "+17…" or "017…" would not be what a signer signed.
func (v Verifier) checkTimestamp(ts string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: %s %q is not a Unix time", ErrTimestamp, HeaderTimestamp, ts)
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	// Sub saturates, so absurd timestamps cannot overflow into range.
	age := now().Sub(time.Unix(sec, 0))
	switch {
	case age > tol:
		return fmt.Errorf("%w: sent %s ago, tolerance %s", ErrTimestamp, age.Truncate(time.Second), tol)
	case age < -tol:
		return fmt.Errorf("%w: sent %s in the future, tolerance %s", ErrTimestamp, (-age).Truncate(time.Second), tol)
	}
	return nil
}

// VerifySHA256 checks the X-Calhook-Signature header, "sha256=<hex>", against
// the HMAC-SHA256 of body keyed by the secret string. It checks no timestamp
// and cannot detect replays; use Verify where possible. The returned error
// wraps ErrMissingHeaders, ErrSignature or ErrNoSecret.
func (v Verifier) VerifySHA256(body []byte, h http.Header) error {
	if v.Secret.IsZero() {
		return ErrNoSecret
	}
	value := h.Get(HeaderSHA256)
	if value == "" {
		return fmt.Errorf("%w: want %s", ErrMissingHeaders, HeaderSHA256)
	}
	hexMAC, ok := strings.CutPrefix(value, sha256Prefix)
	if !ok {
		return fmt.Errorf("%w: %s does not start with %q", ErrSignature, HeaderSHA256, sha256Prefix)
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, HeaderSHA256)
	}
	if !hmac.Equal(got, bodyMAC(v.Secret, body)) {
		return fmt.Errorf("%w in %s", ErrSignature, HeaderSHA256)
	}
	return nil
}
