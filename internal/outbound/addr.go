package outbound

import (
	"fmt"
	"net/netip"
)

// rangeRule is a denied address range and the reason given for it.
type rangeRule struct {
	prefix netip.Prefix
	reason string
}

func rule(cidr, reason string) rangeRule {
	return rangeRule{prefix: netip.MustParsePrefix(cidr), reason: reason}
}

// deniedV4 lists the IPv4 ranges that are not public unicast addresses
// (IANA IPv4 Special-Purpose Address Registry, RFC 6890). More specific
// entries come first so that they give the more useful reason. These tables
// are never modified.
var deniedV4 = []rangeRule{
	rule("169.254.169.254/32", "cloud metadata address"),
	rule("255.255.255.255/32", "broadcast address"),
	rule("0.0.0.0/8", "unspecified address"),
	rule("10.0.0.0/8", "private address"),
	rule("100.64.0.0/10", "shared (CGNAT) address"),
	rule("127.0.0.0/8", "loopback address"),
	rule("169.254.0.0/16", "link-local address"),
	rule("172.16.0.0/12", "private address"),
	rule("192.0.0.0/24", "IETF protocol assignment address"),
	rule("192.0.2.0/24", "documentation address"),
	rule("192.88.99.0/24", "6to4 relay anycast address"),
	rule("192.168.0.0/16", "private address"),
	rule("198.18.0.0/15", "benchmarking address"),
	rule("198.51.100.0/24", "documentation address"),
	rule("203.0.113.0/24", "documentation address"),
	rule("224.0.0.0/4", "multicast address"),
	rule("240.0.0.0/4", "reserved address"),
}

// deniedV6 lists the IPv6 ranges that are denied outright (IANA IPv6
// Special-Purpose Address Registry). Ranges that embed an IPv4 address
// (IPv4-mapped, NAT64, 6to4) are handled in AddrAllowed, and everything
// outside global unicast 2000::/3 is denied after this list.
var deniedV6 = []rangeRule{
	rule("::/128", "unspecified address"),
	rule("::1/128", "loopback address"),
	rule("::/96", "IPv4-compatible address"),
	rule("::ffff:0:0:0/96", "IPv4-translated address"),
	rule("64:ff9b:1::/48", "local-use NAT64 address"),
	rule("100::/64", "discard-only address"),
	rule("2001::/32", "Teredo address"),
	rule("2001:2::/48", "benchmarking address"),
	rule("2001:db8::/32", "documentation address"),
	rule("2001::/23", "IETF protocol assignment address"),
	rule("3fff::/20", "documentation address"),
	rule("fc00::/7", "private address"), // unique local, incl. fd00:ec2::254 (AWS metadata)
	rule("fe80::/10", "link-local address"),
	rule("fec0::/10", "site-local address"),
	rule("ff00::/8", "multicast address"),
}

var (
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// AddrAllowed reports whether a may be connected to, and if not, why (a
// phrase such as "private address" or "loopback address").
//
// Denied are the unspecified, loopback, private, link-local (including cloud
// metadata), shared CGNAT, multicast, broadcast, reserved, benchmarking,
// documentation and IETF protocol ranges of IPv4 and IPv6, Teredo, and any
// IPv6 address outside global unicast 2000::/3. IPv4-mapped (::ffff:a.b.c.d),
// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
// address they embed. Addresses in p.AllowedCIDRs are always allowed.
func (p Policy) AddrAllowed(a netip.Addr) (ok bool, reason string) {
	if !a.IsValid() {
		return false, "invalid address"
	}
	a = a.WithZone("") // a zone only says which interface; prefixes have none
	if p.exempt(a) {
		return true, ""
	}
	if a.Is4() {
		return p.v4Allowed(a)
	}
	switch {
	case a.Is4In6():
		return p.embeddedAllowed(a.Unmap(), "IPv4-mapped")
	case nat64Prefix.Contains(a):
		b := a.As16()
		return p.embeddedAllowed(netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
	case sixToFour.Contains(a):
		b := a.As16()
		if ok, reason := p.embeddedAllowed(netip.AddrFrom4([4]byte(b[2:6])), "6to4"); !ok {
			return false, reason
		}
	}
	for _, r := range deniedV6 {
		if r.prefix.Contains(a) {
			return false, r.reason
		}
	}
	if !globalUnicast.Contains(a) {
		return false, "non-global IPv6 address"
	}
	return true, ""
}

// embeddedAllowed judges an IPv6 address by the IPv4 address v4 it embeds.
func (p Policy) embeddedAllowed(v4 netip.Addr, kind string) (bool, string) {
	if p.exempt(v4) {
		return true, ""
	}
	if ok, reason := p.v4Allowed(v4); !ok {
		return false, fmt.Sprintf("%s (%s %s)", reason, kind, v4)
	}
	return true, ""
}

func (p Policy) v4Allowed(a netip.Addr) (bool, string) {
	for _, r := range deniedV4 {
		if r.prefix.Contains(a) {
			return false, r.reason
		}
	}
	return true, ""
}

func (p Policy) exempt(a netip.Addr) bool {
	for _, pr := range p.AllowedCIDRs {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}
