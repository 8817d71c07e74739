package ical

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// parseWithZone parses a calendar holding vtz (a VTIMEZONE with TZID
// Custom) and one event per wall time, and returns the events' starts.
func parseWithZone(t *testing.T, vtz string, walls []time.Time) []time.Time {
	t.Helper()
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n")
	b.WriteString(vtz)
	for i, w := range walls {
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%d\r\nDTSTART;TZID=Custom:%s\r\nEND:VEVENT\r\n", i, w.Format(layoutLocal))
	}
	b.WriteString("END:VCALENDAR\r\n")
	cal := mustParse(t, b.String(), ParseOptions{})
	if len(cal.Warnings) > 0 {
		t.Fatalf("Warnings: %q", cal.Warnings)
	}
	if len(cal.Events) != len(walls) {
		t.Fatalf("got %d events; want %d", len(cal.Events), len(walls))
	}
	out := make([]time.Time, len(walls))
	for i, ev := range cal.Events {
		if ev.TimeZone != "" || ev.Floating {
			t.Fatalf("event %d: TimeZone %q, Floating %v; want a feed-defined zone", i, ev.TimeZone, ev.Floating)
		}
		out[i] = ev.Start
	}
	return out
}

// TestVTimezoneRoundTrip writes real zones as VTIMEZONEs with the
// encoder, renames them so that only the VTIMEZONE can resolve them, and
// checks that the parser's zone maps wall times like the real one.
func TestVTimezoneRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		zone     string
		from, to int // years
	}{
		{"Europe/Berlin", 2020, 2030},
		{"America/New_York", 2000, 2012}, // the 2007 rule change: RDATE-style output
		{"Australia/Sydney", 2024, 2030}, // southern hemisphere
		{"Australia/Lord_Howe", 2024, 2028},
		{"America/Sao_Paulo", 2015, 2022}, // DST abolished in 2019
		{"Asia/Tokyo", 2024, 2027},
		{"Europe/Moscow", 2010, 2016}, // permanent summer time, then back
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			t.Parallel()
			loc := loadLoc(t, tt.zone)
			from := time.Date(tt.from, 1, 1, 0, 0, 0, 0, loc)
			to := time.Date(tt.to, 1, 1, 0, 0, 0, 0, loc)
			var buf bytes.Buffer
			e := NewEncoder(&buf)
			WriteVTimezone(e, loc, from, to)
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			vtz := strings.Replace(buf.String(), "TZID:"+tt.zone, "TZID:Custom", 1)
			var walls []time.Time
			for w := from; w.Before(to); w = w.Add(7*time.Hour + 13*time.Minute) {
				walls = append(walls, time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, time.UTC))
			}
			got := parseWithZone(t, vtz, walls)
			for i, w := range walls {
				want := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
				if !got[i].Equal(want) {
					t.Fatalf("wall %s: got %v; want %v", w.Format(layoutLocal), got[i], want.UTC())
				}
			}
		})
	}
}

// outlookUS is the VTIMEZONE Outlook writes for US Eastern time: rules
// from 1601, applied to every year.
const outlookUS = "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

func TestVTimezoneRules(t *testing.T) {
	t.Parallel()
	newYork := loadLoc(t, "America/New_York")
	berlin := loadLoc(t, "Europe/Berlin")
	sydney := loadLoc(t, "Australia/Sydney")
	tests := []struct {
		name     string
		vtz      string
		real     *time.Location
		from, to int
	}{
		{"Outlook US rules from 1601", outlookUS, newYork, 2008, 2036},
		{"US rules with UNTIL and BYMONTHDAY", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			// 1987–2006: first Sunday in April written as BYMONTHDAY, last
			// Sunday in October; then the 2007 rules.
			"BEGIN:DAYLIGHT\r\nDTSTART:19870405T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=1,2,3,4,5,6,7;BYDAY=SU;UNTIL=20060402T070000Z\r\nEND:DAYLIGHT\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:19871025T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\r\nEND:STANDARD\r\n" +
			"BEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", newYork, 1988, 2030},
		{"EU rules, Windows 5SU for last Sunday", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n" +
			"RRULE:FREQ=YEARLY;BYDAY=5SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
			"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n" +
			"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n", berlin, 1997, 2036},
		{"southern hemisphere", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:20080406T030000\r\nTZOFFSETFROM:+1100\r\nTZOFFSETTO:+1000\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU\r\nEND:STANDARD\r\n" +
			"BEGIN:DAYLIGHT\r\nDTSTART:20081005T020000\r\nTZOFFSETFROM:+1000\r\nTZOFFSETTO:+1100\r\n" +
			"RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n", sydney, 2009, 2036},
		{"RDATEs only", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			"BEGIN:DAYLIGHT\r\nDTSTART:20250330T020000\r\nRDATE:20250330T020000,20260329T020000\r\nRDATE:20270328T020000\r\n" +
			"TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:20251026T030000\r\nRDATE:20251026T030000,20261025T030000,20271031T030000\r\n" +
			"TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", berlin, 2025, 2028},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var walls []time.Time
			for w := time.Date(tt.from, 1, 1, 0, 0, 0, 0, time.UTC); w.Year() < tt.to; w = w.Add(5*time.Hour + 17*time.Minute) {
				walls = append(walls, w)
			}
			got := parseWithZone(t, tt.vtz, walls)
			for i, w := range walls {
				want := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, tt.real)
				if !got[i].Equal(want) {
					t.Fatalf("wall %s: got %v; want %v", w.Format(layoutLocal), got[i].UTC(), want.UTC())
				}
			}
		})
	}
}

func TestVTimezoneFixedAndBroken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		vtz         string
		wantOffset  int // seconds east of UTC on 2026-07-01
		wantWarning string
	}{
		{"fixed offset", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n" +
			"TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", 19800, ""},
		{"offset with seconds", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:19000101T000000\r\n" +
			"TZOFFSETFROM:+001730\r\nTZOFFSETTO:+001730\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", 1050, ""},
		{"no observances", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nEND:VTIMEZONE\r\n", 0, `VTIMEZONE "Custom" unusable`},
		{"bad offset", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n" +
			"TZOFFSETFROM:+0100\r\nTZOFFSETTO:one hour\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", 0, "invalid UTC offset"},
		{"unsupported rule", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:20001029T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n" +
			"RRULE:FREQ=MONTHLY;BYDAY=-1SU\r\nEND:STANDARD\r\n" +
			"BEGIN:DAYLIGHT\r\nDTSTART:20000326T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n" +
			"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n", 7200, "FREQ=MONTHLY not supported"},
		{"endless rule", "BEGIN:VTIMEZONE\r\nTZID:Custom\r\n" +
			"BEGIN:STANDARD\r\nDTSTART:19000101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\n" +
			"RRULE:FREQ=YEARLY;BYDAY=SU;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", 3600, "too many onsets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, cal := oneEvent(t, vcal(tt.vtz+vevent("UID:a", "DTSTART;TZID=Custom:20260701T120000")), ParseOptions{})
			if _, off := ev.Start.Zone(); off != tt.wantOffset {
				t.Errorf("offset = %d; want %d", off, tt.wantOffset)
			}
			if tt.wantWarning == "" && len(cal.Warnings) > 0 || tt.wantWarning != "" && !hasWarning(cal, tt.wantWarning) {
				t.Errorf("Warnings = %q; want %q", cal.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestWindowsZonesLoad(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, z := range windowsZones {
		if ianaLocation(z.iana) == nil {
			t.Errorf("windowsZones: %q → %q does not load", z.id, z.iana)
		}
		if z.id != "" {
			if seen[z.id] {
				t.Errorf("windowsZones: %q listed twice", z.id)
			}
			seen[z.id] = true
			if got := windowsZone(strings.ToUpper(z.id)); got != z.iana {
				t.Errorf("windowsZone(%q) = %q; want %q", strings.ToUpper(z.id), got, z.iana)
			}
		}
		if got, _, _ := displayZone(z.display); got != z.iana {
			t.Errorf("displayZone(%q) = %q; want %q", z.display, got, z.iana)
		}
	}
	if len(seen) < 140 {
		t.Errorf("only %d Windows zone IDs; want the full CLDR list", len(seen))
	}
}

func TestDisplayZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   string
		off    int
		hasOff bool
	}{
		{"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin", 3600, true},
		{"(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin", 3600, true},
		{"(UTC-05:00)  eastern time (us and canada)", "America/New_York", -18000, true},
		{"(GMT-08:00) Pacific Time (US & Canada); Tijuana", "America/Los_Angeles", -28800, true},
		{"Pacific Time (US & Canada), Tijuana", "America/Los_Angeles", 0, false},
		{"(UTC) Coordinated Universal Time", "Etc/UTC", 0, true},
		{"(UTC+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney", 36000, true},
		{"(UTC+05:45) Kathmandu", "Asia/Kathmandu", 20700, true},
		{"(UTC+05:30) Nowhere", "", 19800, true},
		{"Customized Time Zone", "", 0, false},
	}
	for _, tt := range tests {
		got, off, hasOff := displayZone(tt.in)
		if got != tt.want || off != tt.off || hasOff != tt.hasOff {
			t.Errorf("displayZone(%q) = %q, %d, %v; want %q, %d, %v", tt.in, got, off, hasOff, tt.want, tt.off, tt.hasOff)
		}
	}
}

func TestIANALocation(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Europe/Berlin", "Europe/Berlin"},
		{"US/Pacific", "US/Pacific"},
		{"/mozilla.org/20050126_1/Europe/Berlin", "Europe/Berlin"},
		{"/softwarestudio.org/Olson_20011030_5/America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"},
		{"America_New_York", "America/New_York"},
		{"europe/lisbon", "Europe/Lisbon"},
		{"EUROPE/LONDON", "Europe/London"},
		{"utc", "UTC"},
		{"GMT", "UTC"},
		{"Local", ""},
		{"", ""},
		{"../../etc/passwd", ""},
		{"W. Europe Standard Time", ""},
		{"Mars/Olympus_Mons", ""},
	}
	for _, tt := range tests {
		got := ""
		if loc := ianaLocation(tt.in); loc != nil {
			got = loc.String()
		}
		if got != tt.want {
			t.Errorf("ianaLocation(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestZoneLookupCap(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range maxZoneLookups + 20 {
		lines = append(lines, vevent(fmt.Sprintf("UID:%d", i), fmt.Sprintf("DTSTART;TZID=Nowhere/Zone%d:20260101T000000", i)))
	}
	lines = append(lines, vevent("UID:berlin", "DTSTART;TZID=Europe/Berlin:20260101T000000"))
	cal := mustParse(t, vcal(lines...), ParseOptions{})
	// The warning about the cap itself is past maxWarnings; the effect
	// shows: Europe/Berlin, past the cap, is not resolved.
	if ev := cal.Events[len(cal.Events)-1]; !ev.Floating || ev.TimeZone != "" {
		t.Errorf("TZID past the cap: Floating %v, TimeZone %q; want floating UTC", ev.Floating, ev.TimeZone)
	}
}
