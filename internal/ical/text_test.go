package ical

import (
	"strings"
	"testing"
)

func TestEscapeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain text", "plain text"},
		{"a;b", `a\;b`},
		{"a,b", `a\,b`},
		{`a\b`, `a\\b`},
		{`\`, `\\`},
		{`\\`, `\\\\`},
		{`\n`, `\\n`}, // a literal backslash-n, not a newline
		{"a\nb", `a\nb`},
		{"a\r\nb", `a\nb`},
		{"a\rb", `a\nb`},
		{"a\n\nb", `a\n\nb`},
		{"a\r\n\r\nb", `a\n\nb`},
		{"a\n\rb", `a\n\nb`},
		{"\r", `\n`},
		{"\r\n", `\n`},
		{"end\r", `end\n`},
		{"a:b", "a:b"}, // colons need no escaping in TEXT
		{`"quoted"`, `"quoted"`},
		{"Room 1; Floor 2, Berlin\nBring \\ laptops", `Room 1\; Floor 2\, Berlin\nBring \\ laptops`},
		{"日本語;😀", `日本語\;😀`},
	}
	for _, tt := range tests {
		if got := EscapeText(tt.in); got != tt.want {
			t.Errorf("EscapeText(%q) = %q; want %q", tt.in, got, tt.want)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(tt.in, "\r\n", "\n"), "\r", "\n")
		if got := UnescapeText(EscapeText(tt.in)); got != want {
			t.Errorf("UnescapeText(EscapeText(%q)) = %q; want %q", tt.in, got, want)
		}
	}
}

func TestUnescapeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain", "plain"},
		{`a\;b\,c\\d`, `a;b,c\d`},
		{`a\nb\Nc`, "a\nb\nc"},
		{`\\n`, `\n`},
		{`trailing\`, `trailing\`},
		{`unknown\x escape`, `unknown\x escape`},
		{`colon\:`, `colon\:`},
		{`\\\\`, `\\`},
	}
	for _, tt := range tests {
		if got := UnescapeText(tt.in); got != tt.want {
			t.Errorf("UnescapeText(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{
		"",
		"plain",
		`back\slash`,
		"semi;colon,comma",
		"line\nbreak",
		"crlf\r\nbreak",
		"lone\rcr",
		`\n literal`,
		"\\\r\n;,\\",
		"日本語😀\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := EscapeText(s)
		if strings.ContainsAny(esc, "\r\n") {
			t.Errorf("EscapeText(%q) = %q; want no raw CR or LF", s, esc)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		if got := UnescapeText(esc); got != want {
			t.Errorf("UnescapeText(EscapeText(%q)) = %q; want %q", s, got, want)
		}
	})
}
