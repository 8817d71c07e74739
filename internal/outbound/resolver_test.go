package outbound_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// testDNS is a map-based outbound.Resolver: test DNS, so that no test asks a
// real resolver. Each host has a sequence of answers; lookup n gets answer n,
// and the last answer repeats. It records every lookup.
type testDNS struct {
	answers map[string][][]netip.Addr

	mu      sync.Mutex
	lookups []string
}

// newTestDNS returns a resolver that answers host with addrs (a single,
// repeating answer).
func newTestDNS(hosts map[string][]string) *testDNS {
	d := &testDNS{answers: make(map[string][][]netip.Addr)}
	for h, addrs := range hosts {
		d.answers[h] = [][]netip.Addr{parseAddrs(addrs...)}
	}
	return d
}

func parseAddrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// LookupNetIP implements outbound.Resolver.
func (d *testDNS) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	host = strings.TrimSuffix(host, ".")
	d.mu.Lock()
	n := 0
	for _, h := range d.lookups {
		if h == host {
			n++
		}
	}
	d.lookups = append(d.lookups, host)
	d.mu.Unlock()

	seq, ok := d.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	answer := seq[min(n, len(seq)-1)]
	var out []netip.Addr
	for _, a := range answer {
		if network == "ip4" && !a.Is4() || network == "ip6" && !a.Is6() {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// Lookups returns the host names looked up so far.
func (d *testDNS) Lookups() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lookups...)
}
