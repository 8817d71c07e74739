package outbound

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// localSuffixes are names that point at the local machine or network by
// convention; they are refused without asking DNS.
var localSuffixes = []string{".localhost", ".local", ".internal"}

// asciiHostName checks a host name that is not an IP literal and returns it
// in ASCII (punycode) form, ready to resolve. When the name is refused it
// returns a reason, and kind is ErrForbiddenAddress if the name points at a
// forbidden destination or nil if it is merely malformed.
//
// The conversion lowercases and punycode-encodes each non-ASCII label
// (RFC 3492). It does not apply the full IDNA2008 mapping, which the standard
// library lacks; that is safe because the dialer checks the addresses that
// net/http's own conversion resolves to.
func asciiHostName(host string) (name, reason string, kind error) {
	name = strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "" {
		return "", "the URL has no host", nil
	}
	if !utf8.ValidString(name) {
		return "", fmt.Sprintf("invalid host name %q", host), nil
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		enc, ok := punycode(l)
		if !ok {
			return "", fmt.Sprintf("invalid host name %q", host), nil
		}
		labels[i] = "xn--" + enc
	}
	name = strings.Join(labels, ".")
	if len(name) > 253 {
		return "", "host name is longer than 253 bytes", nil
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || !isLDH(l) {
			return "", fmt.Sprintf("invalid host name %q", host), nil
		}
	}
	if name == "localhost" {
		return "", "host localhost is not allowed", ErrForbiddenAddress
	}
	for _, s := range localSuffixes {
		if strings.HasSuffix(name, s) {
			return "", fmt.Sprintf("host %s is a local name (*%s)", name, s), ErrForbiddenAddress
		}
	}
	// WHATWG URL parsing (browsers) and inet_aton (C resolvers) read a host
	// whose last label is a number as an IPv4 address: 2130706433,
	// 0x7f.0.0.1 and 127.1 all mean 127.0.0.1. No real name ends in a
	// number, so refuse them instead of guessing which reading applies.
	if endsInNumber(labels[len(labels)-1]) {
		if a, ok := legacyIPv4(labels); ok {
			return "", fmt.Sprintf("host %s is %s written in a non-standard IPv4 notation", host, a), ErrForbiddenAddress
		}
		return "", fmt.Sprintf("host %s ends in a number and is not a valid IPv4 address", host), ErrForbiddenAddress
	}
	return name, "", nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isLDH reports whether a label has only letters, digits, hyphens and
// underscores (which real DNS names use, e.g. _dmarc, though hosts rarely).
func isLDH(l string) bool {
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// endsInNumber is the WHATWG URL "ends in a number" test for a last label:
// all decimal digits, or 0x followed by hex digits.
func endsInNumber(l string) bool {
	if l == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		for i := 0; i < len(rest); i++ {
			if !isHex(rest[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}

// legacyIPv4 parses the IPv4 forms that inet_aton and WHATWG URL accept: one
// to four parts, each decimal, octal (leading 0) or hex (0x), the last part
// filling the remaining bytes. It is used only to explain a refusal.
func legacyIPv4(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(labels))
	for i, l := range labels {
		base, digits := 10, l
		switch {
		case strings.HasPrefix(l, "0x"):
			base, digits = 16, l[2:]
			if digits == "" {
				digits = "0"
			}
		case len(l) > 1 && l[0] == '0':
			base, digits = 8, l[1:]
		}
		n, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	last := len(nums) - 1
	var v uint64
	for i, n := range nums[:last] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	if nums[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	v |= nums[last]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// punycode encodes a label with the Bootstring parameters of RFC 3492 §5.
func punycode(label string) (string, bool) {
	const (
		base        = 36
		tmin        = 1
		tmax        = 26
		skew        = 38
		damp        = 700
		initialBias = 72
		initialN    = 128
	)
	adapt := func(delta, numPoints int, first bool) int {
		if first {
			delta /= damp
		} else {
			delta /= 2
		}
		delta += delta / numPoints
		k := 0
		for delta > ((base-tmin)*tmax)/2 {
			delta /= base - tmin
			k += base
		}
		return k + (base-tmin+1)*delta/(delta+skew)
	}
	digit := func(d int) byte {
		if d < 26 {
			return byte('a' + d)
		}
		return byte('0' + d - 26)
	}
	runes := []rune(label)
	if len(runes) > 63 {
		return "", false // the encoded label would be too long anyway; avoids overflow
	}
	var out []byte
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(initialN), 0, initialBias
	for h < len(runes) {
		m := rune(utf8.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range runes {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := base; ; k += base {
				t := k - bias
				if t < tmin {
					t = tmin
				} else if t > tmax {
					t = tmax
				}
				if q < t {
					break
				}
				out = append(out, digit(t+(q-t)%(base-t)))
				q = (q - t) / (base - t)
			}
			out = append(out, digit(q))
			bias = adapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), true
}
