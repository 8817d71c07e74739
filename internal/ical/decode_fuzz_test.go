package ical

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "feeds", "*.ics"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
		vcal(vevent("UID:a", "DTSTART;VALUE=DATE:20260101", "DURATION:-P2D")),
		vcal(vevent("DTSTART;TZID=\"(UTC+05:30) X\":20260101T000000", "RRULE:FREQ=DAILY", "EXDATE;VALUE=PERIOD:20260102T000000Z/PT1H")),
		vcal(outlookUS + vevent("UID:a", "DTSTART;TZID=Custom:20260315T023000", "DTEND:20260101T000000Z")),
		"BEGIN:VCALENDAR\rBEGIN:VEVENT\rDTSTART:20260101T000000Z\rEND:VEVENT\rEND:VCALENDAR",
		"\xEF\xBB\xBF  BEGIN:VCALENDAR\nX;P=\"a:b\nEND:VCALENDAR",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cal, err := ParseBytes(data, ParseOptions{MaxBytes: 1 << 20})
		if errors.Is(err, ErrInternal) {
			t.Fatalf("panic: %v", err)
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if cal != nil {
				t.Fatalf("Parse returned a calendar and the error %v", err)
			}
			return
		}
		for i, ev := range cal.Events {
			if ev.UID == "" {
				t.Fatalf("event %d has no UID", i)
			}
			if ev.End.Before(ev.Start) {
				t.Fatalf("event %d (%q) ends %v before it starts %v", i, ev.UID, ev.End, ev.Start)
			}
			switch ev.Status {
			case "tentative", "confirmed", "cancelled":
			default:
				t.Fatalf("event %d has status %q", i, ev.Status)
			}
		}
	})
}

// airbnbFeed generates an export shaped like Airbnb's with n
// reservations: all-day VALUE=DATE events, folded descriptions, no
// DTSTAMP.
func airbnbFeed(n int) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nPRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r\n" +
		"CALSCALE:GREGORIAN\r\nVERSION:2.0\r\n")
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		start := day.AddDate(0, 0, 2*i)
		end := start.AddDate(0, 0, 1+i%5)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nDTEND;VALUE=DATE:%s\r\nDTSTART;VALUE=DATE:%s\r\nUID:1418fb94e984-%032x@airbnb.com\r\n",
			FormatDate(end), FormatDate(start), uint64(i)*0x9E3779B97F4A7C15)
		if i%3 == 0 {
			b.WriteString("SUMMARY:Airbnb (Not available)\r\n")
		} else {
			fmt.Fprintf(&b, "DESCRIPTION:Reservation URL: https://www.airbnb.com/hosting/reservations/d\r\n"+
				" etails/HM%08X\\nPhone Number (Last 4 Digits): %04d\r\nSUMMARY:Reserved\r\n", i*7919, i%10000)
		}
		b.WriteString("END:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

// outlookFeed generates n timed events in a Windows zone with a VTIMEZONE,
// RRULEs and X- properties, like an Exchange export.
func outlookFeed(n int) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\n")
	b.WriteString(vtzWEurope)
	day := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i := range n {
		start := day.Add(time.Duration(i) * 3 * time.Hour)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:040000008200E00074C5B7101A82E00800000000%016X\r\nSUMMARY:Meeting %d\r\n"+
			"DTSTART;TZID=W. Europe Standard Time:%s\r\nDTEND;TZID=W. Europe Standard Time:%s\r\n"+
			"CLASS:PUBLIC\r\nPRIORITY:5\r\nDTSTAMP:20261120T153000Z\r\nTRANSP:OPAQUE\r\nSTATUS:CONFIRMED\r\nSEQUENCE:0\r\n"+
			"LOCATION:Room %d\r\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n", i, i, FormatLocal(start), FormatLocal(start.Add(time.Hour)), i%40)
		if i%10 == 0 {
			b.WriteString("RRULE:FREQ=WEEKLY;UNTIL=20271231T000000Z;INTERVAL=1;BYDAY=MO;WKST=MO\r\n")
		}
		b.WriteString("END:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

const vtzWEurope = "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

func benchmarkParse(b *testing.B, data []byte, events int) {
	b.Helper()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		cal, err := ParseBytes(data, ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(cal.Events) != events || len(cal.Warnings) != 0 {
			b.Fatalf("%d events, warnings %q; want %d, none", len(cal.Events), cal.Warnings, events)
		}
	}
}

// BenchmarkParse5000 parses a 5,000-reservation Airbnb-like feed; the
// importer's budget for parse plus diff is 50 ms.
func BenchmarkParse5000(b *testing.B) {
	benchmarkParse(b, airbnbFeed(5000), 5000)
}

// BenchmarkParse5000Outlook parses 5,000 timed events in a Windows zone.
func BenchmarkParse5000Outlook(b *testing.B) {
	benchmarkParse(b, outlookFeed(5000), 5000)
}

// BenchmarkParseCorpus parses every file of the shared corpus once per
// iteration.
func BenchmarkParseCorpus(b *testing.B) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "ics", "*", "*.ics"))
	if err != nil || len(files) == 0 {
		b.Skipf("corpus not found at %s", corpusDir)
	}
	var all [][]byte
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, data)
		total += len(data)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, data := range all {
			_, _ = ParseBytes(data, ParseOptions{})
		}
	}
}
