package importer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// structure is what wellFormed can tell about a body.
type structure int

const (
	unknown   structure = iota // a case the simple checker leaves alone
	wellShape                  // balanced, every calendar-level line has a ':'
	malformed                  // clearly not a well-formed calendar
)

// wellFormed is an independent, deliberately simple check of a body's
// structure, for the fuzz test: it unfolds lines, then tracks BEGIN/END
// and looks for calendar-level lines without a ':'. It answers unknown for
// what it does not model (blank lines, parameters on BEGIN/END, text after
// the calendar, lines without ':' inside components, which Parse may read
// as lost continuation lines).
func wellFormed(body []byte) structure {
	s := string(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF")))
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.TrimRight(s, "\n")
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		switch {
		case l == "" || strings.TrimLeft(l, " \t") == "":
			return unknown
		case (l[0] == ' ' || l[0] == '\t') && len(lines) > 0:
			lines[len(lines)-1] += l[1:]
		default:
			lines = append(lines, l)
		}
	}
	var stack []string
	for n, l := range lines {
		name, value, hasColon := strings.Cut(l, ":")
		upper := strings.ToUpper(name)
		if strings.HasPrefix(upper, "BEGIN;") || strings.HasPrefix(upper, "END;") {
			return unknown
		}
		switch {
		case n == 0 && (upper != "BEGIN" || strings.ToUpper(strings.TrimSpace(value)) != "VCALENDAR"):
			return unknown // not a calendar at all: Parse's other checks
		case upper == "BEGIN" && hasColon:
			stack = append(stack, strings.ToUpper(strings.TrimSpace(value)))
		case upper == "END" && hasColon:
			if len(stack) == 0 || stack[len(stack)-1] != strings.ToUpper(strings.TrimSpace(value)) {
				return malformed
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && n != len(lines)-1 {
				return unknown // more after the calendar
			}
		case len(stack) == 1 && !hasColon:
			return malformed
		}
	}
	if len(stack) > 0 {
		return malformed // truncated
	}
	return wellShape
}

// FuzzParseAndDiff feeds mutated versions of valid calendars to the
// importer's parse-and-diff step, with the calendar's stored events taken
// from the unmutated seed. A body that is not well-formed must never yield
// a deletion, and whatever parses, the guard must never let a mass
// deletion through on a first poll.
func FuzzParseAndDiff(f *testing.F) {
	f.Add(feed(bookings...))
	f.Add(feed(tenBookings(10)...))
	f.Add(feed(stamp(1, evA), stamp(1, evB), stamp(1, evSeries), stamp(1, evOverride)))
	f.Add("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n" + strings.ReplaceAll(bookings[0]+bookings[1], "\r\n", "\n") + "END:VCALENDAR\n")
	cal := &store.Calendar{ID: "cal_fuzz", AccountID: "acc_fuzz", TimeZone: "Europe/Berlin", Kind: store.KindImported}
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	parsed, _, _, err := parseFeed(feed(tenBookings(10)...), cal, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	first := diffEvents(nil, parsed, nil, now)
	stored := first.storeCreates(cal, first.create) // with ids, as a stored calendar has
	guard := Guard{}.withDefaults(0)
	f.Fuzz(func(t *testing.T, body string) {
		events, _, keep, err := parseFeed(body, cal, 1<<20, slog.New(slog.DiscardHandler))
		shape := wellFormed([]byte(body))
		if err != nil {
			return // a failed poll: nothing is written
		}
		if shape == malformed {
			t.Fatalf("parseFeed accepted a body that is not well-formed:\n%q", body)
		}
		d := diffEvents(stored, events, keep, now)
		p := guard.plan(nil, d.delete, len(stored), now)
		if _, massive := guard.massive(len(p.apply), len(stored)); massive {
			t.Fatalf("a first poll applied %d of %d deletes; want a hold\nbody:\n%q", len(p.apply), len(stored), body)
		}
		if len(p.apply)+len(keysOfHeld(p.held)) != len(d.delete) {
			t.Fatalf("plan lost deletes: %d applied + %d held != %d", len(p.apply), len(keysOfHeld(p.held)), len(d.delete))
		}
	})
}

func keysOfHeld(h *store.HeldDeletes) []store.EventKey {
	if h == nil {
		return nil
	}
	return h.Events
}
