package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// bookings are three bookings of a channel, as its feed lists them.
var bookings = []string{
	vevent("UID:b1@channel", "DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261204", "SUMMARY:Reserved"),
	vevent("UID:b2@channel", "DTSTART;VALUE=DATE:20261210", "DTEND;VALUE=DATE:20261212", "SUMMARY:Reserved"),
	vevent("UID:b3@channel", "DTSTART;VALUE=DATE:20261220", "DTEND;VALUE=DATE:20261227", "SUMMARY:Reserved"),
}

// serve answers every request with status, contentType and body.
func (u *upstream) serve(status int, contentType, body string) {
	u.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
}

// imported returns a harness whose calendar imported feedBody, and the
// change cursor after that import.
func imported(t *testing.T, o harnessOpts, feedBody string) (*harness, *upstream, *store.Calendar, store.ChangePos) {
	t.Helper()
	up := newUpstream(t, "")
	h := newHarness(t, o)
	cal := h.calendar(up.URL+"/cal.ics", 0)
	up.serveFeed(feedBody, "", "")
	if res := h.poll(cal); res.Status != StatusChanged || res.Err != nil {
		t.Fatalf("initial import = %s, %v; want changed", res.Status, res.Err)
	}
	_, cursor := h.changesSince(cal, store.ChangePos{})
	return h, up, cal, cursor
}

func keys(m map[string]*store.Event) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHostileBodies serves bodies that a broken upstream answers with
// status 200 in place of a calendar of three bookings: none may delete a
// booking. Each is a failed poll with its reason in lastError and one
// calendar.sync.failed — except the valid empty calendar, which is held.
func TestHostileBodies(t *testing.T) {
	t.Parallel()
	const head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
	tests := []struct {
		name, contentType, body string
		wantError               string // in lastError; "" for none
		wantChanges             []string
	}{
		{"garbage lines", "text/calendar", head + "this is garbage from a broken proxy\r\n<html>oops</html>\r\nEND:VCALENDAR\r\n",
			"line 4: malformed iCalendar", []string{"sync.failed"}},
		{"HTML inside VCALENDAR", "text/calendar", head + "<!DOCTYPE html>\r\n<html><body>502 Bad Gateway</body></html>\r\nEND:VCALENDAR\r\n",
			"line 4: malformed iCalendar", []string{"sync.failed"}},
		{"mismatched BEGIN/END names", "text/calendar", head + bookings[0] + "BEGIN:VJOURJAL\r\nUID:j\r\nEND:VJGURNAL\r\nEND:VCALENDAR\r\n",
			"line 12: malformed iCalendar: END:VJGURNAL does not match BEGIN:VJOURJAL", []string{"sync.failed"}},
		{"stresstest-like content", "text/calendar", "BEGIN:VCALENDAR\r\nACTION:AUDIO\r\nATTENDEE;ROLE=CHAIR:Mailto:A@example.com\r\n" +
			"Sorry, I cannot change this meeting time\r\nDESCRIPTION:x\r\nEND:VCALENDAR\r\n",
			"line 4: malformed iCalendar", []string{"sync.failed"}},
		{"HTML with status 200", "text/html", "<!DOCTYPE html>\n<html><body>Please log in</body></html>\n",
			"HTML or XML instead of iCalendar", []string{"sync.failed"}},
		{"JSON error body", "application/json", `{"error":"rate limited","retry":60}`,
			"not an iCalendar stream", []string{"sync.failed"}},
		{"half-garbled calendar", "text/calendar", head + bookings[0] + bookings[1] + "BEGIN:VEVENT\r\nUID:b3@channel\r\nDTSTA\x00\x00\r\n\x00\x00\x00\r\nEND:VCALENDAR\r\n",
			"malformed iCalendar", []string{"sync.failed"}},
		{"truncated inside a VEVENT", "text/calendar", head + bookings[0] + "BEGIN:VEVENT\r\nUID:b2@channel\r\nDTSTART;VALUE=DATE:2026",
			"truncated input", []string{"sync.failed"}},
		{"valid empty VCALENDAR", "text/calendar", head + "END:VCALENDAR\r\n", "", []string{"sync.held"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, up, cal, cursor := imported(t, harnessOpts{}, feed(bookings...))
			up.serve(http.StatusOK, tt.contentType, tt.body)
			res := h.poll(cal)
			if got := keys(h.events(cal)); !reflect.DeepEqual(got, []string{"b1@channel", "b2@channel", "b3@channel"}) {
				t.Errorf("events left = %q; want all three bookings", got)
			}
			got := h.get(cal).Import
			if tt.wantError == "" {
				if got.LastError != "" || res.Status == StatusError {
					t.Errorf("poll = %s, lastError %q; want no error", res.Status, got.LastError)
				}
			} else if res.Status != StatusError || !strings.Contains(got.LastError, tt.wantError) {
				t.Errorf("poll = %s, lastError %q; want error containing %q", res.Status, got.LastError, tt.wantError)
			}
			if changes, _ := h.changesSince(cal, cursor); !reflect.DeepEqual(changes, tt.wantChanges) {
				t.Errorf("changes = %q; want %q", changes, tt.wantChanges)
			}
			if res.Deleted != 0 {
				t.Errorf("poll deleted %d events; want 0", res.Deleted)
			}
		})
	}
}

// tenBookings returns the feed events of bookings 1..n.
func tenBookings(n int) []string {
	out := make([]string, n)
	for k := range n {
		out[k] = vevent(fmt.Sprintf("UID:n%02d@channel", k+1), fmt.Sprintf("DTSTART;VALUE=DATE:202612%02d", k+1),
			fmt.Sprintf("DTEND;VALUE=DATE:202612%02d", k+2), "SUMMARY:Reserved")
	}
	return out
}

func TestGuardHoldsMassDeletion(t *testing.T) {
	t.Parallel()
	type step struct {
		advance     time.Duration
		events      []string
		wantLeft    int
		wantHeld    int
		wantChanges []string
	}
	deleted := func(from, to int) []string {
		var out []string
		for k := from; k <= to; k++ {
			out = append(out, fmt.Sprintf("event.deleted n%02d@channel", k))
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"drop from 10 to 4, confirmed after the delay", []step{
			{0, tenBookings(4), 10, 6, []string{"sync.held"}},
			{DefaultGuardDelay / 2, tenBookings(4), 10, 6, nil}, // too early to confirm, nothing sent again
			{DefaultGuardDelay / 2, tenBookings(4), 4, 0, deleted(5, 10)},
		}},
		{"drop to empty, still empty after the delay", []step{
			{0, nil, 10, 10, []string{"sync.held"}},
			{DefaultGuardDelay, nil, 0, 0, deleted(1, 10)},
		}},
		{"drop to empty, full again", []step{
			{0, nil, 10, 10, []string{"sync.held"}},
			{DefaultGuardDelay, tenBookings(10), 10, 0, nil},
			{DefaultGuardDelay, tenBookings(10), 10, 0, nil},
		}},
		{"drop to 4, then 7 come back", []step{
			{0, tenBookings(4), 10, 6, []string{"sync.held"}},
			{DefaultGuardDelay, tenBookings(7), 7, 0, deleted(8, 10)},
		}},
		{"a few deletes are applied at once", []step{
			{0, tenBookings(6), 6, 0, deleted(7, 10)},
		}},
		{"one delete of two is held", []step{
			{0, tenBookings(10)[1:2], 10, 9, []string{"sync.held"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, up, cal, cursor := imported(t, harnessOpts{}, feed(tenBookings(10)...))
			for k, s := range tt.steps {
				h.clock.Advance(s.advance)
				up.serveFeed(feed(s.events...), "", "")
				res := h.poll(cal)
				if res.Err != nil {
					t.Fatalf("step %d: poll error %v", k, res.Err)
				}
				if n := len(h.events(cal)); n != s.wantLeft {
					t.Errorf("step %d: %d events left; want %d", k, n, s.wantLeft)
				}
				st := h.get(cal).Import
				held := 0
				if st.Held != nil {
					held = len(st.Held.Events)
					if st.Held.Reason == "" || st.Held.Since.IsZero() {
						t.Errorf("step %d: held = %+v; want a reason and a time", k, st.Held)
					}
					if due := st.Held.Since.Add(DefaultGuardDelay); st.NextPollAt.After(due) {
						t.Errorf("step %d: next poll %v; want by the end of the delay %v", k, st.NextPollAt, due)
					}
				}
				if held != s.wantHeld || res.Held != s.wantHeld {
					t.Errorf("step %d: %d held (result %d); want %d", k, held, res.Held, s.wantHeld)
				}
				if st.LastError != "" {
					t.Errorf("step %d: lastError %q; want none", k, st.LastError)
				}
				var changes []string
				changes, cursor = h.changesSince(cal, cursor)
				if !reflect.DeepEqual(changes, s.wantChanges) {
					t.Errorf("step %d: changes = %q; want %q", k, changes, s.wantChanges)
				}
			}
		})
	}
}

func TestGuardDisabled(t *testing.T) {
	t.Parallel()
	h, up, cal, cursor := imported(t, harnessOpts{}, feed(bookings...))
	h.imp.cfg.Guard.Disabled = true
	up.serveFeed(feed(), "", "")
	if res := h.poll(cal); res.Deleted != 3 || res.Held != 0 {
		t.Errorf("poll with the guard off = %+v; want 3 deleted, none held", res)
	}
	changes, _ := h.changesSince(cal, cursor)
	if len(changes) != 3 || slices.Contains(changes, "sync.held") {
		t.Errorf("changes = %q; want three deletes", changes)
	}
}

func TestGuardHoldSurvivesNotModified(t *testing.T) {
	t.Parallel()
	h, up, cal, _ := imported(t, harnessOpts{}, feed(bookings...))
	up.serveFeed(feed(), `"empty"`, "")
	h.poll(cal)
	h.clock.Advance(DefaultGuardDelay)
	// The confirming fetch must get a body, not a 304 for the ETag it
	// holds, and the unchanged body must not be skipped by its hash.
	if res := h.poll(cal); res.Deleted != 3 {
		t.Errorf("confirming poll = %+v; want 3 deleted", res)
	}
	if got := up.lastHeader().Get("If-None-Match"); got != "" {
		t.Errorf("confirming fetch sent If-None-Match %q; want none", got)
	}
}

func TestConfirmHeld(t *testing.T) {
	t.Parallel()
	h, up, cal, cursor := imported(t, harnessOpts{}, feed(bookings...))
	ctx := context.Background()
	if _, err := h.imp.ConfirmHeld(ctx, cal.AccountID, cal.ID); !errors.Is(err, ErrNothingHeld) {
		t.Errorf("ConfirmHeld without a hold = %v; want ErrNothingHeld", err)
	}
	up.serveFeed(feed(bookings[0]), "", "")
	h.poll(cal)
	res, err := h.imp.ConfirmHeld(ctx, cal.AccountID, cal.ID)
	if err != nil || res.Deleted != 2 || res.Calendar.Import.Held != nil || res.Calendar.Import.EventCount != 1 {
		t.Fatalf("ConfirmHeld = %+v, %v; want 2 deleted and no hold", res, err)
	}
	changes, _ := h.changesSince(cal, cursor)
	if want := []string{"sync.held", "event.deleted b2@channel", "event.deleted b3@channel"}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes = %q; want %q", changes, want)
	}
	if got := h.get(cal).Import; got.Held != nil || got.EventCount != 1 {
		t.Errorf("stored state = %+v; want no hold and 1 event", got)
	}
}

// TestUnrepresentableEvent checks that an event calhook cannot store is
// skipped with a warning while the rest of the feed syncs, and that a poll
// without it clears the warning.
func TestUnrepresentableEvent(t *testing.T) {
	t.Parallel()
	far := vevent("UID:far@channel", "DTSTART;TZID=America/New_York:99991231T220000", "DTEND;TZID=America/New_York:99991231T230000")
	zero := vevent("UID:zero@channel", "DTSTART:00000101T000000Z", "DTEND:00000101T010000Z")
	h, up, cal, _ := imported(t, harnessOpts{}, feed(bookings[0]))
	up.serveFeed(feed(bookings[0], far, bookings[1], zero), "", "")
	res := h.poll(cal)
	if res.Status != StatusChanged || res.Created != 1 {
		t.Errorf("poll = %+v; want changed with b2 created", res)
	}
	st := h.get(cal).Import
	if st.LastError != "" || st.LastSyncAt.IsZero() {
		t.Errorf("lastError %q, lastSyncAt %v; want a successful poll", st.LastError, st.LastSyncAt)
	}
	if st.Skipped == nil || st.Skipped.Count != 2 || len(st.Skipped.Events) != 2 ||
		st.Skipped.Events[0].UID != "far@channel" || !strings.Contains(st.Skipped.Events[0].Reason, "10000-01-01T03:00:00Z is outside") ||
		st.Skipped.Events[1].UID != "zero@channel" {
		t.Errorf("skipped = %+v; want far and zero with reasons", st.Skipped)
	}
	if got := keys(h.events(cal)); !reflect.DeepEqual(got, []string{"b1@channel", "b2@channel"}) {
		t.Errorf("events = %q; want b1 and b2", got)
	}

	// A stored event that moves out of range is kept, not deleted: the
	// feed still lists it.
	moved := vevent("UID:b2@channel", "DTSTART;TZID=America/New_York:99991231T220000", "DTEND;TZID=America/New_York:99991231T230000")
	up.serveFeed(feed(bookings[0], moved), "", "")
	h.poll(cal)
	if got := keys(h.events(cal)); !reflect.DeepEqual(got, []string{"b1@channel", "b2@channel"}) {
		t.Errorf("events after b2 moved out of range = %q; want both kept", got)
	}

	up.serveFeed(feed(bookings[0], bookings[1]), "", "")
	h.poll(cal)
	if st := h.get(cal).Import; st.Skipped != nil || st.LastError != "" {
		t.Errorf("after a feed without them: skipped %+v, lastError %q; want none", st.Skipped, st.LastError)
	}
}

// TestStoppedPollIsRecorded makes the database itself refuse a poll's
// write (a trigger in the real SQLite file): the poll is recorded as failed
// with lastError and calendar.sync.failed, the lease ends, and a
// sync?wait=true caller gets the outcome instead of waiting.
func TestStoppedPollIsRecorded(t *testing.T) {
	t.Parallel()
	h, up, cal, cursor := imported(t, harnessOpts{realClock: true}, feed(bookings...))
	raw, err := sql.Open("sqlite", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.uid = 'poison@channel'
		BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END`); err != nil {
		t.Fatal(err)
	}
	poison := vevent("UID:poison@channel", "DTSTART:20261230T100000Z", "DTEND:20261230T110000Z")
	up.serveFeed(feed(append(slices.Clone(bookings), poison)...), "", "")
	ctx := context.Background()
	if err := h.imp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.imp.Stop(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := h.imp.SyncWait(wctx, cal.AccountID, cal.ID)
	if err != nil {
		t.Fatalf("SyncWait: %v", err)
	}
	if res.Status != StatusError || res.Err == nil || !strings.Contains(res.Err.Error(), "refused by the test trigger") {
		t.Errorf("SyncWait = %+v; want an error naming the refused write", res)
	}
	st := h.get(cal).Import
	// The tenant reads that calhook failed, not the database's words.
	if st.LastError != internalPollError || st.Failures != 1 {
		t.Errorf("lastError %q, failures %d; want %q recorded", st.LastError, st.Failures, internalPollError)
	}
	if changes, _ := h.changesSince(cal, cursor); !reflect.DeepEqual(changes, []string{"sync.failed"}) {
		t.Errorf("changes = %q; want one sync.failed", changes)
	}
	if got := keys(h.events(cal)); len(got) != 3 {
		t.Errorf("events = %q; want the three bookings", got)
	}
}

// TestGuardHoldIsStored checks that a hold lives in the database, not in
// the importer: an importer started afresh (another node, or after a
// restart) confirms the hold another one started.
func TestGuardHoldIsStored(t *testing.T) {
	t.Parallel()
	h, up, cal, cursor := imported(t, harnessOpts{}, feed(bookings...))
	up.serveFeed(feed(), "", "")
	h.poll(cal)
	h.imp = New(h.imp.cfg) // a fresh importer on the same database
	h.clock.Advance(DefaultGuardDelay)
	if res := h.poll(cal); res.Deleted != 3 {
		t.Errorf("poll by a fresh importer after the delay = %+v; want the 3 held deletes applied", res)
	}
	changes, _ := h.changesSince(cal, cursor)
	want := []string{"sync.held", "event.deleted b1@channel", "event.deleted b2@channel", "event.deleted b3@channel"}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("changes = %q; want %q", changes, want)
	}
}
