package feed_test

// TestInterop renders feeds from a real SQLite store and has them read by
// two independent iCalendar parsers: ical.js (Mozilla's, from npm) and
// Python's icalendar. Each parser runs as a subprocess (test/interop) and
// prints what it read as JSON, which is compared field by field with the
// events read back from the store.
//
// Set up the parsers with
//
//	npm ci --prefix test/interop
//	apt-get install -y python3-icalendar   # for /usr/bin/python3
//
// Without them the test skips, except in CI (CI=true), where it fails.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

const (
	interopProdID          = "-//calhook//interop test//EN"
	interopRefreshInterval = 90 * time.Minute
	interopRefreshWire     = "PT1H30M"
	// interopOccurrences is how many occurrences the parsers expand.
	interopOccurrences = 5
	// interopPythonEnv overrides the Python interpreter, which must have
	// icalendar installed.
	interopPythonEnv     = "CALHOOK_TEST_PYTHON"
	interopDefaultPython = "/usr/bin/python3"
)

// interopDir is test/interop relative to this package.
var interopDir = filepath.Join("..", "..", "test", "interop")

// interopParser is one external parser.
type interopParser struct {
	name string
	// command returns the command line that reads a feed on stdin and
	// prints JSON, or why the parser is not available.
	command func(ctx context.Context) (argv []string, unavailable string)
}

var interopParsers = []interopParser{
	{
		name: "icaljs",
		command: func(ctx context.Context) ([]string, string) {
			node, err := exec.LookPath("node")
			if err != nil {
				return nil, "node is not on PATH; install Node.js, then run: npm ci --prefix test/interop"
			}
			if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "ical.js", "package.json")); err != nil {
				return nil, "ical.js is not installed; run: npm ci --prefix test/interop"
			}
			return []string{node, filepath.Join(interopDir, "icaljs.mjs")}, ""
		},
	},
	{
		name: "pyicalendar",
		command: func(ctx context.Context) ([]string, string) {
			python := cmp.Or(os.Getenv(interopPythonEnv), interopDefaultPython)
			check := exec.CommandContext(ctx, python, "-c", "import icalendar, dateutil")
			if out, err := check.CombinedOutput(); err != nil {
				return nil, fmt.Sprintf("%s cannot import icalendar (%v: %s); run: apt-get install -y python3-icalendar, or set %s to a python3 that has it",
					python, err, bytes.TrimSpace(out), interopPythonEnv)
			}
			return []string{python, filepath.Join(interopDir, "pyical.py")}, ""
		},
	},
}

// interopFeed is what a parser printed (see test/interop/icaljs.mjs).
type interopFeed struct {
	Parser   string            `json:"parser"`
	Calendar map[string]string `json:"calendar"`
	Events   []interopEvent    `json:"events"`
	Errors   []string          `json:"errors"`
}

type interopEvent struct {
	UID         string   `json:"uid"`
	Summary     string   `json:"summary"`
	Description string   `json:"description"`
	Location    string   `json:"location"`
	Status      string   `json:"status"`
	Sequence    int      `json:"sequence"`
	DTStamp     string   `json:"dtstamp"`
	AllDay      bool     `json:"allDay"`
	Start       string   `json:"start"`
	End         string   `json:"end"`
	TZID        string   `json:"tzid"`
	RRule       string   `json:"rrule"`
	ExDates     []string `json:"exdates"`
	Occurrences []string `json:"occurrences"`
	// LibraryStart and LibraryEnd are the instants the parser resolved by
	// itself (Python's icalendar prefers its own zone database to the
	// feed's VTIMEZONE); nil when the parser does not report them.
	LibraryStart *string `json:"libraryStart"`
	LibraryEnd   *string `json:"libraryEnd"`
}

// interopFixture is the data the feeds are rendered from.
type interopFixture struct {
	feeds    *feed.Service
	acct     *account.Created
	calendar map[string]*store.Calendar // by fixture name
	// events holds every stored event, cancelled ones included, read back
	// from the store; names maps their UIDs to fixture names.
	events map[string][]*store.Event // by calendar id
	names  map[string]string
}

func TestInterop(t *testing.T) {
	fx := newInteropFixture(t)
	type feedCase struct {
		name     string
		calendar string // calendar id; "" for all calendars
		calName  string // expected X-WR-CALNAME
		events   []*store.Event
	}
	berlin, newYork := fx.calendar["berlin"], fx.calendar["newyork"]
	feeds := []feedCase{
		{"berlin", berlin.ID, berlin.Name, fx.events[berlin.ID]},
		{"newyork", newYork.ID, newYork.Name, fx.events[newYork.ID]},
		{"all", "", fx.acct.Name, slices.Concat(fx.events[berlin.ID], fx.events[newYork.ID])},
	}
	bodies := make(map[string][]byte, len(feeds))
	for _, fc := range feeds {
		f, err := fx.feeds.Get(t.Context(), fx.acct.ID, fc.calendar, fx.acct.FeedToken)
		if err != nil {
			t.Fatalf("Get(%s feed): %v", fc.name, err)
		}
		bodies[fc.name] = f.Body
	}

	t.Run("folding", func(t *testing.T) {
		t.Parallel()
		// What both parsers rely on: physical lines of at most 75 octets,
		// each valid UTF-8 by itself (no sequence split by a fold).
		for _, fc := range feeds {
			lines := strings.Split(strings.TrimSuffix(string(bodies[fc.name]), "\r\n"), "\r\n")
			for i, line := range lines {
				if len(line) > 75 || !utf8.ValidString(line) || strings.ContainsAny(line, "\r\n") {
					t.Errorf("%s feed line %d = %q (%d octets); want at most 75 octets of valid UTF-8", fc.name, i+1, line, len(line))
				}
			}
		}
	})
	t.Run("fixture", func(t *testing.T) {
		t.Parallel()
		// The fold tests below only mean something if the text really has
		// a multi-byte character across octet 75 of its content line.
		body := bodies["berlin"]
		for _, prop := range []string{"SUMMARY", "DESCRIPTION"} {
			line := interopLogicalLine(body, fx.uid("utf8-fold"), prop)
			if len(line) <= 75 || utf8.RuneStart(line[75]) {
				t.Errorf("%s line of utf8-fold does not have a multi-byte character across octet 75; adjust its padding: %q",
					prop, line[:min(len(line), 80)])
			}
		}
	})

	for _, p := range interopParsers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			argv, why := p.command(t.Context())
			if why != "" {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is required in CI: %s", p.name, why)
				}
				t.Skipf("%s not available: %s", p.name, why)
			}
			for _, fc := range feeds {
				t.Run(fc.name, func(t *testing.T) {
					t.Parallel()
					body := bodies[fc.name]
					got := interopRun(t, exec.CommandContext(t.Context(), argv[0], argv[1:]...), body)
					t.Logf("parsed by %s", got.Parser)
					// Subtests below are not parallel, so this runs after them.
					defer func() {
						if t.Failed() {
							t.Logf("%s feed as served:\n%s", fc.name, body)
						}
					}()
					for _, e := range got.Errors {
						t.Errorf("parser error: %s", e)
					}
					t.Run("calendar", func(t *testing.T) {
						want := map[string]string{
							"prodid":           interopProdID,
							"version":          "2.0",
							"x-wr-calname":     fc.calName,
							"refresh-interval": interopRefreshWire,
						}
						for _, k := range slices.Sorted(maps.Keys(want)) {
							if got.Calendar[k] != want[k] {
								t.Errorf("%s = %q; want %q", k, got.Calendar[k], want[k])
							}
						}
					})
					fx.compareEvents(t, p.name, body, got.Events, fc.events)
				})
			}
		})
	}
}

// compareEvents checks that the parser read exactly the events that are not
// cancelled, each with the stored values. Its subtests only compare values
// already in memory, so they run in order rather than in parallel.
func (fx *interopFixture) compareEvents(t *testing.T, parser string, body []byte, got []interopEvent, stored []*store.Event) {
	t.Helper()
	byUID := make(map[string]interopEvent, len(got))
	for _, g := range got {
		if _, dup := byUID[g.UID]; dup {
			t.Errorf("UID %q appears twice in the feed", g.UID)
		}
		byUID[g.UID] = g
	}
	wantUIDs := map[string]bool{}
	for _, e := range stored {
		name := fx.names[e.UID]
		g, ok := byUID[e.UID]
		if e.Status == store.StatusCancelled {
			t.Run(name, func(t *testing.T) {
				if ok {
					t.Errorf("cancelled event %q is in the feed; want it absent", e.UID)
				}
			})
			continue
		}
		wantUIDs[e.UID] = true
		t.Run(name, func(t *testing.T) {
			if !ok {
				t.Fatalf("event %q not found; parser read UIDs %q", e.UID, slices.Sorted(maps.Keys(byUID)))
			}
			interopCompareEvent(t, parser, body, g, e)
		})
	}
	for uid := range byUID {
		if !wantUIDs[uid] {
			t.Errorf("feed has unexpected event %q", uid)
		}
	}
}

func interopCompareEvent(t *testing.T, parser string, body []byte, got interopEvent, e *store.Event) {
	t.Helper()
	check := func(field, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q; want %q", field, got, want)
		}
	}
	text := func(field, got, want string) {
		t.Helper()
		// RFC 5545 TEXT has a single newline escape, so a CRLF or CR that
		// was stored is read back as LF.
		want = interopNewlines.Replace(want)
		if got == want {
			return
		}
		wire := interopWireValue(body, e.UID, strings.ToUpper(field))
		if parser == "pyicalendar" && wire == interopEscapeText(want) && got == interopLegacyPyUnescape(wire) {
			// Python icalendar 4 unescapes TEXT twice, so it loses
			// backslashes and reads a backslash before "n" as a
			// newline. calhook's escaping is right: ical.js reads it.
			t.Logf("%s = %q: Python icalendar's own TEXT unescaping bug (it unescapes twice); the feed has the RFC 5545 form %q", field, got, wire)
			return
		}
		t.Errorf("%s = %q; want %q (%s; feed has %q)", field, got, want, interopFirstDiff(got, want), wire)
	}

	check("uid", got.UID, e.UID)
	text("summary", got.Summary, e.Summary)
	text("description", got.Description, e.Description)
	text("location", got.Location, e.Location)
	check("status", got.Status, strings.ToUpper(e.Status))
	if got.Sequence != e.Sequence {
		t.Errorf("sequence = %d; want %d", got.Sequence, e.Sequence)
	}
	check("dtstamp", got.DTStamp, interopInstant(e.UpdatedAt.Truncate(time.Second)))
	if got.AllDay != e.AllDay {
		t.Errorf("allDay = %v; want %v", got.AllDay, e.AllDay)
	}
	wantStart, wantEnd := interopTime(e.Start, e.AllDay), interopTime(e.End, e.AllDay)
	check("start", got.Start, wantStart)
	check("end", got.End, wantEnd)
	if got.LibraryStart != nil {
		check("start (parser's own zone data)", *got.LibraryStart, wantStart)
	}
	if got.LibraryEnd != nil {
		check("end (parser's own zone data)", *got.LibraryEnd, wantEnd)
	}
	wantTZID := e.TimeZone
	if e.AllDay || e.TimeZone == "UTC" || e.TimeZone == "Etc/UTC" {
		wantTZID = ""
	}
	check("tzid", got.TZID, wantTZID)
	check("rrule", interopSortedRule(got.RRule), interopSortedRule(e.RRule))

	wantEx := make([]string, len(e.ExDates))
	for i, x := range e.ExDates {
		wantEx[i] = interopTime(x, e.AllDay)
	}
	if !slices.Equal(got.ExDates, wantEx) {
		t.Errorf("exdates = %q; want %q", got.ExDates, wantEx)
	}
	if want := interopExpand(t, e); !slices.Equal(got.Occurrences, want) {
		t.Errorf("first %d occurrences = %q; want %q", interopOccurrences, got.Occurrences, want)
	}
}

// newInteropFixture stores the events every feed is rendered from.
func newInteropFixture(t *testing.T) *interopFixture {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	// A clock with sub-second parts, advancing on every read, so DTSTAMPs
	// differ and must be truncated to seconds.
	clock := time.Date(2026, 3, 1, 8, 9, 10, 123456000, time.UTC)
	now := func() time.Time {
		clock = clock.Add(1500 * time.Millisecond)
		return clock
	}
	acct, err := account.NewService(db, now, nil).Create(ctx, "Interop, Inc.; 🧪")
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	cals := calendar.NewService(db, now, nil)
	fx := &interopFixture{
		feeds:    feed.NewService(db, feed.Options{ProdID: interopProdID, RefreshInterval: interopRefreshInterval}),
		acct:     acct,
		calendar: map[string]*store.Calendar{},
		events:   map[string][]*store.Event{},
		names:    map[string]string{},
	}
	newCalendar := func(name, title, zone string) *store.Calendar {
		c, err := cals.CreateCalendar(ctx, acct.ID, calendar.CalendarInput{Name: &title, TimeZone: &zone})
		if err != nil {
			t.Fatalf("create calendar %s: %v", name, err)
		}
		fx.calendar[name] = c
		return c
	}
	berlin := newCalendar("berlin", "Team Berlin, Ops; 🐻", "Europe/Berlin")
	newYork := newCalendar("newyork", "New York \\ NYC 🗽", "America/New_York")

	newEvent := func(c *store.Calendar, name string, in calendar.EventInput) *store.Event {
		if in.UID == nil {
			in.UID = interopPtr(name + "@interop.calhook.test")
		}
		e, err := cals.CreateEvent(ctx, acct.ID, c.ID, in)
		if err != nil {
			t.Fatalf("create event %s: %v", name, err)
		}
		fx.names[e.UID] = name
		return e
	}
	s := interopPtr[string]

	// All-day, three days (end exclusive).
	newEvent(berlin, "allday-multiday", calendar.EventInput{
		Summary: s("Sommerfest (3 Tage)"), Start: s("2026-07-14"), End: s("2026-07-17"),
	})
	// All-day, yearly, one date excluded.
	newEvent(berlin, "allday-yearly-exdate", calendar.EventInput{
		Summary: s("Heiligabend"), Start: s("2026-12-24"), End: s("2026-12-25"),
		RRule: s("FREQ=YEARLY;COUNT=6"), ExDates: &[]string{"2027-12-24"},
	})
	// Berlin, across the end of DST (25 October 2026, 03:00 CEST -> 02:00 CET).
	newEvent(berlin, "berlin-across-dst", calendar.EventInput{
		Summary: s("Nachtschicht"), Start: s("2026-10-24T18:00:00"), End: s("2026-10-25T09:00:00"),
	})
	// Weekly, with one EXDATE before and one after the start of DST (29
	// March 2026).
	newEvent(berlin, "weekly-exdates-dst", calendar.EventInput{
		Summary: s("Jour fixe"), Start: s("2026-03-10T09:00:00"), End: s("2026-03-10T09:30:00"),
		RRule: s("FREQ=WEEKLY;COUNT=8"), ExDates: &[]string{"2026-03-17T09:00:00", "2026-04-07T09:00:00"},
	})
	// A half-hour offset zone.
	newEvent(berlin, "kolkata", calendar.EventInput{
		Summary: s("Standup Bengaluru"), TimeZone: s("Asia/Kolkata"),
		Start: s("2026-03-20T09:30:00"), End: s("2026-03-20T10:45:00"),
	})
	// Tentative, and updated once so SEQUENCE is 1.
	tentative := newEvent(berlin, "tentative", calendar.EventInput{
		Summary: s("Vielleicht: Offsite"), Start: s("2026-06-01T14:00:00"), End: s("2026-06-01T15:00:00"),
	})
	if _, err := cals.UpdateEvent(ctx, acct.ID, berlin.ID, tentative.ID, calendar.EventInput{Status: s(store.StatusTentative)}); err != nil {
		t.Fatalf("update tentative: %v", err)
	}
	newEvent(berlin, "cancelled", calendar.EventInput{
		Summary: s("Abgesagt"), Status: s(store.StatusCancelled),
		Start: s("2026-06-02T14:00:00"), End: s("2026-06-02T15:00:00"),
	})
	// Long UTF-8 text. "SUMMARY:" is 8 octets, so 66 ASCII characters put
	// the 3-octet 日 at octets 74-76 of the content line; "DESCRIPTION:" is
	// 12, so 61 put the 4-octet 👩 at octets 73-76. The rest folds many
	// more times, across ZWJ sequences, flags and CJK.
	mix := "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag; 🇩🇪🇯🇵🇺🇦 flags \\ 東京都千代田区丸の内 ✓ é 𝄞 日本語のテキスト. "
	newEvent(berlin, "utf8-fold", calendar.EventInput{
		Summary:     s(strings.Repeat("S", 66) + "日本語の長い件名 — 会議室予約 🎌 und Übergabe"),
		Description: s(strings.Repeat("D", 61) + strings.Repeat(mix, 12) + "\nZeile 2 🙂\n\n" + strings.Repeat("漢字", 60)),
		Location: s("Konferenzraum „Spree“, 3. OG; Friedrichstraße 123, 10117 Berlin, Deutschland — " +
			"〒100-0005 東京都千代田区丸の内1-9-1 🏢, Treffpunkt: Empfang (bitte Ausweis mitbringen), " +
			"Ausweichraum: 4.2 \\ Nord; Zugang über Hof 🚪"),
		Start: s("2026-05-04T10:00:00"), End: s("2026-05-04T11:00:00"),
	})
	// Characters that TEXT escapes, plus a UID that needs escaping.
	newEvent(berlin, "escaping", calendar.EventInput{
		UID:     s("escaping,uid;1\\x@interop.calhook.test"),
		Summary: s(`Budget, Q3; "final" \ draft: v2, ok?`),
		Description: s("Line 1\nLine 2, with comma; semicolon\\backslash\n\tindented: C:\\Users\\calhook\\new\\notes.txt\n" +
			"ends with a backslash \\\n\\N is not a newline, nor is \\,\n"),
		Location: s(`Room "A", floor 2; \\server\share`),
		Start:    s("2026-05-05T10:00:00"), End: s("2026-05-05T11:00:00"),
	})
	// Stored CRLF and CR come back as LF: TEXT has one newline escape.
	newEvent(berlin, "crlf", calendar.EventInput{
		Summary: s("CRLF"), Description: s("one\r\ntwo\rthree\n\r\nfour"),
		Start: s("2026-05-06T10:00:00"), End: s("2026-05-06T11:00:00"),
	})

	// New York, across the end of DST (1 November 2026, 02:00 EDT -> 01:00 EST).
	newEvent(newYork, "newyork-across-dst", calendar.EventInput{
		Summary: s("Late show"), Start: s("2026-11-01T00:30:00"), End: s("2026-11-01T03:30:00"),
	})
	// Every other day across the end of DST, with UNTIL exactly on the last
	// occurrence (UNTIL is inclusive) and one EXDATE.
	newEvent(newYork, "newyork-daily-until", calendar.EventInput{
		Summary: s("Pickup"), Start: s("2026-10-29T08:30:00"), End: s("2026-10-29T09:00:00"),
		RRule: s("FREQ=DAILY;INTERVAL=2;UNTIL=20261106T133000Z"), ExDates: &[]string{"2026-10-31T08:30:00"},
	})
	// Sydney, across the end of DST (5 April 2026, 03:00 AEDT -> 02:00 AEST).
	newEvent(newYork, "sydney-across-dst", calendar.EventInput{
		Summary: s("Sydney overnight"), TimeZone: s("Australia/Sydney"),
		Start: s("2026-04-04T20:00:00"), End: s("2026-04-05T10:00:00"),
	})
	newEvent(newYork, "utc", calendar.EventInput{
		Summary: s("UTC sync"), TimeZone: s("UTC"),
		Start: s("2026-05-01T12:00:00Z"), End: s("2026-05-01T13:15:00Z"),
	})

	for _, c := range []*store.Calendar{berlin, newYork} {
		events, err := db.ListEvents(ctx, store.ListEventsParams{AccountID: acct.ID, CalendarID: c.ID, Page: store.Page{Limit: 1000}})
		if err != nil {
			t.Fatalf("ListEvents(%s): %v", c.Name, err)
		}
		fx.events[c.ID] = events
	}
	return fx
}

func (fx *interopFixture) uid(name string) string {
	for uid, n := range fx.names {
		if n == name {
			return uid
		}
	}
	panic("no fixture event " + name)
}

func interopPtr[T any](v T) *T { return &v }

// interopRun runs a parser on body and decodes its output.
func interopRun(t *testing.T, cmd *exec.Cmd, body []byte) *interopFeed {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
	}
	var f interopFeed
	if err := json.Unmarshal(stdout.Bytes(), &f); err != nil {
		t.Fatalf("%s: decode output: %v\n%s\n%s", cmd, err, stdout.Bytes(), stderr.Bytes())
	}
	return &f
}

// interopInstant formats t as the parsers print UTC instants.
func interopInstant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// interopTime formats an event time as the parsers print it: a date for
// all-day events, whose times are midnight UTC, otherwise a UTC instant.
func interopTime(t time.Time, allDay bool) string {
	if allDay {
		return t.UTC().Format(time.DateOnly)
	}
	return interopInstant(t)
}

// interopSortedRule returns the parts of a RRULE in sorted order: parsers
// write them back in their own order.
func interopSortedRule(r string) string {
	if r == "" {
		return ""
	}
	parts := strings.Split(strings.ToUpper(r), ";")
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// interopExpand returns the first occurrences of e as the parsers print
// them. It knows only the rules the fixture uses (FREQ DAILY, WEEKLY,
// MONTHLY or YEARLY with INTERVAL, COUNT and UNTIL): each occurrence is
// DTSTART's wall clock moved by whole days, months or years in the event's
// zone, so it keeps its local time across DST changes.
func interopExpand(t *testing.T, e *store.Event) []string {
	t.Helper()
	if e.RRule == "" {
		return nil
	}
	var (
		years, months, days int
		interval, count     = 1, -1
		until               time.Time
	)
	for _, part := range strings.Split(e.RRule, ";") {
		k, v, _ := strings.Cut(part, "=")
		var err error
		switch k {
		case "FREQ":
			switch v {
			case "DAILY":
				days = 1
			case "WEEKLY":
				days = 7
			case "MONTHLY":
				months = 1
			case "YEARLY":
				years = 1
			default:
				t.Fatalf("interopExpand: FREQ=%s not supported", v)
			}
		case "INTERVAL":
			interval, err = strconv.Atoi(v)
		case "COUNT":
			count, err = strconv.Atoi(v)
		case "UNTIL":
			if until, err = time.Parse("20060102T150405Z", v); err != nil {
				until, err = time.Parse("20060102", v)
				until = until.Add(24*time.Hour - time.Nanosecond)
			}
		default:
			t.Fatalf("interopExpand: %s not supported in %q", k, e.RRule)
		}
		if err != nil {
			t.Fatalf("interopExpand: %s in %q: %v", k, e.RRule, err)
		}
	}
	loc := time.UTC
	if !e.AllDay && e.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(e.TimeZone); err != nil {
			t.Fatalf("interopExpand: %v", err)
		}
	}
	start := e.Start.In(loc)
	var out []string
	for i := 0; (count < 0 || i < count) && len(out) < interopOccurrences; i++ {
		occ := start.AddDate(years*interval*i, months*interval*i, days*interval*i)
		if !until.IsZero() && occ.After(until) {
			break
		}
		if slices.ContainsFunc(e.ExDates, occ.Equal) {
			continue
		}
		out = append(out, interopTime(occ, e.AllDay))
	}
	return out
}

var interopNewlines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// interopEscapeText is RFC 5545 TEXT escaping (section 3.3.11), written
// here independently of internal/ical.
func interopEscapeText(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\r\n", `\n`, "\r", `\n`, "\n", `\n`).Replace(s)
}

// interopLegacyPyUnescape is how Python icalendar 4 decodes a TEXT value:
// Contentline.parts turns escapes into %XX and back (escape_string,
// unescape_string), and vText.from_ical then unescapes again with a chain
// of replaces (unescape_char). So an escaped backslash is unescaped twice,
// and one followed by "n" becomes a newline. Each step is a sequential
// replace, as in Python.
func interopLegacyPyUnescape(s string) string {
	for _, r := range [][2]string{
		// escape_string, unescape_string
		{`\,`, "%2C"}, {`\:`, "%3A"}, {`\;`, "%3B"}, {`\\`, "%5C"},
		{"%2C", ","}, {"%3A", ":"}, {"%3B", ";"}, {"%5C", `\`},
		// unescape_char
		{`\N`, `\n`}, {"\r\n", "\n"}, {`\n`, "\n"}, {`\,`, ","}, {`\;`, ";"}, {`\\`, `\`},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// interopFirstDiff describes where two strings first differ.
func interopFirstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	ctx := func(s string) string { return s[max(0, i-12):min(len(s), i+12)] }
	return fmt.Sprintf("first difference at byte %d: got …%q… want …%q…", i, ctx(got), ctx(want))
}

// interopUnfold splits a feed into its logical content lines.
func interopUnfold(body []byte) []string {
	return strings.Split(strings.ReplaceAll(string(body), "\r\n ", ""), "\r\n")
}

// interopLogicalLine returns the unfolded content line of property prop of
// the event with the given UID, or "".
func interopLogicalLine(body []byte, uid, prop string) string {
	inEvent := false
	for _, line := range interopUnfold(body) {
		switch {
		case line == "BEGIN:VEVENT":
			inEvent = false
		case line == "UID:"+interopEscapeText(uid):
			inEvent = true
		case inEvent && strings.HasPrefix(line, prop+":"):
			return line
		}
	}
	return ""
}

// interopWireValue returns the raw value of property prop of an event.
func interopWireValue(body []byte, uid, prop string) string {
	_, v, _ := strings.Cut(interopLogicalLine(body, uid, prop), ":")
	return v
}
