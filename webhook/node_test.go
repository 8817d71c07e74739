package webhook_test

// TestNode has calhook deliveries verified by Node.js receivers, through
// test/webhooks/verify.mjs: the official svix npm package (Standard
// Webhooks headers) and the Mobile Calendar seed's verifyWebhookSignature
// (X-Calhook-Signature, given the secret string as is). It needs node and
// `npm ci --prefix test/webhooks`; without them it skips, except in CI
// (CI=true), where it fails.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var nodeDir = filepath.Join("..", "test", "webhooks")

// nodeResult is one output line of verify.mjs. Svix is true or the error
// message of svix's verify.
type nodeResult struct {
	Svix any  `json:"svix"`
	Seed bool `json:"seed"`
}

type nodeInput struct {
	Secret  string            `json:"secret"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func nodeCommand(t *testing.T) *exec.Cmd {
	t.Helper()
	const setup = "npm ci --prefix test/webhooks"
	why := ""
	node, err := exec.LookPath("node")
	if err != nil {
		why = "node is not on PATH; install Node.js, then run: " + setup
	} else if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "svix", "package.json")); err != nil {
		why = "the svix npm package is not installed; run: " + setup
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Node.js webhook verifiers are required in CI: %s", why)
		}
		t.Skipf("Node.js webhook verifiers not available: %s", why)
	}
	return exec.CommandContext(t.Context(), node, filepath.Join(nodeDir, "verify.mjs"))
}

func TestNode(t *testing.T) {
	t.Parallel()
	cmd := nodeCommand(t)
	now := time.Now()
	// A second body with non-ASCII text and JSON escapes, since svix signs
	// the body as a string and the seed as bytes.
	body2 := []byte(`{"eventType":"calendar.event.updated","data":{"summary":"Réunion \u00e9t\u00e9 🗓️","note":"a\"b\\c"}}`)
	tests := []struct {
		name     string
		signer   []string  // secrets calhook signs with, newest first
		secret   string    // the receiver's secret
		when     time.Time // send time
		body     []byte    // signed body
		received []byte    // body the receiver gets; nil means body
		wantSvix string    // "" means svix accepts; otherwise a substring of its error
		wantSeed bool
	}{
		{name: "valid", signer: []string{secretA}, secret: secretA, when: now, body: body, wantSeed: true},
		{name: "valid, non-ASCII", signer: []string{secretA}, secret: secretA, when: now, body: body2, wantSeed: true},
		{name: "valid, 24-byte secret", signer: []string{specSecret}, secret: specSecret, when: now, body: body, wantSeed: true},
		{name: "tampered body", signer: []string{secretA}, secret: secretA, when: now, body: body, received: bytes.Replace(body, []byte("created"), []byte("deleted"), 1), wantSvix: "No matching signature"},
		{name: "wrong secret", signer: []string{secretA}, secret: secretB, when: now, body: body, wantSvix: "No matching signature"},
		// The seed's scheme has no timestamp: it cannot see a replay.
		{name: "6 min old", signer: []string{secretA}, secret: secretA, when: now.Add(-6 * time.Minute), body: body, wantSvix: "too old", wantSeed: true},
		{name: "10 min ahead", signer: []string{secretA}, secret: secretA, when: now.Add(10 * time.Minute), body: body, wantSvix: "too new", wantSeed: true},
		// X-Calhook-Signature carries the newest secret only: the seed's
		// function accepts one "sha256=<hex>" and nothing else.
		{name: "rotation, new secret", signer: []string{secretB, secretA}, secret: secretB, when: now, body: body, wantSeed: true},
		{name: "rotation, old secret", signer: []string{secretB, secretA}, secret: secretA, when: now, body: body, wantSeed: false},
		{name: "rotation, unrelated secret", signer: []string{secretB, secretA}, secret: secretC, when: now, body: body, wantSvix: "No matching signature"},
	}

	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, tt := range tests {
		h := sign(t, tt.signer, msgID, tt.when, tt.body)
		flat := map[string]string{}
		for k := range h {
			flat[strings.ToLower(k)] = h.Get(k)
		}
		received := tt.body
		if tt.received != nil {
			received = tt.received
		}
		if err := enc.Encode(nodeInput{Secret: tt.secret, Body: string(received), Headers: flat}); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}

	sc := bufio.NewScanner(bytes.NewReader(out))
	for i, tt := range tests {
		if !sc.Scan() {
			t.Fatalf("verify.mjs printed %d lines; want %d\nstdout:\n%s\nstderr:\n%s", i, len(tests), out, stderr.Bytes())
		}
		var got nodeResult
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("%s: verify.mjs line %q: %v", tt.name, sc.Text(), err)
		}
		switch msg, isErr := got.Svix.(string); {
		case tt.wantSvix == "" && got.Svix != true:
			t.Errorf("%s: svix verify() = %v; want true", tt.name, got.Svix)
		case tt.wantSvix != "" && (!isErr || !strings.Contains(msg, tt.wantSvix)):
			t.Errorf("%s: svix verify() = %v; want an error containing %q", tt.name, got.Svix, tt.wantSvix)
		}
		if got.Seed != tt.wantSeed {
			t.Errorf("%s: seed verifyWebhookSignature() = %t; want %t", tt.name, got.Seed, tt.wantSeed)
		}
	}
}
