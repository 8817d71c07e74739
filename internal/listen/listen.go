// Package listen is `calhook listen`: a local receiver for developers that
// verifies and prints the webhooks and iCal Hooks pings calhook sends, one
// line per request.
//
// It answers like a correct receiver would, so that calhook's delivery log
// shows what a real one would see: 204 for a delivery whose signatures
// verify, 400 for any other (including every delivery when no secret was
// given: an unverified delivery must not look accepted), 200 for a ping
// (HEAD), and the echoed icalhooks.challenge for a verification of intent
// (GET).
package listen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/calhook/calhook/webhook"
)

// DefaultAddr is where Run listens when Config.Addr is empty: loopback only,
// since the receiver is a development tool.
const DefaultAddr = "127.0.0.1:9000"

// MaxBodyBytes bounds the body of a delivery; calhook's payloads are small.
const MaxBodyBytes = 1 << 20

// HeaderFeed names the feed whose change an iCal Hooks ping announces.
const HeaderFeed = "X-ICALHOOKS-FEED"

// ChallengeParam is the query parameter of a verification of intent: the
// receiver proves it wants the hook by echoing its value.
const ChallengeParam = "icalhooks.challenge"

// shutdownTimeout bounds how long Run waits for requests in flight when its
// context ends.
const shutdownTimeout = 5 * time.Second

// Config configures the receiver. The zero value listens on DefaultAddr,
// prints to standard output and, with no secret, rejects every delivery.
type Config struct {
	// Addr is the host:port to listen on. Empty means DefaultAddr.
	Addr string
	// Secret is the subscription's "whsec_…" secret. Without it no delivery
	// can be verified, so each is printed and answered 400.
	Secret string
	// Out receives one line per request. Nil means os.Stdout.
	Out io.Writer
	// Now stamps the lines and checks webhook-timestamp. Nil means time.Now.
	Now func() time.Time
}

// handler holds the receiver's dependencies.
type handler struct {
	verifier  webhook.Verifier
	hasSecret bool
	now       func() time.Time

	mu  sync.Mutex // serializes lines from concurrent requests
	out io.Writer
}

// Handler returns the receiver as an http.Handler. It fails only on an
// invalid secret.
func Handler(cfg Config) (http.Handler, error) {
	h := &handler{out: cfg.Out, now: cfg.Now}
	if h.out == nil {
		h.out = os.Stdout
	}
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.Secret != "" {
		sec, err := webhook.ParseSecret(cfg.Secret)
		if err != nil {
			return nil, fmt.Errorf("listen: secret: %w", err)
		}
		h.verifier = webhook.Verifier{Secret: sec, Now: h.now}
		h.hasSecret = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", h.delivery)
	mux.HandleFunc("HEAD /", h.ping)
	mux.HandleFunc("GET /", h.get)
	return mux, nil
}

// Run serves the receiver on cfg.Addr until ctx ends, then shuts down
// gracefully. It calls ready, if not nil, with the address it listens on
// (useful with port 0) once it accepts connections. It returns nil after a
// shutdown caused by ctx.
func Run(ctx context.Context, cfg Config, ready func(addr string)) error {
	hdl, err := Handler(cfg)
	if err != nil {
		return err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           hdl,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("listen: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("listen: serve %s: %w", ln.Addr(), err)
	}
	if shutErr != nil {
		return fmt.Errorf("listen: shutdown: %w", shutErr)
	}
	return nil
}

// delivery verifies and prints one webhook delivery.
func (h *handler) delivery(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))

	event := r.Header.Get(webhook.HeaderEvent)
	if event == "" {
		var payload struct {
			EventType string `json:"eventType"`
		}
		if json.Unmarshal(body, &payload) == nil {
			event = payload.EventType
		}
	}
	id := r.Header.Get(webhook.HeaderID)
	if id == "" {
		id = r.Header.Get(webhook.HeaderSvixID)
	}
	prefix := fmt.Sprintf("POST %s id=%s", printable(event), printable(id))

	note, err := h.verify(body, readErr, r.Header)
	if err != nil {
		h.printf("%s NOT VERIFIED: %v", prefix, err)
		http.Error(w, "not verified: "+err.Error(), http.StatusBadRequest)
		return
	}
	h.printf("%s verified%s", prefix, note)
	w.WriteHeader(http.StatusNoContent)
}

// verify says why a delivery cannot be trusted, or nil if it can: its
// Standard Webhooks signature must verify, and so must X-Calhook-Signature
// when present. The note, if any, qualifies a verified delivery.
func (h *handler) verify(body []byte, readErr error, hdr http.Header) (note string, err error) {
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			return "", fmt.Errorf("body larger than %d bytes", tooBig.Limit)
		}
		return "", fmt.Errorf("read body: %w", readErr)
	}
	if !h.hasSecret {
		return "", errors.New("no --secret given, so the signature cannot be checked")
	}
	if err := h.verifier.Verify(body, hdr); err != nil {
		return "", err
	}
	if hdr.Get(webhook.HeaderSHA256) == "" {
		return "", nil
	}
	err = h.verifier.VerifySHA256(body, hdr)
	if err == nil || !errors.Is(err, webhook.ErrSignature) || signatureCount(hdr) < 2 {
		return "", err
	}
	// The body is authentic: the Standard Webhooks signature proved it.
	// While a secret is rotated, X-Calhook-Signature is made with the newest
	// secret only, so a receiver holding the old one cannot match it.
	return "; X-Calhook-Signature does not match: during a secret rotation it is made with the newest secret only", nil
}

// signatureCount counts the v1 signatures of a delivery: two or more mean
// its secret is being rotated.
func signatureCount(hdr http.Header) int {
	sig := hdr.Get(webhook.HeaderSignature)
	if sig == "" {
		sig = hdr.Get(webhook.HeaderSvixSignature)
	}
	n := 0
	for _, f := range strings.Fields(sig) {
		if strings.HasPrefix(f, "v1,") {
			n++
		}
	}
	return n
}

// ping prints an iCal Hooks ping: a HEAD announcing that a feed changed.
func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	h.printf("HEAD %s ping feed=%s", printable(r.URL.Path), printable(r.Header.Get(HeaderFeed)))
	w.WriteHeader(http.StatusOK)
}

// get answers a verification of intent by echoing its challenge, and any
// other GET (a developer's browser) with a short explanation.
func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	q := r.URL.Query()
	if !q.Has(ChallengeParam) {
		h.printf("GET %s (no %s)", printable(r.URL.Path), ChallengeParam)
		_, _ = io.WriteString(w, "calhook listen: POST webhooks or HEAD iCal Hooks pings here.\n")
		return
	}
	challenge := q.Get(ChallengeParam)
	h.printf("GET %s challenge=%s answered", printable(r.URL.Path), printable(challenge))
	_, _ = io.WriteString(w, challenge)
}

// printf writes one timestamped line.
func (h *handler) printf(format string, args ...any) {
	line := h.now().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...) + "\n"
	h.mu.Lock()
	defer h.mu.Unlock()
	_, _ = io.WriteString(h.out, line) // a failing terminal has nobody to report to
}

// printable makes a sender-chosen value safe to print on one terminal line:
// "-" when empty, Go-quoted when it holds spaces, control characters (an
// escape sequence could rewrite the terminal) or invalid UTF-8, and cut at
// 200 bytes.
func printable(s string) string {
	const maxLen = 200
	if s == "" {
		return "-"
	}
	cut := len(s) > maxLen
	if cut {
		i := maxLen
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar }) >= 0 || s[0] == '"' {
		s = strconv.Quote(s)
	}
	if cut {
		s += "…"
	}
	return s
}
