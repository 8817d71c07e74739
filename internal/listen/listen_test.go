package listen_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/listen"
	"github.com/calhook/calhook/webhook"
)

const (
	secretNew = "whsec_aoOKTG+P3gG3z34O59bSdtfkOBX5Lij4tdQi+3qq5Qg="
	secretOld = "whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw="
	msgID     = "9b9b499e-095c-4955-8dd0-cc5d84e50764"
)

var (
	t0   = time.Date(2026, 11, 22, 15, 39, 7, 0, time.UTC)
	body = []byte(`{"webhookId":"9b9b499e-095c-4955-8dd0-cc5d84e50764","eventType":"calendar.event.created","timestamp":"2026-11-22T15:39:07+01:00","data":{"calendarId":"cal_1"}}`)
)

// syncBuffer is the receiver's Out: written by the server's goroutines,
// read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newServer starts the receiver with secret at a fixed clock t0.
func newServer(t *testing.T, secret string) (*httptest.Server, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	h, err := listen.Handler(listen.Config{Secret: secret, Out: out, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("Handler() error: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, out
}

// signed returns the headers calhook sends for body at sentAt.
func signed(t *testing.T, sentAt time.Time, b []byte, secrets ...string) http.Header {
	t.Helper()
	var s webhook.Signer
	for _, raw := range secrets {
		s.Secrets = append(s.Secrets, webhook.MustParseSecret(raw))
	}
	h, err := s.Sign(msgID, sentAt, b)
	if err != nil {
		t.Fatalf("Sign() error: %v", err)
	}
	h.Set("Content-Type", "application/json")
	return h
}

func do(t *testing.T, method, url string, header http.Header, b []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	resp, err := freshClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(got)
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	withEvent := func(h http.Header) http.Header {
		h.Set(webhook.HeaderEvent, "calendar.event.updated")
		return h
	}
	tests := []struct {
		name       string
		secret     string // the receiver's
		header     http.Header
		body       []byte // nil means body
		wantStatus int
		wantLine   string
	}{
		{
			name: "verified", secret: secretNew, header: signed(t, t0, body, secretNew),
			wantStatus: 204, wantLine: "2026-11-22T15:39:07Z POST calendar.event.created id=" + msgID + " verified",
		},
		{
			name: "event from header", secret: secretNew, header: withEvent(signed(t, t0, body, secretNew)),
			wantStatus: 204, wantLine: "2026-11-22T15:39:07Z POST calendar.event.updated id=" + msgID + " verified",
		},
		{
			name: "4 min old", secret: secretNew, header: signed(t, t0.Add(-4*time.Minute), body, secretNew),
			wantStatus: 204, wantLine: "verified",
		},
		{
			name: "rotation, new secret", secret: secretNew, header: signed(t, t0, body, secretNew, secretOld),
			wantStatus: 204, wantLine: "id=" + msgID + " verified",
		},
		{
			// X-Calhook-Signature carries the newest secret only.
			name: "rotation, old secret", secret: secretOld, header: signed(t, t0, body, secretNew, secretOld),
			wantStatus: 204, wantLine: "id=" + msgID + " verified; X-Calhook-Signature does not match: during a secret rotation it is made with the newest secret only",
		},
		{
			name: "rotation, bad X-Calhook-Signature", secret: secretNew,
			header: func() http.Header {
				h := signed(t, t0, body, secretNew, secretOld)
				h.Set(webhook.HeaderSHA256, "sha256=00")
				return h
			}(),
			// Accepted: the body is authentic, and a receiver cannot tell
			// which of the two secrets it holds.
			wantStatus: 204, wantLine: "verified; X-Calhook-Signature does not match",
		},
		{
			name: "rotation, unrelated secret", secret: secretOld, header: signed(t, t0, body, secretNew, "whsec_kXYwRcc/5iXptOEmw3p18kw1oO9hUBGiRRGvtxwkNec="),
			wantStatus: 400, wantLine: "NOT VERIFIED: webhook: no matching signature among 2 v1 signatures",
		},
		{
			name: "svix-* headers only", secret: secretNew,
			header: func() http.Header {
				h := signed(t, t0, body, secretNew)
				h.Del(webhook.HeaderID)
				h.Del(webhook.HeaderTimestamp)
				h.Del(webhook.HeaderSignature)
				return h
			}(),
			wantStatus: 204, wantLine: "id=" + msgID + " verified",
		},
		{
			name: "tampered body", secret: secretNew, header: signed(t, t0, body, secretNew),
			body:       bytes.Replace(body, []byte("created"), []byte("deleted"), 1),
			wantStatus: 400, wantLine: "2026-11-22T15:39:07Z POST calendar.event.deleted id=" + msgID + " NOT VERIFIED: webhook: no matching signature among 1 v1 signatures",
		},
		{
			name: "wrong secret", secret: secretOld, header: signed(t, t0, body, secretNew),
			wantStatus: 400, wantLine: "NOT VERIFIED: webhook: no matching signature",
		},
		{
			name: "6 min old", secret: secretNew, header: signed(t, t0.Add(-6*time.Minute), body, secretNew),
			wantStatus: 400, wantLine: "NOT VERIFIED: webhook: timestamp outside tolerance: sent 6m0s ago, tolerance 5m0s",
		},
		{
			name: "bad X-Calhook-Signature", secret: secretNew,
			header: func() http.Header {
				h := signed(t, t0, body, secretNew)
				h.Set(webhook.HeaderSHA256, "sha256=00")
				return h
			}(),
			wantStatus: 400, wantLine: "NOT VERIFIED: webhook: no matching signature in X-Calhook-Signature",
		},
		{
			name: "X-Calhook-Signature only", secret: secretNew,
			header:     http.Header{webhook.HeaderSHA256: signed(t, t0, body, secretNew)[webhook.HeaderSHA256]},
			wantStatus: 400, wantLine: "POST calendar.event.created id=- NOT VERIFIED: webhook: missing signature headers",
		},
		{
			name: "no secret", secret: "", header: signed(t, t0, body, secretNew),
			wantStatus: 400, wantLine: "id=" + msgID + " NOT VERIFIED: no --secret given",
		},
		{
			name: "not JSON, no event header", secret: secretNew, header: http.Header{}, body: []byte("hello"),
			wantStatus: 400, wantLine: "2026-11-22T15:39:07Z POST - id=- NOT VERIFIED: webhook: missing signature headers",
		},
		{
			name: "hostile event name", secret: secretNew, header: signed(t, t0, []byte(`{"eventType":"x\u001b[2Jy"}`), secretNew),
			body:       []byte(`{"eventType":"x\u001b[2Jy"}`),
			wantStatus: 204, wantLine: `POST "x\x1b[2Jy" id=`,
		},
		{
			name: "long event name", secret: secretNew,
			header: func() http.Header {
				h := signed(t, t0, body, secretNew)
				h.Set(webhook.HeaderEvent, strings.Repeat("é", 150))
				return h
			}(),
			wantStatus: 204, wantLine: "POST " + strings.Repeat("é", 100) + "… id=",
		},
		{
			name: "event name with spaces", secret: secretNew, header: signed(t, t0, []byte(`{"eventType":"a b"}`), secretNew),
			body:       []byte(`{"eventType":"a b"}`),
			wantStatus: 204, wantLine: `POST "a b" id=`,
		},
		{
			name: "body over 1 MiB", secret: secretNew, header: signed(t, t0, body, secretNew),
			body:       bytes.Repeat([]byte("a"), listen.MaxBodyBytes+1),
			wantStatus: 400, wantLine: "NOT VERIFIED: body larger than 1048576 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, out := newServer(t, tt.secret)
			b := body
			if tt.body != nil {
				b = tt.body
			}
			resp, respBody := do(t, http.MethodPost, srv.URL+"/hooks/calhook", tt.header, b)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("POST status = %d (%q); want %d", resp.StatusCode, respBody, tt.wantStatus)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("printed %q; want one line", out.String())
			}
			if !strings.Contains(lines[0], tt.wantLine) {
				t.Errorf("printed %q; want it to contain %q", lines[0], tt.wantLine)
			}
			if strings.Contains(lines[0], "\x1b") {
				t.Errorf("printed %q: an escape character reached the terminal", lines[0])
			}
		})
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	srv, out := newServer(t, "")
	resp, _ := do(t, http.MethodHead, srv.URL+"/hooks/in/tok_1", http.Header{listen.HeaderFeed: {"https://calhook.example/feeds/cal_1.ics"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD status = %d; want 200", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodHead, srv.URL+"/other", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD status = %d; want 200", resp.StatusCode)
	}
	want := "2026-11-22T15:39:07Z HEAD /hooks/in/tok_1 ping feed=https://calhook.example/feeds/cal_1.ics\n" +
		"2026-11-22T15:39:07Z HEAD /other ping feed=-\n"
	if got := out.String(); got != want {
		t.Errorf("printed %q; want %q", got, want)
	}
}

func TestChallenge(t *testing.T) {
	t.Parallel()
	srv, out := newServer(t, secretNew)
	resp, got := do(t, http.MethodGet, srv.URL+"/hooks/in/tok_1?icalhooks.challenge=Zm9v+YmFy%2Fbaz", nil, nil)
	if resp.StatusCode != http.StatusOK || got != "Zm9v YmFy/baz" {
		t.Errorf("GET challenge = %d %q; want 200 %q", resp.StatusCode, got, "Zm9v YmFy/baz")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q; want text/plain; charset=utf-8", ct)
	}
	resp, got = do(t, http.MethodGet, srv.URL+"/", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, "calhook listen") {
		t.Errorf("GET / = %d %q; want 200 and an explanation", resp.StatusCode, got)
	}
	want := "2026-11-22T15:39:07Z GET /hooks/in/tok_1 challenge=\"Zm9v YmFy/baz\" answered\n" +
		"2026-11-22T15:39:07Z GET / (no icalhooks.challenge)\n"
	if got := out.String(); got != want {
		t.Errorf("printed %q; want %q", got, want)
	}
}

func TestOtherMethods(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, secretNew)
	resp, _ := do(t, http.MethodPut, srv.URL+"/", nil, body)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT status = %d; want 405", resp.StatusCode)
	}
}

func TestHandlerBadSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"whsec_short", "n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw=", secretNew + "\n"} {
		if _, err := listen.Handler(listen.Config{Secret: secret}); err == nil || !strings.HasPrefix(err.Error(), "listen: secret: webhook: ") {
			t.Errorf("Handler(Secret: %q) error = %v; want listen: secret: webhook: …", secret, err)
		}
	}
}

// TestRun serves on a real port, delivers, and checks that cancelling the
// context stops Run cleanly.
func TestRun(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listen.Run(ctx, listen.Config{Addr: "127.0.0.1:0", Secret: secretNew, Out: out}, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run() = %v before ready", err)
	}

	// Real clock: Now is nil, so the receiver checks against time.Now.
	resp, got := do(t, http.MethodPost, "http://"+addr+"/", signed(t, time.Now(), body, secretNew), body)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST status = %d (%q); want 204", resp.StatusCode, got)
	}
	if line := out.String(); !strings.HasSuffix(line, " POST calendar.event.created id="+msgID+" verified\n") {
		t.Errorf("printed %q; want a verified line", line)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v; want nil", err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("POST after Run returned: status %d; want no server listening", resp.StatusCode)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	if err := listen.Run(t.Context(), listen.Config{Addr: "127.0.0.1:0", Secret: "whsec_"}, nil); err == nil {
		t.Errorf("Run(bad secret) = nil; want error")
	}
	if err := listen.Run(t.Context(), listen.Config{Addr: "127.0.0.1:notaport"}, nil); err == nil || !strings.HasPrefix(err.Error(), "listen: ") {
		t.Errorf("Run(bad addr) = %v; want listen: error", err)
	}
}

// freshClient returns a client that shares no connections: closing a
// test server drops the idle connections of http.DefaultClient, and with
// them a request of a parallel test that was about to reuse one.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
