package ical

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestEncoderProp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		encode func(e *Encoder)
		want   string
	}{
		{
			name:   "begin and end",
			encode: func(e *Encoder) { e.Begin("VEVENT"); e.End("VEVENT") },
			want:   "BEGIN:VEVENT\r\nEND:VEVENT\r\n",
		},
		{
			name:   "names upper case",
			encode: func(e *Encoder) { e.Prop("dtstart", "20261201", Param{"value", "DATE"}) },
			want:   "DTSTART;VALUE=DATE:20261201\r\n",
		},
		{
			name:   "x-name",
			encode: func(e *Encoder) { e.Prop("x-wr-calname", "Team") },
			want:   "X-WR-CALNAME:Team\r\n",
		},
		{
			name:   "invalid name characters dropped",
			encode: func(e *Encoder) { e.Prop("SUM:MA;RY\r\n", "x") },
			want:   "SUMMARY:x\r\n",
		},
		{
			name:   "value not escaped",
			encode: func(e *Encoder) { e.Prop("RRULE", "FREQ=WEEKLY;BYDAY=MO,WE") },
			want:   "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\n",
		},
		{
			name:   "plain param",
			encode: func(e *Encoder) { e.Prop("DTSTART", "20261201T150000", Param{"TZID", "Europe/Berlin"}) },
			want:   "DTSTART;TZID=Europe/Berlin:20261201T150000\r\n",
		},
		{
			name: "param with colon quoted",
			encode: func(e *Encoder) {
				e.Prop("ORGANIZER", "mailto:a@example.com", Param{"SENT-BY", "mailto:b@example.com"})
			},
			want: "ORGANIZER;SENT-BY=\"mailto:b@example.com\":mailto:a@example.com\r\n",
		},
		{
			name:   "param with semicolon and comma quoted",
			encode: func(e *Encoder) { e.Prop("ATTENDEE", "mailto:a@example.com", Param{"CN", "Doe, Jane; PhD"}) },
			want:   "ATTENDEE;CN=\"Doe, Jane; PhD\":mailto:a@example.com\r\n",
		},
		{
			name:   "DQUOTE dropped from param",
			encode: func(e *Encoder) { e.Prop("ATTENDEE", "mailto:a@example.com", Param{"CN", `Jane "JD" Doe`}) },
			want:   "ATTENDEE;CN=Jane JD Doe:mailto:a@example.com\r\n",
		},
		{
			name:   "DQUOTE dropped from quoted param",
			encode: func(e *Encoder) { e.Prop("ATTENDEE", "mailto:a@example.com", Param{"CN", `"Doe, Jane"`}) },
			want:   "ATTENDEE;CN=\"Doe, Jane\":mailto:a@example.com\r\n",
		},
		{
			name: "several params",
			encode: func(e *Encoder) {
				e.Prop("ATTENDEE", "mailto:a@example.com", Param{"role", "REQ-PARTICIPANT"}, Param{"partstat", "ACCEPTED"})
			},
			want: "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:a@example.com\r\n",
		},
		{
			name:   "empty value",
			encode: func(e *Encoder) { e.Prop("X-EMPTY", "") },
			want:   "X-EMPTY:\r\n",
		},
		{
			name:   "controls dropped from value",
			encode: func(e *Encoder) { e.Prop("URL", "https://example.com/\r\nX-INJECTED:1\x00\t") },
			want:   "URL:https://example.com/X-INJECTED:1\t\r\n",
		},
		{
			name:   "controls dropped from param",
			encode: func(e *Encoder) { e.Prop("ATTENDEE", "mailto:a@example.com", Param{"CN", "Jane\r\nDoe"}) },
			want:   "ATTENDEE;CN=JaneDoe:mailto:a@example.com\r\n",
		},
		{
			name:   "text escaped",
			encode: func(e *Encoder) { e.Text("SUMMARY", "Lunch; Pizza, Pasta\nand \\ more") },
			want:   "SUMMARY:Lunch\\; Pizza\\, Pasta\\nand \\\\ more\r\n",
		},
		{
			name:   "text with params",
			encode: func(e *Encoder) { e.Text("LOCATION", "Café", Param{"LANGUAGE", "fr"}) },
			want:   "LOCATION;LANGUAGE=fr:Café\r\n",
		},
		{
			name:   "text newlines escaped and other controls dropped",
			encode: func(e *Encoder) { e.Text("DESCRIPTION", "a\r\nb\x07c\rd") },
			want:   "DESCRIPTION:a\\nbc\\nd\r\n",
		},
		{
			name:   "long text folded",
			encode: func(e *Encoder) { e.Text("DESCRIPTION", strings.Repeat("x", 70)) },
			want:   "DESCRIPTION:" + strings.Repeat("x", 63) + "\r\n " + strings.Repeat("x", 7) + "\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			e := NewEncoder(&buf)
			tt.encode(e)
			if err := e.Flush(); err != nil {
				t.Fatalf("Flush() = %v; want nil", err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("encoded %q; want %q", got, tt.want)
			}
		})
	}
}

// TestEncoderBuffers checks that output reaches the writer only in large
// chunks and in full on Flush.
func TestEncoderBuffers(t *testing.T) {
	t.Parallel()
	w := &countingWriter{}
	e := NewEncoder(w)
	e.Prop("VERSION", "2.0")
	if w.writes != 0 {
		t.Errorf("writes after one line = %d; want 0", w.writes)
	}
	const n = 1000
	for range n {
		e.Text("SUMMARY", "Some event summary")
	}
	if w.writes == 0 {
		t.Errorf("writes after %d lines = 0; want the buffer flushed as it fills", n)
	}
	if err := e.Flush(); err != nil {
		t.Fatalf("Flush() = %v; want nil", err)
	}
	if want := len("VERSION:2.0\r\n") + n*len("SUMMARY:Some event summary\r\n"); w.n != want {
		t.Errorf("bytes written = %d; want %d", w.n, want)
	}
	if err := e.Flush(); err != nil {
		t.Errorf("second Flush() = %v; want nil", err)
	}
}

type countingWriter struct{ writes, n int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.n += len(p)
	return len(p), nil
}

// TestEncoderWriteError checks that the first write error sticks and is
// returned by Flush, and that nothing is written after it.
func TestEncoderWriteError(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk full")
	w := &failingWriter{err: errDisk, okWrites: 1}
	e := NewEncoder(w)
	for range 5000 {
		e.Text("SUMMARY", "Some event summary")
	}
	if err := e.Flush(); !errors.Is(err, errDisk) {
		t.Errorf("Flush() = %v; want %v", err, errDisk)
	}
	if w.calls != 2 {
		t.Errorf("Write calls = %d; want 2 (one ok, one failing, none after)", w.calls)
	}
	e.Prop("X", "y")
	if err := e.Flush(); !errors.Is(err, errDisk) {
		t.Errorf("Flush() after error = %v; want %v", err, errDisk)
	}
	if w.calls != 2 {
		t.Errorf("Write calls after error = %d; want 2", w.calls)
	}
}

type failingWriter struct {
	err      error
	okWrites int
	calls    int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls > w.okWrites {
		return 0, w.err
	}
	return len(p), nil
}

func TestFormatTimes(t *testing.T) {
	t.Parallel()
	berlin := mustLoadLocation(t, "Europe/Berlin")
	ny := mustLoadLocation(t, "America/New_York")
	tests := []struct {
		name   string
		format func(time.Time) string
		t      time.Time
		want   string
	}{
		{"FormatUTC utc", FormatUTC, time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), "20261201T140000Z"},
		{"FormatUTC berlin", FormatUTC, time.Date(2026, 12, 1, 15, 0, 0, 0, berlin), "20261201T140000Z"},
		{"FormatUTC drops nanoseconds", FormatUTC, time.Date(2026, 7, 4, 9, 5, 7, 999999999, time.UTC), "20260704T090507Z"},
		{"FormatUTC crosses date", FormatUTC, time.Date(2026, 12, 31, 22, 0, 0, 0, ny), "20270101T030000Z"},
		{"FormatLocal berlin", FormatLocal, time.Date(2026, 12, 1, 15, 0, 0, 0, berlin), "20261201T150000"},
		{"FormatLocal new york", FormatLocal, time.Date(2026, 7, 4, 9, 30, 15, 0, ny), "20260704T093015"},
		{"FormatLocal utc", FormatLocal, time.Date(2026, 7, 4, 9, 30, 0, 0, time.UTC), "20260704T093000"},
		{"FormatDate", FormatDate, time.Date(2026, 12, 1, 15, 0, 0, 0, berlin), "20261201"},
		{"FormatDate uses own location", FormatDate, time.Date(2026, 12, 1, 0, 30, 0, 0, berlin), "20261201"},
	}
	for _, tt := range tests {
		if got := tt.format(tt.t); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
}

func mustLoadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q) = %v", name, err)
	}
	return loc
}

// encodeCalendar writes a small but complete calendar, the kind the feed
// renderer produces.
func encodeCalendar(e *Encoder, loc *time.Location) {
	start := time.Date(2026, 3, 29, 9, 30, 0, 0, loc)
	e.Begin("VCALENDAR")
	e.Prop("VERSION", "2.0")
	e.Prop("PRODID", "-//calhook//calhook//EN")
	WriteVTimezone(e, loc, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 12, 31, 0, 0, 0, 0, loc))
	encodeEvent(e, start, loc)
	e.Begin("VEVENT")
	e.Prop("UID", "holiday-1@calhook")
	e.Prop("DTSTAMP", FormatUTC(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	e.Prop("DTSTART", FormatDate(start), Param{"VALUE", "DATE"})
	e.Text("SUMMARY", "Ostern 🐣")
	e.End("VEVENT")
	e.End("VCALENDAR")
}

// encodeEvent writes a typical VEVENT of about ten properties.
func encodeEvent(e *Encoder, start time.Time, loc *time.Location) {
	tzid := Param{"TZID", loc.String()}
	e.Begin("VEVENT")
	e.Prop("UID", "01JDXKQ6Y7Z8ABCDEF@calhook")
	e.Prop("DTSTAMP", FormatUTC(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	e.Prop("DTSTART", FormatLocal(start), tzid)
	e.Prop("DTEND", FormatLocal(start.Add(90*time.Minute)), tzid)
	e.Prop("RRULE", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10")
	e.Text("SUMMARY", "Planning: Q2 roadmap, budget; staffing")
	e.Text("DESCRIPTION", "Agenda:\n1. Roadmap\n2. Budget (see https://example.com/budget)\n3. Staffing — new hires, Übergaben und 日本 office\nBring laptops.")
	e.Text("LOCATION", "Room 4.2, Main St. 1, Berlin")
	e.Prop("ORGANIZER", "mailto:lead@example.com", Param{"CN", "Lead, Team"})
	e.Prop("ATTENDEE", "mailto:dev@example.com", Param{"CN", "Dev"}, Param{"PARTSTAT", "NEEDS-ACTION"})
	e.Prop("URL", "https://example.com/events/01JDXKQ6Y7Z8ABCDEF")
	e.Prop("SEQUENCE", "3")
	e.End("VEVENT")
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	encodeCalendar(e, mustLoadLocation(t, "Europe/Berlin"))
	if err := e.Flush(); err != nil {
		t.Fatalf("Flush() = %v; want nil", err)
	}
	got := buf.Bytes()
	for i, line := range bytes.Split(bytes.TrimSuffix(got, []byte("\r\n")), []byte("\r\n")) {
		if len(line) > maxLineOctets {
			t.Errorf("line %d is %d octets; want at most %d", i+1, len(line), maxLineOctets)
		}
	}

	path := filepath.Join("testdata", "calendar.golden.ics")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoded calendar differs from %s (run go test -update after checking the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	loc := mustLoadLocation(b, "Europe/Berlin")
	start := time.Date(2026, 3, 30, 9, 30, 0, 0, loc)
	e := NewEncoder(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		encodeEvent(e, start, loc)
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
