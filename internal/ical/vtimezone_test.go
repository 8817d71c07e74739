package ical

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vtimezoneCase is a zone and the window WriteVTimezone must cover.
type vtimezoneCase struct {
	zone     string
	from, to time.Time
	// If wantComponents is not 0, the VTIMEZONE must have that many
	// STANDARD and DAYLIGHT sub-components.
	wantComponents int
	// wantRRULE says whether the sub-components use RRULE.
	wantRRULE bool
}

func (c vtimezoneCase) name() string {
	return fmt.Sprintf("%s/%s-%s", c.zone, c.from.Format("2006-01-02"), c.to.Format("2006-01-02"))
}

func utcDate(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

var vtimezoneCases = func() []vtimezoneCase {
	from, to := utcDate(2025, 1, 1), utcDate(2029, 1, 1)
	return []vtimezoneCase{
		// The zones the feed must get right, 2025 to 2028.
		{zone: "Europe/Berlin", from: from, to: to, wantComponents: 2, wantRRULE: true},
		{zone: "America/New_York", from: from, to: to, wantComponents: 2, wantRRULE: true},
		{zone: "Australia/Sydney", from: from, to: to, wantComponents: 2, wantRRULE: true},
		{zone: "Asia/Kolkata", from: from, to: to, wantComponents: 1},
		{zone: "America/St_Johns", from: from, to: to, wantComponents: 2, wantRRULE: true},
		{zone: "Europe/London", from: from, to: to, wantComponents: 2, wantRRULE: true},
		// No transitions at all, or none for decades.
		{zone: "UTC", from: from, to: to, wantComponents: 1},
		{zone: "Asia/Tokyo", from: from, to: to, wantComponents: 1},
		// Odd offsets and rules: negative DST, 30-minute DST, +1245,
		// transitions at 24:00, Ramadan-dependent DST, "Friday before the
		// last Sunday".
		{zone: "Europe/Dublin", from: from, to: to},
		{zone: "Australia/Lord_Howe", from: from, to: to},
		{zone: "Pacific/Chatham", from: from, to: to},
		{zone: "America/Santiago", from: from, to: to},
		{zone: "Africa/Casablanca", from: from, to: to},
		{zone: "Asia/Jerusalem", from: from, to: to},
		// Rule changes inside the window.
		{zone: "America/Los_Angeles", from: utcDate(2005, 1, 1), to: utcDate(2009, 1, 1)},
		{zone: "America/Sao_Paulo", from: utcDate(2017, 1, 1), to: utcDate(2021, 1, 1)},
		{zone: "Europe/Moscow", from: utcDate(2010, 1, 1), to: utcDate(2016, 1, 1)},
		// Samoa skipped 30 December 2011, a 24-hour gap.
		{zone: "Pacific/Apia", from: utcDate(2011, 6, 1), to: utcDate(2013, 1, 1)},
		// Short windows: no transition, one, and an empty window.
		{zone: "Europe/Berlin", from: utcDate(2025, 5, 1), to: utcDate(2025, 5, 2), wantComponents: 2},
		{zone: "Europe/Berlin", from: utcDate(2025, 1, 1), to: utcDate(2025, 6, 1), wantComponents: 2},
		{zone: "America/New_York", from: utcDate(2026, 7, 1), to: utcDate(2027, 7, 1), wantComponents: 2, wantRRULE: true},
		{zone: "Australia/Sydney", from: utcDate(2026, 2, 1), to: utcDate(2026, 2, 1), wantComponents: 2},
	}
}()

// writeVTimezone returns the output of WriteVTimezone for c.
func writeVTimezone(t *testing.T, c vtimezoneCase) ([]byte, *time.Location) {
	t.Helper()
	loc := mustLoadLocation(t, c.zone)
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	WriteVTimezone(e, loc, c.from, c.to)
	if err := e.Flush(); err != nil {
		t.Fatalf("Flush() = %v; want nil", err)
	}
	return buf.Bytes(), loc
}

// TestWriteVTimezone decodes the VTIMEZONE with a small RFC 5545 decoder
// and checks that it gives every instant in the window Go's UTC offset, and
// every local time in the window the same instants as Go.
func TestWriteVTimezone(t *testing.T) {
	t.Parallel()
	for _, c := range vtimezoneCases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			data, loc := writeVTimezone(t, c)
			z, err := decodeVTimezone(data)
			if err != nil {
				t.Fatalf("decode VTIMEZONE: %v\n%s", err, data)
			}
			if z.tzid != c.zone {
				t.Errorf("TZID = %q; want %q", z.tzid, c.zone)
			}
			if c.wantComponents != 0 && z.components != c.wantComponents {
				t.Errorf("sub-components = %d; want %d\n%s", z.components, c.wantComponents, data)
			}
			if z.rrule != c.wantRRULE && (c.wantRRULE || c.wantComponents != 0) {
				t.Errorf("uses RRULE = %v; want %v\n%s", z.rrule, c.wantRRULE, data)
			}

			w := newWindowSample(loc, c.from, c.to)
			for _, at := range w.instants {
				_, want := time.Unix(at, 0).In(loc).Zone()
				if got := z.offsetAt(at); got != want {
					t.Errorf("offset at %v = %d; want %d", time.Unix(at, 0).UTC(), got, want)
				}
			}
			for _, wall := range w.walls {
				got := resolveWall(wall, w.offsets, z.offsetAt)
				if want := w.goInstants(wall); !slices.Equal(got, want) {
					t.Errorf("local %s = %v; want %v", wall.Format(time.DateTime), got, want)
				}
			}
			if t.Failed() {
				t.Logf("VTIMEZONE:\n%s", data)
			}
		})
	}
}

// TestWriteVTimezonePython checks the same with the python icalendar
// package, a real-world parser, which must find exactly Go's instants for
// every local time, in gaps and overlaps too.
func TestWriteVTimezonePython(t *testing.T) {
	t.Parallel()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import icalendar").Run(); err != nil {
		msg := fmt.Sprintf("%s cannot import icalendar (%v); install python3-icalendar to run this test", python, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	checkWithParser(t, []string{python, "testdata/vtimezone_check.py"}, func(got, want []int64) bool {
		return slices.Equal(got, want)
	})
}

// TestWriteVTimezoneICALJS checks the same with ical.js, which picks one
// instant for every local time: Go's for a normal one, either of the two in
// an overlap, anything in a gap.
func TestWriteVTimezoneICALJS(t *testing.T) {
	t.Parallel()
	// The interop tests' pinned ical.js (npm ci --prefix test/interop).
	modules, err := filepath.Abs("../../test/interop/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	node := []string{"env", "NODE_PATH=" + modules, "node"}
	if err := exec.Command(node[0], append(node[1:], "-e", "require('ical.js')")...).Run(); err != nil {
		msg := fmt.Sprintf("node cannot load ical.js (%v); run `npm ci --prefix test/interop` (scripts/test.sh does)", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	checkWithParser(t, append(node, "testdata/vtimezone_check.js"), func(got, want []int64) bool {
		switch len(want) {
		case 0:
			return true
		case 1:
			return slices.Equal(got, want)
		}
		return len(got) == 1 && slices.Contains(want, got[0])
	})
}

// checkWithParser runs the command cmd, a script that resolves local times
// with a VTIMEZONE in another iCalendar implementation, for every case, and
// checks each result against Go's instants with ok.
func checkWithParser(t *testing.T, cmd []string, ok func(got, want []int64) bool) {
	t.Helper()
	for _, c := range vtimezoneCases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			data, loc := writeVTimezone(t, c)
			// A TZID no database knows, so that the parser must use our
			// definition.
			ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n" +
				strings.Replace(string(data), "TZID:"+c.zone, "TZID:X-Calhook-Test", 1) +
				"END:VCALENDAR\r\n"

			w := newWindowSample(loc, c.from, c.to)
			req := struct {
				ICS   string   `json:"ics"`
				Walls [][6]int `json:"walls"`
			}{ICS: ics, Walls: [][6]int{}}
			for _, wall := range w.walls {
				req.Walls = append(req.Walls, [6]int{wall.Year(), int(wall.Month()), wall.Day(), wall.Hour(), wall.Minute(), wall.Second()})
			}
			in, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			run := exec.CommandContext(t.Context(), cmd[0], cmd[1:]...)
			run.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			run.Stderr = &stderr
			out, err := run.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s\nVTIMEZONE:\n%s", cmd[1], err, stderr.Bytes(), data)
			}
			var got [][]int64
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s output: %v", cmd[1], err)
			}
			if len(got) != len(w.walls) {
				t.Fatalf("%s returned %d results; want %d", cmd[1], len(got), len(w.walls))
			}
			for i, wall := range w.walls {
				if want := w.goInstants(wall); !ok(got[i], want) {
					t.Errorf("local %s = %v; want %v", wall.Format(time.DateTime), got[i], want)
				}
			}
			if t.Failed() {
				t.Logf("VTIMEZONE:\n%s", data)
			}
		})
	}
}

// windowSample is a set of instants and local times in a window, chosen to
// cover every transition of loc there closely and the rest of the window
// coarsely.
type windowSample struct {
	loc      *time.Location
	offsets  []int       // every UTC offset of loc in the window
	instants []int64     // Unix times
	walls    []time.Time // local wall clocks, as UTC times
}

func newWindowSample(loc *time.Location, from, to time.Time) windowSample {
	w := windowSample{loc: loc}
	lo, hi := from.Unix(), to.Unix()
	_, off := from.In(loc).Zone()
	w.offsets = append(w.offsets, off)
	var transitions []int64
	for t := from.In(loc); ; {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.After(to) {
			break
		}
		transitions = append(transitions, end.Unix())
		_, off := end.Zone()
		if !slices.Contains(w.offsets, off) {
			w.offsets = append(w.offsets, off)
		}
		t = end
	}

	w.instants = append(w.instants, lo, hi)
	for at := lo; at <= hi; at += 6 * 3600 {
		w.instants = append(w.instants, at)
	}
	for _, tr := range transitions {
		w.instants = append(w.instants, tr-1, tr, tr+1)
	}

	addWall := func(wall time.Time) {
		// Only local times all of whose readings lie in the window.
		for _, o := range w.offsets {
			if at := wall.Unix() - int64(o); at < lo || at > hi {
				return
			}
		}
		w.walls = append(w.walls, wall)
	}
	first := from.In(loc)
	day := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, time.UTC)
	for ; !day.After(to.AddDate(0, 0, 1)); day = day.AddDate(0, 0, 1) {
		for _, m := range []int{0, 375, 735, 1125, 1439} {
			addWall(day.Add(time.Duration(m) * time.Minute))
		}
	}
	// Every 15 minutes (and a second either side of each hour) from three
	// hours before to three hours after each transition, read in the old and
	// the new offset.
	for _, tr := range transitions {
		for _, o := range []int{offsetBefore(loc, tr), offsetAt(loc, tr)} {
			base := time.Unix(tr+int64(o), 0).UTC()
			for m := -180; m <= 180; m += 15 {
				addWall(base.Add(time.Duration(m) * time.Minute))
			}
			for _, s := range []int{-1, 1} {
				addWall(base.Add(time.Duration(s) * time.Second))
			}
		}
		// The gap around Samoa's skipped day is longer than six hours.
		if abs(offsetAt(loc, tr)-offsetBefore(loc, tr)) > 3*3600 {
			base := time.Unix(tr+int64(offsetBefore(loc, tr)), 0).UTC()
			for m := 0; m <= 25*60; m += 60 {
				addWall(base.Add(time.Duration(m) * time.Minute))
			}
		}
	}
	return w
}

func offsetAt(loc *time.Location, at int64) int {
	_, off := time.Unix(at, 0).In(loc).Zone()
	return off
}

func offsetBefore(loc *time.Location, at int64) int { return offsetAt(loc, at-1) }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// goInstants returns the instants whose wall clock in loc is wall: one for a
// normal local time, two in an overlap, none in a gap. For a normal local
// time it also checks that time.Date agrees.
func (w windowSample) goInstants(wall time.Time) []int64 {
	got := resolveWall(wall, w.offsets, func(at int64) int { return offsetAt(w.loc, at) })
	if len(got) == 1 {
		d := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, w.loc)
		if d.Unix() != got[0] {
			panic(fmt.Sprintf("time.Date(%v, %v) = %v; resolveWall says %v", wall, w.loc, d.Unix(), got[0]))
		}
	}
	return got
}

// resolveWall returns the sorted instants that have the wall clock wall
// under the zone given by offsetAt, whose offsets are all in offsets.
func resolveWall(wall time.Time, offsets []int, offsetAt func(int64) int) []int64 {
	var ats []int64
	for _, o := range offsets {
		at := wall.Unix() - int64(o)
		if offsetAt(at) == o && !slices.Contains(ats, at) {
			ats = append(ats, at)
		}
	}
	slices.Sort(ats)
	return ats
}

// decodedZone is a VTIMEZONE decoded by decodeVTimezone.
type decodedZone struct {
	tzid       string
	components int
	rrule      bool
	before     int     // the offset before the first onset
	onsets     []onset // sorted by at
}

type onset struct {
	at int64 // Unix time
	to int   // UTC offset from then on
}

// offsetAt returns the UTC offset at the Unix time at.
func (z decodedZone) offsetAt(at int64) int {
	i, found := slices.BinarySearchFunc(z.onsets, at, func(o onset, at int64) int {
		switch {
		case o.at < at:
			return -1
		case o.at > at:
			return 1
		}
		return 0
	})
	if found {
		return z.onsets[i].to
	}
	if i == 0 {
		return z.before
	}
	return z.onsets[i-1].to
}

// decodeVTimezone decodes a VTIMEZONE, expanding RRULEs up to 2040. It
// supports what WriteVTimezone writes and rejects anything else.
func decodeVTimezone(data []byte) (decodedZone, error) {
	const lastYear = 2040
	var (
		z     decodedZone
		in    bool // inside STANDARD or DAYLIGHT
		props map[string][]string
		first = true
	)
	for _, line := range Unfold(data) {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return z, fmt.Errorf("line %q: no colon", line)
		}
		switch {
		case name == "BEGIN" && (value == "STANDARD" || value == "DAYLIGHT"):
			in, props = true, make(map[string][]string)
		case name == "END" && (value == "STANDARD" || value == "DAYLIGHT"):
			in = false
			z.components++
			ons, from, err := expandObservance(props, lastYear)
			if err != nil {
				return z, fmt.Errorf("%s: %w", value, err)
			}
			if props["RRULE"] != nil {
				z.rrule = true
			}
			z.onsets = append(z.onsets, ons...)
			if first || ons[0].at < z.onsets[0].at {
				z.before = from
			}
			first = false
		case in:
			props[name] = append(props[name], value)
		case name == "TZID":
			z.tzid = UnescapeText(value)
		case name == "BEGIN" || name == "END":
		default:
			return z, fmt.Errorf("unexpected property %q in VTIMEZONE", name)
		}
	}
	if z.components == 0 {
		return z, fmt.Errorf("no STANDARD or DAYLIGHT")
	}
	slices.SortFunc(z.onsets, func(a, b onset) int { return int(a.at - b.at) })
	for i := 1; i < len(z.onsets); i++ {
		if z.onsets[i].at == z.onsets[i-1].at {
			return z, fmt.Errorf("two onsets at %v", time.Unix(z.onsets[i].at, 0).UTC())
		}
	}
	return z, nil
}

// expandObservance returns the onsets of one STANDARD or DAYLIGHT, and its
// TZOFFSETFROM.
func expandObservance(props map[string][]string, lastYear int) ([]onset, int, error) {
	for _, p := range []string{"DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME"} {
		if len(props[p]) != 1 {
			return nil, 0, fmt.Errorf("%s appears %d times; want once", p, len(props[p]))
		}
	}
	from, err := parseOffset(props["TZOFFSETFROM"][0])
	if err != nil {
		return nil, 0, err
	}
	to, err := parseOffset(props["TZOFFSETTO"][0])
	if err != nil {
		return nil, 0, err
	}
	start, err := time.Parse(layoutLocal, props["DTSTART"][0])
	if err != nil {
		return nil, 0, err
	}
	walls := []time.Time{start}
	for _, v := range props["RDATE"] {
		for _, s := range strings.Split(v, ",") {
			d, err := time.Parse(layoutLocal, s)
			if err != nil {
				return nil, 0, err
			}
			if d.Before(start) {
				return nil, 0, fmt.Errorf("RDATE %s before DTSTART", s)
			}
			if !d.Equal(start) {
				walls = append(walls, d)
			}
		}
	}
	// ical.js ignores DTSTART as an onset when there are RDATEs, so it must
	// be repeated as one.
	if props["RDATE"] != nil && !slices.ContainsFunc(props["RDATE"], func(v string) bool {
		return slices.Contains(strings.Split(v, ","), props["DTSTART"][0])
	}) {
		return nil, 0, fmt.Errorf("DTSTART %s is not also an RDATE", props["DTSTART"][0])
	}
	if rr := props["RRULE"]; rr != nil {
		if len(rr) != 1 || props["RDATE"] != nil {
			return nil, 0, fmt.Errorf("want one RRULE and no RDATE, have %d RRULE and %d RDATE", len(rr), len(props["RDATE"]))
		}
		occ, err := expandYearly(rr[0], start, lastYear)
		if err != nil {
			return nil, 0, err
		}
		if len(occ) == 0 || !occ[0].Equal(start) {
			return nil, 0, fmt.Errorf("DTSTART %s is not the first occurrence of %s", props["DTSTART"][0], rr[0])
		}
		walls = occ
	}
	ons := make([]onset, len(walls))
	for i, w := range walls {
		ons[i] = onset{at: w.Unix() - int64(from), to: to}
	}
	return ons, from, nil
}

// expandYearly expands FREQ=YEARLY;BYMONTH=m;BYDAY=nWD from start.
func expandYearly(rule string, start time.Time, lastYear int) ([]time.Time, error) {
	var (
		month int
		nth   int
		wd    = -1
	)
	for _, part := range strings.Split(rule, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "FREQ":
			if v != "YEARLY" {
				return nil, fmt.Errorf("unsupported FREQ %q", v)
			}
		case "BYMONTH":
			m, err := strconv.Atoi(v)
			if err != nil || m < 1 || m > 12 {
				return nil, fmt.Errorf("bad BYMONTH %q", v)
			}
			month = m
		case "BYDAY":
			if len(v) < 3 {
				return nil, fmt.Errorf("bad BYDAY %q", v)
			}
			n, err := strconv.Atoi(v[:len(v)-2])
			if err != nil || n == 0 || n < -5 || n > 5 {
				return nil, fmt.Errorf("bad BYDAY %q", v)
			}
			nth = n
			wd = slices.Index([]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}, v[len(v)-2:])
		default:
			return nil, fmt.Errorf("unsupported RRULE part %q", part)
		}
	}
	if month == 0 || wd < 0 {
		return nil, fmt.Errorf("RRULE %q needs BYMONTH and BYDAY", rule)
	}
	var occ []time.Time
	for y := start.Year(); y <= lastYear; y++ {
		var days []int // the days of the month that are weekday wd
		for d := time.Date(y, time.Month(month), 1, 0, 0, 0, 0, time.UTC); d.Month() == time.Month(month); d = d.AddDate(0, 0, 1) {
			if int(d.Weekday()) == wd {
				days = append(days, d.Day())
			}
		}
		i := nth - 1
		if nth < 0 {
			i = len(days) + nth
		}
		if i < 0 || i >= len(days) {
			continue
		}
		t := time.Date(y, time.Month(month), days[i], start.Hour(), start.Minute(), start.Second(), 0, time.UTC)
		if !t.Before(start) {
			occ = append(occ, t)
		}
	}
	return occ, nil
}

func parseOffset(s string) (int, error) {
	if (len(s) != 5 && len(s) != 7) || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("bad UTC offset %q", s)
	}
	var parts [3]int
	for i := 0; 1+2*i < len(s); i++ {
		n, err := strconv.Atoi(s[1+2*i : 3+2*i])
		if err != nil {
			return 0, fmt.Errorf("bad UTC offset %q", s)
		}
		parts[i] = n
	}
	off := parts[0]*3600 + parts[1]*60 + parts[2]
	if s[0] == '-' {
		if off == 0 {
			return 0, fmt.Errorf("bad UTC offset %q: -0000 is not allowed", s)
		}
		off = -off
	}
	return off, nil
}

func TestFormatOffset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		off  int
		want string
	}{
		{0, "+0000"},
		{3600, "+0100"},
		{-5 * 3600, "-0500"},
		{5*3600 + 30*60, "+0530"},
		{-(3*3600 + 30*60), "-0330"},
		{12*3600 + 45*60, "+1245"},
		{-14 * 3600, "-1400"},
		{53*60 + 28, "+005328"},
		{-(4*3600 + 56*60 + 2), "-045602"},
	}
	for _, tt := range tests {
		if got := formatOffset(tt.off); got != tt.want {
			t.Errorf("formatOffset(%d) = %q; want %q", tt.off, got, tt.want)
		}
	}
}

func TestNthWeekday(t *testing.T) {
	t.Parallel()
	tests := []struct {
		year  int
		month time.Month
		wd    time.Weekday
		nth   int
		want  int
	}{
		{2025, time.March, time.Sunday, -1, 30},
		{2025, time.October, time.Sunday, -1, 26},
		{2025, time.March, time.Sunday, 2, 9},
		{2025, time.November, time.Sunday, 1, 2},
		{2026, time.March, time.Sunday, 5, 29},
		{2027, time.March, time.Sunday, 5, 0},
		{2024, time.February, time.Thursday, 5, 29},
		{2024, time.February, time.Thursday, -1, 29},
		{2025, time.February, time.Friday, -1, 28},
	}
	for _, tt := range tests {
		if got := nthWeekday(tt.year, tt.month, tt.wd, tt.nth); got != tt.want {
			t.Errorf("nthWeekday(%d, %v, %v, %d) = %d; want %d", tt.year, tt.month, tt.wd, tt.nth, got, tt.want)
		}
	}
}

// TestWriteVTimezoneBeforeEpoch checks the DTSTART written for a zone with
// no transitions when the window starts before 1970.
func TestWriteVTimezoneBeforeEpoch(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	WriteVTimezone(e, time.FixedZone("Fixed", -3*3600), utcDate(1950, 6, 15).Add(12*time.Hour), utcDate(1960, 1, 1))
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "BEGIN:VTIMEZONE\r\nTZID:Fixed\r\nBEGIN:STANDARD\r\nDTSTART:19500615T000000\r\nTZNAME:Fixed\r\n" +
		"TZOFFSETFROM:-0300\r\nTZOFFSETTO:-0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteVTimezone(Fixed, 1950, 1960) = %q; want %q", got, want)
	}
}
