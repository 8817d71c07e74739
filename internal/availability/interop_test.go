package availability_test

// TestExportInterop has a unit's blocked-dates export feed read by the two
// independent parsers of the feed interop test (test/interop: Mozilla's
// ical.js and Python's icalendar), and checks what they read: one opaque
// event per blocking occurrence of the other calendars, at the right
// times, with no summary, description or location of the source.
//
// Set up the parsers as for internal/feed's TestInterop:
//
//	npm ci --prefix test/interop
//	apt-get install -y python3-icalendar
//
// Without them the test skips, except in CI (CI=true), where it fails.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

var interopDir = filepath.Join("..", "..", "test", "interop")

// parserCommand returns the command of a parser, or why it is missing.
func parserCommand(ctx context.Context, name string) ([]string, string) {
	switch name {
	case "icaljs":
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, "node is not on PATH"
		}
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "ical.js", "package.json")); err != nil {
			return nil, "ical.js is not installed; run: npm ci --prefix test/interop"
		}
		return []string{node, filepath.Join(interopDir, "icaljs.mjs")}, ""
	default:
		python := cmp.Or(os.Getenv("CALHOOK_TEST_PYTHON"), "/usr/bin/python3")
		if out, err := exec.CommandContext(ctx, python, "-c", "import icalendar, dateutil").CombinedOutput(); err != nil {
			return nil, "python icalendar is not installed: " + string(bytes.TrimSpace(out))
		}
		return []string{python, filepath.Join(interopDir, "pyical.py")}, ""
	}
}

type parsedFeed struct {
	Calendar map[string]string `json:"calendar"`
	Events   []struct {
		UID         string `json:"uid"`
		Summary     string `json:"summary"`
		Description string `json:"description"`
		Location    string `json:"location"`
		Status      string `json:"status"`
		AllDay      bool   `json:"allDay"`
		Start       string `json:"start"`
		End         string `json:"end"`
	} `json:"events"`
	Errors []string `json:"errors"`
}

func TestExportInterop(t *testing.T) {
	t.Parallel()
	s := storetest.OpenSQLite(t)
	f := newFixture(t, s, "America/New_York", true)
	f.add(ev{cal: "native", uid: "direct", start: "2027-06-01", end: "2027-06-05"})
	src := f.add(ev{cal: "booking", uid: "timed", start: "2027-03-14T01:30", end: "2027-03-14T04:00", zone: "America/New_York"})
	f.update(src, func(e *store.Event) {
		e.Summary, e.Description, e.Location = "Guest: Zoë \"Z\" Müller", "Door code 4711", "Apt 3, \\ Main St"
	})
	f.add(ev{cal: "vrbo", uid: "weekly", start: "2027-04-05T10:00", end: "2027-04-05T11:00", zone: "Europe/Paris",
		rrule: "FREQ=WEEKLY;COUNT=3", exdates: []string{"2027-04-12T10:00"}})
	f.add(ev{cal: "vrbo", uid: "maybe", start: "2027-05-01", end: "2027-05-02", status: store.StatusTentative})
	f.add(ev{cal: "vrbo", uid: "off", start: "2027-05-03", end: "2027-05-04", status: store.StatusCancelled})
	f.add(ev{cal: "airbnb", uid: "own", start: "2027-07-01", end: "2027-07-03"})
	fd, err := f.svc.ExportFeed(context.Background(), f.acct.ID, f.cals["airbnb"].ID, f.acct.FeedToken)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2027-03-14T06:30:00Z/2027-03-14T08:00:00Z", // 01:30 EST to 04:00 EDT, across the switch
		"2027-04-05T08:00:00Z/2027-04-05T09:00:00Z",
		"2027-04-19T08:00:00Z/2027-04-19T09:00:00Z", // the 12th is an EXDATE
		"2027-05-01/2027-05-02",
		"2027-06-01/2027-06-05",
	}
	for _, name := range []string{"icaljs", "pyicalendar"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			argv, why := parserCommand(t.Context(), name)
			if why != "" {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is required in CI: %s", name, why)
				}
				t.Skipf("%s not available: %s", name, why)
			}
			cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
			var out, errOut bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(fd.Body), &out, &errOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, errOut.Bytes())
			}
			var got parsedFeed
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("decode %s output: %v\n%s", name, err, out.Bytes())
			}
			for _, e := range got.Errors {
				t.Errorf("parser error: %s", e)
			}
			if got.Calendar["x-wr-calname"] != "Beach house (blocked dates)" {
				t.Errorf("x-wr-calname = %q", got.Calendar["x-wr-calname"])
			}
			var times []string
			uids := map[string]bool{}
			for _, e := range got.Events {
				times = append(times, e.Start+"/"+e.End)
				if e.Summary != "Not available" || e.Description != "" || e.Location != "" || e.Status != "CONFIRMED" {
					t.Errorf("event %+v; want an opaque confirmed event", e)
				}
				if uids[e.UID] || !strings.HasSuffix(e.UID, "@blocked.calhook") {
					t.Errorf("uid %q: duplicate or not derived", e.UID)
				}
				uids[e.UID] = true
			}
			slices.Sort(times)
			if !slices.Equal(times, want) {
				t.Errorf("events = %q; want %q\n%s", times, want, fd.Body)
			}
		})
	}
}
