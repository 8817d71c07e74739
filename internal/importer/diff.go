package importer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/ical"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// rdateKey is the Extra key RDATEs are kept under: store.Event has no
// RDATE field, and Extra is rendered back into feeds verbatim.
const rdateKey = "RDATE"

// toEvent maps a parsed VEVENT onto the fields of a store.Event of the
// given calendar. All-day dates become midnight UTC (the store's
// convention); times become UTC instants shown in the event's zone.
func toEvent(ev *ical.Event, cal *store.Calendar) *store.Event {
	e := &store.Event{
		AccountID: cal.AccountID, CalendarID: cal.ID,
		UID: ev.UID, RecurrenceID: ev.RecurrenceID,
		Summary: ev.Summary, Description: ev.Description, Location: ev.Location,
		AllDay: ev.AllDay, TimeZone: ev.TimeZone, Status: status(ev.Status),
		RRule: ev.RRule, Sequence: ev.Sequence,
	}
	if e.TimeZone == "" {
		e.TimeZone = "UTC"
	}
	conv := utc
	if ev.AllDay {
		conv = date
		e.TimeZone = ""
	}
	e.Start, e.End = conv(ev.Start), conv(ev.End)
	if e.End.Before(e.Start) {
		e.End = e.Start
	}
	if len(ev.ExDates) > 0 {
		e.ExDates = make([]time.Time, len(ev.ExDates))
		for i, t := range ev.ExDates {
			e.ExDates[i] = conv(t)
		}
		slices.SortFunc(e.ExDates, time.Time.Compare)
		e.ExDates = slices.CompactFunc(e.ExDates, time.Time.Equal)
		if n := len(e.ExDates); n > calendar.MaxExDates {
			// Keep the latest: a dropped EXDATE brings an occurrence
			// back, which shows a date busy rather than free, and the
			// dates still to come matter most.
			e.ExDates = slices.Clip(e.ExDates[n-calendar.MaxExDates:])
		}
	}
	if len(ev.Extra) > 0 || len(ev.RDates) > 0 {
		e.Extra = make(map[string]string, len(ev.Extra)+1)
		for k, v := range ev.Extra {
			e.Extra[k] = v
		}
		if len(ev.RDates) > 0 {
			e.Extra[rdateKey] = formatDates(ev.RDates, ev.AllDay)
		}
	}
	return e
}

func status(s string) string {
	switch s {
	case store.StatusTentative, store.StatusCancelled:
		return s
	}
	return store.StatusConfirmed
}

func utc(t time.Time) time.Time { return t.UTC() }

// date returns midnight UTC of t's calendar date in its own zone.
func date(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// formatDates writes RDATE values sorted, in UTC or as dates, so that the
// same set always gives the same string.
func formatDates(ts []time.Time, allDay bool) string {
	vals := make([]string, 0, len(ts))
	for _, t := range ts {
		if allDay {
			vals = append(vals, ical.FormatDate(date(t)))
		} else {
			vals = append(vals, ical.FormatUTC(t))
		}
	}
	slices.Sort(vals)
	return strings.Join(slices.Compact(vals), ",")
}

// sameContent reports whether two versions of an event agree on the
// fields that matter to their consumers: summary, description, location,
// start, end, all-day, status, RRULE, EXDATEs, RDATEs and SEQUENCE — the
// event's fingerprint. DTSTAMP, LAST-MODIFIED, CREATED, property order and
// X- properties are left out, so feeds that rewrite them on every fetch
// produce no change. The zone counts only for recurring events, where it
// moves the occurrences across daylight saving time; for a single event
// only the instants matter. Comparing the fields directly is what hashing
// them would decide, without the hashing.
func sameContent(a, b *store.Event) bool {
	return a.Summary == b.Summary && a.Description == b.Description && a.Location == b.Location &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.AllDay == b.AllDay && a.Status == b.Status &&
		a.RRule == b.RRule && (a.RRule == "" || a.TimeZone == b.TimeZone) &&
		slices.EqualFunc(a.ExDates, b.ExDates, time.Time.Equal) && a.Extra[rdateKey] == b.Extra[rdateKey] &&
		a.Sequence == b.Sequence
}

// diff is what turns the stored events into the parsed ones.
type diff struct {
	create, update, delete []*store.Event
}

func (d *diff) empty() bool { return len(d.create)+len(d.update)+len(d.delete) == 0 }

type eventKey struct{ uid, recurrenceID string }

// diffEvents matches parsed events with stored ones by (UID,
// RECURRENCE-ID) and compares their content (sameContent). Created events get new
// ids; updated ones keep the stored id, creation time and metadata.
// Results are in feed order (creates, updates) and stored order
// (deletes), so equal inputs give equal outputs.
//
// Events listed in keep (the feed has them but they were skipped) are never
// deleted: the feed did not drop them.
//
// It stamps the parsed events it creates or updates in place (id, Seq,
// times, metadata), each field in either case, so the same parsed events
// can be diffed again after a conflict without a copy.
func diffEvents(stored []*store.Event, parsed []*store.Event, keep map[eventKey]bool, now time.Time) *diff {
	old := make(map[eventKey]*store.Event, len(stored))
	for _, e := range stored {
		old[eventKey{e.UID, e.RecurrenceID}] = e
	}
	seen := make(map[eventKey]bool, len(parsed))
	for k := range keep {
		seen[k] = true
	}
	d := &diff{}
	for _, e := range parsed {
		k := eventKey{e.UID, e.RecurrenceID}
		if seen[k] {
			continue // the parser keeps one per key; be safe anyway
		}
		seen[k] = true
		prev, ok := old[k]
		if !ok {
			e.ID, e.Seq, e.CreatedAt, e.UpdatedAt, e.Metadata = id.New("evt"), 0, now, now, nil
			d.create = append(d.create, e)
			continue
		}
		if sameContent(prev, e) {
			continue
		}
		e.ID, e.Seq, e.CreatedAt, e.UpdatedAt, e.Metadata = prev.ID, prev.Seq, prev.CreatedAt, now, prev.Metadata
		d.update = append(d.update, e)
	}
	for _, e := range stored {
		if !seen[eventKey{e.UID, e.RecurrenceID}] {
			d.delete = append(d.delete, e)
		}
	}
	return d
}

// maxSkippedListed bounds the skipped events a calendar lists (all are
// counted).
const maxSkippedListed = 10

// representable splits the parsed events into those calhook can store and
// the skipped ones (listed, and all their keys): an event whose times fall
// outside calendar.MinTime–MaxTime (years 1–9999 in every zone) would
// break every feed and API answer that carries it, so it is left out with
// a reason rather than failing the whole calendar.
func representable(events []*store.Event, rdates [][]time.Time) ([]*store.Event, *store.SkippedEvents, map[eventKey]bool) {
	var (
		ok      = events[:0:0]
		skipped *store.SkippedEvents
		keys    map[eventKey]bool
	)
	for k, e := range events {
		err := checkEvent(e, rdates[k])
		if err == nil {
			ok = append(ok, e)
			continue
		}
		if skipped == nil {
			skipped, keys = &store.SkippedEvents{}, map[eventKey]bool{}
		}
		keys[eventKey{e.UID, e.RecurrenceID}] = true
		skipped.Count++
		if len(skipped.Events) < maxSkippedListed {
			skipped.Events = append(skipped.Events, store.SkippedEvent{
				UID: e.UID, RecurrenceID: e.RecurrenceID, Reason: err.Error(),
			})
		}
	}
	return ok, skipped, keys
}

// checkEvent reports why e cannot be stored, or nil.
func checkEvent(e *store.Event, rdates []time.Time) error {
	check := func(what string, t time.Time) error {
		if err := calendar.CheckTimeRange(t); err != nil {
			return fmt.Errorf("%s %w", what, err)
		}
		return nil
	}
	if err := check("start", e.Start); err != nil {
		return err
	}
	if err := check("end", e.End); err != nil {
		return err
	}
	for _, t := range e.ExDates {
		if err := check("EXDATE", t); err != nil {
			return err
		}
	}
	for _, t := range rdates {
		if err := check("RDATE", t); err != nil {
			return err
		}
	}
	return nil
}
