package ical

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// zoneResolver turns TZID parameters into locations for one VCALENDAR. It
// tries, in order: an IANA name (also when written with a vendor prefix
// such as /softwarestudio.org/Olson_20011030_5/America/Chicago, with '_'
// for '/', or in the wrong case); a Windows zone ID ("W. Europe Standard
// Time"); a Windows display name ("(UTC+01:00) Amsterdam, Berlin, …"); the
// feed's own VTIMEZONE (its X-LIC-LOCATION, else its STANDARD and DAYLIGHT
// rules); a UTC offset in the name. A TZID none of these resolve is read as
// floating time, with a warning.
type zoneResolver struct {
	p      *parser
	cal    *component
	defs   map[string]*component // this calendar's VTIMEZONEs, built lazily
	global map[string]*component // every VTIMEZONE of the stream
	cache  map[string]resolvedZone

	floating     *time.Location // for floating times and dates
	floatingName string         // its IANA name, "" for UTC
}

type resolvedZone struct {
	loc  *time.Location // nil: unknown, read as floating
	iana string         // IANA name, "" for UTC or a zone the feed defines
}

func newZoneResolver(p *parser, cal *component, global map[string]*component) *zoneResolver {
	z := &zoneResolver{p: p, cal: cal, global: global, floating: p.opts.DefaultZone}
	z.floatingName = ianaName(z.floating)
	if prop := cal.prop("X-WR-TIMEZONE"); prop != nil {
		id := unquote(strings.TrimSpace(prop.value))
		if id != "" {
			if r := z.resolve(id, prop.line); r.loc != nil {
				z.floating, z.floatingName = r.loc, r.iana
			}
		}
	}
	return z
}

// when resolves the value of a date or date-time property.
func (z *zoneResolver) when(pr *contentLine) (when, error) {
	return z.whenValue(pr, pr.value)
}

// whenValue resolves v, one value of property pr.
func (z *zoneResolver) whenValue(pr *contentLine, v string) (when, error) {
	dt, err := parseDateTime(v)
	if err != nil {
		return when{}, err
	}
	if dt.date || strings.EqualFold(pr.param("VALUE"), "DATE") {
		return when{t: z.floatingDate(dt.t), date: true, zone: z.floatingName}, nil
	}
	if dt.utc {
		return when{t: dt.t}, nil
	}
	tzid := pr.param("TZID")
	if tzid == "" {
		return when{t: inZone(dt.t, z.floating), floating: true, zone: z.floatingName}, nil
	}
	r := z.resolve(tzid, pr.line)
	if r.loc == nil {
		return when{t: inZone(dt.t, z.floating), floating: true, zone: z.floatingName}, nil
	}
	return when{t: inZone(dt.t, r.loc), zone: r.iana}, nil
}

// floatingDate returns midnight of t's date in the floating zone.
func (z *zoneResolver) floatingDate(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, z.floating)
}

// inZone reads the wall clock of wall (a UTC time) in loc.
func inZone(wall time.Time, loc *time.Location) time.Time {
	if loc == time.UTC {
		return wall
	}
	y, m, d := wall.Date()
	h, mi, s := wall.Clock()
	return time.Date(y, m, d, h, mi, s, 0, loc)
}

// resolve looks up a TZID, warning once per TZID about guesses.
func (z *zoneResolver) resolve(tzid string, line int) resolvedZone {
	id := unquote(strings.TrimSpace(tzid))
	if r, ok := z.cache[id]; ok {
		return r
	}
	if z.cache == nil {
		z.cache = make(map[string]resolvedZone)
	}
	r := z.lookup(id, line)
	z.cache[id] = r
	return r
}

func (z *zoneResolver) lookup(id string, line int) resolvedZone {
	if id == "" {
		return resolvedZone{}
	}
	// Each lookup may read zoneinfo files or build a zone: cap them, so
	// that a feed with a new TZID on every event stays cheap.
	if z.p.zoneLookups++; z.p.zoneLookups > maxZoneLookups {
		if z.p.zoneLookups == maxZoneLookups+1 {
			z.p.warnf(line, "more than %d distinct TZIDs: the rest are read as floating", maxZoneLookups)
		}
		return resolvedZone{}
	}
	if loc := ianaLocation(id); loc != nil {
		return resolvedZone{loc: loc, iana: ianaName(loc)}
	}
	if name := windowsZone(id); name != "" {
		if loc := ianaLocation(name); loc != nil {
			return resolvedZone{loc: loc, iana: ianaName(loc)}
		}
	}
	name, off, hasOff := displayZone(id)
	if name != "" {
		if loc := ianaLocation(name); loc != nil {
			return resolvedZone{loc: loc, iana: ianaName(loc)}
		}
	}
	if def := z.def(id); def != nil {
		if loc := ianaLocation(unquote(strings.TrimSpace(def.value("X-LIC-LOCATION")))); loc != nil {
			return resolvedZone{loc: loc, iana: ianaName(loc)}
		}
		loc, problems := vtimezoneLocation(id, def)
		if loc != nil {
			if problems != nil {
				z.p.warnf(def.line, "VTIMEZONE %q partly ignored: %v", snippet(id), problems)
			}
			return resolvedZone{loc: loc}
		}
		z.p.warnf(def.line, "VTIMEZONE %q unusable: %v", snippet(id), problems)
	}
	if !hasOff {
		off, hasOff = offsetInName(id)
	}
	if hasOff {
		z.p.warnf(line, "unknown TZID %q: using its UTC offset %s all year", snippet(id), formatOffset(off))
		return resolvedZone{loc: time.FixedZone(id, off)}
	}
	z.p.warnf(line, "unknown TZID %q without VTIMEZONE: times read as floating (%s)", snippet(id), z.floating)
	return resolvedZone{}
}

// def returns the VTIMEZONE with TZID id: this calendar's, else any of the
// stream's.
func (z *zoneResolver) def(id string) *component {
	if z.defs == nil {
		z.defs = make(map[string]*component)
		for _, ch := range z.cal.children {
			if ch.name == "VTIMEZONE" {
				if tz := unquote(strings.TrimSpace(ch.value("TZID"))); z.defs[tz] == nil {
					z.defs[tz] = ch
				}
			}
		}
	}
	if d := z.defs[id]; d != nil {
		return d
	}
	return z.global[id]
}

// unquote removes the double quotes some producers put around TZIDs.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return strings.Trim(s, `"`)
}

// ianaName returns loc's name if it is an IANA zone, "" for UTC and for
// zones built from a feed's VTIMEZONE or a fixed offset.
func ianaName(loc *time.Location) string {
	if loc == nil || loc == time.UTC {
		return ""
	}
	switch name := loc.String(); name {
	case "UTC", "Local", "":
		return ""
	default:
		if loadIANA(name) != nil {
			return name
		}
		return ""
	}
}

// ianaCache holds the zones time.LoadLocation found, by the name they were
// loaded under: loading reads and parses a file each time. Failed names are
// not cached, so a hostile feed cannot grow the map.
var ianaCache sync.Map // string → *time.Location

// loadIANA is time.LoadLocation for plausible zone names only.
func loadIANA(name string) *time.Location {
	if v, ok := ianaCache.Load(name); ok {
		return v.(*time.Location)
	}
	if len(name) == 0 || len(name) > 64 || name == "Local" {
		return nil
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isNameByte(c) || c == '/' || c == '+') {
			return nil
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	ianaCache.Store(name, loc)
	return loc
}

// ianaLocation finds the IANA zone id names, if any, allowing for a vendor
// prefix, '_' written for '/', and the wrong case.
func ianaLocation(id string) *time.Location {
	switch strings.ToUpper(id) {
	case "UTC", "GMT", "Z", "ETC/UTC", "ETC/GMT", "UT", "ZULU", "COORDINATED UNIVERSAL TIME", "GREENWICH MEAN TIME":
		return time.UTC
	}
	if loc := loadIANA(id); loc != nil {
		return loc
	}
	// /softwarestudio.org/Olson_20011030_5/America/Chicago,
	// /mozilla.org/20050126_1/Europe/Berlin: try the last segments.
	if strings.Contains(id, "/") {
		parts := strings.Split(strings.Trim(id, "/"), "/")
		for n := min(3, len(parts)-1); n >= 1; n-- {
			if loc := loadIANA(strings.Join(parts[len(parts)-n:], "/")); loc != nil {
				return loc
			}
		}
	} else if i := strings.IndexByte(id, '_'); i > 0 {
		// Europe_London, America_New_York.
		if loc := loadIANA(id[:i] + "/" + id[i+1:]); loc != nil {
			return loc
		}
	}
	if t := titleCase(id); t != id {
		return loadIANA(t)
	}
	return nil
}

// titleCase writes each word of a zone name with a capital initial:
// europe/lisbon → Europe/Lisbon.
func titleCase(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			if up {
				b[i] = c - ('a' - 'A')
			}
			up = false
		case 'A' <= c && c <= 'Z':
			if !up {
				b[i] = c + ('a' - 'A')
			}
			up = false
		default:
			up = c == '/' || c == '_' || c == '-'
		}
	}
	return string(b)
}

// offsetInName reads a UTC offset from names such as "UTC+01:00",
// "GMT-0500" or "(UTC+05:30) Some City".
func offsetInName(id string) (int, bool) {
	s := strings.TrimSpace(id)
	s = strings.TrimPrefix(s, "(")
	if len(s) < 3 {
		return 0, false
	}
	switch strings.ToUpper(s[:3]) {
	case "UTC", "GMT":
		s = strings.TrimSpace(s[3:])
	default:
		return 0, false
	}
	if end := strings.IndexAny(s, ") "); end >= 0 {
		s = s[:end]
	}
	if s == "" {
		return 0, true
	}
	return parseOffsetLoose(s)
}

// parseOffsetLoose reads ±H, ±HH, ±HHMM, ±HH:MM or ±HH.MM.
func parseOffsetLoose(s string) (int, bool) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	s = strings.NewReplacer(":", "", ".", "").Replace(s[1:])
	var h, m int
	var ok bool
	switch len(s) {
	case 1, 2:
		h, ok = digits(s)
	case 3:
		var ok2 bool
		h, ok = digits(s[:1])
		m, ok2 = digits(s[1:])
		ok = ok && ok2
	case 4:
		var ok2 bool
		h, ok = digits(s[:2])
		m, ok2 = digits(s[2:])
		ok = ok && ok2
	}
	if !ok || h > 14 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

// parseUTCOffset reads a UTC-OFFSET value: ±HHMM or ±HHMMSS; a missing sign
// or a colon is tolerated.
func parseUTCOffset(v string) (int, error) {
	s := strings.TrimSpace(v)
	sign := 1
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	s = strings.ReplaceAll(s, ":", "")
	if len(s) != 4 && len(s) != 6 {
		return 0, fmt.Errorf("invalid UTC offset %q", snippet(v))
	}
	n, ok := digits(s)
	if !ok {
		return 0, fmt.Errorf("invalid UTC offset %q", snippet(v))
	}
	if len(s) == 4 {
		n *= 100
	}
	h, m, sec := n/10000, n/100%100, n%100
	if h > 23 || m > 59 || sec > 59 {
		return 0, fmt.Errorf("invalid UTC offset %q", snippet(v))
	}
	return sign * (h*3600 + m*60 + sec), nil
}

// Bounds of the transitions computed from a VTIMEZONE's rules. Outlook
// starts its rules in 1601; the years before 1900 only cost time.
const (
	tzFirstYear = 1900
	tzLastYear  = 2100
	tzMaxTrans  = 2000
)

// transition is a change of UTC offset at a UTC instant.
type transition struct {
	at   int64 // Unix seconds
	from int   // UTC offset before
	zone zoneType
}

type zoneType struct {
	off  int
	dst  bool
	name string
}

// vtimezoneLocation builds a time.Location from a VTIMEZONE: every onset
// of every STANDARD and DAYLIGHT observance (DTSTART, yearly RRULE, RDATE)
// between 1900 and 2100 becomes a transition of a TZif zone, so that the
// location works with time.Date and recurrence expansion like a real one.
// problems lists what was ignored; loc is nil when nothing was usable.
func vtimezoneLocation(id string, c *component) (loc *time.Location, problems error) {
	var (
		trans []transition
		errs  []error
	)
	for _, ob := range c.children {
		t, err := observanceTransitions(ob)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on line %d: %w", ob.name, ob.line, err))
		}
		trans = append(trans, t...)
		if len(trans) > tzMaxTrans {
			return nil, errors.New("too many transitions")
		}
		problems = errors.Join(errs...)
	}
	if len(trans) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, errors.New("no STANDARD or DAYLIGHT observance")
	}
	slices.SortStableFunc(trans, func(a, b transition) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	trans = slices.CompactFunc(trans, func(a, b transition) bool { return a.at == b.at })
	constant := true
	for _, t := range trans {
		if t.zone.off != trans[0].zone.off {
			constant = false
			break
		}
	}
	if constant {
		return time.FixedZone(id, trans[0].zone.off), problems
	}
	// Before the first onset, the offset it changes from applies.
	first := trans[0]
	initial := zoneType{off: first.from, name: formatOffset(first.from)}
	if first.from == first.zone.off {
		initial.name = first.zone.name
	}
	loc, err := time.LoadLocationFromTZData(id, buildTZif(initial, trans))
	if err != nil {
		return nil, fmt.Errorf("building the zone: %w", err)
	}
	return loc, problems
}

// observanceTransitions lists the onsets of one STANDARD or DAYLIGHT.
func observanceTransitions(ob *component) ([]transition, error) {
	to, err := parseUTCOffset(ob.value("TZOFFSETTO"))
	if err != nil {
		return nil, fmt.Errorf("TZOFFSETTO: %w", err)
	}
	from, err := parseUTCOffset(ob.value("TZOFFSETFROM"))
	if err != nil {
		from = to
	}
	start, err := parseDateTime(ob.value("DTSTART"))
	if err != nil {
		return nil, fmt.Errorf("DTSTART: %w", err)
	}
	zt := zoneType{off: to, dst: ob.name == "DAYLIGHT", name: abbrevFor(ob.value("TZNAME"), to)}
	var onsets []time.Time
	if start.t.Year() >= tzFirstYear {
		onsets = append(onsets, start.t)
	}
	var ruleErr error
	if rule := ob.value("RRULE"); rule != "" {
		more, err := yearlyOnsets(cleanRRule(rule), start.t, from)
		if err != nil {
			ruleErr = fmt.Errorf("RRULE: %w", err)
		}
		onsets = append(onsets, more...)
	}
	for i := range ob.props {
		pr := &ob.props[i]
		if pr.name != "RDATE" {
			continue
		}
		for _, item := range strings.Split(pr.value, ",") {
			if i := strings.IndexByte(item, '/'); i >= 0 {
				item = item[:i]
			}
			dt, err := parseDateTime(item)
			if err != nil {
				continue
			}
			w := dt.t
			if dt.date {
				w = time.Date(w.Year(), w.Month(), w.Day(), start.t.Hour(), start.t.Minute(), start.t.Second(), 0, time.UTC)
			}
			if dt.utc {
				w = w.Add(time.Duration(from) * time.Second) // back to wall time
			}
			onsets = append(onsets, w)
		}
	}
	if len(onsets) == 0 && start.t.Year() < tzFirstYear {
		// An observance from 1601 without rules: in force since then.
		onsets = append(onsets, time.Date(tzFirstYear, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	out := make([]transition, 0, len(onsets))
	for _, w := range onsets {
		out = append(out, transition{at: w.Unix() - int64(from), from: from, zone: zt})
	}
	return out, ruleErr
}

// yearlyOnsets expands the RRULE of a VTIMEZONE observance: FREQ=YEARLY
// with BYMONTH, BYDAY (e.g. -1SU, 2SU) and/or BYMONTHDAY, bounded by UNTIL,
// COUNT or tzLastYear. As in Windows, BYDAY=5SU means the last Sunday.
func yearlyOnsets(rule string, start time.Time, from int) ([]time.Time, error) {
	var (
		months    []int
		days      []int
		weekdays  []nthDay
		count     int
		interval  = 1
		until     time.Time
		haveUntil bool
	)
	for _, part := range strings.Split(upperASCII(rule), ";") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "FREQ":
			if v != "YEARLY" {
				return nil, fmt.Errorf("FREQ=%s not supported in VTIMEZONE", snippet(v))
			}
		case "BYMONTH":
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 12 {
					return nil, fmt.Errorf("invalid BYMONTH %q", snippet(v))
				}
				months = append(months, n)
			}
		case "BYMONTHDAY":
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.Atoi(s)
				if err != nil || n == 0 || n < -31 || n > 31 {
					return nil, fmt.Errorf("invalid BYMONTHDAY %q", snippet(v))
				}
				days = append(days, n)
			}
		case "BYDAY":
			for _, s := range strings.Split(v, ",") {
				d, ok := parseNthDay(s)
				if !ok {
					return nil, fmt.Errorf("invalid BYDAY %q", snippet(v))
				}
				weekdays = append(weekdays, d)
			}
		case "COUNT":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("invalid COUNT %q", snippet(v))
			}
			count = n
		case "INTERVAL":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("invalid INTERVAL %q", snippet(v))
			}
			interval = n
		case "UNTIL":
			dt, err := parseDateTime(v)
			if err != nil {
				return nil, fmt.Errorf("invalid UNTIL %q", snippet(v))
			}
			until, haveUntil = dt.t, true
			if dt.utc {
				until = until.Add(time.Duration(from) * time.Second) // as wall time
			}
			if dt.date {
				until = until.Add(24*time.Hour - time.Second)
			}
		}
	}
	if len(months) == 0 {
		months = []int{int(start.Month())}
	}
	slices.Sort(months)
	var out []time.Time
	n := 0
	y := start.Year()
	if y < tzFirstYear && count == 0 {
		// Skip the centuries before tzFirstYear (Outlook starts in 1601).
		y += (tzFirstYear - y + interval - 1) / interval * interval
	}
	for ; y <= tzLastYear; y += interval {
		for _, m := range months {
			for _, d := range monthDays(y, time.Month(m), weekdays, days, start.Day()) {
				w := time.Date(y, time.Month(m), d, start.Hour(), start.Minute(), start.Second(), 0, time.UTC)
				if w.Before(start) {
					continue
				}
				if haveUntil && w.After(until) {
					return out, nil
				}
				n++
				if count > 0 && n > count {
					return out, nil
				}
				if y >= tzFirstYear {
					out = append(out, w)
					if len(out) > tzMaxTrans {
						return nil, errors.New("too many onsets")
					}
				}
			}
		}
	}
	return out, nil
}

// nthDay is one BYDAY entry: the nth weekday of the month (n < 0 counts
// from the end; 0 means every such weekday).
type nthDay struct {
	n  int
	wd time.Weekday
}

func parseNthDay(s string) (nthDay, bool) {
	if len(s) < 2 {
		return nthDay{}, false
	}
	code := s[len(s)-2:]
	wd := slices.Index(weekdayCodes[:], code)
	if wd < 0 {
		return nthDay{}, false
	}
	d := nthDay{wd: time.Weekday(wd)}
	if num := s[:len(s)-2]; num != "" {
		n, err := strconv.Atoi(num)
		if err != nil || n == 0 || n < -5 || n > 5 {
			return nthDay{}, false
		}
		d.n = n
	}
	return d, true
}

// monthDays returns the days of month m of year y that the rule selects,
// ascending.
func monthDays(y int, m time.Month, weekdays []nthDay, monthdays []int, startDay int) []int {
	last := daysIn(m, y)
	dayOf := func(md int) int {
		if md < 0 {
			return last + 1 + md
		}
		return md
	}
	var out []int
	switch {
	case len(weekdays) > 0:
		for _, w := range weekdays {
			if w.n == 0 {
				for d := 1; d <= last; d++ {
					if time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday() == w.wd {
						out = append(out, d)
					}
				}
				continue
			}
			if d := weekdayOfMonth(y, m, w.wd, w.n); d > 0 {
				out = append(out, d)
			}
		}
		if len(monthdays) > 0 {
			out = slices.DeleteFunc(out, func(d int) bool {
				return !slices.ContainsFunc(monthdays, func(md int) bool { return dayOf(md) == d })
			})
		}
	case len(monthdays) > 0:
		for _, md := range monthdays {
			if d := dayOf(md); d >= 1 && d <= last {
				out = append(out, d)
			}
		}
	default:
		if startDay <= last {
			out = append(out, startDay)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// weekdayOfMonth returns the day of the nth wd of a month (n < 0 from the
// end), or 0 if there is none; n == 5 falls back to the last one, as
// Windows means it.
func weekdayOfMonth(y int, m time.Month, wd time.Weekday, n int) int {
	last := daysIn(m, y)
	if n > 0 {
		first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()
		d := 1 + (int(wd)-int(first)+7)%7 + (n-1)*7
		if d > last {
			if n == 5 {
				return d - 7
			}
			return 0
		}
		return d
	}
	lastWd := time.Date(y, m, last, 0, 0, 0, 0, time.UTC).Weekday()
	d := last - (int(lastWd)-int(wd)+7)%7 + (n+1)*7
	if d < 1 {
		return 0
	}
	return d
}

// abbrevFor returns a usable zone abbreviation: TZNAME if it is short and
// plain, else the offset, e.g. "+0100".
func abbrevFor(tzname string, off int) string {
	s := strings.TrimSpace(tzname)
	ok := s != "" && len(s) <= 8
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-'
	}
	if ok {
		return s
	}
	return formatOffset(off)
}

// buildTZif encodes a zone as TZif version 2 data (RFC 8536) for
// time.LoadLocationFromTZData: an empty version 1 block, then the 64-bit
// block. Type 0 is initial and used by no transition, which makes Go apply
// it before the first transition.
func buildTZif(initial zoneType, trans []transition) []byte {
	types := []zoneType{initial}
	index := map[zoneType]byte{}
	idx := make([]byte, len(trans))
	for i, t := range trans {
		k, ok := index[t.zone]
		if !ok {
			if len(types) >= 250 {
				k = byte(len(types) - 1) // absurd input; keep the data valid
			} else {
				k = byte(len(types))
				types = append(types, t.zone)
				index[t.zone] = k
			}
		}
		idx[i] = k
	}
	var chars []byte
	abbr := make([]byte, len(types))
	for i, t := range types {
		at := strings.Index(string(chars), t.name+"\x00")
		if at < 0 {
			at = len(chars)
			chars = append(chars, t.name...)
			chars = append(chars, 0)
		}
		if at > 255 {
			at = 0
		}
		abbr[i] = byte(at)
	}
	header := func(b []byte, timecnt, typecnt, charcnt int) []byte {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []int{0, 0, 0, timecnt, typecnt, charcnt} {
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
		return b
	}
	b := make([]byte, 0, 100+9*len(trans)+6*len(types)+len(chars))
	b = header(b, 0, 0, 0)
	b = header(b, len(trans), len(types), len(chars))
	for _, t := range trans {
		b = binary.BigEndian.AppendUint64(b, uint64(t.at))
	}
	b = append(b, idx...)
	for i, t := range types {
		b = binary.BigEndian.AppendUint32(b, uint32(int32(t.off)))
		dst := byte(0)
		if t.dst {
			dst = 1
		}
		b = append(b, dst, abbr[i])
	}
	b = append(b, chars...)
	return append(b, '\n', '\n')
}
