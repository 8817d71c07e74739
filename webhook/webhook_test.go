package webhook_test

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
	"testing"
	"time"

	"github.com/calhook/calhook/webhook"
)

// Test secrets. specSecret and the vector below come from the Standard
// Webhooks specification's example; the others are 32 random bytes, like
// NewSecret's.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretA    = "whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw="
	secretB    = "whsec_aoOKTG+P3gG3z34O59bSdtfkOBX5Lij4tdQi+3qq5Qg="
	secretC    = "whsec_kXYwRcc/5iXptOEmw3p18kw1oO9hUBGiRRGvtxwkNec="
)

var (
	// t0 is the send time of the test deliveries; verifiers run at t0 unless
	// a test says otherwise.
	t0   = time.Date(2026, 11, 22, 15, 39, 7, 0, time.UTC)
	body = []byte(`{"webhookId":"9b9b499e-095c-4955-8dd0-cc5d84e50764","eventType":"calendar.event.created","timestamp":"2026-11-22T15:39:07+01:00","data":{"calendarId":"cal_1","eventId":"evt_1","summary":"Café ☕"}}`)
)

const msgID = "msg_2pWYd1NyoRsMAR2bvL0aL6nWZXt"

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func sign(t *testing.T, secrets []string, id string, when time.Time, b []byte) http.Header {
	t.Helper()
	s := webhook.Signer{}
	for _, raw := range secrets {
		s.Secrets = append(s.Secrets, webhook.MustParseSecret(raw))
	}
	h, err := s.Sign(id, when, b)
	if err != nil {
		t.Fatalf("Sign(%q) error: %v", id, err)
	}
	return h
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 20 {
		s, err := webhook.NewSecret()
		if err != nil {
			t.Fatalf("NewSecret() error: %v", err)
		}
		enc, ok := strings.CutPrefix(s, "whsec_")
		if !ok {
			t.Fatalf("NewSecret() = %q; want prefix whsec_", s)
		}
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(key) != 32 {
			t.Fatalf("NewSecret() = %q: decodes to %d bytes, %v; want 32 bytes", s, len(key), err)
		}
		if _, err := webhook.ParseSecret(s); err != nil {
			t.Fatalf("ParseSecret(NewSecret()) error: %v", err)
		}
		if seen[s] {
			t.Fatalf("NewSecret() returned %q twice", s)
		}
		seen[s] = true
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string // substring; empty means valid
	}{
		{in: secretA},
		{in: specSecret}, // 24 bytes, Svix's size
		{in: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64))},
		{in: "", wantErr: "empty"},
		{in: "whsec_", wantErr: "decodes to 0 bytes"},
		{in: strings.TrimPrefix(secretA, "whsec_"), wantErr: `does not start with "whsec_"`},
		{in: "WHSEC_" + strings.TrimPrefix(secretA, "whsec_"), wantErr: `does not start with "whsec_"`},
		{in: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), wantErr: "decodes to 23 bytes; want at least 24"},
		{in: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)), wantErr: "decodes to 16 bytes"},
		{in: strings.TrimSuffix(secretA, "="), wantErr: "not valid base64"},                         // unpadded
		{in: secretA + "=", wantErr: "not valid base64"},                                            // over-padded
		{in: "whsec_n6Ctu10btwBmaufavlU7DGQrienPi5_GLTkDQwpA5Gw=", wantErr: `has "_" at offset 36`}, // URL alphabet
		{in: secretA + "\n", wantErr: `has "\n"`},
		{in: " " + secretA, wantErr: "does not start"},
		{in: "whsec_n6Ctu10btwBmaufavlU7DGQr ienPi5/GLTkDQwpA5Gw=", wantErr: `has " "`},
	}
	for _, tt := range tests {
		_, err := webhook.ParseSecret(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseSecret(%q) error: %v; want nil", tt.in, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("ParseSecret(%q) = nil error; want %q", tt.in, tt.wantErr)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("ParseSecret(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	v := webhook.Verifier{Secret: webhook.MustParseSecret(secretA)}
	enc := strings.TrimPrefix(secretA, "whsec_")
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, v); strings.Contains(got, enc[:8]) {
			t.Errorf("Sprintf(%q, verifier) = %q; leaks the secret", format, got)
		}
	}
}

// TestSignVector checks Sign against values computed elsewhere: the
// Standard Webhooks specification's example signature, and a Node.js
// crypto.createHmac('sha256', secretString) digest of the body.
func TestSignVector(t *testing.T) {
	t.Parallel()
	h := sign(t, []string{specSecret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	want := map[string]string{
		"webhook-id":          "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp":   "1614265330",
		"webhook-signature":   "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"svix-id":             "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"svix-timestamp":      "1614265330",
		"svix-signature":      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"X-Calhook-Signature": "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c",
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("Sign() header %s = %q; want [%q]", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("Sign() set %d headers %v; want %d", len(h), h, len(want))
	}
}

func TestSignRotation(t *testing.T) {
	t.Parallel()
	h := sign(t, []string{secretB, secretA}, msgID, t0, body)
	sigs := strings.Split(h.Get(webhook.HeaderSignature), " ")
	if len(sigs) != 2 {
		t.Fatalf("Sign() with 2 secrets: %s = %q; want 2 space-separated signatures", webhook.HeaderSignature, h.Get(webhook.HeaderSignature))
	}
	for i, raw := range []string{secretB, secretA} {
		one := sign(t, []string{raw}, msgID, t0, body)
		if got, want := sigs[i], one.Get(webhook.HeaderSignature); got != want {
			t.Errorf("signature %d = %q; want %q (newest first)", i, got, want)
		}
	}
	// The body signature uses the newest secret only.
	if got, want := h.Get(webhook.HeaderSHA256), sign(t, []string{secretB}, msgID, t0, body).Get(webhook.HeaderSHA256); got != want {
		t.Errorf("%s = %q; want the newest secret's %q", webhook.HeaderSHA256, got, want)
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	a := webhook.MustParseSecret(secretA)
	tests := []struct {
		name    string
		signer  webhook.Signer
		id      string
		wantErr string
	}{
		{"no secrets", webhook.Signer{}, msgID, "no secret"},
		{"zero secret", webhook.Signer{Secrets: []webhook.Secret{a, {}}}, msgID, "Secrets[1] is the zero Secret"},
		{"empty id", webhook.Signer{Secrets: []webhook.Secret{a}}, "", "empty message id"},
		{"id with newline", webhook.Signer{Secrets: []webhook.Secret{a}}, "msg\r\nX-Evil: 1", "control character"},
		{"id with space", webhook.Signer{Secrets: []webhook.Secret{a}}, "msg 1", "space"},
	}
	for _, tt := range tests {
		h, err := tt.signer.Sign(tt.id, t0, body)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Sign(%q) = %v, %v; want error containing %q", tt.name, tt.id, h, err, tt.wantErr)
		}
	}
	if _, err := (webhook.Signer{}).Sign(msgID, t0, body); !errors.Is(err, webhook.ErrNoSecret) {
		t.Errorf("Signer{}.Sign() error = %v; want ErrNoSecret", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	fresh := func() http.Header { return sign(t, []string{secretA}, msgID, t0, body) }
	only := func(prefix string) http.Header {
		h := fresh()
		for k := range h {
			if !strings.HasPrefix(strings.ToLower(k), prefix) {
				delete(h, k)
			}
		}
		return h
	}
	tests := []struct {
		name    string
		secret  string
		now     time.Time
		tol     time.Duration
		body    []byte
		header  http.Header
		wantErr error
	}{
		{name: "valid", header: fresh()},
		{name: "webhook-* headers only", header: only("webhook-")},
		{name: "svix-* headers only", header: only("svix-")},
		{name: "4 min old", now: t0.Add(4 * time.Minute), header: fresh()},
		{name: "4 min ahead", now: t0.Add(-4 * time.Minute), header: fresh()},
		{name: "exactly 5 min old", now: t0.Add(5 * time.Minute), header: fresh()},
		{name: "6 min old", now: t0.Add(6 * time.Minute), header: fresh(), wantErr: webhook.ErrTimestamp},
		{name: "6 min ahead", now: t0.Add(-6 * time.Minute), header: fresh(), wantErr: webhook.ErrTimestamp},
		{name: "6 min old, tolerance 10 min", now: t0.Add(6 * time.Minute), tol: 10 * time.Minute, header: fresh()},
		{name: "2 min old, tolerance 1 min", now: t0.Add(2 * time.Minute), tol: time.Minute, header: fresh(), wantErr: webhook.ErrTimestamp},
		{name: "tampered body", body: append([]byte(" "), body...), header: fresh(), wantErr: webhook.ErrSignature},
		{name: "empty body", body: []byte{}, header: fresh(), wantErr: webhook.ErrSignature},
		{name: "wrong secret", secret: secretB, header: fresh(), wantErr: webhook.ErrSignature},
		{name: "no headers", header: http.Header{}, wantErr: webhook.ErrMissingHeaders},
		{name: "X-Calhook-Signature only", header: only("x-calhook-"), wantErr: webhook.ErrMissingHeaders},
		{name: "no webhook-id or svix-id", header: without(fresh(), "webhook-id", "svix-id"), wantErr: webhook.ErrMissingHeaders},
		{name: "no timestamps", header: without(fresh(), "webhook-timestamp", "svix-timestamp"), wantErr: webhook.ErrMissingHeaders},
		{name: "no signatures", header: without(fresh(), "webhook-signature", "svix-signature"), wantErr: webhook.ErrMissingHeaders},
		{name: "changed id", header: with(fresh(), "webhook-id", "msg_other"), wantErr: webhook.ErrSignature},
		{name: "changed timestamp", header: with(fresh(), "webhook-timestamp", strconv.FormatInt(t0.Unix()+1, 10)), wantErr: webhook.ErrSignature},
		{name: "timestamp with plus sign", header: with(fresh(), "webhook-timestamp", "+"+strconv.FormatInt(t0.Unix(), 10)), wantErr: webhook.ErrTimestamp},
		{name: "timestamp with leading zero", header: with(fresh(), "webhook-timestamp", "0"+strconv.FormatInt(t0.Unix(), 10)), wantErr: webhook.ErrTimestamp},
		{name: "timestamp in ms", header: with(fresh(), "webhook-timestamp", strconv.FormatInt(t0.UnixMilli(), 10)), wantErr: webhook.ErrTimestamp},
		{name: "timestamp not a number", header: with(fresh(), "webhook-timestamp", "2026-11-22T15:39:07Z"), wantErr: webhook.ErrTimestamp},
		{name: "huge timestamp", header: with(fresh(), "webhook-timestamp", "9223372036854775807"), wantErr: webhook.ErrTimestamp},
		{name: "negative timestamp", header: with(fresh(), "webhook-timestamp", "-9223372036854775808"), wantErr: webhook.ErrTimestamp},
		{name: "signature v2 only", header: with(fresh(), "webhook-signature", "v2,"+strings.TrimPrefix(fresh().Get("webhook-signature"), "v1,")), wantErr: webhook.ErrSignature},
		{name: "signature without version", header: with(fresh(), "webhook-signature", strings.TrimPrefix(fresh().Get("webhook-signature"), "v1,")), wantErr: webhook.ErrSignature},
		{name: "signature garbage", header: with(fresh(), "webhook-signature", "v1,,,, v1 ,"), wantErr: webhook.ErrSignature},
		{name: "signature among others", header: with(fresh(), "webhook-signature", "v1a,AAAA v1,bm9wZQ==  "+fresh().Get("webhook-signature")+" v1,eWVz")},
		{name: "signature in a second header line", header: add(with(fresh(), "webhook-signature", "v1,bm9wZQ=="), "webhook-signature", fresh().Get("webhook-signature"))},
		{name: "no secret", secret: "-", header: fresh(), wantErr: webhook.ErrNoSecret},
	}
	for _, tt := range tests {
		v := webhook.Verifier{Tolerance: tt.tol, Now: at(t0)}
		switch tt.secret {
		case "":
			v.Secret = webhook.MustParseSecret(secretA)
		case "-":
		default:
			v.Secret = webhook.MustParseSecret(tt.secret)
		}
		if !tt.now.IsZero() {
			v.Now = at(tt.now)
		}
		b := body
		if tt.body != nil {
			b = tt.body
		}
		err := v.Verify(b, tt.header)
		if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Verify() = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

func without(h http.Header, keys ...string) http.Header {
	for _, k := range keys {
		h.Del(k)
	}
	return h
}

func with(h http.Header, key, value string) http.Header {
	h.Set(key, value)
	if alias, ok := strings.CutPrefix(key, "webhook-"); ok {
		h.Set("svix-"+alias, value)
	}
	return h
}

func add(h http.Header, key, value string) http.Header {
	h.Add(key, value)
	return h
}

// TestVerifyErrorText checks that the errors explain themselves, since
// calhook listen prints them.
func TestVerifyErrorText(t *testing.T) {
	t.Parallel()
	v := webhook.Verifier{Secret: webhook.MustParseSecret(secretA), Now: at(t0.Add(6*time.Minute + 500*time.Millisecond))}
	err := v.Verify(body, sign(t, []string{secretA}, msgID, t0, body))
	if want := "webhook: timestamp outside tolerance: sent 6m0s ago, tolerance 5m0s"; err == nil || err.Error() != want {
		t.Errorf("Verify(stale) = %v; want %q", err, want)
	}
	v.Now = at(t0.Add(-time.Hour))
	err = v.Verify(body, sign(t, []string{secretA}, msgID, t0, body))
	if want := "webhook: timestamp outside tolerance: sent 1h0m0s in the future, tolerance 5m0s"; err == nil || err.Error() != want {
		t.Errorf("Verify(future) = %v; want %q", err, want)
	}
}

func TestVerifyRotation(t *testing.T) {
	t.Parallel()
	// During rotation calhook signs with the new secret and the old one.
	h := sign(t, []string{secretB, secretA}, msgID, t0, body)
	tests := []struct {
		secret  string
		wantErr error
	}{
		{secretB, nil},
		{secretA, nil},
		{secretC, webhook.ErrSignature},
	}
	for _, tt := range tests {
		v := webhook.Verifier{Secret: webhook.MustParseSecret(tt.secret), Now: at(t0)}
		if err := v.Verify(body, h); !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
			t.Errorf("Verify() with %s = %v; want %v", tt.secret[:10], err, tt.wantErr)
		}
	}
}

func TestVerifySHA256(t *testing.T) {
	t.Parallel()
	fresh := func() http.Header { return sign(t, []string{secretA}, msgID, t0, body) }
	// The MAC is keyed by the secret string, as the Mobile Calendar seed's
	// createHmac('sha256', secret) does when given "whsec_…" as is.
	m := hmac.New(sha256.New, []byte(secretA))
	m.Write(body)
	seedHex := hex.EncodeToString(m.Sum(nil))
	tests := []struct {
		name    string
		secret  string
		body    []byte
		header  http.Header
		wantErr error
	}{
		{name: "valid", header: fresh()},
		{name: "independent HMAC of the secret string", header: http.Header{"X-Calhook-Signature": {"sha256=" + seedHex}}},
		{name: "upper-case hex", header: http.Header{"X-Calhook-Signature": {"sha256=" + strings.ToUpper(seedHex)}}},
		{name: "stale timestamps do not matter", header: with(fresh(), "webhook-timestamp", "0")},
		{name: "rotation: newest secret", secret: secretB, header: sign(t, []string{secretB, secretA}, msgID, t0, body)},
		{name: "rotation: old secret", secret: secretA, header: sign(t, []string{secretB, secretA}, msgID, t0, body), wantErr: webhook.ErrSignature},
		{name: "tampered body", body: []byte(`{}`), header: fresh(), wantErr: webhook.ErrSignature},
		{name: "wrong secret", secret: secretB, header: fresh(), wantErr: webhook.ErrSignature},
		{name: "missing", header: without(fresh(), webhook.HeaderSHA256), wantErr: webhook.ErrMissingHeaders},
		{name: "no prefix", header: http.Header{"X-Calhook-Signature": {seedHex}}, wantErr: webhook.ErrSignature},
		{name: "other algorithm", header: http.Header{"X-Calhook-Signature": {"sha1=" + seedHex}}, wantErr: webhook.ErrSignature},
		{name: "not hex", header: http.Header{"X-Calhook-Signature": {"sha256=zz" + seedHex[2:]}}, wantErr: webhook.ErrSignature},
		{name: "odd length", header: http.Header{"X-Calhook-Signature": {"sha256=" + seedHex[1:]}}, wantErr: webhook.ErrSignature},
		{name: "truncated", header: http.Header{"X-Calhook-Signature": {"sha256=" + seedHex[:32]}}, wantErr: webhook.ErrSignature},
		{name: "empty MAC", header: http.Header{"X-Calhook-Signature": {"sha256="}}, wantErr: webhook.ErrSignature},
		{name: "keyed by decoded bytes instead", header: http.Header{"X-Calhook-Signature": {"sha256=" + decodedKeyMAC(t, secretA, body)}}, wantErr: webhook.ErrSignature},
		{name: "no secret", secret: "-", header: fresh(), wantErr: webhook.ErrNoSecret},
	}
	for _, tt := range tests {
		v := webhook.Verifier{}
		switch tt.secret {
		case "":
			v.Secret = webhook.MustParseSecret(secretA)
		case "-":
		default:
			v.Secret = webhook.MustParseSecret(tt.secret)
		}
		b := body
		if tt.body != nil {
			b = tt.body
		}
		err := v.VerifySHA256(b, tt.header)
		if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: VerifySHA256() = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

func decodedKeyMAC(t *testing.T, secret string, b []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// FuzzVerify checks that no input makes the verifiers panic, and that what
// Sign makes always verifies, by both schemes.
func FuzzVerify(f *testing.F) {
	h := webhook.Signer{Secrets: []webhook.Secret{webhook.MustParseSecret(secretA)}}
	good, err := h.Sign(msgID, t0, body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, msgID, good.Get(webhook.HeaderTimestamp), good.Get(webhook.HeaderSignature), good.Get(webhook.HeaderSHA256), int64(0))
	f.Add([]byte{}, "", "", "", "", int64(0))
	f.Add([]byte("\x00\xff"), "a.b", "+1", "v1, v1,= v1a,x", "sha256=0", int64(-1))
	f.Add([]byte("x"), "id", "-9223372036854775808", "v1,"+strings.Repeat("A", 44), "sha256=zz", int64(1<<62))
	sec := webhook.MustParseSecret(secretA)
	f.Fuzz(func(t *testing.T, b []byte, id, ts, sig, sha string, skew int64) {
		v := webhook.Verifier{Secret: sec, Now: at(t0)}
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		h.Set(webhook.HeaderSvixID, id)
		h.Set(webhook.HeaderSHA256, sha)
		_ = v.Verify(b, h)
		_ = v.VerifySHA256(b, h)

		// Within the tolerance, a signed delivery always verifies.
		when := t0.Add(time.Duration(skew % int64(webhook.DefaultTolerance)))
		signed, err := webhook.Signer{Secrets: []webhook.Secret{sec}}.Sign(id, when, b)
		if err != nil {
			return // ids that cannot be sent
		}
		if err := v.Verify(b, signed); err != nil {
			t.Errorf("Verify(Sign(%q, %v)) = %v", id, when, err)
		}
		if err := v.VerifySHA256(b, signed); err != nil {
			t.Errorf("VerifySHA256(Sign(%q)) = %v", id, err)
		}
	})
}
