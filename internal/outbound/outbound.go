// Package outbound is the one HTTP client calhook uses to reach URLs that
// users choose: webhook deliveries, iCal Hooks pings and imported feeds.
//
// Those URLs are attacker-controlled, so the client defends against
// server-side request forgery (SSRF) in three places:
//
//   - [Policy.CheckURL] validates a URL when it is registered, so a user gets
//     a clear error at once;
//   - the client's dialer resolves host names itself and checks every address
//     it is about to connect to, and [net.Dialer.ControlContext] checks the
//     socket address once more, so DNS rebinding (a name that resolved to a
//     public address at registration and to 127.0.0.1 later) cannot reach
//     internal services;
//   - every redirect hop is checked again before it is followed.
//
// Refusals wrap [ErrForbiddenAddress], so callers can record them in a
// delivery log and tell them apart from network failures. Error texts are
// complete, for the operator's log; what a tenant reads comes from
// [Describe], which names the class of failure and nothing of the network.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength is the longest URL, in bytes, that [Policy.CheckURL] accepts.
const MaxURLLength = 2048

// ErrForbiddenAddress is wrapped by every error that refuses a destination
// because of where it points: an address outside the [Policy], a local or
// numeric host name, a connection attempt to a forbidden address, a refused
// redirect hop (for any reason but the resolver failing), or a request whose
// scheme the Policy does not allow. Check for it with [errors.Is]; the
// error's message says why, e.g. "forbidden address: example.test resolves
// to 10.0.0.5, a private address".
var ErrForbiddenAddress = errors.New("forbidden address")

// Resolver resolves host names to IP addresses. [*net.Resolver] implements
// it; tests inject their own to simulate DNS answers, including rebinding.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which destinations are allowed. The zero value allows only
// https URLs to public addresses, resolved with [net.DefaultResolver].
type Policy struct {
	// AllowHTTP allows plain http:// URLs. By default only https is allowed.
	AllowHTTP bool
	// AllowedCIDRs are operator exceptions that are allowed even though they
	// are in a denied range, for example 127.0.0.0/8 in tests or a private
	// network in an intranet deployment. See [ParseCIDRs].
	AllowedCIDRs []netip.Prefix
	// Resolver resolves host names, both in CheckURL and when connecting.
	// Nil means net.DefaultResolver.
	Resolver Resolver
}

// URLError describes a URL refused by a [Policy].
type URLError struct {
	// URL is the refused URL as given.
	URL string
	// Reason says why, in words fit for an API error message, for example
	// "scheme ftp is not allowed".
	Reason string
	// Err is ErrForbiddenAddress when the URL was refused because of where
	// it points (an address, a local or numeric name) or by the client (a
	// redirect hop, a scheme), the resolver's error when the host could not
	// be resolved, and nil when CheckURL found the URL malformed (length,
	// scheme, credentials, missing host, port).
	Err error
	// quiet, when set, is the reason in words that say only what the URL
	// itself says (its scheme, a local name), which [Describe] may repeat
	// even for a refusal that wraps ErrForbiddenAddress.
	quiet string
}

// Error implements error.
func (e *URLError) Error() string {
	const maxLen = 128 // the URL may be up to MaxURLLength and more; keep logs readable
	u := e.URL
	if len(u) > maxLen {
		u = u[:maxLen] + "..."
	}
	return fmt.Sprintf("url %q: %s", u, e.Reason)
}

// Unwrap returns e.Err.
func (e *URLError) Unwrap() error { return e.Err }

// ParseCIDRs parses operator exceptions for [Policy.AllowedCIDRs]. Each entry
// is a CIDR ("10.0.0.0/8", "fd00::/8") or a single address ("127.0.0.1",
// which becomes 127.0.0.1/32). Surrounding spaces are ignored and empty
// entries skipped; an invalid entry is named in the error.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range list {
		s := strings.TrimSpace(entry)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("allowed CIDR %q: not a valid CIDR: %w", entry, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("allowed CIDR %q: not a valid IP address or CIDR: %w", entry, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("allowed CIDR %q: addresses with a zone are not supported", entry)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// CheckURL validates a URL when it is registered (a webhook subscription, an
// iCal hook, an imported feed) and returns it parsed. It refuses, with a
// [*URLError]:
//
//   - URLs longer than [MaxURLLength] bytes or that do not parse;
//   - schemes other than https, and http unless AllowHTTP is set;
//   - a missing host, credentials (user:pass@), a port outside 1-65535;
//   - "localhost" and names ending in .localhost, .local or .internal,
//     without resolving them;
//   - host names that end in a number, such as 2130706433, 0x7f.0.0.1 or
//     127.1: browsers and C resolvers read them as IPv4 addresses, so they
//     are refused rather than guessed at;
//   - an IP literal that [Policy.AddrAllowed] refuses;
//   - a name that does not resolve, or of which any resolved address is
//     refused.
//
// Internationalized host names are allowed and resolved in their ASCII
// (punycode) form. Passing CheckURL does not make later requests safe on its
// own (DNS answers change); the client from [NewClient] checks again when it
// connects.
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, &URLError{URL: raw, Reason: fmt.Sprintf("URL is longer than %d bytes", MaxURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		reason := err.Error()
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			reason = ue.Err.Error()
		}
		return nil, &URLError{URL: raw, Reason: "invalid URL: " + reason}
	}
	if err := p.checkURL(ctx, raw, u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkURL is CheckURL after parsing; redirects use it with the parsed
// Location. raw is used only in errors.
func (p Policy) checkURL(ctx context.Context, raw string, u *url.URL) error {
	if len(raw) > MaxURLLength {
		return &URLError{URL: raw, Reason: fmt.Sprintf("URL is longer than %d bytes", MaxURLLength)}
	}
	if reason := p.schemeProblem(u.Scheme); reason != "" {
		return &URLError{URL: raw, Reason: reason}
	}
	if u.User != nil {
		return &URLError{URL: raw, Reason: "credentials in the URL are not allowed"}
	}
	host := u.Hostname()
	if host == "" {
		return &URLError{URL: raw, Reason: "the URL has no host"}
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return &URLError{URL: raw, Reason: fmt.Sprintf("port %s is out of range 1-65535", port)}
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if ok, reason := p.AddrAllowed(a); !ok {
			return &URLError{URL: raw, Reason: fmt.Sprintf("%s is %s", a, withArticle(reason)), Err: ErrForbiddenAddress}
		}
		return nil
	}
	name, reason, kind := asciiHostName(host)
	if reason != "" {
		return &URLError{URL: raw, Reason: reason, Err: kind, quiet: reason}
	}
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", name)
	if err != nil {
		return &URLError{URL: raw, Reason: fmt.Sprintf("cannot resolve %s: %v", name, err), Err: err}
	}
	if len(addrs) == 0 {
		return &URLError{URL: raw, Reason: fmt.Sprintf("%s resolves to no addresses", name), Err: &net.DNSError{Err: "no addresses", Name: name, IsNotFound: true}}
	}
	for _, a := range addrs {
		if ok, reason := p.AddrAllowed(a); !ok {
			return &URLError{URL: raw, Reason: fmt.Sprintf("resolves to %s, %s", a.Unmap(), withArticle(reason)), Err: ErrForbiddenAddress}
		}
	}
	return nil
}

// schemeProblem returns why scheme is not allowed, or "".
func (p Policy) schemeProblem(scheme string) string {
	switch strings.ToLower(scheme) {
	case "https":
		return ""
	case "http":
		if p.AllowHTTP {
			return ""
		}
		return "scheme http is not allowed (use https)"
	case "":
		return "the URL has no scheme"
	default:
		return fmt.Sprintf("scheme %s is not allowed", scheme)
	}
}

func (p Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// withArticle turns a reason such as "private address" into "a private
// address". The reasons in this package are chosen so that a leading vowel
// letter means "an".
func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiouAEIOU", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
