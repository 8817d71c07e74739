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

// feedEvent is an event of a feed as a poll holds it from the parse to
// the write: the fields of a store.Event that come from the feed, with
// its text copied into one string of its own, so that the feed body can
// go before the writes begin. A store.Event is made of it only for the
// chunk being written (storeEvent): a big import thus holds about 150
// bytes an event besides its text, not a store.Event and its Extra map.
type feedEvent struct {
	// text holds the event's strings one after the other, in the order
	// of the text* constants and then the values of extra; ends[k] is
	// where the k-th ends.
	text string
	ends [nText]uint32
	// extra lists the X- properties as name, value pairs; the names are
	// interned, the values are in text.
	extra   []string
	exDates []time.Time
	// start and end are Unix seconds: the parser's times are whole
	// seconds, and the store's are UTC.
	start, end int64
	sequence   int
	// timeZone is the zone as stored: "" for all-day events, else the
	// IANA name or "UTC"; interned.
	timeZone string
	status   uint8 // index in statuses
	allDay   bool
}

// The strings of a feedEvent's text.
const (
	textUID = iota
	textRecurrenceID
	textSummary
	textDescription
	textLocation
	textRRule
	textRDates // the RDATE value kept in Extra[rdateKey]; "" if none
	nText
)

// statuses are the values of store.Event.Status, by feedEvent.status.
var statuses = [...]string{store.StatusConfirmed, store.StatusTentative, store.StatusCancelled}

func (f *feedEvent) str(k int) string {
	from := uint32(0)
	if k > 0 {
		from = f.ends[k-1]
	}
	return f.text[from:f.ends[k]]
}

func (f *feedEvent) uid() string          { return f.str(textUID) }
func (f *feedEvent) recurrenceID() string { return f.str(textRecurrenceID) }
func (f *feedEvent) key() eventKey        { return eventKey{f.uid(), f.recurrenceID()} }
func (f *feedEvent) startTime() time.Time { return time.Unix(f.start, 0).UTC() }
func (f *feedEvent) endTime() time.Time   { return time.Unix(f.end, 0).UTC() }

// newFeedEvent maps a parsed VEVENT onto the fields of a store.Event. All-day
// dates become midnight UTC (the store's convention); times become UTC
// instants shown in the event's zone. names interns zone and property
// names, which repeat from event to event.
func newFeedEvent(ev *ical.Event, names map[string]string) feedEvent {
	f := feedEvent{allDay: ev.AllDay, sequence: ev.Sequence}
	switch status(ev.Status) {
	case store.StatusTentative:
		f.status = 1
	case store.StatusCancelled:
		f.status = 2
	}
	tz := ev.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	conv := utc
	if ev.AllDay {
		conv = date
		tz = ""
	}
	f.timeZone = intern(names, tz)
	start, end := conv(ev.Start), conv(ev.End)
	if end.Before(start) {
		end = start
	}
	f.start, f.end = start.Unix(), end.Unix()
	if len(ev.ExDates) > 0 {
		f.exDates = make([]time.Time, len(ev.ExDates))
		for i, t := range ev.ExDates {
			f.exDates[i] = conv(t)
		}
		slices.SortFunc(f.exDates, time.Time.Compare)
		f.exDates = slices.CompactFunc(f.exDates, time.Time.Equal)
		if n := len(f.exDates); n > calendar.MaxExDates {
			// Keep the latest: a dropped EXDATE brings an occurrence
			// back, which shows a date busy rather than free, and the
			// dates still to come matter most.
			f.exDates = slices.Clone(f.exDates[n-calendar.MaxExDates:])
		} else {
			f.exDates = slices.Clip(f.exDates)
		}
	}
	var rdates string
	if len(ev.RDates) > 0 {
		rdates = formatDates(ev.RDates, ev.AllDay)
	}
	strs := [nText]string{ev.UID, ev.RecurrenceID, ev.Summary, ev.Description, ev.Location, ev.RRule, rdates}
	n := 0
	for _, v := range strs {
		n += len(v)
	}
	for _, v := range ev.Extra {
		n += len(v)
	}
	var b strings.Builder
	b.Grow(n)
	for k, v := range strs {
		b.WriteString(v)
		f.ends[k] = uint32(b.Len())
	}
	if len(ev.Extra) > 0 {
		f.extra = make([]string, 0, 2*len(ev.Extra))
		for name, v := range ev.Extra {
			b.WriteString(v)
			f.extra = append(f.extra, intern(names, name), "") // the value once text is complete
		}
	}
	f.text = b.String()
	at := int(f.ends[nText-1])
	for k := 1; k < len(f.extra); k += 2 {
		v := ev.Extra[f.extra[k-1]]
		f.extra[k], at = f.text[at:at+len(v)], at+len(v)
	}
	return f
}

// intern returns the copy of s held in names, adding one.
func intern(names map[string]string, s string) string {
	if v, ok := names[s]; ok {
		return v
	}
	v := strings.Clone(s)
	names[v] = v
	return v
}

// storeEvent returns f as an event of calendar c, without id, times or
// metadata.
func (f *feedEvent) storeEvent(c *store.Calendar) *store.Event {
	e := &store.Event{
		AccountID: c.AccountID, CalendarID: c.ID,
		UID: f.uid(), RecurrenceID: f.recurrenceID(),
		Summary: f.str(textSummary), Description: f.str(textDescription), Location: f.str(textLocation),
		Start: f.startTime(), End: f.endTime(),
		AllDay: f.allDay, TimeZone: f.timeZone, Status: statuses[f.status],
		RRule: f.str(textRRule), ExDates: f.exDates, Sequence: f.sequence,
	}
	rdates := f.str(textRDates)
	if len(f.extra) > 0 || rdates != "" {
		e.Extra = make(map[string]string, len(f.extra)/2+1)
		for k := 0; k < len(f.extra); k += 2 {
			e.Extra[f.extra[k]] = f.extra[k+1]
		}
		if rdates != "" {
			e.Extra[rdateKey] = rdates
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

// sameContent reports whether a stored event and a parsed one agree on
// the fields that matter to their consumers: summary, description,
// location, start, end, all-day, status, RRULE, EXDATEs, RDATEs and
// SEQUENCE — the event's fingerprint. DTSTAMP, LAST-MODIFIED, CREATED,
// property order and X- properties are left out, so feeds that rewrite
// them on every fetch produce no change. The zone counts only for
// recurring events, where it moves the occurrences across daylight saving
// time; for a single event only the instants matter. Comparing the fields
// directly is what hashing them would decide, without the hashing.
func sameContent(a *store.Event, b *feedEvent) bool {
	return a.Summary == b.str(textSummary) && a.Description == b.str(textDescription) &&
		a.Location == b.str(textLocation) && a.Start.Equal(b.startTime()) && a.End.Equal(b.endTime()) &&
		a.AllDay == b.allDay && a.Status == statuses[b.status] &&
		a.RRule == b.str(textRRule) && (a.RRule == "" || a.TimeZone == b.timeZone) &&
		slices.EqualFunc(a.ExDates, b.exDates, time.Time.Equal) && a.Extra[rdateKey] == b.str(textRDates) &&
		a.Sequence == b.sequence
}

// diff is what turns the stored events into the parsed ones. The events
// to write are made (storeCreates, storeUpdates) when they are written.
type diff struct {
	create []*feedEvent
	update []update
	delete []*store.Event
	now    time.Time // when the poll ended: the created and updated times
}

// update is a parsed event that replaces a stored one.
type update struct {
	ev   *feedEvent
	prev *store.Event
}

func (d *diff) empty() bool { return len(d.create)+len(d.update)+len(d.delete) == 0 }

// storeCreates returns the events of c to create for fs, with new ids.
func (d *diff) storeCreates(c *store.Calendar, fs []*feedEvent) []*store.Event {
	if len(fs) == 0 {
		return nil
	}
	out := make([]*store.Event, len(fs))
	for k, f := range fs {
		e := f.storeEvent(c)
		e.ID, e.CreatedAt, e.UpdatedAt = id.Sorted("evt"), d.now, d.now
		out[k] = e
	}
	return out
}

// storeUpdates returns the events of c to update for us: each keeps its
// stored id, creation time and metadata.
func (d *diff) storeUpdates(c *store.Calendar, us []update) []*store.Event {
	if len(us) == 0 {
		return nil
	}
	out := make([]*store.Event, len(us))
	for k, u := range us {
		e := u.ev.storeEvent(c)
		e.ID, e.Seq, e.CreatedAt, e.UpdatedAt, e.Metadata = u.prev.ID, u.prev.Seq, u.prev.CreatedAt, d.now, u.prev.Metadata
		out[k] = e
	}
	return out
}

type eventKey struct{ uid, recurrenceID string }

// diffEvents matches parsed events with stored ones by (UID,
// RECURRENCE-ID) and compares their content (sameContent). Results are
// in feed order (creates, updates) and stored order (deletes), so equal
// inputs give equal outputs. parsed is left as it is, so the same events
// can be diffed again after a conflict.
//
// Events listed in keep (the feed has them but they were skipped) are never
// deleted: the feed did not drop them.
func diffEvents(stored []*store.Event, parsed []feedEvent, keep map[eventKey]bool, now time.Time) *diff {
	old := make(map[eventKey]*store.Event, len(stored))
	for _, e := range stored {
		old[eventKey{e.UID, e.RecurrenceID}] = e
	}
	seen := make(map[eventKey]bool, len(parsed))
	for k := range keep {
		seen[k] = true
	}
	d := &diff{now: now}
	for n := range parsed {
		e := &parsed[n]
		k := e.key()
		if seen[k] {
			continue // the parser keeps one per key; be safe anyway
		}
		seen[k] = true
		prev, ok := old[k]
		if !ok {
			d.create = append(d.create, e)
			continue
		}
		if sameContent(prev, e) {
			continue
		}
		d.update = append(d.update, update{ev: e, prev: prev})
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

// checkEvent reports why e, whose RDATEs are rdates, cannot be stored, or
// nil: an event whose times fall outside calendar.MinTime–MaxTime (years
// 1–9999 in every zone) would break every feed and API answer that
// carries it.
func checkEvent(e *feedEvent, rdates []time.Time) error {
	check := func(what string, t time.Time) error {
		if err := calendar.CheckTimeRange(t); err != nil {
			return fmt.Errorf("%s %w", what, err)
		}
		return nil
	}
	if err := check("start", e.startTime()); err != nil {
		return err
	}
	if err := check("end", e.endTime()); err != nil {
		return err
	}
	for _, t := range e.exDates {
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
