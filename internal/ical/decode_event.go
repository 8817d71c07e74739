package ical

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// calendar turns the parsed components into a Calendar, passing each
// event to emit as ParseEvents describes.
func (p *parser) calendar(emit EventFunc) *Calendar {
	cal := &Calendar{}
	// TZIDs are scoped to their VCALENDAR, but a stream that splits
	// VTIMEZONEs and VEVENTs over several calendars still resolves.
	global := map[string]*component{}
	for _, c := range p.cals {
		for _, ch := range c.children {
			if ch.name == "VTIMEZONE" {
				if id := unquote(ch.value("TZID")); id != "" && global[id] == nil {
					global[id] = ch
				}
			}
		}
	}
	// Events go calendar by calendar: those of a VCALENDAR nested in
	// another come before the rest of the outer one's.
	spans := p.events
	if !slices.IsSortedFunc(spans, func(a, b eventSpan) int { return cmp.Compare(a.cal, b.cal) }) {
		spans = slices.Clone(spans)
		slices.SortStableFunc(spans, func(a, b eventSpan) int { return cmp.Compare(a.cal, b.cal) })
	}
	d := dedupe{p: p, seen: make(map[dedupeKey]int, len(spans)), kept: make([]keptEvent, 0, len(spans)), emit: emit}
	// One VEVENT at a time is read back into comp.
	comp := &component{name: "VEVENT"}
	var params []Param
	// The lines read again were counted as repaired when first read.
	defer func(n int) { p.lex.repaired = n }(p.lex.repaired)
	for ci, c := range p.cals {
		if cal.Name == "" {
			cal.Name = UnescapeText(strings.TrimSpace(c.value("X-WR-CALNAME")))
		}
		if cal.TimeZone == "" {
			cal.TimeZone = strings.TrimSpace(c.value("X-WR-TIMEZONE"))
		}
		if cal.ProdID == "" {
			cal.ProdID = UnescapeText(strings.TrimSpace(c.value("PRODID")))
		}
		z := newZoneResolver(p, c, global)
		for len(spans) > 0 && int(spans[0].cal) == ci {
			sp := spans[0]
			spans = spans[1:]
			comp.line, comp.props, params = int(sp.line), comp.props[:0], params[:0]
			for _, r := range p.runs[sp.first:sp.end] {
				p.lex.seek(r)
				for range r.n {
					text, line, _, _ := p.lex.next()
					mark := len(params)
					var name, value string
					name, params, value, _ = parseContentLine(text, params)
					comp.props = append(comp.props, contentLine{
						name: name, params: params[mark:len(params):len(params)], value: value, line: line,
					})
				}
			}
			// The event goes to emit from a field of p, not from a
			// variable that would escape to the heap once per event.
			var meta eventMeta
			var ok bool
			p.ev, meta, ok = p.event(comp, z)
			m := p.ev.Extra
			if ok {
				d.add(&p.ev, meta)
			}
			if m != nil && len(m) <= maxReusedExtra {
				clear(m)
				p.extra = m
			}
		}
	}
	for _, w := range p.late {
		if len(p.warnings) < maxWarnings {
			p.warnings = append(p.warnings, w)
		} else {
			p.dropped++
		}
	}
	p.dropped += p.lateDropped
	if p.dropped > 0 {
		p.warnings = append(p.warnings, strconv.Itoa(p.dropped)+" more warnings not shown")
	}
	cal.Warnings = p.warnings
	return cal
}

// maxReusedExtra is the most X- properties of an event whose Extra map
// the next event reuses; a bigger one (clearing costs its capacity) is
// left to the collector.
const maxReusedExtra = 16

// eventMeta is what dedupe needs besides the Event.
type eventMeta struct {
	line    int
	dtstamp time.Time
}

type dedupeKey struct{ uid, rid string }

// dedupe keeps one event per (UID, RECURRENCE-ID): the one with the higher
// SEQUENCE, then the later DTSTAMP, then the later in the stream. Events
// pass through it one by one; each is emitted under its key's index in
// the result, first when the key is new, again when it replaces the one
// kept so far.
type dedupe struct {
	p       *parser
	seen    map[dedupeKey]int
	derived map[dedupeKey]int
	kept    []keptEvent // by index in the result
	emit    EventFunc
}

// keptEvent is what dedupe remembers of the event kept under an index.
type keptEvent struct {
	eventMeta
	sequence int
}

func (d *dedupe) add(ev *Event, m eventMeta) {
	k := dedupeKey{ev.UID, ev.RecurrenceID}
	if ev.UIDDerived {
		// Events without UID that look alike are still different
		// events: number them in stream order.
		if d.derived == nil {
			d.derived = map[dedupeKey]int{}
		}
		if n := d.derived[k]; n > 0 {
			ev.UID += "-" + strconv.Itoa(n+1)
		}
		d.derived[k]++
		k.uid = ev.UID
	}
	j, dup := d.seen[k]
	if !dup {
		d.seen[k] = len(d.kept)
		d.kept = append(d.kept, keptEvent{eventMeta: m, sequence: ev.Sequence})
		d.emit(len(d.kept)-1, cap(d.kept), ev)
		return
	}
	prev := d.kept[j]
	newer := ev.Sequence > prev.sequence ||
		ev.Sequence == prev.sequence && !m.dtstamp.Before(prev.dtstamp)
	kept, lost := prev.line, m.line
	if newer {
		d.kept[j] = keptEvent{eventMeta: m, sequence: ev.Sequence}
		d.emit(j, cap(d.kept), ev)
		kept, lost = m.line, prev.line
	}
	what := "UID " + strconv.Quote(ev.UID)
	if ev.RecurrenceID != "" {
		what += " RECURRENCE-ID " + ev.RecurrenceID
	}
	d.p.lateWarnf(lost, "duplicate %s: kept the VEVENT on line %d (higher SEQUENCE or later DTSTAMP)", what, kept)
}

// event converts one VEVENT. ok is false when it is unusable (no DTSTART
// or one that cannot be read); the reason is a warning.
func (p *parser) event(c *component, z *zoneResolver) (ev Event, meta eventMeta, ok bool) {
	meta.line = c.line
	var dtstart, dtend, duration, rid *contentLine
	var uid string
	var haveUID, haveRRule bool
	ev.Status = "confirmed"
	for i := range c.props {
		pr := &c.props[i]
		switch pr.name {
		case "UID":
			if !haveUID {
				uid, haveUID = strings.TrimSpace(pr.value), true
			}
		case "DTSTART":
			if dtstart == nil {
				dtstart = pr
			}
		case "DTEND":
			if dtend == nil {
				dtend = pr
			}
		case "DURATION":
			if duration == nil {
				duration = pr
			}
		case "RECURRENCE-ID":
			if rid == nil {
				rid = pr
			}
		case "SUMMARY":
			ev.Summary = UnescapeText(pr.value)
		case "DESCRIPTION":
			ev.Description = UnescapeText(pr.value)
		case "LOCATION":
			ev.Location = UnescapeText(pr.value)
		case "STATUS":
			switch upperASCII(strings.TrimSpace(pr.value)) {
			case "TENTATIVE":
				ev.Status = "tentative"
			case "CANCELLED", "CANCELED":
				ev.Status = "cancelled"
			}
		case "RRULE":
			if haveRRule {
				p.warnf(pr.line, "second RRULE in VEVENT ignored")
				continue
			}
			haveRRule = true
			ev.RRule = cleanRRule(pr.value)
			if !strings.Contains(upperASCII(ev.RRule), "FREQ=") {
				p.warnf(pr.line, "RRULE without FREQ ignored: %q", snippet(pr.value))
				ev.RRule = ""
			}
		case "EXDATE":
			ev.ExDates = p.dateList(ev.ExDates, pr, z)
		case "RDATE":
			ev.RDates = p.dateList(ev.RDates, pr, z)
		case "SEQUENCE":
			n, err := strconv.Atoi(strings.TrimSpace(pr.value))
			if err != nil {
				p.warnf(pr.line, "invalid SEQUENCE %q, using 0", snippet(pr.value))
				continue
			}
			ev.Sequence = n
		case "DTSTAMP":
			if v, err := parseDateTime(pr.value); err == nil && v.utc {
				meta.dtstamp = v.t
			}
		default:
			if strings.HasPrefix(pr.name, "X-") {
				if ev.Extra == nil {
					ev.Extra, p.extra = p.extra, nil
					if ev.Extra == nil {
						ev.Extra = make(map[string]string)
					}
				}
				if _, dup := ev.Extra[pr.name]; !dup {
					ev.Extra[pr.name] = pr.value
				}
			}
		}
	}
	if dtstart == nil {
		p.warnf(c.line, "VEVENT without DTSTART skipped%s", uidNote(uid))
		return ev, meta, false
	}
	start, err := z.when(dtstart)
	if err != nil {
		p.warnf(dtstart.line, "VEVENT with unreadable DTSTART skipped%s: %v", uidNote(uid), err)
		return ev, meta, false
	}
	ev.Start, ev.AllDay, ev.Floating = start.t, start.date, start.floating
	ev.TimeZone = start.zone

	switch {
	case dtend != nil:
		end, err := z.when(dtend)
		if err != nil {
			p.warnf(dtend.line, "unreadable DTEND ignored: %v", err)
			ev.End = defaultEnd(ev)
			break
		}
		ev.End = end.t
		if end.date != ev.AllDay {
			// DTSTART;VALUE=DATE with a date-time DTEND or the other way
			// round: go by DTSTART.
			if ev.AllDay {
				ev.End = z.floatingDate(end.t)
				if !ev.End.After(ev.Start) {
					ev.End = ev.Start.AddDate(0, 0, 1)
				}
			}
		}
	case duration != nil:
		d, err := parseDuration(duration.value)
		if err != nil {
			p.warnf(duration.line, "unreadable DURATION ignored: %v", err)
			ev.End = defaultEnd(ev)
			break
		}
		ev.End = d.addTo(ev.Start)
	default:
		ev.End = defaultEnd(ev)
	}
	if ev.End.Before(ev.Start) {
		p.warnf(c.line, "event ends before it starts%s; end set to start", uidNote(uid))
		ev.End = ev.Start
	}

	if rid != nil {
		r, err := z.when(rid)
		if err != nil {
			p.warnf(rid.line, "unreadable RECURRENCE-ID %q kept as written", snippet(rid.value))
			ev.RecurrenceID = strings.ToUpper(strings.TrimSpace(rid.value))
		} else if r.date {
			ev.RecurrenceID = FormatDate(r.t)
		} else {
			ev.RecurrenceID = FormatUTC(r.t)
		}
	}

	if uid == "" {
		ev.UID, ev.UIDDerived = deriveUID(dtstart, dtend, duration, rid, c.value("SUMMARY"), c.value("RRULE")), true
	} else {
		ev.UID = uid
	}
	return ev, meta, true
}

// defaultEnd is the end of an event without DTEND and DURATION: one day
// after an all-day start, else the start (RFC 5545 section 3.6.1).
func defaultEnd(ev Event) time.Time {
	if ev.AllDay {
		return ev.Start.AddDate(0, 0, 1)
	}
	return ev.Start
}

func uidNote(uid string) string {
	if uid == "" {
		return ""
	}
	return " (UID " + strconv.Quote(snippet(uid)) + ")"
}

// deriveUID returns a stable UID for a VEVENT without one, from the
// properties that identify it: its times, SUMMARY and RRULE. DTSTAMP is
// left out because some feeds rewrite it on every fetch, DESCRIPTION
// because editing a note should update the event, not replace it.
func deriveUID(dtstart, dtend, duration, rid *contentLine, summary, rrule string) string {
	h := sha256.New()
	for _, pr := range []*contentLine{dtstart, dtend, duration, rid} {
		if pr != nil {
			h.Write([]byte(pr.param("TZID")))
			h.Write([]byte{0})
			h.Write([]byte(strings.TrimSpace(pr.value)))
		}
		h.Write([]byte{1})
	}
	h.Write([]byte(summary))
	h.Write([]byte{1})
	h.Write([]byte(rrule))
	return "derived-" + hex.EncodeToString(h.Sum(nil)[:16]) + "@calhook"
}

// cleanRRule removes the white space some producers put into RRULE
// values ("BYDAY=MO, TU") and a repeated "RRULE:" prefix.
func cleanRRule(v string) string {
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, " \t") {
		v = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, v)
	}
	if len(v) > 6 && strings.EqualFold(v[:6], "RRULE:") {
		v = v[6:]
	}
	return v
}

// dateList appends the dates of an EXDATE or RDATE property to dst.
func (p *parser) dateList(dst []time.Time, pr *contentLine, z *zoneResolver) []time.Time {
	period := strings.EqualFold(pr.param("VALUE"), "PERIOD")
	for _, item := range strings.Split(pr.value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if i := strings.IndexByte(item, '/'); i >= 0 || period {
			if i < 0 {
				p.warnf(pr.line, "%s PERIOD without '/' ignored: %q", pr.name, snippet(item))
				continue
			}
			item = item[:i] // a PERIOD: its start is the occurrence
		}
		w, err := z.whenValue(pr, item)
		if err != nil {
			p.warnf(pr.line, "unreadable %s value ignored: %v", pr.name, err)
			continue
		}
		dst = append(dst, w.t)
	}
	return dst
}

// when is a DTSTART, DTEND, RECURRENCE-ID or list item resolved to time.
type when struct {
	t        time.Time
	date     bool   // a DATE: t is midnight in the floating zone
	floating bool   // a DATE-TIME without TZID or Z, or with an unknown TZID
	zone     string // IANA name of t's location, "" if none
}

// dateTime is a DATE or DATE-TIME value as written, before zone lookup.
type dateTime struct {
	t    time.Time // the wall clock, in UTC
	date bool
	utc  bool // ends in Z
}

// parseDateTime reads a DATE (20261201) or DATE-TIME (20261201T150000,
// optionally with Z). It also accepts lower-case t/z, the extended form
// 2026-12-01T15:00:00Z, fractional seconds and a missing seconds field,
// which some producers write.
func parseDateTime(v string) (dateTime, error) {
	s := strings.TrimSpace(v)
	if strings.ContainsAny(s, "-:") && len(s) > 8 {
		s = strings.NewReplacer("-", "", ":", "").Replace(s)
	}
	var dt dateTime
	if len(s) < 8 {
		return dt, errDateTime(v)
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[4:6])
	d, ok3 := digits(s[6:8])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) {
		return dt, errDateTime(v)
	}
	if len(s) == 9 && (s[8] == 'Z' || s[8] == 'z') {
		s = s[:8] // 20210527Z: a date with a stray Z
	}
	if len(s) == 8 {
		dt.t = time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
		dt.date = true
		return dt, nil
	}
	if s[8] != 'T' && s[8] != 't' {
		return dt, errDateTime(v)
	}
	rest := s[9:]
	if n := len(rest); n > 0 && (rest[n-1] == 'Z' || rest[n-1] == 'z') {
		dt.utc = true
		rest = rest[:n-1]
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		if _, ok := digits(rest[i+1:]); !ok {
			return dt, errDateTime(v)
		}
		rest = rest[:i]
	}
	var h, mi, sec int
	var ok bool
	switch len(rest) {
	case 6:
		if sec, ok = digits(rest[4:6]); !ok {
			return dt, errDateTime(v)
		}
		fallthrough
	case 4:
		h, ok1 = digits(rest[0:2])
		mi, ok2 = digits(rest[2:4])
		if !ok1 || !ok2 {
			return dt, errDateTime(v)
		}
	default:
		return dt, errDateTime(v)
	}
	if h > 24 || mi > 59 || sec > 60 || h == 24 && (mi != 0 || sec != 0) {
		return dt, errDateTime(v)
	}
	if sec == 60 {
		sec = 59 // a leap second; time.Time has none
	}
	dt.t = time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	return dt, nil
}

type dateTimeError string

func (e dateTimeError) Error() string { return "invalid date or date-time " + strconv.Quote(string(e)) }

func errDateTime(v string) error { return dateTimeError(snippet(v)) }

// digits parses a run of ASCII digits.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// duration is an RFC 5545 DURATION: days and weeks are nominal (they keep
// the wall clock across DST changes), the rest is exact.
type duration struct {
	neg  bool
	days int
	secs int64
}

func (d duration) addTo(t time.Time) time.Time {
	sign := 1
	if d.neg {
		sign = -1
	}
	return t.AddDate(0, 0, sign*d.days).Add(time.Duration(int64(sign)*d.secs) * time.Second)
}

// parseDuration reads a DURATION value such as P1D, PT1H30M, -P1W or
// P1DT12H.
func parseDuration(v string) (duration, error) {
	s := upperASCII(strings.TrimSpace(v))
	var d duration
	bad := func() (duration, error) { return duration{}, dateTimeError(snippet(v)) }
	if s != "" && (s[0] == '+' || s[0] == '-') {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) < 3 || s[0] != 'P' {
		return bad()
	}
	s = s[1:]
	inTime, sawAny := false, false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad()
			}
			inTime = true
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return bad()
		}
		n, _ := digits(s[:i])
		switch unit := s[i]; {
		case unit == 'W' && !inTime:
			d.days += 7 * n
		case unit == 'D' && !inTime:
			d.days += n
		case unit == 'H' && inTime:
			d.secs += int64(n) * 3600
		case unit == 'M' && inTime:
			d.secs += int64(n) * 60
		case unit == 'S' && inTime:
			d.secs += int64(n)
		default:
			return bad()
		}
		sawAny = true
		s = s[i+1:]
	}
	if !sawAny {
		return bad()
	}
	return d, nil
}
