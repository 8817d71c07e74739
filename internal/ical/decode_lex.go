package ical

import (
	"strings"
	"unicode/utf8"
)

// lexer splits iCalendar text into logical content lines: physical lines
// end in LF, CRLF or a bare CR; a line that starts with a space or a tab
// continues the previous one (RFC 5545 section 3.1). Folds are joined as
// bytes, before any UTF-8 decoding, so a fold inside a multi-byte sequence
// does no harm.
type lexer struct {
	src     string
	pos     int
	start   int  // where the line next returned last starts in src
	line    int  // number of the next physical line, 1-based
	valid   bool // src is valid UTF-8 as a whole, so every line is
	scratch []byte
	// repaired counts lines whose bytes were not valid UTF-8.
	repaired int
}

// newLexer prepares data for lexing: it drops a UTF-8 BOM and leading white
// space (counting the lines it skips) and turns bare CRs into LFs.
func newLexer(data string) *lexer {
	l := &lexer{line: 1}
	i := 0
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		i = 3
	}
	for ; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			l.line++
		} else if c == '\r' {
			if i+1 >= len(data) || data[i+1] != '\n' {
				l.line++
			}
		} else if c != ' ' && c != '\t' && c != '\f' && c != '\v' {
			break
		}
	}
	data = data[i:]
	l.valid = utf8.ValidString(data)
	l.src = normalizeCR(data)
	return l
}

// normalizeCR returns data with every CR not followed by LF replaced by
// LF, so that the lexer only has to look for LF; data itself when it has
// no such CR (no copy).
func normalizeCR(data string) string {
	bare := false
	for i := strings.IndexByte(data, '\r'); i >= 0; {
		if i+1 == len(data) || data[i+1] != '\n' {
			bare = true
			break
		}
		j := strings.IndexByte(data[i+2:], '\r')
		if j < 0 {
			break
		}
		i += 2 + j
	}
	if !bare {
		return data
	}
	b := []byte(data)
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			b[i] = '\n'
		}
	}
	return string(b)
}

// physLine returns the next physical line without its line end.
func (l *lexer) physLine() string {
	rest := l.src[l.pos:]
	var s string
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		s = rest[:i]
		l.pos += i + 1
	} else {
		s = rest
		l.pos = len(l.src)
	}
	l.line++
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	return s
}

// next returns the next logical line and the number of the physical line it
// starts on. Blank lines are skipped. ok is false at the end of input;
// tooLong reports a logical line longer than maxLineBytes.
func (l *lexer) next() (text string, line int, ok, tooLong bool) {
	for l.pos < len(l.src) {
		line, l.start = l.line, l.pos
		s := l.physLine()
		if isBlank(s) {
			continue
		}
		// Only after a blank line can a logical line start with white
		// space; it cannot continue anything, so read it as a line.
		s = strings.TrimLeft(s, " \t")
		if l.continues() {
			buf := append(l.scratch[:0], s...)
			for l.continues() {
				c := l.physLine()
				buf = append(buf, c[1:]...)
				if len(buf) > maxLineBytes {
					return "", line, true, true
				}
			}
			l.scratch = buf
			s = string(buf)
		}
		if len(s) > maxLineBytes {
			return "", line, true, true
		}
		if !l.valid && !utf8.ValidString(s) {
			s = repairUTF8(s)
			l.repaired++
		}
		return s, line, true, false
	}
	return "", l.line, false, false
}

// seek makes next read again from r, the line that starts a run.
func (l *lexer) seek(r lineRun) {
	l.pos, l.line = int(r.pos), int(r.line)
}

// continues reports whether the next physical line is a continuation line.
// Empty lines before it are skipped: an old Mozilla exporter wrote a blank
// line before each continuation.
func (l *lexer) continues() bool {
	i := l.pos
	for i < len(l.src) {
		switch l.src[i] {
		case ' ', '\t':
			for l.pos < i { // consume the empty lines
				l.physLine()
			}
			return true
		case '\n':
			i++
		case '\r':
			if i+1 < len(l.src) && l.src[i+1] == '\n' {
				i += 2
				continue
			}
			return false
		default:
			return false
		}
	}
	return false
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\f', '\v':
		default:
			return false
		}
	}
	return true
}

// repairUTF8 turns a line that is not valid UTF-8 into valid text. A line
// with no valid multi-byte sequence at all was most likely written in a
// single-byte charset, and Windows-1252 (the superset of Latin-1 that
// browsers and exporters use for "Latin-1") is by far the most common; a
// line that mixes valid UTF-8 with stray bytes is UTF-8 with damage, whose
// invalid bytes become U+FFFD.
func repairUTF8(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if size > 1 && r != utf8.RuneError {
			return strings.ToValidUTF8(s, "\uFFFD")
		}
		i += size
	}
	return decodeWindows1252(s)
}

// cp1252 maps the bytes 0x80–0x9F of Windows-1252 to Unicode; the five
// undefined ones map to the C1 control of the same value, as in the WHATWG
// Encoding Standard.
var cp1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func decodeWindows1252(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x80:
			b.WriteByte(c)
		case c < 0xA0:
			b.WriteRune(cp1252[c-0x80])
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

// contentLine is one parsed content line: NAME;PARAM=value:VALUE.
type contentLine struct {
	name   string // upper case
	params []Param
	value  string
	line   int
}

// param returns the value of the named parameter (upper case), or "".
func (c *contentLine) param(name string) string {
	for _, p := range c.params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// parseContentLine splits s into name, parameters and value, appending the
// parameters to params (a buffer the caller reuses). Names are upper-cased
// and parameter values unquoted; several values of one parameter are
// joined with ','. msg explains a line that cannot be read.
//
// It tolerates what real producers write: a parameter without '=', stray
// characters after a closing quote, white space before an opening quote,
// and Outlook's TZID="Zone Name:20200609T090000", where the closing quote
// swallowed the colon and the value.
func parseContentLine(s string, params []Param) (name string, ps []Param, value, msg string) {
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 {
		return "", params, "", "no property name"
	}
	name = upperASCII(s[:i])
	if i == len(s) {
		return name, params, "", "no colon"
	}
	switch s[i] {
	case ':':
		return name, params, s[i+1:], ""
	case ';':
	default:
		return name, params, "", "invalid character " + quoteByte(s[i]) + " in name"
	}
	for i < len(s) && s[i] == ';' {
		i++
		j := i
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		pname := upperASCII(s[i:j])
		if j == len(s) {
			return name, params, "", "no colon"
		}
		if s[j] != '=' {
			if s[j] == ';' || s[j] == ':' {
				// An empty parameter (";;") is skipped; one without a
				// value (vCard 2.1 style) is kept.
				if pname != "" {
					params = append(params, Param{Name: pname})
				}
				i = j
				continue
			}
			return name, params, "", "invalid parameter"
		}
		if pname == "" {
			return name, params, "", "parameter without a name"
		}
		i = j + 1
		var val string
		for n := 0; ; n++ {
			// Skip white space before a quote: a fold just before a
			// quoted value often leaves one.
			k := i
			for k < len(s) && s[k] == ' ' {
				k++
			}
			var v string
			if k < len(s) && s[k] == '"' {
				end := strings.IndexByte(s[k+1:], '"')
				if end < 0 {
					// No closing quote: Outlook's TZID="Name:value or
					// damage. The last colon separates the value.
					rest := s[k+1:]
					c := strings.LastIndexByte(rest, ':')
					if c < 0 {
						return name, params, "", "unterminated quoted parameter value"
					}
					params = append(params, Param{Name: pname, Value: joinParam(val, n, rest[:c])})
					return name, params, rest[c+1:], ""
				}
				v = s[k+1 : k+1+end]
				i = k + 1 + end + 1
				if i == len(s) {
					// TZID="Name:20200609T090000": the value is inside
					// the quotes.
					c := strings.LastIndexByte(v, ':')
					if c < 0 {
						return name, params, "", "no colon"
					}
					params = append(params, Param{Name: pname, Value: joinParam(val, n, v[:c])})
					return name, params, v[c+1:], ""
				}
				if c := s[i]; c != ';' && c != ':' && c != ',' {
					// Characters after the closing quote: keep them.
					end := strings.IndexAny(s[i:], ";:,")
					if end < 0 {
						return name, params, "", "no colon"
					}
					v += s[i : i+end]
					i += end
				}
			} else {
				end := strings.IndexAny(s[i:], ";:,")
				if end < 0 {
					return name, params, "", "no colon"
				}
				v = s[i : i+end]
				i += end
			}
			val = joinParam(val, n, v)
			if s[i] != ',' {
				break
			}
			i++
		}
		params = append(params, Param{Name: pname, Value: val})
		if s[i] == ':' {
			return name, params, s[i+1:], ""
		}
	}
	if i < len(s) && s[i] == ':' {
		// The last parameter was empty (";:").
		return name, params, s[i+1:], ""
	}
	return name, params, "", "no colon"
}

// joinParam appends the n-th value v of a multi-valued parameter to val.
func joinParam(val string, n int, v string) string {
	if n == 0 {
		return v
	}
	return val + "," + v
}

func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// upperASCII upper-cases ASCII letters, without allocating when there are
// none to change.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	const hex = "0123456789ABCDEF"
	return "0x" + string(hex[c>>4]) + string(hex[c&15])
}
