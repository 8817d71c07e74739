// Package ical encodes and parses iCalendar (RFC 5545) data.
package ical

import "strings"

// EscapeText escapes s as an RFC 5545 TEXT value (section 3.3.11): a
// backslash, semicolon or comma gets a backslash before it, and every newline
// (LF, CRLF or a lone CR) becomes the two characters `\n`.
func EscapeText(s string) string {
	if !strings.ContainsAny(s, "\\;,\r\n") {
		return s
	}
	return string(appendEscapedText(make([]byte, 0, len(s)+8), s))
}

// appendEscapedText appends the escaped form of s to dst. Encoder.Text uses
// it directly so that escaping does not allocate.
func appendEscapedText(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case ';':
			esc = `\;`
		case ',':
			esc = `\,`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\n`
			if i+1 < len(s) && s[i+1] == '\n' {
				// CRLF is one newline, not two.
				dst = append(dst, s[start:i]...)
				dst = append(dst, esc...)
				i++
				start = i + 1
				continue
			}
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// UnescapeText reverses EscapeText: `\\`, `\;`, `\,` become the character
// after the backslash and `\n` or `\N` becomes a LF. Any other backslash is
// kept as it is, because producers in the wild write stray backslashes and
// dropping them would lose data.
func UnescapeText(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch n := s[i+1]; n {
		case '\\', ';', ',':
			b.WriteByte(n)
			i++
		case 'n', 'N':
			b.WriteByte('\n')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
