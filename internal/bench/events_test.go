package bench

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestGenEvents(t *testing.T) {
	t.Parallel()
	const n = 1000
	events, err := genEvents(n, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != n {
		t.Fatalf("genEvents(%d) returned %d events", n, len(events))
	}
	again, err := genEvents(n, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(events, again) {
		t.Error("genEvents is not deterministic for one seed")
	}

	var allDay, zoned, utc, rrule, exdates, nonASCII, uids int
	seenUID := map[string]bool{}
	for i, e := range events {
		if e.Summary == "" || e.Start == "" || e.End == "" {
			t.Fatalf("event %d lacks a required field: %+v", i, e)
		}
		if e.UID != "" {
			if seenUID[e.UID] {
				t.Errorf("event %d repeats UID %q", i, e.UID)
			}
			seenUID[e.UID] = true
			uids++
		}
		if !utf8.ValidString(e.Summary + e.Description + e.Location) {
			t.Errorf("event %d has invalid UTF-8", i)
		}
		if strings.ContainsFunc(e.Summary+e.Description, func(r rune) bool { return r > 127 }) {
			nonASCII++
		}
		layout := time.RFC3339
		switch {
		case e.AllDay:
			allDay++
			layout = time.DateOnly
		case e.TimeZone != "":
			zoned++
		default:
			utc++
		}
		start, err1 := time.Parse(layout, e.Start)
		end, err2 := time.Parse(layout, e.End)
		if err1 != nil || err2 != nil || !end.After(start) {
			t.Errorf("event %d: start %q end %q do not parse as an interval", i, e.Start, e.End)
		}
		if e.RRule != "" {
			rrule++
		}
		if len(e.ExDates) > 0 {
			exdates++
			for _, x := range e.ExDates {
				if _, err := time.Parse(time.RFC3339, x); err != nil {
					t.Errorf("event %d: exdate %q: %v", i, x, err)
				}
			}
		}
		if _, err := json.Marshal(e); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	// The mix the scenario promises, with room for chance.
	for _, c := range []struct {
		name     string
		got, min int
	}{
		{"all-day", allDay, n / 6},
		{"zoned", zoned, n / 2},
		{"UTC", utc, n / 50},
		{"recurring", rrule, n / 8},
		{"with exdates", exdates, n / 40},
		{"non-ASCII", nonASCII, n / 4},
		{"explicit UID", uids, n / 3},
	} {
		if c.got < c.min {
			t.Errorf("genEvents(%d): %d %s events; want at least %d", n, c.got, c.name, c.min)
		}
	}
}

func TestGenEventsBerlinOffsets(t *testing.T) {
	t.Parallel()
	events, err := genEvents(200, 1, time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC), "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.TimeZone != "Europe/Berlin" || e.AllDay {
			continue
		}
		start, _ := time.Parse(time.RFC3339, e.Start)
		_, off := start.Zone()
		if off != 3600 && off != 7200 {
			t.Errorf("Berlin event start %q has offset %ds; want +01:00 or +02:00", e.Start, off)
		}
	}
}
