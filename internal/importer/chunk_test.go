package importer

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

// numbered returns a feed of n events u0…u(n-1), with the given summary.
func numbered(n int, summary string) string {
	evs := make([]string, n)
	for k := range n {
		evs[k] = vevent(fmt.Sprintf("UID:u%d", k), "DTSTAMP:20261122T150000Z", "SUMMARY:"+summary,
			fmt.Sprintf("DTSTART:202612%02dT100000Z", k%28+1), fmt.Sprintf("DTEND:202612%02dT110000Z", k%28+1))
	}
	return feed(evs...)
}

// TestChunkedImport writes a 10-event import in chunks of 3: every event
// arrives with exactly one change, each chunk is its own write (the
// calendar's version moves once per chunk), and the poll is recorded once.
func TestChunkedImport(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{chunk: 3})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	before := h.version(cal)
	up.serveFeed(numbered(10, "Booked"), `"v1"`, "")
	if res := h.poll(cal); res.Status != StatusChanged || res.Created != 10 {
		t.Fatalf("poll = %s, created %d (%v); want changed, 10", res.Status, res.Created, res.Err)
	}
	if got := h.version(cal) - before; got != 4 {
		t.Errorf("version moved %d times; want 4 (3 chunks of 3, then the last event with the poll)", got)
	}
	changes, _ := h.changesSince(cal, store.ChangePos{})
	if len(changes) != 10 || len(h.events(cal)) != 10 || h.get(cal).Import.ETag != `"v1"` || h.get(cal).Import.EventCount != 10 {
		t.Errorf("after the chunked import: changes %q, %d events, state %+v; want 10 created, 10 events, ETag v1",
			changes, len(h.events(cal)), h.get(cal).Import)
	}
}

// TestChunkedImportResumes stops an import after its first chunk (the
// database refuses the second, as a crash would end it) and checks what
// consumers see: the first chunk's events with their changes, the poll
// recorded as failed without the upstream's validators — so the next
// poll, even of an upstream answering 304 to them, fetches the whole
// feed — and after that poll every event exactly once, with exactly one
// change each.
func TestChunkedImportResumes(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{chunk: 4})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	raw, err := sql.Open("sqlite", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER stop_import BEFORE INSERT ON events WHEN NEW.uid = 'u5'
		BEGIN SELECT RAISE(ABORT, 'the process died here'); END`); err != nil {
		t.Fatal(err)
	}
	up.serveFeed(numbered(10, "Booked"), `"v1"`, "")
	// As the scheduler runs it: a poll that stops is recorded as failed.
	ctx := context.Background()
	if err := h.store.RequestPoll(ctx, cal.AccountID, cal.ID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	claimed, err := h.store.ClaimPolls(ctx, store.ClaimPollsParams{Now: h.clock.Now(), Limit: 1, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimPolls = %v, %v", claimed, err)
	}
	h.imp.poll(ctx, claimed[0])
	got := h.get(cal).Import
	if n := len(h.events(cal)); n != 4 || got.ETag != "" || got.BodyHash != "" {
		t.Fatalf("after the stop: %d events, ETag %q, body hash %q; want the first chunk's 4 and no validators", n, got.ETag, got.BodyHash)
	}
	if _, err := raw.Exec(`DROP TRIGGER stop_import`); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	if res := h.poll(cal); res.Status != StatusChanged || res.Created != 6 {
		t.Fatalf("poll after the stop = %s, created %d (%v); want the 6 missing created", res.Status, res.Created, res.Err)
	}
	changes, _ := h.changesSince(cal, store.ChangePos{})
	var created []string
	for _, ch := range changes {
		if uid, ok := strings.CutPrefix(ch, "event.created "); ok {
			created = append(created, uid)
		}
	}
	slices.Sort(created)
	want := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	if !slices.Equal(created, want) || len(h.events(cal)) != 10 {
		t.Errorf("created changes %q (all changes %q), %d events; want each of %q once", created, changes, len(h.events(cal)), want)
	}
}

// TestEventCap refuses a feed with more events than MaxEvents: the poll
// fails with a clear error and the calendar keeps what it had.
func TestEventCap(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{maxEvents: 5})
	cal := h.calendar(up.URL+"/cal.ics", 0)
	up.serveFeed(numbered(5, "Five"), "", "")
	if res := h.poll(cal); res.Status != StatusChanged || res.Created != 5 {
		t.Fatalf("poll at the cap = %s, created %d (%v); want 5 created", res.Status, res.Created, res.Err)
	}
	_, cursor := h.changesSince(cal, store.ChangePos{})
	up.serveFeed(numbered(6, "Six"), "", "")
	h.clock.Advance(time.Hour)
	res := h.poll(cal)
	want := "the feed has 6 events, more than the 5 an imported calendar may hold"
	if res.Status != StatusError || h.get(cal).Import.LastError != want {
		t.Fatalf("poll over the cap = %s, lastError %q; want error %q", res.Status, h.get(cal).Import.LastError, want)
	}
	for _, e := range h.events(cal) {
		if e.Summary != "Five" {
			t.Errorf("event %s = %q after a refused poll; want it unchanged", e.UID, e.Summary)
		}
	}
	if changes, _ := h.changesSince(cal, cursor); !slices.Equal(changes, []string{"sync.failed"}) {
		t.Errorf("changes of the refused poll = %q; want only sync.failed", changes)
	}
}

// TestImportedExDatesCapped imports a series with 1,500 EXDATEs: the event
// keeps the latest calendar.MaxExDates of them, as the API would allow,
// and the operator's log says so.
func TestImportedExDatesCapped(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{})
	var logs strings.Builder
	h.imp.log = slog.New(slog.NewTextHandler(&logs, nil))
	cal := h.calendar(up.URL+"/cal.ics", 0)
	first := time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)
	props := []string{"UID:daily", "DTSTAMP:20261122T150000Z", "DTSTART:20270101T100000Z", "DTEND:20270101T110000Z", "RRULE:FREQ=DAILY"}
	for k := range 1500 {
		props = append(props, "EXDATE:"+first.AddDate(0, 0, k).Format("20060102T150405Z"))
	}
	up.serveFeed(feed(vevent(props...)), "", "")
	if res := h.poll(cal); res.Status != StatusChanged || res.Created != 1 {
		t.Fatalf("poll = %s, created %d (%v); want the series created", res.Status, res.Created, res.Err)
	}
	e := h.events(cal)["daily"]
	if e == nil || len(e.ExDates) != calendar.MaxExDates {
		t.Fatalf("event = %+v; want %d EXDATEs", e, calendar.MaxExDates)
	}
	if want := first.AddDate(0, 0, 500); !e.ExDates[0].Equal(want) || !e.ExDates[len(e.ExDates)-1].Equal(first.AddDate(0, 0, 1499)) {
		t.Errorf("kept EXDATEs %v … %v; want the latest, from %v", e.ExDates[0], e.ExDates[len(e.ExDates)-1], want)
	}
	if !strings.Contains(logs.String(), "too many EXDATEs") {
		t.Errorf("log = %q; want a warning about the EXDATEs", logs.String())
	}
}

// TestNextChunk checks how the chunk size follows the time each chunk
// held the writer: halved when over the budget, doubled when under half of
// it, within MinChunkSize and ChunkSize.
func TestNextChunk(t *testing.T) {
	t.Parallel()
	const budget = 20 * time.Millisecond
	for _, tt := range []struct {
		n    int
		took time.Duration
		most int
		want int
	}{
		{500, 50 * time.Millisecond, 500, 250},
		{500, 15 * time.Millisecond, 500, 500},
		{500, 5 * time.Millisecond, 500, 500},
		{64, 5 * time.Millisecond, 500, 128},
		{256, 5 * time.Millisecond, 500, 500},
		{40, time.Second, 500, MinChunkSize},
		{MinChunkSize, time.Second, 500, MinChunkSize},
		{3, time.Second, 3, 3},
		{3, time.Millisecond, 3, 3},
	} {
		if got := nextChunk(tt.n, tt.took, budget, tt.most); got != tt.want {
			t.Errorf("nextChunk(%d, %s, %s, %d) = %d; want %d", tt.n, tt.took, budget, tt.most, got, tt.want)
		}
	}
}

// TestChunkSizeCarriesOver checks that a big import starts with the chunk
// size the last one adapted to: with every chunk over ChunkTime, the
// first import of 200 events writes chunks of 64, 32, 32, 32, 32 and the
// last 8 with the poll; the next starts at 32 (six chunks and the poll),
// not at 64 again (five and the poll).
func TestChunkSizeCarriesOver(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "")
	h := newHarness(t, harnessOpts{chunk: 64})
	h.imp.cfg.ChunkTime = time.Nanosecond // every chunk is slow
	cal := h.calendar(up.URL+"/cal.ics", 0)
	for k, want := range []int64{6, 7} {
		before := h.version(cal)
		up.serveFeed(numbered(200, fmt.Sprint("Booked ", k)), fmt.Sprintf(`"v%d"`, k), "")
		if res := h.poll(cal); res.Status != StatusChanged {
			t.Fatalf("poll %d = %s (%v); want changed", k, res.Status, res.Err)
		}
		if got := h.version(cal) - before; got != want {
			t.Errorf("poll %d moved the version %d times; want %d", k, got, want)
		}
		h.clock.Advance(time.Hour)
	}
}
