package feed

import (
	"bytes"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/ical"
	"github.com/calhook/calhook/internal/store"
)

// RenderOptions are the feed-level properties of a rendered calendar.
type RenderOptions struct {
	// ProdID is the PRODID property, e.g. "-//calhook//calhook 1.0//EN".
	ProdID string
	// Name is X-WR-CALNAME.
	Name string
	// TimeZone, when set, is announced as X-WR-TIMEZONE.
	TimeZone string
	// RefreshInterval, when positive, is announced as REFRESH-INTERVAL and
	// X-PUBLISHED-TTL.
	RefreshInterval time.Duration
}

// Render writes events as one VCALENDAR. Cancelled events are left out;
// zoned times carry TZID with a VTIMEZONE for each zone used. The output is
// a pure function of its input, so equal content gives equal bytes.
func Render(w io.Writer, events []*store.Event, opts RenderOptions) error {
	enc := ical.NewEncoder(w)
	zones := zoneCache{}
	writeHeader(enc, opts, zonesUsed(events, zones))
	seen := make(map[string]string, len(events))
	for _, e := range events {
		if e.Status == store.StatusCancelled {
			continue
		}
		writeEvent(enc, e, uniqueUID(seen, e), zones.of(e))
	}
	enc.End("VCALENDAR")
	return enc.Flush()
}

// chunk is the VEVENT of an event as rendered under a published UID: a
// function of the two (see writeEvent).
type chunk struct {
	uid string
	b   []byte
}

// renderChunks renders like Render, into memory, copying the VEVENT of
// each event that prev holds under the same UID instead of writing it
// again. It returns the body and this render's VEVENTs by event, which
// are slices of the body.
func renderChunks(events []*store.Event, opts RenderOptions, prev map[*store.Event]chunk) ([]byte, map[*store.Event]chunk, error) {
	var buf bytes.Buffer
	buf.Grow(int(estimateSize(events)))
	enc := ical.NewEncoder(&buf)
	zones := zoneCache{}
	writeHeader(enc, opts, zonesUsed(events, zones))
	type span struct {
		e        *store.Event
		uid      string
		from, to int
	}
	spans := make([]span, 0, len(events))
	seen := make(map[string]string, len(events))
	for _, e := range events {
		if e.Status == store.StatusCancelled {
			continue
		}
		uid := uniqueUID(seen, e)
		from := enc.Offset()
		if c, ok := prev[e]; ok && c.uid == uid {
			enc.Raw(c.b)
		} else {
			writeEvent(enc, e, uid, zones.of(e))
		}
		spans = append(spans, span{e, uid, from, enc.Offset()})
	}
	enc.End("VCALENDAR")
	if err := enc.Flush(); err != nil {
		return nil, nil, err
	}
	body := buf.Bytes()
	chunks := make(map[*store.Event]chunk, len(spans))
	for _, s := range spans {
		chunks[s.e] = chunk{uid: s.uid, b: body[s.from:s.to:s.to]}
	}
	return body, chunks, nil
}

// writeHeader writes the VCALENDAR's start, its properties and the
// VTIMEZONEs of zones.
func writeHeader(enc *ical.Encoder, opts RenderOptions, zones []zoneRange) {
	enc.Begin("VCALENDAR")
	enc.Prop("VERSION", "2.0")
	enc.Text("PRODID", opts.ProdID)
	enc.Prop("CALSCALE", "GREGORIAN")
	enc.Prop("METHOD", "PUBLISH")
	if opts.Name != "" {
		enc.Text("X-WR-CALNAME", opts.Name)
	}
	if opts.TimeZone != "" {
		enc.Text("X-WR-TIMEZONE", opts.TimeZone)
	}
	if opts.RefreshInterval > 0 {
		d := isoDuration(opts.RefreshInterval)
		enc.Prop("REFRESH-INTERVAL", d, ical.Param{Name: "VALUE", Value: "DURATION"})
		enc.Prop("X-PUBLISHED-TTL", d)
	}
	for _, z := range zones {
		ical.WriteVTimezone(enc, z.loc, z.from, z.to)
	}
}

// uniqueUID returns the UID to publish for e. Two calendars of an account
// may use the same UID; in the all-calendars feed the later one is made
// unique with its calendar id so clients do not merge unrelated events.
func uniqueUID(seen map[string]string, e *store.Event) string {
	uid := e.UID
	if cal, ok := seen[uid]; ok && cal != e.CalendarID {
		uid = e.UID + "-" + e.CalendarID
	}
	seen[uid] = e.CalendarID
	return uid
}

// writeEvent writes e with the UID to publish, its times in loc (see
// zoneCache.of).
func writeEvent(enc *ical.Encoder, e *store.Event, uid string, loc *time.Location) {
	enc.Begin("VEVENT")
	enc.Text("UID", uid)
	enc.Prop("DTSTAMP", ical.FormatUTC(e.UpdatedAt))
	enc.Prop("CREATED", ical.FormatUTC(e.CreatedAt))
	enc.Prop("LAST-MODIFIED", ical.FormatUTC(e.UpdatedAt))
	writeTime(enc, "DTSTART", e.Start, e.AllDay, loc)
	writeTime(enc, "DTEND", e.End, e.AllDay, loc)
	if e.RecurrenceID != "" {
		enc.Prop("RECURRENCE-ID", e.RecurrenceID)
	}
	enc.Text("SUMMARY", e.Summary)
	if e.Location != "" {
		enc.Text("LOCATION", e.Location)
	}
	if e.Description != "" {
		enc.Text("DESCRIPTION", e.Description)
	}
	enc.Prop("STATUS", strings.ToUpper(e.Status))
	enc.Prop("SEQUENCE", strconv.Itoa(e.Sequence))
	if e.RRule != "" {
		enc.Prop("RRULE", e.RRule)
	}
	if len(e.ExDates) > 0 {
		writeTimes(enc, "EXDATE", e.ExDates, e.AllDay, loc)
	}
	for _, k := range sortedKeys(e.Extra) {
		enc.Prop(k, e.Extra[k])
	}
	enc.End("VEVENT")
}

// zoneCache holds the zones of one render by name: time.LoadLocation reads
// and parses the zone's file on every call, which was half the CPU of a
// cold 1,000-event feed.
type zoneCache map[string]*time.Location

// of returns the zone an event's times are written in; nil means UTC with
// a Z suffix (as for a name that is no zone).
func (zc zoneCache) of(e *store.Event) *time.Location {
	if e.AllDay || e.TimeZone == "" || e.TimeZone == "UTC" || e.TimeZone == "Etc/UTC" {
		return nil
	}
	if loc, ok := zc[e.TimeZone]; ok {
		return loc
	}
	loc, err := time.LoadLocation(e.TimeZone)
	if err != nil {
		loc = nil
	}
	zc[e.TimeZone] = loc
	return loc
}

func writeTime(enc *ical.Encoder, name string, t time.Time, allDay bool, loc *time.Location) {
	writeTimes(enc, name, []time.Time{t}, allDay, loc)
}

func writeTimes(enc *ical.Encoder, name string, ts []time.Time, allDay bool, loc *time.Location) {
	vals := make([]string, len(ts))
	switch {
	case allDay:
		for i, t := range ts {
			vals[i] = ical.FormatDate(t.UTC())
		}
		enc.Prop(name, strings.Join(vals, ","), ical.Param{Name: "VALUE", Value: "DATE"})
	case loc == nil:
		for i, t := range ts {
			vals[i] = ical.FormatUTC(t)
		}
		enc.Prop(name, strings.Join(vals, ","))
	default:
		for i, t := range ts {
			vals[i] = ical.FormatLocal(t.In(loc))
		}
		enc.Prop(name, strings.Join(vals, ","), ical.Param{Name: "TZID", Value: loc.String()})
	}
}

type zoneRange struct {
	loc      *time.Location
	from, to time.Time
}

// recurHorizon is how far past its first occurrence a recurring event's
// time zone definition reaches.
const recurHorizon = 20 * 365 * 24 * time.Hour

// zonesUsed returns each zone that events are written in, with the span of
// time its VTIMEZONE must cover, sorted by name.
func zonesUsed(events []*store.Event, zones zoneCache) []zoneRange {
	spans := zoneSpans{}
	for _, e := range events {
		spans.add(e, zones)
	}
	return spans.sorted()
}

// zoneSpans gathers the zones events are written in, by name, with the
// span of time each VTIMEZONE must cover.
type zoneSpans map[string]*zoneRange

// add widens the span of e's zone, if it is written in one, to cover e.
func (zs zoneSpans) add(e *store.Event, zones zoneCache) {
	loc := spannedZone(e, zones)
	if loc == nil {
		return
	}
	from, to := zoneSpan(e)
	z, ok := zs[loc.String()]
	if !ok {
		zs[loc.String()] = &zoneRange{loc: loc, from: from, to: to}
		return
	}
	if from.Before(z.from) {
		z.from = from
	}
	if to.After(z.to) {
		z.to = to
	}
}

// covers reports whether adding e would change nothing: it is cancelled,
// written in no zone, or within its zone's span.
func (zs zoneSpans) covers(e *store.Event, zones zoneCache) bool {
	loc := spannedZone(e, zones)
	if loc == nil {
		return true
	}
	z, ok := zs[loc.String()]
	if !ok {
		return false
	}
	from, to := zoneSpan(e)
	return !from.Before(z.from) && !to.After(z.to)
}

// spannedZone returns the zone whose VTIMEZONE e needs: none for a
// cancelled event (it is not written) or one written in UTC.
func spannedZone(e *store.Event, zones zoneCache) *time.Location {
	if e.Status == store.StatusCancelled {
		return nil
	}
	return zones.of(e)
}

// zoneSpan is the time e's zone definition must cover.
func zoneSpan(e *store.Event) (from, to time.Time) {
	from, to = e.Start, e.End
	if e.RRule != "" {
		to = e.Start.Add(recurHorizon)
	}
	return from, to
}

// sorted returns the spans sorted by zone name.
func (zs zoneSpans) sorted() []zoneRange {
	out := make([]zoneRange, 0, len(zs))
	for _, z := range zs {
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].loc.String() < out[j].loc.String() })
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isoDuration formats d as an RFC 5545 duration such as PT15M or P1D.
func isoDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs%86400 == 0 {
		return "P" + strconv.FormatInt(secs/86400, 10) + "D"
	}
	var b strings.Builder
	b.WriteString("PT")
	if h := secs / 3600; h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "H")
	}
	if m := secs % 3600 / 60; m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "M")
	}
	if s := secs % 60; s > 0 || secs == 0 {
		b.WriteString(strconv.FormatInt(s, 10) + "S")
	}
	return b.String()
}
