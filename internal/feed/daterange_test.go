package feed_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// TestDateRangeInterop writes events at both ends of the years calhook
// accepts (1–9999, in UTC and in the event's zone) in several zones,
// checks that times beyond them are refused, and has the feed of the
// accepted ones read by ical.js and python-icalendar: every event must be
// read, none with an empty start, and no VTIMEZONE may start in year 0.
func TestDateRangeInterop(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	acct, err := account.NewService(db, nil, nil).Create(ctx, "Range")
	if err != nil {
		t.Fatal(err)
	}
	cals := calendar.NewService(db, nil, nil)
	name, zone := "Range", "UTC"
	cal, err := cals.CreateCalendar(ctx, acct.ID, calendar.CalendarInput{Name: &name, TimeZone: &zone})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		zone, start, end string
		ok               bool
	}{
		// The latest: 9999-12-30T00:00:00Z, however the zone shows it.
		{"UTC", "9999-12-29T22:00:00", "9999-12-30T00:00:00", true},
		{"UTC", "9999-12-29T23:00:00", "9999-12-30T00:00:01", false},
		{"America/New_York", "9999-12-29T18:00:00", "9999-12-29T19:00:00", true},
		{"America/New_York", "9999-12-29T20:00:00", "9999-12-29T21:00:00", false},
		{"America/New_York", "9999-12-31T22:00:00", "9999-12-31T23:00:00", false}, // 10000-01-01 in UTC
		{"Asia/Tokyo", "9999-12-30T08:00:00", "9999-12-30T09:00:00", true},
		{"Pacific/Kiritimati", "9999-12-30T12:00:00", "9999-12-30T13:00:00", true},
		{"Pacific/Kiritimati", "9999-12-31T12:00:00", "9999-12-31T13:00:00", false},
		{"Pacific/Pago_Pago", "9999-12-29T12:00:00", "9999-12-29T12:30:00", true},
		{"Pacific/Pago_Pago", "9999-12-31T10:00:00", "9999-12-31T11:00:00", false},
		{"UTC", "9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00-05:00", false},
		{"Europe/Berlin", "9999-12-31T23:00:00+01:00", "10000-01-01T00:00:00+01:00", false},
		// The earliest: 0001-01-03T00:00:00Z, however the zone shows it;
		// the zero instant is refused.
		{"UTC", "0001-01-03T00:00:00Z", "0001-01-03T01:00:00Z", true},
		{"UTC", "0001-01-02T23:59:59Z", "0001-01-03T01:00:00Z", false},
		{"UTC", "0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z", false},
		{"Asia/Tokyo", "0001-01-03T10:00:00", "0001-01-03T11:00:00", true},
		{"Asia/Tokyo", "0001-01-03T08:00:00", "0001-01-03T09:00:00", false}, // 0001-01-02 in UTC
		{"Asia/Tokyo", "0001-01-01T08:00:00", "0001-01-01T09:00:00", false}, // year 0 in UTC
		{"America/New_York", "0001-01-02T20:00:00", "0001-01-02T21:00:00", true},
		{"America/New_York", "0001-01-01T00:00:00", "0001-01-01T01:00:00", false},
		{"Europe/Berlin", "0001-01-03T02:00:00", "0001-01-03T03:00:00", true},
		// All-day dates.
		{"UTC", "0001-01-03", "0001-01-04", true},
		{"UTC", "9999-12-29", "9999-12-30", true},
		{"UTC", "0001-01-02", "0001-01-03", false},
		{"UTC", "9999-12-30", "9999-12-31", false},
	}
	accepted := 0
	for _, tt := range tests {
		_, err := cals.CreateEvent(ctx, acct.ID, cal.ID, calendar.EventInput{
			Summary: &tt.start, TimeZone: &tt.zone, Start: &tt.start, End: &tt.end,
		})
		switch {
		case tt.ok && err != nil:
			t.Errorf("event %s–%s in %s: %v; want it accepted", tt.start, tt.end, tt.zone, err)
		case !tt.ok && fault.CodeOf(err) != fault.Invalid:
			t.Errorf("event %s–%s in %s: %v; want a fault.Invalid error", tt.start, tt.end, tt.zone, err)
		case tt.ok:
			accepted++
		}
	}
	feeds := feed.NewService(db, feed.Options{ProdID: interopProdID, RefreshInterval: interopRefreshInterval})
	f, err := feeds.Get(ctx, acct.ID, cal.ID, acct.FeedToken)
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	for _, m := range regexp.MustCompile(`(?m)^DTSTART[^:\r\n]*:(\d{4})`).FindAllSubmatch(f.Body, -1) {
		if string(m[1]) == "0000" {
			t.Errorf("feed has %s; want no year 0", m[0])
		}
	}
	for _, p := range interopParsers {
		t.Run(p.name, func(t *testing.T) {
			argv, why := p.command(ctx)
			if why != "" {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is required in CI: %s", p.name, why)
				}
				t.Skipf("%s not available: %s", p.name, why)
			}
			got := interopRun(t, exec.CommandContext(ctx, argv[0], argv[1:]...), f.Body)
			for _, e := range got.Errors {
				t.Errorf("parser error: %s", e)
			}
			if len(got.Events) != accepted {
				t.Errorf("%s read %d events; want %d", p.name, len(got.Events), accepted)
			}
			for _, e := range got.Events {
				if e.Start == "" || e.End == "" {
					t.Errorf("%s read %q with start %q, end %q; want both", p.name, e.Summary, e.Start, e.End)
				}
			}
			if t.Failed() {
				t.Logf("feed:\n%s", f.Body)
			}
		})
	}
}
