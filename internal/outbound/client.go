package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Defaults for the zero fields of [Options].
const (
	DefaultConnectTimeout      = 5 * time.Second
	DefaultTimeout             = 10 * time.Second
	DefaultMaxRedirects        = 5
	DefaultMaxIdleConnsPerHost = 64
)

// NoRedirects is the [Options.MaxRedirects] value that follows no redirect:
// the client returns the 3xx response as is.
const NoRedirects = -1

// Options configures [NewClient]. The zero value is usable: https only,
// public addresses only, default timeouts and limits.
type Options struct {
	// Policy says which destinations are allowed, when connecting and on
	// every redirect hop.
	Policy
	// UserAgent is set on every request that has no User-Agent header.
	UserAgent string
	// ConnectTimeout bounds resolving and connecting (all addresses of a
	// name together) and, separately, the TLS handshake. Zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Timeout bounds a whole request: connecting, redirects, waiting for
	// the response headers and reading the body (it is http.Client.Timeout,
	// and also the transport's ResponseHeaderTimeout). Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRedirects is the number of redirects followed. Zero means
	// DefaultMaxRedirects; NoRedirects (or any negative value) follows none
	// and returns the 3xx response to the caller.
	MaxRedirects int
	// MaxConnsPerHost limits connections to one host; zero means no limit.
	MaxConnsPerHost int
	// MaxIdleConnsPerHost is the number of keep-alive connections kept per
	// host, so that many deliveries to one receiver reuse connections. Zero
	// means DefaultMaxIdleConnsPerHost; negative keeps none.
	MaxIdleConnsPerHost int
	// TLSConfig is the TLS configuration, for example RootCAs for a private
	// CA or a test server. It is cloned. Nil means the system defaults.
	TLSConfig *tls.Config
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	o.AllowedCIDRs = slices.Clone(o.AllowedCIDRs) // later changes by the caller must not loosen the policy
	return o
}

// NewClient returns an HTTP client that connects only to destinations the
// Policy allows. Each call builds its own transport and connection pool; the
// caller should keep and share the client.
//
// The client resolves host names with Policy.Resolver and refuses to connect
// if any address is forbidden; the socket address is checked again just
// before connecting. It ignores proxy settings from the environment (a proxy
// would connect on our behalf, past these checks), follows at most
// MaxRedirects redirects, each re-checked with the rules of CheckURL (so a
// forbidden hop is never dialed), and refuses a downgrade from https to http
// unless AllowHTTP is set. Refusals wrap ErrForbiddenAddress.
func NewClient(o Options) *http.Client {
	o = o.withDefaults()
	d := &dialer{
		policy:  o.Policy,
		timeout: o.ConnectTimeout,
		net: net.Dialer{
			KeepAlive:      30 * time.Second,
			ControlContext: o.Policy.control,
		},
	}
	var tlsConf *tls.Config
	if o.TLSConfig != nil {
		tlsConf = o.TLSConfig.Clone()
	}
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment: see NewClient
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: 1 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		// Bounded so that delivering to thousands of receivers cannot hold
		// thousands of idle sockets.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: o.MaxIdleConnsPerHost,
		MaxConnsPerHost:     o.MaxConnsPerHost,
		// Receivers choose the headers; 1 MiB is plenty and bounds memory.
		MaxResponseHeaderBytes: 1 << 20,
		ForceAttemptHTTP2:      true,
		DisableCompression:     false,
	}
	r := &redirects{policy: o.Policy, max: o.MaxRedirects}
	return &http.Client{
		Transport:     &transport{base: tr, policy: o.Policy, userAgent: o.UserAgent},
		CheckRedirect: r.check,
		Timeout:       o.Timeout,
	}
}

// transport checks the scheme and sets the User-Agent before handing the
// request to the http.Transport.
type transport struct {
	base      *http.Transport
	policy    Policy
	userAgent string
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if reason := t.policy.schemeProblem(req.URL.Scheme); reason != "" {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close the body, even on errors
		}
		return nil, &URLError{URL: req.URL.String(), Reason: reason, Err: ErrForbiddenAddress, quiet: reason}
	}
	if t.userAgent != "" && req.Header.Get("User-Agent") == "" {
		// A RoundTripper must not modify the caller's request.
		r2 := new(http.Request)
		*r2 = *req
		r2.Header = req.Header.Clone()
		if r2.Header == nil {
			r2.Header = make(http.Header)
		}
		r2.Header.Set("User-Agent", t.userAgent)
		req = r2
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes the idle keep-alive connections; it makes
// http.Client.CloseIdleConnections work through the wrapper.
func (t *transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

type redirects struct {
	policy Policy
	max    int
}

// check is the http.Client CheckRedirect function. It runs before the next
// hop is dialed, so a refused hop is never contacted.
func (r *redirects) check(req *http.Request, via []*http.Request) error {
	if r.max < 0 {
		return http.ErrUseLastResponse
	}
	hop := len(via)
	if hop > r.max {
		return &RedirectError{Hop: hop, Err: fmt.Errorf("%w: stopped after %d redirects, the limit", ErrTooManyRedirects, r.max)}
	}
	target := req.URL.String()
	if prev := via[len(via)-1].URL; prev.Scheme == "https" && req.URL.Scheme == "http" && !r.policy.AllowHTTP {
		return &RedirectError{Hop: hop, Err: &URLError{URL: target, Reason: "downgrade from https to http is not allowed", Err: ErrForbiddenAddress, quiet: "downgrade from https to http is not allowed"}}
	}
	if err := r.policy.checkURL(req.Context(), target, req.URL); err != nil {
		// A malformed hop is refused like a forbidden one; a resolver
		// failure stays what it is (it may be temporary).
		if ue := (*URLError)(nil); errors.As(err, &ue) && ue.Err == nil {
			ue.Err = ErrForbiddenAddress
		}
		return &RedirectError{Hop: hop, Err: err}
	}
	return nil
}

// dialer resolves names itself, so that the addresses it checks are the
// addresses it connects to.
type dialer struct {
	policy  Policy
	timeout time.Duration
	net     net.Dialer
}

// DialContext is the http.Transport DialContext function.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: invalid port %q", address, portStr)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel() // bounds connecting only; a connected net.Conn outlives ctx
	addrs, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.net.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// resolve returns the addresses to dial for host, or an error wrapping
// ErrForbiddenAddress if any of them is forbidden: a name that resolves to
// both a public and a private address is a rebinding attempt, not a
// fallback.
func (d *dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if ok, reason := d.policy.AddrAllowed(a); !ok {
			return nil, fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, a, withArticle(reason))
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	name, reason, kind := asciiHostName(host)
	if reason != "" {
		if kind != nil {
			return nil, fmt.Errorf("%w: %s", kind, reason)
		}
		return nil, errors.New(reason)
	}
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	addrs, err := d.policy.resolver().LookupNetIP(ctx, ipNet, name)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: name, IsNotFound: true}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ok, reason := d.policy.AddrAllowed(a); !ok {
			return nil, fmt.Errorf("%w: %s resolves to %s, %s", ErrForbiddenAddress, name, a.Unmap(), withArticle(reason))
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// control is the net.Dialer ControlContext function: the last check, on the
// exact address the socket is about to connect to.
func (p Policy) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q", ErrForbiddenAddress, network, address)
	}
	if ok, reason := p.AddrAllowed(ap.Addr()); !ok {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ap.Addr(), withArticle(reason))
	}
	return nil
}
