package ical

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// vcal wraps lines in a VCALENDAR, CRLF-terminated.
func vcal(lines ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calhook//test//EN\r\n" +
		strings.Join(lines, "\r\n") + "\r\nEND:VCALENDAR\r\n"
}

// vevent returns the lines of a VEVENT with the given properties.
func vevent(props ...string) string {
	return "BEGIN:VEVENT\r\n" + strings.Join(props, "\r\n") + "\r\nEND:VEVENT"
}

func mustParse(t *testing.T, src string, opts ParseOptions) *Calendar {
	t.Helper()
	cal, err := Parse(strings.NewReader(src), opts)
	if err != nil {
		t.Fatalf("Parse: %v\ninput:\n%s", err, src)
	}
	return cal
}

// oneEvent parses src and returns its only event.
func oneEvent(t *testing.T, src string, opts ParseOptions) (Event, *Calendar) {
	t.Helper()
	cal := mustParse(t, src, opts)
	if len(cal.Events) != 1 {
		t.Fatalf("Parse returned %d events; want 1 (warnings: %q)", len(cal.Events), cal.Warnings)
	}
	return cal.Events[0], cal
}

func hasWarning(cal *Calendar, substr string) bool {
	return slices.ContainsFunc(cal.Warnings, func(w string) bool { return strings.Contains(w, substr) })
}

func loadLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	big := vcal(vevent("UID:x", "DTSTART:20260101T000000Z", "DESCRIPTION:"+strings.Repeat("a", maxLineBytes)))
	deep := "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:X-A\r\n", maxDepth) + strings.Repeat("END:X-A\r\n", maxDepth) + "END:VCALENDAR\r\n"
	tests := []struct {
		name     string
		in       string
		opts     ParseOptions
		want     error
		wantLine int
	}{
		{"empty", "", ParseOptions{}, ErrEmpty, 0},
		{"only white space", " \r\n\r\n\t\n", ParseOptions{}, ErrEmpty, 0},
		{"only a BOM", "\xEF\xBB\xBF", ParseOptions{}, ErrEmpty, 0},
		{"HTML error page", "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>", ParseOptions{}, ErrHTML, 1},
		{"HTML after blank lines", "\r\n\r\n<html>\r\n<body>login</body></html>", ParseOptions{}, ErrHTML, 3},
		{"XML", "<?xml version=\"1.0\"?><icalendar/>", ParseOptions{}, ErrHTML, 1},
		{"JSON", `{"error":"not found"}`, ParseOptions{}, ErrNotCalendar, 1},
		{"plain text", "Service Unavailable\n", ParseOptions{}, ErrNotCalendar, 1},
		{"bare VEVENT", "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\n", ParseOptions{}, ErrNotCalendar, 1},
		{"property before BEGIN", "VERSION:2.0\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", ParseOptions{}, ErrNotCalendar, 1},
		{"truncated inside VEVENT", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T000000Z\r\n", ParseOptions{}, ErrTruncated, 4},
		{"truncated between events", "BEGIN:VCALENDAR\r\n" + vevent("UID:a", "DTSTART:20260101T000000Z") + "\r\n", ParseOptions{}, ErrTruncated, 5},
		{"truncated mid-line", "BEGIN:VCALENDAR\r\n" + vevent("UID:a", "DTSTART:20260101T000000Z") + "\r\nEND:VCAL", ParseOptions{}, ErrTruncated, 6},
		{"second calendar truncated", vcal() + "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", ParseOptions{}, ErrTruncated, 7},
		{"END with a typo", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDARD\r\n", ParseOptions{}, ErrTruncated, 3},
		{"too large", vcal(), ParseOptions{MaxBytes: 10}, ErrTooLarge, 0},
		{"text in VCALENDAR", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nthis is garbage from a broken proxy\r\n<html>oops</html>\r\nEND:VCALENDAR\r\n", ParseOptions{}, ErrMalformed, 4},
		{"HTML in VCALENDAR", "BEGIN:VCALENDAR\r\n<html><body>502</body></html>\r\nEND:VCALENDAR\r\n", ParseOptions{}, ErrMalformed, 2},
		{"JSON in VCALENDAR", "BEGIN:VCALENDAR\r\n" + vevent("UID:a", "DTSTART:20260101T000000Z") + "\r\n{\"error\":\"quota\"}\r\nEND:VCALENDAR\r\n", ParseOptions{}, ErrMalformed, 6},
		{"text right after BEGIN:VEVENT", vcal(vevent("Dear Team,", "UID:a", "DTSTART:20260101T000000Z")), ParseOptions{}, ErrMalformed, 5},
		{"property without colon", vcal(vevent("UID:a", "DTSTART:20260101T000000Z"), "SUMMARY;LANGUAGE=en"), ParseOptions{}, ErrMalformed, 8},
		{"mismatched END", vcal(vevent("UID:a", "DTSTART:20260102T000000Z", "END:VTODO")), ParseOptions{}, ErrMalformed, 7},
		{"renamed component", vcal("BEGIN:VJOURJAL", "UID:j", "END:VJGURNAL"), ParseOptions{}, ErrMalformed, 6},
		{"missing END:VALARM", vcal(vevent("UID:a", "DTSTART:20260101T000000Z", "BEGIN:VALARM", "ACTION:DISPLAY")), ParseOptions{}, ErrMalformed, 9},
		{"invalid component name", vcal("BEGIN:V\"X"), ParseOptions{}, ErrMalformed, 4},
		{"line too long", big, ParseOptions{}, ErrLineTooLong, 7},
		{"nested too deeply", deep, ParseOptions{}, ErrTooDeep, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cal, err := Parse(strings.NewReader(tt.in), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %v, %v; want error %v", snippet(tt.in), cal, err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T is not a *ParseError", err)
			}
			if pe.Line != tt.wantLine {
				t.Errorf("ParseError.Line = %d; want %d (%v)", pe.Line, tt.wantLine, err)
			}
			if !strings.HasPrefix(pe.Msg, tt.want.Error()) || !strings.HasPrefix(err.Error(), "ical: ") {
				t.Errorf("error %q does not start with \"ical: \" and the sentinel text %q", err, tt.want)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	_, err := Parse(iotest.ErrReader(boom), ParseOptions{})
	if !errors.Is(err, boom) {
		t.Errorf("Parse(failing reader) = %v; want it to wrap %v", err, boom)
	}
}

func TestParseEmptyCalendar(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\nEND:VCALENDAR",
		vcal("BEGIN:VTODO", "UID:t", "DTSTART:20260101T000000Z", "END:VTODO"),
	} {
		cal, err := Parse(strings.NewReader(in), ParseOptions{})
		if err != nil || cal == nil || len(cal.Events) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want a calendar with no events", in, cal, err)
		}
	}
}

// TestParseLineStructure covers the lexical tolerances: every input must
// yield one event with this summary.
func TestParseLineStructure(t *testing.T) {
	t.Parallel()
	const want = "Hello, World"
	crlf := vcal(vevent("UID:a", "DTSTART:20260101T100000Z", `SUMMARY:Hello\, World`))
	lf := strings.ReplaceAll(crlf, "\r\n", "\n")
	tests := []struct {
		name string
		in   string
	}{
		{"CRLF", crlf},
		{"LF only", lf},
		{"bare CR", strings.ReplaceAll(crlf, "\r\n", "\r")},
		{"mixed line ends", strings.Replace(strings.Replace(crlf, "\r\n", "\n", 3), "\r\n", "\r", 2)},
		{"CR CR LF", strings.ReplaceAll(crlf, "\r\n", "\r\r\n")},
		{"no final line end", strings.TrimSuffix(crlf, "\r\n")},
		{"UTF-8 BOM", "\xEF\xBB\xBF" + crlf},
		{"BOM and leading blank lines", "\xEF\xBB\xBF\r\n \r\n\t\r\n" + crlf},
		{"leading spaces", "   " + lf},
		{"blank lines between", strings.ReplaceAll(crlf, "\r\n", "\r\n\r\n")},
		{"trailing junk", crlf + "<!-- served by x -->\r\n"},
		{"fold with space", strings.Replace(crlf, `SUMMARY:Hello\, World`, "SUMMARY:Hel\r\n lo\\, World", 1)},
		{"fold with tab", strings.Replace(crlf, `SUMMARY:Hello\, World`, "SUMMARY:Hel\r\n\tlo\\, World", 1)},
		{"fold in name", strings.Replace(crlf, `SUMMARY:Hello\, World`, "SUMM\r\n ARY:Hello\\, World", 1)},
		{"fold with LF", strings.Replace(lf, `SUMMARY:Hello\, World`, "SUMMARY:Hello\\,\n  World", 1)},
		{"blank line before fold", strings.Replace(crlf, `SUMMARY:Hello\, World`, "SUMMARY\r\n\r\n :Hello\\, World", 1)},
		{"lower-case names", strings.ToLower(strings.Replace(crlf, `SUMMARY:Hello\, World`, "XXX", 1)) + "\r\n"},
		{"junk line inside VEVENT", strings.Replace(crlf, "UID:a", "UID:a\r\nthis line has no colon\r\n: neither a name", 1)},
		{"VALARM properties do not leak", strings.Replace(crlf, "UID:a", "UID:a\r\nBEGIN:VALARM\r\nSUMMARY:alarm\r\nDTSTART:20990101T000000Z\r\nEND:VALARM", 1)},
		{"unknown component skipped", strings.Replace(crlf, "BEGIN:VEVENT", "BEGIN:X-THING\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:X-THING\r\nBEGIN:VEVENT", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			if tt.name == "lower-case names" {
				// Lower-case everything but the summary line.
				in = strings.Replace(in, "xxx", `summary:Hello\, World`, 1)
			}
			ev, _ := oneEvent(t, in, ParseOptions{})
			if ev.Summary != want {
				t.Errorf("Summary = %q; want %q", ev.Summary, want)
			}
			if !ev.Start.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("Start = %v; want 2026-01-01 10:00 UTC", ev.Start)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		wantEvents  int
		wantWarning string
	}{
		{"junk line", vcal(vevent("UID:a", "DTSTART:20260101T000000Z", "Dear Team,")), 1, `line 7: invalid character ' ' in name, line skipped: "Dear Team,"`},
		{"no DTSTART", vcal(vevent("UID:a", "SUMMARY:x"), vevent("UID:b", "DTSTART:20260101T000000Z")), 1, `line 4: VEVENT without DTSTART skipped (UID "a")`},
		{"bad DTSTART", vcal(vevent("UID:a", "DTSTART:20260230T000000Z")), 0, `invalid date or date-time "20260230T000000Z"`},
		{"unknown TZID", vcal(vevent("UID:a", "DTSTART;TZID=Mars/Olympus:20260101T000000")), 1, `unknown TZID "Mars/Olympus" without VTIMEZONE: times read as floating (UTC)`},
		{"end before start", vcal(vevent("UID:a", "DTSTART:20260102T000000Z", "DTEND:20260101T000000Z")), 1, "event ends before it starts"},
		{"RRULE without FREQ", vcal(vevent("UID:a", "DTSTART:20260102T000000Z", "RRULE:COUNT=3")), 1, "RRULE without FREQ ignored"},
		{"VEVENT after END:VCALENDAR", vcal() + "\r\n" + vevent("UID:a", "DTSTART:20260102T000000Z") + "\r\n", 1, "BEGIN:VEVENT outside VCALENDAR"},
		{"nested VCALENDAR", "BEGIN:VCALENDAR\r\n" + vcal(vevent("UID:a", "DTSTART:20260102T000000Z")) + "END:VCALENDAR\r\n", 1, "VCALENDAR nested in the VCALENDAR opened on line 1"},
		{"Latin-1", vcal(vevent("UID:a", "DTSTART:20260102T000000Z", "SUMMARY:Caf\xe9")), 1, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cal := mustParse(t, tt.in, ParseOptions{})
			if len(cal.Events) != tt.wantEvents {
				t.Errorf("Parse returned %d events; want %d", len(cal.Events), tt.wantEvents)
			}
			if !hasWarning(cal, tt.wantWarning) {
				t.Errorf("Warnings = %q; want one containing %q", cal.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestParseWarningCap(t *testing.T) {
	t.Parallel()
	// Lines without a colon right after a property are read as lost
	// continuation lines: tolerated, each with a warning.
	lines := []string{"UID:a", "DTSTART:20260101T000000Z", "DESCRIPTION:x"}
	for range maxWarnings + 50 {
		lines = append(lines, "no colon here")
	}
	cal := mustParse(t, vcal(vevent(lines...)), ParseOptions{})
	if len(cal.Warnings) != maxWarnings+1 || !strings.HasPrefix(cal.Warnings[maxWarnings], "50 more") {
		t.Errorf("got %d warnings ending in %q; want %d and a count of the rest", len(cal.Warnings), cal.Warnings[len(cal.Warnings)-1], maxWarnings+1)
	}
}

func TestParseCharset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, summary, want string
	}{
		{"valid UTF-8", "Caf\u00e9 \u2615", "Caf\u00e9 \u2615"},
		{"Latin-1", "Caf\xe9 cr\xe8me", "Café crème"},
		{"Windows-1252 quotes and euro", "\x93Quote\x94 \x80 5", "\u201cQuote\u201d \u20ac 5"},
		{"damaged UTF-8", "Caf\u00e9 \xff end", "Café \uFFFD end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, _ := oneEvent(t, vcal(vevent("UID:a", "DTSTART:20260101T000000Z", "SUMMARY:"+tt.summary)), ParseOptions{})
			if ev.Summary != tt.want {
				t.Errorf("Summary = %q; want %q", ev.Summary, tt.want)
			}
		})
	}
}

// TestParseFoldInsideUTF8 folds every line at a fixed octet count, as some
// producers do, so that folds split multi-byte sequences.
func TestParseFoldInsideUTF8(t *testing.T) {
	t.Parallel()
	summary := "日本語の会議🎉🎉 über Ünïcödé 😀 中文 ✓"
	src := vcal(vevent("UID:u", "DTSTART:20260101T000000Z", "SUMMARY:"+summary))
	for width := 2; width < 12; width++ {
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSuffix(src, "\r\n"), "\r\n") {
			for first := true; line != ""; first = false {
				n := min(width, len(line))
				if !first {
					b.WriteString(" ")
				}
				b.WriteString(line[:n])
				b.WriteString("\r\n")
				line = line[n:]
			}
		}
		ev, cal := oneEvent(t, b.String(), ParseOptions{})
		if ev.Summary != summary {
			t.Errorf("width %d: Summary = %q; want %q", width, ev.Summary, summary)
		}
		if hasWarning(cal, "UTF-8") {
			t.Errorf("width %d: unexpected charset warning %q", width, cal.Warnings)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line       string
		wantName   string
		wantParams []Param
		wantValue  string
		wantMsg    string
	}{
		{"SUMMARY:a:b;c", "SUMMARY", nil, "a:b;c", ""},
		{"dtstart;tzid=Europe/Berlin:20260101T000000", "DTSTART", []Param{{"TZID", "Europe/Berlin"}}, "20260101T000000", ""},
		{`ATTENDEE;CN="Doe, John; Jr.: CEO";ROLE=CHAIR:mailto:j@x`, "ATTENDEE", []Param{{"CN", "Doe, John; Jr.: CEO"}, {"ROLE", "CHAIR"}}, "mailto:j@x", ""},
		{`X-A;MEMBER="a","b",c:v`, "X-A", []Param{{"MEMBER", "a,b,c"}}, "v", ""},
		{`DTSTART;TZID="W. Europe Standard Time":20200609T090000`, "DTSTART", []Param{{"TZID", "W. Europe Standard Time"}}, "20200609T090000", ""},
		{`DTSTART;TZID="W. Europe Standard Time:20200609T090000"`, "DTSTART", []Param{{"TZID", "W. Europe Standard Time"}}, "20200609T090000", ""},
		{`DTSTART;TZID="W. Europe Standard Time:20200609T090000`, "DTSTART", []Param{{"TZID", "W. Europe Standard Time"}}, "20200609T090000", ""},
		{`X-A;P= "quoted after fold":v`, "X-A", []Param{{"P", "quoted after fold"}}, "v", ""},
		{`X-A;P="q"extra:v`, "X-A", []Param{{"P", "qextra"}}, "v", ""},
		{`DTSTART;;VALUE=DATE:20260101`, "DTSTART", []Param{{"VALUE", "DATE"}}, "20260101", ""},
		{`X-A;ENCODING;TYPE=x:v`, "X-A", []Param{{"ENCODING", ""}, {"TYPE", "x"}}, "v", ""},
		{`X-A;P=:v`, "X-A", []Param{{"P", ""}}, "v", ""},
		{"SUMMARY:", "SUMMARY", nil, "", ""},
		{"SUMMARY", "SUMMARY", nil, "", "no colon"},
		{":value", "", nil, "", "no property name"},
		{"SUMMARY;P=x", "SUMMARY", nil, "", "no colon"},
		{`SUMMARY;P="x`, "SUMMARY", nil, "", "unterminated quoted parameter value"},
		{"SUM MARY:x", "SUM", nil, "", "invalid character ' ' in name"},
		{"X-A;=v:x", "X-A", nil, "", "parameter without a name"},
		{"X-A;P+x:v", "X-A", nil, "", "invalid parameter"},
	}
	for _, tt := range tests {
		name, params, value, msg := parseContentLine(tt.line, nil)
		if name != tt.wantName || msg != tt.wantMsg || (msg == "" && (value != tt.wantValue || !slices.Equal(params, tt.wantParams))) {
			t.Errorf("parseContentLine(%q) = %q, %q, %q, %q; want %q, %q, %q, %q",
				tt.line, name, params, value, msg, tt.wantName, tt.wantParams, tt.wantValue, tt.wantMsg)
		}
	}
}

func TestParseTimes(t *testing.T) {
	t.Parallel()
	berlin := loadLoc(t, "Europe/Berlin")
	newYork := loadLoc(t, "America/New_York")
	tokyo := loadLoc(t, "Asia/Tokyo")
	utc := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }

	customUS := []string{
		"BEGIN:VTIMEZONE", "TZID:Customized Time Zone",
		"BEGIN:STANDARD", "DTSTART:16010101T020000", "TZOFFSETFROM:-0400", "TZOFFSETTO:-0500",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11", "END:STANDARD",
		"BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3", "END:DAYLIGHT",
		"END:VTIMEZONE",
	}
	tests := []struct {
		name         string
		lines        []string
		opts         ParseOptions
		wantStart    time.Time
		wantEnd      time.Time
		wantZone     string
		wantAllDay   bool
		wantFloating bool
		wantWarning  string
	}{
		{name: "UTC", lines: []string{vevent("UID:a", "DTSTART:20260701T100000Z", "DTEND:20260701T110000Z")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 11, 0)},
		{name: "UTC wins over TZID", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe/Berlin:20260701T100000Z")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 10, 0)},
		{name: "IANA TZID in summer", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe/Berlin:20260701T100000", "DTEND;TZID=Europe/Berlin:20260701T113000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 9, 30), wantZone: "Europe/Berlin"},
		{name: "IANA TZID in winter", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe/Berlin:20260101T100000")},
			wantStart: utc(2026, 1, 1, 9, 0), wantEnd: utc(2026, 1, 1, 9, 0), wantZone: "Europe/Berlin"},
		{name: "quoted IANA TZID", lines: []string{vevent("UID:a", `DTSTART;TZID="America/New_York":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0), wantZone: "America/New_York"},
		{name: "vendor prefix", lines: []string{vevent("UID:a", "DTSTART;TZID=/softwarestudio.org/Olson_20011030_5/America/New_York:20260701T100000")},
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0), wantZone: "America/New_York"},
		{name: "underscore for slash", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe_Berlin:20260701T100000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 8, 0), wantZone: "Europe/Berlin"},
		{name: "wrong case", lines: []string{vevent("UID:a", "DTSTART;TZID=europe/berlin:20260701T100000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 8, 0), wantZone: "Europe/Berlin"},
		{name: "Windows ID", lines: []string{vevent("UID:a", "DTSTART;TZID=W. Europe Standard Time:20260701T100000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 8, 0), wantZone: "Europe/Berlin"},
		{name: "Windows ID quoted", lines: []string{vevent("UID:a", `DTSTART;TZID="Tokyo Standard Time":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 1, 0), wantEnd: utc(2026, 7, 1, 1, 0), wantZone: "Asia/Tokyo"},
		{name: "Outlook quote swallows colon", lines: []string{vevent("UID:a", `DTSTART;TZID="Eastern Standard Time:20260701T100000"`)},
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0), wantZone: "America/New_York"},
		{name: "display name", lines: []string{vevent("UID:a", `DTSTART;TZID="(UTC-05:00) Eastern Time (US & Canada)":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0), wantZone: "America/New_York"},
		{name: "display name with GMT and 'and'", lines: []string{vevent("UID:a", `DTSTART;TZID="(GMT-05:00) Eastern Time (US and Canada)":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0), wantZone: "America/New_York"},
		{name: "old display name", lines: []string{vevent("UID:a", `DTSTART;TZID="Pacific Time (US & Canada), Tijuana":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 17, 0), wantEnd: utc(2026, 7, 1, 17, 0), wantZone: "America/Los_Angeles"},
		{name: "custom VTIMEZONE in summer", lines: append(slices.Clone(customUS), vevent("UID:a", `DTSTART;TZID="Customized Time Zone":20260701T100000`)),
			wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0)},
		{name: "custom VTIMEZONE in winter", lines: append(slices.Clone(customUS), vevent("UID:a", `DTSTART;TZID=Customized Time Zone:20261201T100000`)),
			wantStart: utc(2026, 12, 1, 15, 0), wantEnd: utc(2026, 12, 1, 15, 0)},
		{name: "custom VTIMEZONE after the event", lines: append([]string{vevent("UID:a", `DTSTART;TZID=Customized Time Zone:20261201T100000`)}, customUS...),
			wantStart: utc(2026, 12, 1, 15, 0), wantEnd: utc(2026, 12, 1, 15, 0)},
		{name: "X-LIC-LOCATION", lines: []string{"BEGIN:VTIMEZONE", "TZID:Berlin-ish", "X-LIC-LOCATION:Europe/Berlin", "END:VTIMEZONE",
			vevent("UID:a", "DTSTART;TZID=Berlin-ish:20260701T100000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 8, 0), wantZone: "Europe/Berlin"},
		{name: "offset in unknown name", lines: []string{vevent("UID:a", `DTSTART;TZID="(UTC+05:30) Somewhere New":20260701T100000`)},
			wantStart: utc(2026, 7, 1, 4, 30), wantEnd: utc(2026, 7, 1, 4, 30), wantWarning: "using its UTC offset +0530 all year"},
		{name: "unknown TZID is floating", lines: []string{vevent("UID:a", "DTSTART;TZID=Nowhere/Middle:20260701T100000")},
			opts: ParseOptions{DefaultZone: tokyo}, wantStart: utc(2026, 7, 1, 1, 0), wantEnd: utc(2026, 7, 1, 1, 0), wantZone: "Asia/Tokyo",
			wantFloating: true, wantWarning: `unknown TZID "Nowhere/Middle"`},
		{name: "floating in UTC by default", lines: []string{vevent("UID:a", "DTSTART:20260701T100000")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 10, 0), wantFloating: true},
		{name: "floating in DefaultZone", lines: []string{vevent("UID:a", "DTSTART:20260701T100000")},
			opts: ParseOptions{DefaultZone: newYork}, wantStart: utc(2026, 7, 1, 14, 0), wantEnd: utc(2026, 7, 1, 14, 0),
			wantZone: "America/New_York", wantFloating: true},
		{name: "floating in X-WR-TIMEZONE", lines: []string{"X-WR-TIMEZONE:Europe/Berlin", vevent("UID:a", "DTSTART:20260701T100000")},
			opts: ParseOptions{DefaultZone: newYork}, wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 8, 0),
			wantZone: "Europe/Berlin", wantFloating: true},
		{name: "all-day, DTEND exclusive", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261205")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 5, 0, 0), wantAllDay: true},
		{name: "all-day without DTEND", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20261201")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 2, 0, 0), wantAllDay: true},
		{name: "all-day without VALUE=DATE", lines: []string{vevent("UID:a", "DTSTART:20261201", "DTEND:20261202")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 2, 0, 0), wantAllDay: true},
		{name: "all-day with DURATION", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20261201", "DURATION:P3D")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 4, 0, 0), wantAllDay: true},
		{name: "all-day in DefaultZone", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20260329", "DTEND;VALUE=DATE:20260330")},
			opts:      ParseOptions{DefaultZone: berlin},
			wantStart: time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), wantEnd: time.Date(2026, 3, 30, 0, 0, 0, 0, berlin),
			wantZone: "Europe/Berlin", wantAllDay: true},
		{name: "all-day with date-time DTEND", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20261201", "DTEND:20261203T000000Z")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 3, 0, 0), wantAllDay: true},
		{name: "date with stray Z", lines: []string{vevent("UID:a", "DTSTART:20261201Z")},
			wantStart: utc(2026, 12, 1, 0, 0), wantEnd: utc(2026, 12, 2, 0, 0), wantAllDay: true},
		{name: "DURATION timed", lines: []string{vevent("UID:a", "DTSTART:20260701T100000Z", "DURATION:PT1H30M")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 11, 30)},
		{name: "DURATION in days keeps wall clock over DST", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe/Berlin:20260328T120000", "DURATION:P1D")},
			wantStart: utc(2026, 3, 28, 11, 0), wantEnd: utc(2026, 3, 29, 10, 0), wantZone: "Europe/Berlin"},
		{name: "DTEND in other zone", lines: []string{vevent("UID:a", "DTSTART;TZID=Europe/Berlin:20260701T100000", "DTEND;TZID=America/New_York:20260701T050000")},
			wantStart: utc(2026, 7, 1, 8, 0), wantEnd: utc(2026, 7, 1, 9, 0), wantZone: "Europe/Berlin"},
		{name: "extended format", lines: []string{vevent("UID:a", "DTSTART:2026-07-01T10:00:00Z")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 10, 0)},
		{name: "end before start is clamped", lines: []string{vevent("UID:a", "DTSTART:20260701T100000Z", "DTEND:20260701T090000Z")},
			wantStart: utc(2026, 7, 1, 10, 0), wantEnd: utc(2026, 7, 1, 10, 0), wantWarning: "ends before it starts"},
		{name: "bad DTEND falls back", lines: []string{vevent("UID:a", "DTSTART;VALUE=DATE:20260701", "DTEND;VALUE=DATE:None")},
			wantStart: utc(2026, 7, 1, 0, 0), wantEnd: utc(2026, 7, 2, 0, 0), wantAllDay: true, wantWarning: "unreadable DTEND ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, cal := oneEvent(t, vcal(tt.lines...), tt.opts)
			if !ev.Start.Equal(tt.wantStart) || !ev.End.Equal(tt.wantEnd) {
				t.Errorf("Start, End = %v, %v; want %v, %v", ev.Start, ev.End, tt.wantStart, tt.wantEnd)
			}
			if ev.TimeZone != tt.wantZone || ev.AllDay != tt.wantAllDay || ev.Floating != tt.wantFloating {
				t.Errorf("TimeZone, AllDay, Floating = %q, %v, %v; want %q, %v, %v",
					ev.TimeZone, ev.AllDay, ev.Floating, tt.wantZone, tt.wantAllDay, tt.wantFloating)
			}
			if tt.wantZone != "" && ev.Start.Location().String() != tt.wantZone {
				t.Errorf("Start.Location() = %v; want %s", ev.Start.Location(), tt.wantZone)
			}
			if tt.wantWarning != "" && !hasWarning(cal, tt.wantWarning) {
				t.Errorf("Warnings = %q; want one containing %q", cal.Warnings, tt.wantWarning)
			}
			if tt.wantWarning == "" && len(cal.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", cal.Warnings)
			}
		})
	}
}

func TestParseRecurrence(t *testing.T) {
	t.Parallel()
	berlin := loadLoc(t, "Europe/Berlin")
	cal := mustParse(t, vcal(
		vevent("UID:r", "DTSTART;TZID=Europe/Berlin:20261005T090000",
			"RRULE:FREQ=WEEKLY;BYDAY=MO, TU,\tWE;UNTIL=20261231T000000Z",
			"EXDATE;TZID=Europe/Berlin:20261012T090000,20261013T090000",
			"EXDATE:20261014T070000Z",
			"RDATE;VALUE=PERIOD:20261101T100000Z/PT1H,20261102T100000Z/20261102T110000Z",
			"RDATE;VALUE=DATE:20261224"),
		vevent("UID:r", "RECURRENCE-ID;TZID=Europe/Berlin:20261019T090000", "DTSTART;TZID=Europe/Berlin:20261019T100000", "SUMMARY:moved"),
		vevent("UID:r", "RECURRENCE-ID;VALUE=DATE:20261020", "DTSTART;VALUE=DATE:20261021"),
		vevent("UID:r", "RECURRENCE-ID:20261021T090000", "DTSTART:20261021T100000"),
	), ParseOptions{DefaultZone: berlin})
	if len(cal.Events) != 4 {
		t.Fatalf("got %d events; want 4 (%q)", len(cal.Events), cal.Warnings)
	}
	master := cal.Events[0]
	if want := "FREQ=WEEKLY;BYDAY=MO,TU,WE;UNTIL=20261231T000000Z"; master.RRule != want {
		t.Errorf("RRule = %q; want %q", master.RRule, want)
	}
	wantEx := []time.Time{
		time.Date(2026, 10, 12, 7, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 13, 7, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 14, 7, 0, 0, 0, time.UTC),
	}
	if !slices.EqualFunc(master.ExDates, wantEx, time.Time.Equal) {
		t.Errorf("ExDates = %v; want %v", master.ExDates, wantEx)
	}
	wantR := []time.Time{
		time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 24, 0, 0, 0, 0, berlin),
	}
	if !slices.EqualFunc(master.RDates, wantR, time.Time.Equal) {
		t.Errorf("RDates = %v; want %v", master.RDates, wantR)
	}
	if master.RecurrenceID != "" {
		t.Errorf("master RecurrenceID = %q; want empty", master.RecurrenceID)
	}
	for i, want := range []string{"20261019T070000Z", "20261020", "20261021T070000Z"} {
		if got := cal.Events[i+1].RecurrenceID; got != want {
			t.Errorf("override %d RecurrenceID = %q; want %q", i, got, want)
		}
	}
}

func TestParseDuplicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		events      []string
		wantSummary string
	}{
		{"higher SEQUENCE wins", []string{
			vevent("UID:d", "DTSTART:20260101T000000Z", "SEQUENCE:2", "SUMMARY:new"),
			vevent("UID:d", "DTSTART:20260101T000000Z", "SEQUENCE:1", "SUMMARY:old", "DTSTAMP:20270101T000000Z"),
		}, "new"},
		{"later DTSTAMP wins", []string{
			vevent("UID:d", "DTSTART:20260101T000000Z", "SUMMARY:old", "DTSTAMP:20260101T000000Z"),
			vevent("UID:d", "DTSTART:20260101T000000Z", "SUMMARY:new", "DTSTAMP:20260102T000000Z"),
		}, "new"},
		{"later in file wins a tie", []string{
			vevent("UID:d", "DTSTART:20260101T000000Z", "SUMMARY:old"),
			vevent("UID:d", "DTSTART:20260101T000000Z", "SUMMARY:new"),
		}, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, cal := oneEvent(t, vcal(tt.events...), ParseOptions{})
			if ev.Summary != tt.wantSummary {
				t.Errorf("kept %q; want %q", ev.Summary, tt.wantSummary)
			}
			if !hasWarning(cal, `duplicate UID "d"`) {
				t.Errorf("Warnings = %q; want a duplicate warning", cal.Warnings)
			}
		})
	}
	// The same UID with different RECURRENCE-IDs is not a duplicate.
	cal := mustParse(t, vcal(
		vevent("UID:d", "DTSTART:20260101T000000Z", "RRULE:FREQ=DAILY"),
		vevent("UID:d", "RECURRENCE-ID:20260102T000000Z", "DTSTART:20260102T010000Z"),
	), ParseOptions{})
	if len(cal.Events) != 2 || len(cal.Warnings) != 0 {
		t.Errorf("master + override: %d events, warnings %q; want 2 and none", len(cal.Events), cal.Warnings)
	}
}

func TestParseDerivedUID(t *testing.T) {
	t.Parallel()
	src := vcal(
		vevent("DTSTART:20260101T100000Z", "SUMMARY:no uid", "DTSTAMP:20260101T000000Z"),
		vevent("DTSTART:20260101T100000Z", "SUMMARY:no uid", "DTSTAMP:20260101T000000Z"),
		vevent("UID:", "DTSTART:20260102T100000Z", "SUMMARY:empty uid"),
	)
	first := mustParse(t, src, ParseOptions{})
	// DTSTAMP rewritten on the next poll: UIDs must not change.
	second := mustParse(t, strings.ReplaceAll(src, "DTSTAMP:20260101T000000Z", "DTSTAMP:20260301T000000Z"), ParseOptions{})
	if len(first.Events) != 3 {
		t.Fatalf("got %d events; want 3 (%q)", len(first.Events), first.Warnings)
	}
	seen := map[string]bool{}
	for i, ev := range first.Events {
		if !ev.UIDDerived || !strings.HasPrefix(ev.UID, "derived-") {
			t.Errorf("event %d: UID %q, UIDDerived %v; want a derived UID", i, ev.UID, ev.UIDDerived)
		}
		if seen[ev.UID] {
			t.Errorf("event %d: UID %q not unique", i, ev.UID)
		}
		seen[ev.UID] = true
		if second.Events[i].UID != ev.UID {
			t.Errorf("event %d: UID %q changed to %q when only DTSTAMP changed", i, ev.UID, second.Events[i].UID)
		}
	}
	moved := mustParse(t, strings.Replace(src, "20260102T100000Z", "20260103T100000Z", 1), ParseOptions{})
	if moved.Events[2].UID == first.Events[2].UID {
		t.Errorf("derived UID %q did not change with DTSTART", moved.Events[2].UID)
	}
}

func TestParseEventFields(t *testing.T) {
	t.Parallel()
	ev, _ := oneEvent(t, vcal(vevent(
		"UID: u-1 ",
		"DTSTART:20260101T000000Z",
		`SUMMARY:Semi\; colon\, comma\\ back\nslash`,
		`DESCRIPTION:Line 1\nLine 2\NLine 3`,
		`LOCATION:Main St. 1\, Springfield`,
		"STATUS:tentative",
		"SEQUENCE: 7",
		"X-AIRBNB-ID:HM123",
		`X-ESCAPED:a\,b`,
		"X-AIRBNB-ID:second",
	)), ParseOptions{})
	want := Event{
		UID: "u-1", Summary: `Semi; colon, comma\ back` + "\nslash", Description: "Line 1\nLine 2\nLine 3",
		Location: "Main St. 1, Springfield", Status: "tentative", Sequence: 7,
		Extra: map[string]string{"X-AIRBNB-ID": "HM123", "X-ESCAPED": `a\,b`},
	}
	if ev.UID != want.UID || ev.Summary != want.Summary || ev.Description != want.Description ||
		ev.Location != want.Location || ev.Status != want.Status || ev.Sequence != want.Sequence ||
		fmt.Sprint(ev.Extra) != fmt.Sprint(want.Extra) {
		t.Errorf("got %+v\nwant %+v", ev, want)
	}
	for in, want := range map[string]string{"": "confirmed", "CANCELLED": "cancelled", "CANCELED": "cancelled", "TENTATIVE": "tentative", "NEEDS-ACTION": "confirmed"} {
		ev, _ := oneEvent(t, vcal(vevent("UID:s", "DTSTART:20260101T000000Z", "STATUS:"+in)), ParseOptions{})
		if ev.Status != want {
			t.Errorf("STATUS:%s → Status %q; want %q", in, ev.Status, want)
		}
	}
}

func TestParseMultipleCalendars(t *testing.T) {
	t.Parallel()
	src := vcal("X-WR-CALNAME:First", vevent("UID:a", "DTSTART:20260101T000000Z")) +
		"\r\n" +
		vcal("X-WR-CALNAME:Second", "BEGIN:VTIMEZONE", "TZID:Shared", "X-LIC-LOCATION:Asia/Tokyo", "END:VTIMEZONE",
			vevent("UID:b", "DTSTART:20260101T000000Z")) +
		vcal(vevent("UID:c", "DTSTART;TZID=Shared:20260101T090000"))
	cal := mustParse(t, src, ParseOptions{})
	if cal.Name != "First" || len(cal.Events) != 3 {
		t.Fatalf("Name %q, %d events; want First, 3", cal.Name, len(cal.Events))
	}
	if got := cal.Events[2].Start; !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("TZID from another VCALENDAR of the stream: Start %v; want 00:00 UTC", got)
	}
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	utc := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }
	type want struct {
		uid, rid, summary, status, zone string
		start, end                      time.Time
		allDay, floating                bool
		exdates                         int
	}
	tests := []struct {
		file             string
		name, tz, prodID string
		events           []want
		check            func(t *testing.T, cal *Calendar)
	}{
		{
			file: "airbnb.ics", prodID: "-//Airbnb Inc//Hosting Calendar 0.8.8//EN",
			events: []want{
				{uid: "1418fb94e984-8c3f1a2b9e0d7c6f5a4b3c2d1e0f9a8b@airbnb.com", summary: "Reserved", start: utc(2026, 12, 1, 0, 0), end: utc(2026, 12, 5, 0, 0), allDay: true},
				{uid: "1418fb94e984-0f1e2d3c4b5a69788796a5b4c3d2e1f0@airbnb.com", summary: "Airbnb (Not available)", start: utc(2026, 12, 9, 0, 0), end: utc(2026, 12, 12, 0, 0), allDay: true},
				{uid: "1418fb94e984-aa11bb22cc33dd44ee55ff6677889900@airbnb.com", summary: "Reserved", start: utc(2026, 12, 20, 0, 0), end: utc(2026, 12, 24, 0, 0), allDay: true},
			},
			check: func(t *testing.T, cal *Calendar) {
				want := "Reservation URL: https://www.airbnb.com/hosting/reservations/details/HMABCDE123\nPhone Number (Last 4 Digits): 4321"
				if got := cal.Events[0].Description; got != want {
					t.Errorf("Description = %q; want %q", got, want)
				}
			},
		},
		{
			file: "booking.ics", prodID: "-//admin.booking.com, b.v.//NONSGML v1.0//EN",
			events: []want{
				{uid: "7d1c0e4b6a2f58c39e104b7a2d6f8e31@booking.com", summary: "CLOSED - Not available", start: utc(2026, 12, 3, 0, 0), end: utc(2026, 12, 7, 0, 0), allDay: true},
				{uid: "a90b3c5d7e9f1a2b4c6d8e0f13579bdf@booking.com", summary: "CLOSED - Not available", start: utc(2026, 12, 15, 0, 0), end: utc(2026, 12, 16, 0, 0), allDay: true},
			},
		},
		{
			file: "vrbo.ics", prodID: "-//HomeAway.com, Inc.//EN",
			events: []want{
				{uid: "98765432-1a2b-4c3d-8e9f-0a1b2c3d4e5f", summary: "Reserved - Maria", start: utc(2026, 12, 1, 0, 0), end: utc(2026, 12, 6, 0, 0), allDay: true},
				{uid: "11111111-2222-4333-8444-555555555555", summary: "Blocked", start: utc(2026, 12, 24, 0, 0), end: utc(2026, 12, 27, 0, 0), allDay: true},
			},
		},
		{
			file: "google.ics", name: "Ferienwohnung Seeblick", tz: "Europe/Berlin", prodID: "-//Google Inc//Google Calendar 70.9054//EN",
			events: []want{
				{uid: "5k2m1n0b9v8c7x6z5l4k3j2h1g@google.com", summary: "Reinigung", zone: "Europe/Berlin", start: utc(2026, 10, 5, 7, 0), end: utc(2026, 10, 5, 7, 30), exdates: 2},
				{uid: "5k2m1n0b9v8c7x6z5l4k3j2h1g@google.com", rid: "20261102T080000Z", summary: "Reinigung (verschoben)", status: "tentative", zone: "Europe/Berlin", start: utc(2026, 11, 3, 13, 0), end: utc(2026, 11, 3, 13, 30)},
				{uid: "floating-weihnachtsfeier@google.com", summary: "Weihnachtsfeier", zone: "Europe/Berlin", start: utc(2026, 12, 10, 17, 0), end: utc(2026, 12, 10, 19, 0), floating: true},
				{uid: "silvester@google.com", summary: "Silvester", status: "cancelled", zone: "Europe/Berlin", start: utc(2026, 12, 30, 23, 0), end: utc(2026, 12, 31, 23, 0), allDay: true},
			},
			check: func(t *testing.T, cal *Calendar) {
				if got := cal.Events[1].Location; got != "Seestraße 12, 82319 Starnberg" {
					t.Errorf("Location = %q", got)
				}
				if got := cal.Events[0].Sequence; got != 2 {
					t.Errorf("Sequence = %d; want 2", got)
				}
			},
		},
		{
			file: "outlook.ics", name: "Kalender", prodID: "Microsoft Exchange Server 2010",
			events: []want{
				{uid: "040000008200E00074C5B7101A82E0080000000010A1B2C3D4E5DA01000000000000000010000000A1B2C3D4E5F60718293A4B5C6D7E8F9",
					summary: "Daily Stand-up", zone: "Europe/Berlin", start: utc(2026, 12, 1, 8, 0), end: utc(2026, 12, 1, 8, 15), exdates: 2},
				{uid: "040000008200E00074C5B7101A82E00800000000B0C1D2E3F4A5DA010000000000000000100000000F1E2D3C4B5A69788796A5B4C3D2E1F0",
					summary: "Call with Boston", start: utc(2026, 7, 10, 14, 0), end: utc(2026, 7, 10, 15, 0)},
				{uid: "outlook-broken-quote-1", summary: "Quoted TZID swallowed the colon", zone: "Europe/Berlin", start: utc(2026, 6, 9, 7, 0), end: utc(2026, 6, 9, 8, 0)},
				{uid: "outlook-display-name-1", summary: "Display-name zone", zone: "America/New_York", start: utc(2026, 7, 6, 16, 0), end: utc(2026, 7, 6, 17, 0)},
			},
			check: func(t *testing.T, cal *Calendar) {
				ev := cal.Events[0]
				if want := "FREQ=WEEKLY;UNTIL=20270105T080000Z;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;WKST=MO"; ev.RRule != want {
					t.Errorf("RRule = %q; want %q", ev.RRule, want)
				}
				if ev.Extra["X-MICROSOFT-CDO-BUSYSTATUS"] != "BUSY" || len(ev.Extra) != 3 {
					t.Errorf("Extra = %v", ev.Extra)
				}
				if !ev.ExDates[0].Equal(utc(2026, 12, 24, 8, 0)) {
					t.Errorf("ExDates[0] = %v", ev.ExDates[0])
				}
			},
		},
		{
			file: "utf8_folds.ics", name: "東京オフィス 🗼 カレンダー", prodID: "-//calhook test//folds inside UTF-8//EN",
			events: []want{
				{uid: "utf8-fold-1@example.com", summary: "会議室の予約🎉🎉🎉 チームミーティング（四半期レビュー）と懇親会 🍣🍶 お疲れ様でした",
					start: utc(2026, 12, 1, 1, 0), end: utc(2026, 12, 1, 2, 0)},
			},
			check: func(t *testing.T, cal *Calendar) {
				ev := cal.Events[0]
				if want := "Emoji run 😀😃😄😁😆😅😂🤣🥲☺️😊😇🙂🙃😉😌😍🥰😘😗😙😚😋😛😝😜🤪🤨🧐🤓😎🥸🤩🥳 end"; ev.Description != want {
					t.Errorf("Description = %q; want %q", ev.Description, want)
				}
				if want := "北京市朝阳区建国门外大街1号 国贸大厦 🏢 三十八层"; ev.Location != want {
					t.Errorf("Location = %q; want %q", ev.Location, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", "feeds", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			cal, err := Parse(bytes.NewReader(data), ParseOptions{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(cal.Warnings) > 0 {
				t.Errorf("Warnings = %q; want none", cal.Warnings)
			}
			if cal.Name != tt.name || cal.TimeZone != tt.tz || cal.ProdID != tt.prodID {
				t.Errorf("Name, TimeZone, ProdID = %q, %q, %q; want %q, %q, %q", cal.Name, cal.TimeZone, cal.ProdID, tt.name, tt.tz, tt.prodID)
			}
			if len(cal.Events) != len(tt.events) {
				t.Fatalf("got %d events; want %d", len(cal.Events), len(tt.events))
			}
			for i, w := range tt.events {
				ev := cal.Events[i]
				if w.status == "" {
					w.status = "confirmed"
				}
				got := want{uid: ev.UID, rid: ev.RecurrenceID, summary: ev.Summary, status: ev.Status, zone: ev.TimeZone,
					start: ev.Start, end: ev.End, allDay: ev.AllDay, floating: ev.Floating, exdates: len(ev.ExDates)}
				if !got.start.Equal(w.start) || !got.end.Equal(w.end) {
					t.Errorf("event %d: Start, End = %v, %v; want %v, %v", i, got.start, got.end, w.start, w.end)
				}
				got.start, got.end = w.start, w.end
				if got != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
				}
				if ev.UIDDerived {
					t.Errorf("event %d: UIDDerived set", i)
				}
			}
			if tt.check != nil {
				tt.check(t, cal)
			}
		})
	}
}

func TestParseNeverPanics(t *testing.T) {
	t.Parallel()
	// Every prefix of a fixture: each must be an error or a calendar, and
	// only the complete file may parse.
	data, err := os.ReadFile(filepath.Join("testdata", "feeds", "outlook.ics"))
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndex(data, []byte("END:VCALENDAR")) + len("END:VCALENDAR")
	for i := range data {
		cal, err := ParseBytes(data[:i], ParseOptions{})
		if errors.Is(err, ErrInternal) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
		if err == nil && i < end {
			t.Fatalf("prefix of %d bytes (truncated) parsed to %d events", i, len(cal.Events))
		}
	}
}

// TestParseEvents checks the streaming form of Parse: every event with its
// index in Calendar.Events, a winning duplicate again under the index of
// the one it replaces, the same events as ParseString, and no call at all
// for input that Parse rejects.
func TestParseEvents(t *testing.T) {
	t.Parallel()
	data := vcal(
		vevent("UID:a", "DTSTART:20260101T100000Z", "SUMMARY:first", "X-ONE:1"),
		vevent("UID:b", "DTSTART:20260102T100000Z", "X-TWO:2"),
		vevent("UID:a", "SEQUENCE:1", "DTSTART:20260103T100000Z", "SUMMARY:second"),
		vevent("UID:a", "DTSTART:20260104T100000Z", "SUMMARY:older, dropped"),
	)
	var calls []string
	var got []Event
	cal, err := ParseEvents(data, ParseOptions{}, func(i, _ int, ev *Event) {
		calls = append(calls, fmt.Sprintf("%d %s %s %v", i, ev.UID, ev.Summary, ev.Extra))
		e := *ev
		e.Extra = maps.Clone(ev.Extra)
		if i == len(got) {
			got = append(got, e)
		} else {
			got[i] = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0 a first map[X-ONE:1]", "1 b  map[X-TWO:2]", "0 a second map[]"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %q; want %q", calls, want)
	}
	if cal.Events != nil {
		t.Errorf("Calendar.Events = %v; want nil", cal.Events)
	}
	all, err := ParseString(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all.Events, got) || !reflect.DeepEqual(all.Warnings, cal.Warnings) {
		t.Errorf("ParseString: %+v, %q\nParseEvents: %+v, %q", all.Events, all.Warnings, got, cal.Warnings)
	}
	_, err = ParseEvents(strings.TrimSuffix(data, "END:VCALENDAR\r\n"), ParseOptions{}, func(int, int, *Event) {
		t.Error("fn called for a truncated calendar")
	})
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v; want ErrTruncated", err)
	}
}
