package ical

import (
	"io"
	"strings"
)

// Param is one property parameter, e.g. TZID=Europe/Berlin or VALUE=DATE.
type Param struct {
	Name  string
	Value string
}

// flushThreshold is how much folded output the Encoder collects before it
// writes to the underlying writer.
const flushThreshold = 4096

// Encoder writes iCalendar content lines to an io.Writer: CRLF line ends,
// lines folded at 75 octets without splitting a UTF-8 sequence.
//
// Output is buffered; call Flush when done. Like bufio.Writer, the Encoder
// remembers the first write error, writes nothing after it, and Flush reports
// it, so that callers need not check every line.
type Encoder struct {
	w       io.Writer
	buf     []byte // folded output not yet written to w
	line    []byte // scratch space for the logical line being built
	written int    // bytes written to w
	err     error
}

// NewEncoder returns an Encoder that writes to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{
		w:    w,
		buf:  make([]byte, 0, flushThreshold+512),
		line: make([]byte, 0, 256),
	}
}

// Begin writes BEGIN:component, e.g. BEGIN:VEVENT.
func (e *Encoder) Begin(component string) {
	e.Prop("BEGIN", component)
}

// End writes END:component, e.g. END:VEVENT.
func (e *Encoder) End(component string) {
	e.Prop("END", component)
}

// Prop writes one property whose value is already in its wire form (a
// DATE-TIME, a URI, a RRULE, …); it is not escaped. Names are written upper
// case. A parameter value containing ':', ';' or ',' is put in double quotes.
//
// Bytes that cannot appear in a content line are dropped rather than written,
// so that no input can break the line structure of the output: control
// characters other than HTAB in values, DQUOTE in parameter values, and
// anything but letters, digits and '-' in names.
func (e *Encoder) Prop(name, value string, params ...Param) {
	e.line = appendName(e.line[:0], name, params)
	e.line = appendValue(e.line, value)
	e.writeLine()
}

// Text writes one property whose value is TEXT: value is escaped with
// EscapeText. Otherwise it behaves like Prop.
func (e *Encoder) Text(name, value string, params ...Param) {
	e.line = appendName(e.line[:0], name, params)
	if !hasControl(value) {
		e.line = appendEscapedText(e.line, value)
	} else {
		// Rare: escape first (turning newlines into \n), then drop the
		// control characters that remain.
		start := len(e.line)
		e.line = appendEscapedText(e.line, value)
		e.line = dropControls(e.line, start)
	}
	e.writeLine()
}

// Raw writes content lines as they are: complete, folded and
// CRLF-terminated, as an Encoder wrote them before (see Offset).
func (e *Encoder) Raw(lines []byte) {
	if e.err != nil {
		return
	}
	e.buf = append(e.buf, lines...)
	e.flushFull()
}

// Offset is how many bytes the Encoder has produced so far, written or
// buffered: the position in the output of the next line.
func (e *Encoder) Offset() int { return e.written + len(e.buf) }

// Err returns the first error that occurred while writing, if any.
func (e *Encoder) Err() error { return e.err }

// Flush writes any buffered output to the underlying writer and returns the
// first error that occurred while writing, if any.
func (e *Encoder) Flush() error {
	if e.err == nil && len(e.buf) > 0 {
		e.write()
	}
	e.buf = e.buf[:0]
	return e.err
}

// writeLine folds the logical line in e.line into the output buffer.
func (e *Encoder) writeLine() {
	if e.err != nil {
		return
	}
	e.buf = appendFolded(e.buf, e.line)
	e.flushFull()
}

// flushFull writes the buffer once it is full.
func (e *Encoder) flushFull() {
	if len(e.buf) >= flushThreshold {
		e.write()
		e.buf = e.buf[:0]
	}
}

// write writes the buffer to w.
func (e *Encoder) write() {
	var n int
	n, e.err = e.w.Write(e.buf)
	e.written += n
}

// appendName appends "NAME;PARAM=value;…:" to dst.
func appendName(dst []byte, name string, params []Param) []byte {
	dst = appendUpperName(dst, name)
	for _, p := range params {
		dst = append(dst, ';')
		dst = appendUpperName(dst, p.Name)
		dst = append(dst, '=')
		dst = appendParamValue(dst, p.Value)
	}
	return append(dst, ':')
}

// appendUpperName appends name upper-cased, keeping only the characters RFC
// 5545 allows in names (ALPHA, DIGIT and '-').
func appendUpperName(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			dst = append(dst, c-('a'-'A'))
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			dst = append(dst, c)
		}
	}
	return dst
}

// appendParamValue appends a parameter value, quoted if it contains ':', ';'
// or ','. DQUOTE cannot be written inside a parameter value at all (RFC 5545
// has no escape for it) and is dropped, as are control characters.
func appendParamValue(dst []byte, v string) []byte {
	quote := strings.ContainsAny(v, ":;,")
	if quote {
		dst = append(dst, '"')
	}
	if !hasControl(v) && strings.IndexByte(v, '"') < 0 {
		dst = append(dst, v...)
	} else {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c != '"' && !isControl(c) {
				dst = append(dst, c)
			}
		}
	}
	if quote {
		dst = append(dst, '"')
	}
	return dst
}

// appendValue appends a property value, dropping control characters.
func appendValue(dst []byte, v string) []byte {
	if !hasControl(v) {
		return append(dst, v...)
	}
	start := len(dst)
	return dropControls(append(dst, v...), start)
}

// dropControls removes control characters from b[start:] in place.
func dropControls(b []byte, start int) []byte {
	out := b[:start]
	for _, c := range b[start:] {
		if !isControl(c) {
			out = append(out, c)
		}
	}
	return out
}

// isControl reports whether c is a CONTROL character in the RFC 5545
// grammar: any of %x00-08, %x0A-1F and %x7F. HTAB is allowed.
func isControl(c byte) bool {
	return (c < 0x20 && c != '\t') || c == 0x7f
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			return true
		}
	}
	return false
}
