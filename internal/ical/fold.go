package ical

import (
	"bytes"
	"unicode/utf8"
)

// maxLineOctets is the longest physical line RFC 5545 section 3.1 allows,
// not counting the CRLF.
const maxLineOctets = 75

// FoldLine appends line to dst as one content line: folded into physical
// lines of at most 75 octets (a continuation line starts with one space, which
// counts in the 75), each ending in CRLF. A fold never splits a valid UTF-8
// sequence; invalid bytes are copied as they are and may be split anywhere.
// line must not contain CR or LF.
func FoldLine(dst []byte, line string) []byte {
	return appendFolded(dst, line)
}

// appendFolded is FoldLine for both strings and byte slices, so that the
// Encoder can fold the line it builds in its scratch buffer without
// converting it to a string.
func appendFolded[S ~string | ~[]byte](dst []byte, line S) []byte {
	limit := maxLineOctets
	for len(line) > limit {
		cut := foldPoint(line, limit)
		dst = append(dst, line[:cut]...)
		dst = append(dst, "\r\n "...)
		line = line[cut:]
		limit = maxLineOctets - 1 // the leading space takes one octet
	}
	dst = append(dst, line...)
	return append(dst, "\r\n"...)
}

// foldPoint returns where to fold line, given that at most limit octets fit:
// limit itself, or the start of the valid UTF-8 sequence that would straddle
// it. The result is always greater than limit-utf8.UTFMax, so every physical
// line makes progress.
func foldPoint[S ~string | ~[]byte](line S, limit int) int {
	if utf8.RuneStart(line[limit]) {
		return limit
	}
	// line[limit] is a continuation byte: find the byte that starts its
	// sequence and check that the sequence is valid and runs past limit.
	for s := limit - 1; s > limit-utf8.UTFMax && s > 0; s-- {
		if !utf8.RuneStart(line[s]) {
			continue
		}
		var seq [utf8.UTFMax]byte
		n := copy(seq[:], line[s:min(len(line), s+utf8.UTFMax)])
		r, size := utf8.DecodeRune(seq[:n])
		if (r != utf8.RuneError || size > 1) && s+size > limit {
			return s
		}
		break
	}
	// Invalid UTF-8: there is no sequence to keep whole.
	return limit
}

// Unfold splits data into logical content lines. Lines may end in CRLF or a
// bare LF; a line starting with a space or a tab continues the previous one,
// and that one whitespace character is removed (RFC 5545 section 3.1). A final
// line ending does not produce an empty last line.
func Unfold(data []byte) []string {
	var (
		lines   []string
		line    []byte // the logical line so far: a slice of data, or scratch once folds are joined
		scratch []byte
		joined  bool // whether line is scratch
		have    bool // whether line holds a line yet
	)
	for len(data) > 0 {
		phys := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			phys, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if n := len(phys); n > 0 && phys[n-1] == '\r' {
			phys = phys[:n-1]
		}
		if have && len(phys) > 0 && (phys[0] == ' ' || phys[0] == '\t') {
			if !joined {
				scratch = append(scratch[:0], line...)
				joined = true
			}
			scratch = append(scratch, phys[1:]...)
			line = scratch
			continue
		}
		if have {
			lines = append(lines, string(line))
		}
		line, joined, have = phys, false, true
	}
	if have {
		lines = append(lines, string(line))
	}
	return lines
}
