package outbound_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/outbound"
)

func TestAddrAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		ok     bool
		reason string // a substring of the reason when denied
	}{
		// IPv4 denied ranges.
		{"0.0.0.0", false, "unspecified"},
		{"0.1.2.3", false, "unspecified"},
		{"127.0.0.1", false, "loopback"},
		{"127.255.255.254", false, "loopback"},
		{"10.0.0.1", false, "private"},
		{"172.16.0.1", false, "private"},
		{"172.31.255.255", false, "private"},
		{"192.168.1.1", false, "private"},
		{"169.254.1.1", false, "link-local"},
		{"169.254.169.254", false, "cloud metadata"},
		{"100.64.0.1", false, "CGNAT"},
		{"100.127.255.255", false, "CGNAT"},
		{"224.0.0.1", false, "multicast"},
		{"239.255.255.250", false, "multicast"},
		{"255.255.255.255", false, "broadcast"},
		{"240.0.0.1", false, "reserved"},
		{"198.18.0.1", false, "benchmarking"},
		{"198.19.255.255", false, "benchmarking"},
		{"192.0.2.1", false, "documentation"},
		{"198.51.100.1", false, "documentation"},
		{"203.0.113.1", false, "documentation"},
		{"192.0.0.8", false, "IETF protocol"},
		{"192.88.99.1", false, "6to4 relay"},

		// IPv6 denied ranges.
		{"::", false, "unspecified"},
		{"::1", false, "loopback"},
		{"fc00::1", false, "private"},
		{"fd12:3456::1", false, "private"},
		{"fd00:ec2::254", false, "private"},
		{"fe80::1", false, "link-local"},
		{"fe80::1%eth0", false, "link-local"},
		{"ff02::1", false, "multicast"},
		{"2001:db8::1", false, "documentation"},
		{"3fff::1", false, "documentation"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "Teredo"},
		{"2001:2::1", false, "benchmarking"},
		{"100::1", false, "discard-only"},
		{"::7f00:1", false, "IPv4-compatible"},
		{"5f00::1", false, "non-global"},
		{"fec0::1", false, "site-local"},

		// IPv6 forms that embed an IPv4 address are judged by it.
		{"::ffff:127.0.0.1", false, "loopback"},
		{"::ffff:10.0.0.1", false, "private"},
		{"::ffff:169.254.169.254", false, "cloud metadata"},
		{"::ffff:8.8.8.8", true, ""},
		{"64:ff9b::a00:1", false, "private"},
		{"64:ff9b::7f00:1", false, "loopback"},
		{"64:ff9b::808:808", true, ""},
		{"64:ff9b:1::a00:1", false, "NAT64"},
		{"2002:a00:1::1", false, "private address (6to4 10.0.0.1)"},
		{"2002:7f00:1::1", false, "loopback"},
		{"2002:808:808::1", true, ""},

		// Public addresses.
		{"8.8.8.8", true, ""},
		{"1.1.1.1", true, ""},
		{"93.184.216.34", true, ""},
		{"172.32.0.1", true, ""},
		{"100.128.0.1", true, ""},
		{"2606:4700::1111", true, ""},
		{"2a00:1450:4001:81b::200e", true, ""},
	}
	var p outbound.Policy
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		ok, reason := p.AddrAllowed(a)
		if ok != tt.ok {
			t.Errorf("AddrAllowed(%s) = %v, %q; want %v", tt.addr, ok, reason, tt.ok)
			continue
		}
		if ok && reason != "" {
			t.Errorf("AddrAllowed(%s) reason = %q; want empty for an allowed address", tt.addr, reason)
		}
		if !ok && !strings.Contains(reason, tt.reason) {
			t.Errorf("AddrAllowed(%s) reason = %q; want it to contain %q", tt.addr, reason, tt.reason)
		}
	}
	if ok, _ := p.AddrAllowed(netip.Addr{}); ok {
		t.Errorf("AddrAllowed(zero Addr) = true; want false")
	}
}

func TestAddrAllowedExceptions(t *testing.T) {
	t.Parallel()
	allowed, err := outbound.ParseCIDRs([]string{"127.0.0.0/8", "10.1.0.0/16", "fd00:ec2::254"})
	if err != nil {
		t.Fatal(err)
	}
	p := outbound.Policy{AllowedCIDRs: allowed}
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::ffff:127.0.0.1", true},
		{"64:ff9b::7f00:1", true},
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"fd00:ec2::254", true},
		{"fd00:ec2::253", false},
		{"::1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	}
	for _, tt := range tests {
		if ok, reason := p.AddrAllowed(netip.MustParseAddr(tt.addr)); ok != tt.ok {
			t.Errorf("AddrAllowed(%s) with exceptions = %v, %q; want %v", tt.addr, ok, reason, tt.ok)
		}
	}
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    []string
		wantErr string // a substring of the error; "" for success
	}{
		{in: nil, want: nil},
		{in: []string{"127.0.0.1"}, want: []string{"127.0.0.1/32"}},
		{in: []string{"::1"}, want: []string{"::1/128"}},
		{in: []string{" 10.0.0.0/8 ", "", "fd00::/8"}, want: []string{"10.0.0.0/8", "fd00::/8"}},
		{in: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"10.0.0.0/8", "nope"}, wantErr: `"nope"`},
		{in: []string{"10.0.0.0/33"}, wantErr: `"10.0.0.0/33"`},
		{in: []string{"fe80::1%eth0"}, wantErr: `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		got, err := outbound.ParseCIDRs(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCIDRs(%q) error = %v; want one naming %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCIDRs(%q) error = %v; want nil", tt.in, err)
			continue
		}
		var gotS []string
		for _, p := range got {
			gotS = append(gotS, p.String())
		}
		if strings.Join(gotS, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseCIDRs(%q) = %v; want %v", tt.in, gotS, tt.want)
		}
	}
}
