package outbound_test

// Every test here talks only to servers on loopback. Requests aimed at other
// addresses (10.0.0.1, 93.184.216.34) must be refused before any connection
// is made, and the tests assert the refusal.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/outbound"
)

var loopbackOnly = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// countingServer starts a loopback server that counts its requests and
// answers them with h (or 200 "ok" when h is nil).
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h == nil {
			io.WriteString(w, "ok")
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// get performs a GET and returns the status and body, or the error.
func get(t *testing.T, c *http.Client, u string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClientConnectTimeCheck(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, nil)
	tests := []struct {
		name    string
		allowed []netip.Prefix
		wantErr bool
	}{
		{name: "loopback denied by default", allowed: nil, wantErr: true},
		{name: "other exception only", allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, wantErr: true},
		{name: "loopback exception", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, wantErr: false},
	}
	for _, tt := range tests {
		c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: tt.allowed}})
		before := hits.Load()
		status, body, err := get(t, c, srv.URL)
		after := hits.Load()
		if tt.wantErr {
			if !errors.Is(err, outbound.ErrForbiddenAddress) {
				t.Errorf("%s: Get(%s) error = %v; want ErrForbiddenAddress", tt.name, srv.URL, err)
			} else if !strings.Contains(err.Error(), "127.0.0.1 is a loopback address") {
				t.Errorf("%s: Get error = %q; want it to say why", tt.name, err)
			}
			if after != before {
				t.Errorf("%s: server got %d requests; want 0", tt.name, after-before)
			}
			continue
		}
		if err != nil || status != http.StatusOK || body != "ok" {
			t.Errorf("%s: Get(%s) = %d, %q, %v; want 200, \"ok\", nil", tt.name, srv.URL, status, body, err)
		}
	}
}

func TestClientIPv6Loopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true}})
	if _, _, err := get(t, c, srv.URL); !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Errorf("Get(%s) error = %v; want ErrForbiddenAddress", srv.URL, err)
	}
	c = outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}})
	if status, _, err := get(t, c, srv.URL); err != nil || status != http.StatusOK {
		t.Errorf("Get(%s) with ::1 allowed = %d, %v; want 200, nil", srv.URL, status, err)
	}
}

func TestClientResolvesWithPolicyResolver(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, nil)
	port := mustPort(t, srv.URL)
	dns := newTestDNS(map[string][]string{
		"receiver.test": {"127.0.0.1"},
		"private.test":  {"10.0.0.1"},
		"mixed.test":    {"127.0.0.1", "10.0.0.1"},
	})
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly, Resolver: dns}})

	u := "http://receiver.test:" + port + "/"
	if status, _, err := get(t, c, u); err != nil || status != http.StatusOK {
		t.Fatalf("Get(%s) = %d, %v; want 200, nil", u, status, err)
	}
	for _, host := range []string{"private.test", "mixed.test", "localhost"} {
		u := "http://" + host + ":" + port + "/"
		_, _, err := get(t, c, u)
		if !errors.Is(err, outbound.ErrForbiddenAddress) {
			t.Errorf("Get(%s) error = %v; want ErrForbiddenAddress", u, err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("server got %d requests; want 1", got)
	}
}

func TestClientDNSRebinding(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, nil)
	port := mustPort(t, srv.URL)
	// The first answer is public (CheckURL at registration), every later
	// one is loopback (the attacker's DNS flipped). 93.184.216.34 is never
	// connected to: CheckURL only resolves.
	dns := &testDNS{answers: map[string][][]netip.Addr{
		"rebind.test": {parseAddrs("93.184.216.34"), parseAddrs("127.0.0.1")},
	}}
	p := outbound.Policy{AllowHTTP: true, Resolver: dns}
	u := "http://rebind.test:" + port + "/"
	if _, err := p.CheckURL(t.Context(), u); err != nil {
		t.Fatalf("CheckURL(%s) on the first (public) answer error = %v; want nil", u, err)
	}

	c := outbound.NewClient(outbound.Options{Policy: p})
	_, _, err := get(t, c, u)
	if !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Fatalf("Get(%s) after rebinding error = %v; want ErrForbiddenAddress", u, err)
	}
	if want := "rebind.test resolves to 127.0.0.1, a loopback address"; !strings.Contains(err.Error(), want) {
		t.Errorf("Get(%s) error = %q; want it to contain %q", u, err, want)
	}
	if got := hits.Load(); got != 0 {
		t.Errorf("server got %d requests; want 0", got)
	}
	if got := len(dns.Lookups()); got != 2 {
		t.Errorf("DNS lookups = %d; want 2 (CheckURL, then the dial)", got)
	}
}

func TestClientRedirects(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	// /chain/{n} redirects n times before answering "ok".
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			io.WriteString(w, "ok")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/chain/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	srv, hits := countingServer(t, mux.ServeHTTP)
	port := mustPort(t, srv.URL)
	to := func(target string) string { return srv.URL + "/to?u=" + url.QueryEscape(target) }

	dns := newTestDNS(map[string][]string{
		"private.test": {"10.0.0.1"},
		"back.test":    {"127.0.0.1"},
	})
	tests := []struct {
		name         string
		url          string
		maxRedirects int
		wantStatus   int
		wantErr      string // substring of the error
		forbidden    bool
		wantHits     int64
	}{
		{name: "5 redirects ok", url: srv.URL + "/chain/5", wantStatus: 200, wantHits: 6},
		{name: "6 redirects over the limit", url: srv.URL + "/chain/6", wantErr: "stopped after 5 redirects", wantHits: 6},
		{name: "custom limit", url: srv.URL + "/chain/2", maxRedirects: 1, wantErr: "stopped after 1 redirects", wantHits: 2},
		{name: "no redirects returns the 3xx", url: srv.URL + "/chain/1", maxRedirects: outbound.NoRedirects, wantStatus: http.StatusFound, wantHits: 1},
		{name: "to a private IP", url: to("http://10.0.0.1/"), wantErr: "redirect 1 refused", forbidden: true, wantHits: 1},
		{name: "to a metadata IP", url: to("http://169.254.169.254/latest/meta-data/"), wantErr: "cloud metadata", forbidden: true, wantHits: 1},
		{name: "to a name resolving private", url: to("http://private.test/"), wantErr: "resolves to 10.0.0.1, a private address", forbidden: true, wantHits: 1},
		{name: "to localhost", url: to("http://localhost:" + port + "/chain/0"), wantErr: "localhost is not allowed", forbidden: true, wantHits: 1},
		{name: "to a decimal IP", url: to("http://2130706433:" + port + "/chain/0"), wantErr: "non-standard IPv4", forbidden: true, wantHits: 1},
		{name: "to ftp", url: to("ftp://public.example/"), wantErr: "scheme ftp is not allowed", forbidden: true, wantHits: 1},
		{name: "to userinfo", url: to("http://u:p@back.test:" + port + "/chain/0"), wantErr: "credentials", forbidden: true, wantHits: 1},
		{name: "allowed hop by name", url: to("http://back.test:" + port + "/chain/0"), wantStatus: 200, wantHits: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the subtests share the server's hit counter.
			c := outbound.NewClient(outbound.Options{
				Policy:       outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly, Resolver: dns},
				MaxRedirects: tt.maxRedirects,
			})
			before := hits.Load()
			status, _, err := get(t, c, tt.url)
			if got := hits.Load() - before; got != tt.wantHits {
				t.Errorf("server got %d requests; want %d", got, tt.wantHits)
			}
			if tt.wantErr == "" {
				if err != nil || status != tt.wantStatus {
					t.Errorf("Get(%s) = %d, %v; want %d, nil", tt.url, status, err, tt.wantStatus)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Get(%s) error = %v; want one containing %q", tt.url, err, tt.wantErr)
			}
			if got := errors.Is(err, outbound.ErrForbiddenAddress); got != tt.forbidden {
				t.Errorf("errors.Is(err, ErrForbiddenAddress) = %v; want %v (err: %v)", got, tt.forbidden, err)
			}
		})
	}
}

func TestClientRedirectThroughChainRefused(t *testing.T) {
	t.Parallel()
	// Two allowed hops, then a forbidden one: the error names hop 3.
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/c", http.StatusMovedPermanently) })
	mux.HandleFunc("/c", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.168.1.1/admin", http.StatusTemporaryRedirect)
	})
	srv, _ := countingServer(t, mux.ServeHTTP)
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}})
	_, _, err := get(t, c, srv.URL+"/a")
	if !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Fatalf("Get error = %v; want ErrForbiddenAddress", err)
	}
	if want := "redirect 3 refused"; !strings.Contains(err.Error(), want) {
		t.Errorf("Get error = %q; want it to contain %q", err, want)
	}
}

// tlsServer starts a loopback TLS server and returns it with client options
// that trust its certificate.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool}
}

func TestClientHTTPSDowngrade(t *testing.T) {
	t.Parallel()
	plain, plainHits := countingServer(t, nil)
	secure, tlsConf := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Redirect(w, r, plain.URL+"/", http.StatusFound)
			return
		}
		io.WriteString(w, "secure "+r.Proto)
	}))

	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowedCIDRs: loopbackOnly}, TLSConfig: tlsConf})
	status, body, err := get(t, c, secure.URL+"/")
	if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "secure ") {
		t.Fatalf("Get(https) = %d, %q, %v; want 200, \"secure ...\", nil", status, body, err)
	}

	_, _, err = get(t, c, secure.URL+"/down")
	if !errors.Is(err, outbound.ErrForbiddenAddress) || !strings.Contains(err.Error(), "downgrade from https to http") {
		t.Errorf("Get(https → http) error = %v; want a refused downgrade wrapping ErrForbiddenAddress", err)
	}
	if got := plainHits.Load(); got != 0 {
		t.Errorf("http server got %d requests; want 0", got)
	}

	c = outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}, TLSConfig: tlsConf})
	if status, body, err := get(t, c, secure.URL+"/down"); err != nil || status != 200 || body != "ok" {
		t.Errorf("Get(https → http) with AllowHTTP = %d, %q, %v; want 200, \"ok\", nil", status, body, err)
	}
}

func TestClientHTTP2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowedCIDRs: loopbackOnly}, TLSConfig: &tls.Config{RootCAs: pool}})
	if _, body, err := get(t, c, srv.URL); err != nil || body != "HTTP/2.0" {
		t.Errorf("Get(h2 server) = %q, %v; want \"HTTP/2.0\", nil", body, err)
	}
}

func TestClientRefusesSchemeAtSend(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t, nil)
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowedCIDRs: loopbackOnly}})
	_, _, err := get(t, c, srv.URL)
	if !errors.Is(err, outbound.ErrForbiddenAddress) || !strings.Contains(err.Error(), "scheme http is not allowed") {
		t.Errorf("Get(http) without AllowHTTP error = %v; want a refused scheme", err)
	}
	if got := hits.Load(); got != 0 {
		t.Errorf("server got %d requests; want 0", got)
	}
}

func TestClientTimeouts(t *testing.T) {
	t.Parallel()
	// A server that accepts requests and never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)

	// A TCP listener that accepts connections and never speaks, so a TLS
	// handshake never completes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	tests := []struct {
		name string
		url  string
		opts outbound.Options
	}{
		{name: "no response", url: hang.URL, opts: outbound.Options{Timeout: 200 * time.Millisecond}},
		{name: "silent TLS", url: "https://" + ln.Addr().String() + "/", opts: outbound.Options{ConnectTimeout: 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Policy = outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}
			c := outbound.NewClient(tt.opts)
			start := time.Now()
			_, _, err := get(t, c, tt.url)
			elapsed := time.Since(start)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("Get(%s) error = %v; want a timeout", tt.url, err)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Get(%s) took %v; want well under 5s", tt.url, elapsed)
			}
		})
	}
}

func TestClientUserAgent(t *testing.T) {
	t.Parallel()
	uas := make(chan string, 2)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { uas <- r.UserAgent() })
	c := outbound.NewClient(outbound.Options{
		Policy:    outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly},
		UserAgent: "calhook/test",
	})

	if _, _, err := get(t, c, srv.URL); err != nil {
		t.Fatal(err)
	}
	if got, want := <-uas, "calhook/test"; got != want {
		t.Errorf("User-Agent = %q; want %q", got, want)
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "custom/1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := <-uas, "custom/1"; got != want {
		t.Errorf("User-Agent with the caller's own = %q; want %q", got, want)
	}
}

func TestClientKeepAlive(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}})
	for range 10 {
		if _, _, err := get(t, c, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("connections for 10 sequential requests = %d; want 1", got)
	}
	c.CloseIdleConnections()
}

// TestClientIgnoresProxyEnvironment is not parallel: it sets environment
// variables with t.Setenv.
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	proxy, proxyHits := countingServer(t, nil)
	target, targetHits := countingServer(t, nil)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("https_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	// A name rather than 127.0.0.1, because ProxyFromEnvironment never
	// proxies loopback addresses and the test would prove nothing.
	dns := newTestDNS(map[string][]string{"receiver.test": {"127.0.0.1"}})
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly, Resolver: dns}})
	u := "http://receiver.test:" + mustPort(t, target.URL) + "/"
	if status, _, err := get(t, c, u); err != nil || status != http.StatusOK {
		t.Fatalf("Get(%s) = %d, %v; want 200, nil", u, status, err)
	}
	if got := targetHits.Load(); got != 1 {
		t.Errorf("target got %d requests; want 1", got)
	}
	if got := proxyHits.Load(); got != 0 {
		t.Errorf("proxy got %d requests; want 0", got)
	}
}

func TestClientContextCanceled(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, nil)
	c := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("Do(canceled) error = %v; want context.Canceled", err)
	}
}

func mustPort(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}
