package outbound_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/outbound"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	hosts := map[string][]string{
		"public.example":        {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"private.example":       {"10.0.0.1"},
		"mixed.example":         {"93.184.216.34", "192.168.0.10"},
		"mapped.example":        {"::ffff:127.0.0.1"},
		"nat64.example":         {"64:ff9b::a00:1"},
		"metadata.example":      {"169.254.169.254"},
		"loopback.example":      {"127.0.0.1"},
		"xn--bcher-kva.example": {"93.184.216.34"},
		"empty.example":         {},
	}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name      string
		url       string
		allowHTTP bool
		allowed   []netip.Prefix
		// wantReason is a substring of the reason; "" means the URL is valid.
		wantReason string
		// forbidden says the error must wrap ErrForbiddenAddress.
		forbidden bool
		// noLookup says the host must be refused without asking DNS.
		noLookup bool
	}{
		{name: "https public IP", url: "https://93.184.216.34/hook"},
		{name: "https public IPv6", url: "https://[2606:4700::1111]:8443/hook"},
		{name: "https public name", url: "https://public.example/hook?x=1"},
		{name: "trailing dot", url: "https://public.example./hook"},
		{name: "upper case", url: "HTTPS://PUBLIC.Example/hook"},
		{name: "IDN", url: "https://bücher.example/hook"},
		{name: "http allowed", url: "http://public.example/", allowHTTP: true},
		{name: "loopback exception", url: "http://127.0.0.1:8080/", allowHTTP: true, allowed: loopback},
		{name: "loopback name exception", url: "https://loopback.example/", allowed: loopback},

		{name: "http refused", url: "http://public.example/", wantReason: "scheme http is not allowed", noLookup: true},
		{name: "ftp", url: "ftp://public.example/", allowHTTP: true, wantReason: "scheme ftp is not allowed", noLookup: true},
		{name: "file", url: "file:///etc/passwd", wantReason: "scheme file is not allowed", noLookup: true},
		{name: "no scheme", url: "//public.example/", wantReason: "no scheme", noLookup: true},
		{name: "relative", url: "/hook", wantReason: "no scheme", noLookup: true},
		{name: "opaque", url: "https:public.example", wantReason: "no host", noLookup: true},
		{name: "no host", url: "https:///hook", wantReason: "no host", noLookup: true},
		{name: "userinfo", url: "https://user:pass@public.example/", wantReason: "credentials", noLookup: true},
		{name: "user only", url: "https://user@public.example/", wantReason: "credentials", noLookup: true},
		{name: "too long", url: "https://public.example/" + strings.Repeat("a", outbound.MaxURLLength), wantReason: "longer than 2048", noLookup: true},
		{name: "port 0", url: "https://public.example:0/", wantReason: "port 0 is out of range", noLookup: true},
		{name: "port 65536", url: "https://public.example:65536/", wantReason: "port 65536 is out of range", noLookup: true},
		{name: "unparsable", url: "https://a b/", wantReason: "invalid URL", noLookup: true},
		{name: "bad host chars", url: "https://exa!mple.com/", wantReason: "invalid host name", noLookup: true},
		{name: "empty label", url: "https://a..example/", wantReason: "invalid host name", noLookup: true},

		{name: "localhost", url: "https://localhost/", wantReason: "localhost is not allowed", forbidden: true, noLookup: true},
		{name: "localhost dot", url: "https://LOCALHOST./", wantReason: "localhost is not allowed", forbidden: true, noLookup: true},
		{name: "localhost even when loopback allowed", url: "https://localhost/", allowed: loopback, wantReason: "localhost", forbidden: true, noLookup: true},
		{name: "sub.localhost", url: "https://app.localhost/", wantReason: "local name", forbidden: true, noLookup: true},
		{name: ".local", url: "https://printer.local/", wantReason: "local name", forbidden: true, noLookup: true},
		{name: ".internal", url: "https://metadata.google.internal/", wantReason: "local name", forbidden: true, noLookup: true},

		{name: "IPv4 loopback literal", url: "https://127.0.0.1/", wantReason: "127.0.0.1 is a loopback address", forbidden: true, noLookup: true},
		{name: "IPv6 loopback literal", url: "https://[::1]/", wantReason: "::1 is a loopback address", forbidden: true, noLookup: true},
		{name: "IPv6 mapped literal", url: "https://[::ffff:127.0.0.1]/", wantReason: "loopback", forbidden: true, noLookup: true},
		{name: "IPv6 link-local zone", url: "https://[fe80::1%25eth0]/", wantReason: "link-local", forbidden: true, noLookup: true},
		{name: "metadata literal", url: "http://169.254.169.254/latest/meta-data/", allowHTTP: true, wantReason: "cloud metadata", forbidden: true, noLookup: true},
		{name: "private literal", url: "https://10.0.0.1/", wantReason: "private", forbidden: true, noLookup: true},
		{name: "unspecified literal", url: "https://0.0.0.0/", wantReason: "unspecified", forbidden: true, noLookup: true},
		{name: "decimal IPv4", url: "http://2130706433/", allowHTTP: true, wantReason: "127.0.0.1 written in a non-standard IPv4 notation", forbidden: true, noLookup: true},
		{name: "hex IPv4", url: "http://0x7f.0.0.1/", allowHTTP: true, wantReason: "127.0.0.1 written", forbidden: true, noLookup: true},
		{name: "short IPv4", url: "http://127.1/", allowHTTP: true, wantReason: "127.0.0.1 written", forbidden: true, noLookup: true},
		{name: "octal IPv4", url: "http://0177.0.0.01/", allowHTTP: true, wantReason: "127.0.0.1 written", forbidden: true, noLookup: true},
		{name: "zero-padded IPv4", url: "https://127.000.000.001/", wantReason: "127.0.0.1 written", forbidden: true, noLookup: true},
		{name: "public in decimal", url: "https://134744072/", wantReason: "8.8.8.8 written", forbidden: true, noLookup: true},
		{name: "numeric junk", url: "https://1.2.3.4.5/", wantReason: "ends in a number", forbidden: true, noLookup: true},

		{name: "name to private", url: "https://private.example/", wantReason: "resolves to 10.0.0.1, a private address", forbidden: true},
		{name: "name to mixed", url: "https://mixed.example/", wantReason: "resolves to 192.168.0.10, a private address", forbidden: true},
		{name: "name to mapped loopback", url: "https://mapped.example/", wantReason: "resolves to 127.0.0.1, a loopback address", forbidden: true},
		{name: "name to NAT64 private", url: "https://nat64.example/", wantReason: "private address (NAT64 10.0.0.1)", forbidden: true},
		{name: "name to metadata", url: "https://metadata.example/", wantReason: "cloud metadata", forbidden: true},
		{name: "name to loopback", url: "https://loopback.example/", wantReason: "loopback", forbidden: true},
		{name: "unknown name", url: "https://nx.example/", wantReason: "cannot resolve nx.example"},
		{name: "no addresses", url: "https://empty.example/", wantReason: "resolves to no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dns := newTestDNS(hosts)
			p := outbound.Policy{AllowHTTP: tt.allowHTTP, AllowedCIDRs: tt.allowed, Resolver: dns}
			u, err := p.CheckURL(context.Background(), tt.url)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) error = %v; want nil", tt.url, err)
				}
				if u == nil || u.String() == "" {
					t.Fatalf("CheckURL(%q) = %v; want the parsed URL", tt.url, u)
				}
				return
			}
			var ue *outbound.URLError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckURL(%q) error = %v (%T); want a *URLError", tt.url, err, err)
			}
			if u != nil {
				t.Errorf("CheckURL(%q) URL = %v; want nil with an error", tt.url, u)
			}
			if ue.URL != tt.url {
				t.Errorf("URLError.URL = %q; want %q", ue.URL, tt.url)
			}
			if !strings.Contains(ue.Reason, tt.wantReason) {
				t.Errorf("CheckURL(%q) reason = %q; want it to contain %q", tt.url, ue.Reason, tt.wantReason)
			}
			if got := errors.Is(err, outbound.ErrForbiddenAddress); got != tt.forbidden {
				t.Errorf("errors.Is(CheckURL(%q), ErrForbiddenAddress) = %v; want %v", tt.url, got, tt.forbidden)
			}
			if tt.noLookup {
				if got := dns.Lookups(); len(got) != 0 {
					t.Errorf("CheckURL(%q) looked up %q; want no DNS lookup", tt.url, got)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("len(CheckURL(%q) error) = %d; want a readable message under 400 bytes", tt.url, len(err.Error()))
			}
		})
	}
}

func TestCheckURLLookupNames(t *testing.T) {
	t.Parallel()
	dns := newTestDNS(map[string][]string{"xn--mnchen-3ya.example": {"93.184.216.34"}})
	p := outbound.Policy{Resolver: dns}
	if _, err := p.CheckURL(context.Background(), "https://MÜNCHEN.example/"); err != nil {
		t.Fatalf("CheckURL(IDN) error = %v; want nil", err)
	}
	if got, want := strings.Join(dns.Lookups(), ","), "xn--mnchen-3ya.example"; got != want {
		t.Errorf("looked up %q; want %q", got, want)
	}
}

func TestCheckURLResolverError(t *testing.T) {
	t.Parallel()
	p := outbound.Policy{Resolver: newTestDNS(nil)}
	_, err := p.CheckURL(context.Background(), "https://nx.example/")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("CheckURL(unknown name) error = %v; want it to wrap a not-found *net.DNSError", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = outbound.Policy{Resolver: newTestDNS(map[string][]string{"public.example": {"93.184.216.34"}})}
	if _, err := p.CheckURL(ctx, "https://public.example/"); !errors.Is(err, context.Canceled) {
		t.Errorf("CheckURL(canceled ctx) error = %v; want context.Canceled", err)
	}
}
