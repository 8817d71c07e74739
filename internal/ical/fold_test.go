package ical

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFoldLine(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		line string
		want string // "" means: only check the invariants
	}{
		{name: "empty", line: "", want: "\r\n"},
		{name: "short", line: "SUMMARY:Hi", want: "SUMMARY:Hi\r\n"},
		{name: "74 octets", line: a(74), want: a(74) + "\r\n"},
		{name: "75 octets", line: a(75), want: a(75) + "\r\n"},
		{name: "76 octets", line: a(76), want: a(75) + "\r\n a\r\n"},
		{name: "149 octets", line: a(149), want: a(75) + "\r\n " + a(74) + "\r\n"},
		{name: "150 octets", line: a(150), want: a(75) + "\r\n " + a(74) + "\r\n a\r\n"},
		{name: "long ascii", line: "DESCRIPTION:" + strings.Repeat("lorem ipsum dolor sit amet ", 40)},
		{name: "3-byte char straddles octet 75", line: a(73) + "€tail", want: a(73) + "\r\n €tail\r\n"},
		{name: "3-byte char ends at octet 75", line: a(72) + "€tail", want: a(72) + "€\r\n tail\r\n"},
		{name: "4-byte char straddles octet 75", line: a(74) + "😀z", want: a(74) + "\r\n 😀z\r\n"},
		{name: "4-byte char at octet 72", line: a(72) + "😀z", want: a(72) + "\r\n 😀z\r\n"},
		{name: "2-byte char straddles octet 75", line: a(74) + "éz", want: a(74) + "\r\n éz\r\n"},
		{name: "straddle on continuation line", line: a(75) + a(73) + "€", want: a(75) + "\r\n " + a(73) + "\r\n €\r\n"},
		{name: "emoji", line: "SUMMARY:" + strings.Repeat("😀", 60)},
		{name: "emoji with ZWJ", line: "SUMMARY:" + strings.Repeat("👩‍👩‍👧‍👦", 20)},
		{name: "CJK", line: "SUMMARY:" + strings.Repeat("日本語のテキスト", 20)},
		{name: "combining marks", line: "SUMMARY:" + strings.Repeat("e\u0301\u0308", 50)},
		{name: "mixed widths", line: strings.Repeat("aé€😀", 40)},
		{name: "invalid UTF-8", line: a(74) + "\xff\xfe\x80\x80\x80" + a(80)},
		{name: "truncated sequence at octet 74", line: a(74) + "\xe2\x82" + a(80)},
		{name: "lone continuation bytes", line: strings.Repeat("\x80", 200)},
		{name: "leading space", line: " " + a(100)},
		{name: "tabs and spaces", line: strings.Repeat(" \t", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := FoldLine(nil, tt.line)
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("FoldLine(%q) = %q; want %q", tt.line, got, tt.want)
			}
			checkFolded(t, tt.line, got)
		})
	}
}

func TestFoldLineAppends(t *testing.T) {
	t.Parallel()
	got := FoldLine([]byte("BEGIN:VCALENDAR\r\n"), "VERSION:2.0")
	if want := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"; string(got) != want {
		t.Errorf("FoldLine(prefix, line) = %q; want %q", got, want)
	}
}

// checkFolded checks that folded is line folded as RFC 5545 asks: physical
// lines of at most 75 octets ending in CRLF, continuation lines starting with
// a space, no valid UTF-8 sequence split, and Unfold giving line back.
func checkFolded(t *testing.T, line string, folded []byte) {
	t.Helper()
	if !bytes.HasSuffix(folded, []byte("\r\n")) {
		t.Fatalf("FoldLine(%q) = %q; want a trailing CRLF", line, folded)
	}
	phys := strings.Split(string(folded[:len(folded)-2]), "\r\n")
	var cuts []int // offsets in line where a fold was made
	pos := 0
	for i, p := range phys {
		if len(p) > maxLineOctets {
			t.Errorf("FoldLine(%q): physical line %d is %d octets; want at most %d", line, i, len(p), maxLineOctets)
		}
		if strings.ContainsAny(p, "\r\n") {
			t.Errorf("FoldLine(%q): physical line %d = %q contains a bare CR or LF", line, i, p)
		}
		if i > 0 {
			if !strings.HasPrefix(p, " ") {
				t.Fatalf("FoldLine(%q): continuation line %d = %q; want a leading space", line, i, p)
			}
			if len(p) == 1 {
				t.Errorf("FoldLine(%q): continuation line %d is empty", line, i)
			}
			cuts = append(cuts, pos)
			p = p[1:]
		}
		pos += len(p)
	}
	// Every fold must be at a boundary of the rune-by-rune decoding of line,
	// where invalid bytes decode one at a time.
	for _, c := range cuts {
		if !isDecodeBoundary(line, c) {
			t.Errorf("FoldLine(%q) folds at octet %d, inside a UTF-8 sequence", line, c)
		}
	}
	if got := Unfold(folded); !slices.Equal(got, []string{line}) {
		t.Errorf("Unfold(FoldLine(%q)) = %q; want [%q]", line, got, line)
	}
}

func isDecodeBoundary(s string, at int) bool {
	for i := 0; i < len(s); {
		if i == at {
			return true
		}
		if i > at {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return at == len(s)
}

func TestUnfold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []string
	}{
		{name: "empty", data: "", want: nil},
		{name: "one line no newline", data: "A:1", want: []string{"A:1"}},
		{name: "CRLF", data: "A:1\r\nB:2\r\n", want: []string{"A:1", "B:2"}},
		{name: "LF", data: "A:1\nB:2\n", want: []string{"A:1", "B:2"}},
		{name: "mixed endings", data: "A:1\r\nB:2\nC:3", want: []string{"A:1", "B:2", "C:3"}},
		{name: "space fold", data: "DESCRIPTION:ab\r\n cd\r\n ef\r\nX:1\r\n", want: []string{"DESCRIPTION:abcdef", "X:1"}},
		{name: "tab fold", data: "A:ab\r\n\tcd\r\n", want: []string{"A:abcd"}},
		{name: "LF fold", data: "A:ab\n cd\n", want: []string{"A:abcd"}},
		{name: "only one space removed", data: "A:ab\r\n  cd\r\n", want: []string{"A:ab cd"}},
		{name: "fold of empty text", data: "A:ab\r\n \r\nB:c\r\n", want: []string{"A:ab", "B:c"}},
		{name: "blank line kept", data: "A:1\r\n\r\nB:2\r\n", want: []string{"A:1", "", "B:2"}},
		{name: "leading continuation kept", data: " A:1\r\n", want: []string{" A:1"}},
		{name: "folds after several lines", data: "A:1\r\nB:2\r\n 3\r\nC:4\r\n 5\r\n 6\r\n", want: []string{"A:1", "B:23", "C:456"}},
		{name: "split multibyte rejoined", data: "A:\xe2\x82\r\n \xac\r\n", want: []string{"A:€"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Unfold([]byte(tt.data)); !slices.Equal(got, tt.want) {
				t.Errorf("Unfold(%q) = %q; want %q", tt.data, got, tt.want)
			}
		})
	}
}

func FuzzFoldUnfold(f *testing.F) {
	for _, s := range []string{
		"",
		"SUMMARY:Team meeting",
		strings.Repeat("a", 75),
		strings.Repeat("a", 76),
		strings.Repeat("a", 73) + "€" + strings.Repeat("b", 80),
		strings.Repeat("a", 74) + "😀" + strings.Repeat("b", 80),
		"SUMMARY:" + strings.Repeat("日本語", 40),
		strings.Repeat("e\u0301", 80),
		strings.Repeat("\xff\x80", 90),
		strings.Repeat("a", 74) + "\xf0\x9f\x98" + strings.Repeat("\x80", 10),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") {
			t.Skip("content lines cannot contain CR or LF")
		}
		checkFolded(t, line, FoldLine(nil, line))
	})
}
