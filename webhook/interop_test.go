package webhook_test

// Interoperability with the official Go libraries: the Standard Webhooks
// reference library and Svix's SDK must accept calhook's signatures, reject
// what they should, and calhook's Verifier must accept theirs. Both libraries
// check timestamps against time.Now, so these tests sign at the real time.

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/calhook/calhook/webhook"
)

// officialVerifiers returns, per library, a function that verifies with
// that library and the given secret.
func officialVerifiers(t *testing.T) map[string]func(secret string, body []byte, h http.Header) error {
	t.Helper()
	return map[string]func(string, []byte, http.Header) error{
		"standardwebhooks": func(secret string, body []byte, h http.Header) error {
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatalf("standardwebhooks.NewWebhook(%q): %v", secret, err)
			}
			return wh.Verify(body, h)
		},
		"svix": func(secret string, body []byte, h http.Header) error {
			wh, err := svix.NewWebhook(secret)
			if err != nil {
				t.Fatalf("svix.NewWebhook(%q): %v", secret, err)
			}
			return wh.Verify(body, h)
		},
	}
}

func TestOfficialLibrariesVerifyOurSignatures(t *testing.T) {
	t.Parallel()
	fresh, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name    string
		signer  []string  // secrets calhook signs with, newest first
		secret  string    // secret the receiver verifies with
		when    time.Time // send time
		body    []byte    // body the receiver gets; nil means the signed body
		header  func(http.Header)
		wantErr bool
	}{
		{name: "valid", signer: []string{secretA}, secret: secretA, when: now},
		{name: "valid, NewSecret", signer: []string{fresh}, secret: fresh, when: now},
		{name: "valid, 24-byte secret", signer: []string{specSecret}, secret: specSecret, when: now},
		{name: "webhook-* headers only", signer: []string{secretA}, secret: secretA, when: now, header: func(h http.Header) {
			h.Del(webhook.HeaderSvixID)
			h.Del(webhook.HeaderSvixTimestamp)
			h.Del(webhook.HeaderSvixSignature)
		}},
		{name: "rotation, new secret", signer: []string{secretB, secretA}, secret: secretB, when: now},
		{name: "rotation, old secret", signer: []string{secretB, secretA}, secret: secretA, when: now},
		{name: "4 min old", signer: []string{secretA}, secret: secretA, when: now.Add(-4 * time.Minute)},
		{name: "tampered body", signer: []string{secretA}, secret: secretA, when: now, body: []byte(`{"eventType":"calendar.event.deleted"}`), wantErr: true},
		{name: "wrong secret", signer: []string{secretA}, secret: secretB, when: now, wantErr: true},
		{name: "rotation, unrelated secret", signer: []string{secretB, secretA}, secret: secretC, when: now, wantErr: true},
		{name: "6 min old", signer: []string{secretA}, secret: secretA, when: now.Add(-6 * time.Minute), wantErr: true},
		{name: "10 min ahead", signer: []string{secretA}, secret: secretA, when: now.Add(10 * time.Minute), wantErr: true},
	}
	for _, tt := range tests {
		h := sign(t, tt.signer, msgID, tt.when, body)
		if tt.header != nil {
			tt.header(h)
		}
		b := body
		if tt.body != nil {
			b = tt.body
		}
		for lib, verify := range officialVerifiers(t) {
			err := verify(tt.secret, b, h)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("%s: %s Verify() = %v; want error: %t", tt.name, lib, err, tt.wantErr)
			}
		}
	}
}

// TestOurVerifierAcceptsOfficialSignatures signs with each library's Sign and
// verifies with ours.
func TestOurVerifierAcceptsOfficialSignatures(t *testing.T) {
	t.Parallel()
	std, err := standardwebhooks.NewWebhook(secretA)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := svix.NewWebhook(secretA)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]func(id string, ts time.Time, b []byte) (string, error){
		"standardwebhooks": std.Sign,
		"svix":             sv.Sign,
	}
	for lib, libSign := range signers {
		for _, prefix := range []string{"webhook-", "svix-"} {
			sig, err := libSign(msgID, t0, body)
			if err != nil {
				t.Fatalf("%s Sign(): %v", lib, err)
			}
			h := http.Header{}
			h.Set(prefix+"id", msgID)
			h.Set(prefix+"timestamp", strconv.FormatInt(t0.Unix(), 10))
			h.Set(prefix+"signature", sig)

			ours := sign(t, []string{secretA}, msgID, t0, body)
			if got, want := sig, ours.Get(webhook.HeaderSignature); got != want {
				t.Errorf("%s Sign() = %q; ours = %q", lib, got, want)
			}
			for _, tt := range []struct {
				secret  string
				body    []byte
				wantErr error
			}{
				{secretA, body, nil},
				{secretB, body, webhook.ErrSignature},
				{secretA, append(body, '\n'), webhook.ErrSignature},
			} {
				v := webhook.Verifier{Secret: webhook.MustParseSecret(tt.secret), Now: at(t0.Add(time.Minute))}
				if err := v.Verify(tt.body, h); !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
					t.Errorf("Verify(%s Sign(), %s headers) = %v; want %v", lib, prefix, err, tt.wantErr)
				}
			}
		}
	}
}
