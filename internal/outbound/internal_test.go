package outbound

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPunycode(t *testing.T) {
	t.Parallel()
	// Vectors from RFC 3492 §7.1 and well-known IDNs.
	tests := []struct{ in, want string }{
		{"bücher", "bcher-kva"},
		{"münchen", "mnchen-3ya"},
		{"ü", "tda"},
		{"他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"},
		{"правда", "80aafi6cg"},
		{"日本語", "wgv71a119e"},
	}
	for _, tt := range tests {
		got, ok := punycode(tt.in)
		if !ok || got != tt.want {
			t.Errorf("punycode(%q) = %q, %v; want %q, true", tt.in, got, ok, tt.want)
		}
	}
	if _, ok := punycode(strings.Repeat("ü", 64)); ok {
		t.Errorf("punycode(64 runes) ok = true; want false")
	}
}

func TestAsciiHostName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want  string
		forbidden bool // when want is ""
	}{
		{"Example.COM.", "example.com", false},
		{"bücher.example", "xn--bcher-kva.example", false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"_srv.example", "_srv.example", false},
		{"receiver", "receiver", false},
		{"1password.com", "1password.com", false},
		{"0x.example", "0x.example", false},
		{"localhost", "", true},
		{"a.b.internal", "", true},
		{"0x7f000001", "", true},
		{"0x", "", true},
		{"1.2.3.4.5", "", true},
		{"example.123", "", true},
		{"bad host", "", false},
		{strings.Repeat("a", 64) + ".example", "", false},
	}
	for _, tt := range tests {
		got, reason, kind := asciiHostName(tt.in)
		if got != tt.want {
			t.Errorf("asciiHostName(%q) = %q, %q; want %q", tt.in, got, reason, tt.want)
			continue
		}
		if tt.want != "" {
			continue
		}
		if reason == "" {
			t.Errorf("asciiHostName(%q) reason = empty; want a reason", tt.in)
		}
		if got := errors.Is(kind, ErrForbiddenAddress); got != tt.forbidden {
			t.Errorf("asciiHostName(%q) forbidden = %v; want %v (reason %q)", tt.in, got, tt.forbidden, reason)
		}
	}
}

func TestLegacyIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" = not an address
	}{
		{"2130706433", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0177.0.0.01", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"10.0x10000", "10.1.0.0"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.2.3.256", ""},
		{"08.0.0.1", ""},
		{"1.2.3.4.5", ""},
	}
	for _, tt := range tests {
		a, ok := legacyIPv4(strings.Split(tt.in, "."))
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("legacyIPv4(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestDialControl checks the last line of defence on its own: the dialer's
// Control function refuses the socket address even if everything before it
// were skipped. It only inspects strings; nothing is dialed.
func TestDialControl(t *testing.T) {
	t.Parallel()
	p := Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "10.0.0.1:80", false},
		{"tcp4", "169.254.169.254:80", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp6", "[::ffff:10.0.0.1]:80", false},
		{"tcp4", "127.0.0.1:8080", true},
		{"tcp4", "93.184.216.34:443", true},
		{"tcp4", "garbage", false},
	}
	for _, tt := range tests {
		err := p.control(context.Background(), tt.network, tt.address, nil)
		if tt.ok {
			if err != nil {
				t.Errorf("control(%s, %s) = %v; want nil", tt.network, tt.address, err)
			}
			continue
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%s, %s) = %v; want ErrForbiddenAddress", tt.network, tt.address, err)
		}
	}
}

// TestDialerRefusesBeforeConnecting checks that the dialer refuses forbidden
// destinations before opening a socket: with a Control function that fails
// the test, nothing may reach it.
func TestDialerRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	d := &dialer{policy: Policy{}, timeout: time.Second}
	d.net.ControlContext = func(context.Context, string, string, syscall.RawConn) error {
		t.Errorf("a socket was opened; want a refusal before connecting")
		return errors.New("test: no connection allowed")
	}
	for _, addr := range []string{"10.0.0.1:80", "[::1]:443", "localhost:80", "2130706433:80"} {
		if _, err := d.DialContext(context.Background(), "tcp", addr); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("DialContext(%s) error = %v; want ErrForbiddenAddress", addr, err)
		}
	}
}
