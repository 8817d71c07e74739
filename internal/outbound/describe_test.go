package outbound_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/outbound"
)

// brokenDNS fails every lookup the way a real resolver does, naming its
// own address in the error.
type brokenDNS struct{}

func (brokenDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "server misbehaving", Name: host, Server: "10.0.0.53:53", IsTemporary: true}
}

// addrText matches anything that looks like an IPv4 address or a port on
// one: what Describe must never say about the network.
var addrText = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|:\d+\b|::1`)

// TestDescribe makes each class of failure for real (loopback servers,
// test DNS) and checks that Describe names the class and nothing of the
// network: no resolved address, no resolver, no raw dial text.
func TestDescribe(t *testing.T) {
	t.Parallel()
	dns := newTestDNS(map[string][]string{
		"private.test": {"10.0.0.1"},
		"loop.test":    {"127.0.0.1"},
	})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/private":
			http.Redirect(w, r, "http://private.test/x", http.StatusFound)
		default:
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		}
	}))
	t.Cleanup(redirect.Close)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)

	loopback := outbound.Policy{AllowHTTP: true, AllowedCIDRs: loopbackOnly, Resolver: dns}
	strict := outbound.Policy{AllowHTTP: true, Resolver: dns}
	do := func(p outbound.Policy, timeout time.Duration) func(string) error {
		c := outbound.NewClient(outbound.Options{Policy: p, Timeout: timeout})
		return func(u string) error {
			_, _, err := get(t, c, u)
			return err
		}
	}
	check := func(p outbound.Policy) func(string) error {
		return func(u string) error {
			_, err := p.CheckURL(t.Context(), u)
			return err
		}
	}
	tests := []struct {
		name string
		try  func(string) error
		url  string
		want string
	}{
		{"registered name resolving private", check(strict), "https://private.test/hook", "forbidden address: the host is not a public address"},
		{"registered private literal", check(strict), "https://10.0.0.1/hook", "forbidden address"},
		{"registered local name", check(strict), "https://localhost/hook", "forbidden address: host localhost is not allowed"},
		{"registered bad scheme", check(strict), "ftp://example.test/", "scheme ftp is not allowed"},
		{"registered, resolver fails", check(outbound.Policy{Resolver: brokenDNS{}}), "https://metadata/hook", "DNS failure: cannot resolve metadata"},
		{"registered, name unknown", check(strict), "https://nowhere.test/hook", "DNS failure: nowhere.test not found"},
		{"dial to a name resolving private", do(strict, 0), "http://private.test/", "forbidden address"},
		{"dial to a loopback literal", do(strict, 0), hang.URL, "forbidden address"},
		{"resolver fails at dial", do(outbound.Policy{AllowHTTP: true, Resolver: brokenDNS{}}, 0), "http://metadata/", "DNS failure: cannot resolve metadata"},
		{"redirect to a private name", do(loopback, 0), redirect.URL + "/private", "redirect 1 refused: forbidden address"},
		{"too many redirects", do(loopback, 0), redirect.URL + "/loop", "redirect 6 refused: too many redirects"},
		{"connection refused", do(loopback, 0), "http://127.0.0.1:1/", "connection refused"},
		{"untrusted certificate", do(loopback, 0), tlsSrv.URL, "TLS failure: the certificate is signed by an unknown authority"},
		{"not a TLS server", do(loopback, 0), strings.Replace(hang.URL, "http:", "https:", 1), "TLS failure"},
		{"timeout", do(loopback, 200*time.Millisecond), hang.URL, "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.try(tt.url)
			if err == nil {
				t.Fatalf("%s: no error; want one", tt.url)
			}
			got := outbound.Describe(err)
			if !strings.Contains(got, tt.want) {
				t.Errorf("Describe(%v) = %q; want it to contain %q", err, got, tt.want)
			}
			if m := addrText.FindString(got); m != "" {
				t.Errorf("Describe(%v) = %q; names %q of the network", err, got, m)
			}
		})
	}
}
