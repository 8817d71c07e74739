package ical

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// WriteVTimezone writes a VTIMEZONE component for loc, with TZID loc.String(),
// whose STANDARD and DAYLIGHT sub-components describe the UTC offset of loc
// for every instant between from and to: the observance in force at from and
// every transition up to to, as Go's time zone data has them.
//
// When the transitions in the window follow two yearly rules (as in Europe or
// the US today) the output is one STANDARD and one DAYLIGHT with an RRULE;
// otherwise every transition is listed with DTSTART and RDATE. Either way a
// parser maps any local time in the window to the same instant as
// time.Date(…, loc), except local times that fall into a gap or an overlap
// at a transition, which RFC 5545 and Go resolve in their own ways. Outside
// the window the output is only a best guess. If the window lies wholly in
// daylight time, the observances before it back to the last standard time
// are written too, because some parsers (python icalendar) reject a
// VTIMEZONE without a STANDARD.
//
// loc should be a named IANA zone: the TZID is what calendar clients show
// and look up.
func WriteVTimezone(e *Encoder, loc *time.Location, from, to time.Time) {
	if to.Before(from) {
		to = from
	}
	obs := observances(loc, from, to)

	e.Begin("VTIMEZONE")
	e.Text("TZID", loc.String())
	for _, c := range vtimezoneComponents(obs, to) {
		kind := "STANDARD"
		if c.dst {
			kind = "DAYLIGHT"
		}
		e.Begin(kind)
		e.Prop("DTSTART", formatWall(c.onsets[0], c.from))
		switch {
		case c.rrule != "":
			e.Prop("RRULE", c.rrule)
		case len(c.onsets) > 1:
			// The RDATEs repeat DTSTART: ical.js takes a sub-component's
			// onsets from its RDATEs alone when it has any, and RFC 5545
			// counts a duplicate onset once.
			for _, at := range c.onsets {
				e.Prop("RDATE", formatWall(at, c.from))
			}
		}
		e.Text("TZNAME", c.name)
		e.Prop("TZOFFSETFROM", formatOffset(c.from))
		e.Prop("TZOFFSETTO", formatOffset(c.to))
		e.End(kind)
	}
	e.End("VTIMEZONE")
}

// observance is a period during which one UTC offset is in force; onset is
// the transition into it.
type observance struct {
	onset    int64 // Unix seconds of the transition into this observance
	from, to int   // UTC offsets in seconds before and after onset
	name     string
	dst      bool
}

// key identifies the observances that can share one sub-component.
type observanceKey struct {
	from, to int
	name     string
	dst      bool
}

func (o observance) key() observanceKey {
	return observanceKey{from: o.from, to: o.to, name: o.name, dst: o.dst}
}

// noOnset is the DTSTART written for an observance that no known transition
// starts, such as UTC's: the customary 1970-01-01, unless the window starts
// earlier.
var noOnset = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// observances returns the observance in force at from followed by one per
// transition of loc in (from, to].
func observances(loc *time.Location, from, to time.Time) []observance {
	t := from.In(loc)
	first, started := observanceAt(t)
	obs := []observance{first}
	name, off := t.Zone()
	dst := t.IsDST()
	standard := !dst
	for {
		_, end := t.ZoneBounds()
		// ZoneBounds returns a zero end when no transition follows.
		if end.IsZero() || end.After(to) || !end.After(t) {
			break
		}
		n, o := end.Zone()
		d := end.IsDST()
		// The zone data may change zones without changing anything we write.
		if o != off || n != name || d != dst {
			obs = append(obs, observance{onset: end.Unix(), from: off, to: o, name: n, dst: d})
			off, name, dst = o, n, d
			standard = standard || !d
		}
		t = end
	}

	// Python icalendar (through pytz) rejects a VTIMEZONE without STANDARD,
	// and a window in summer would give only a DAYLIGHT: add the
	// observances before the window back to the last standard time.
	for i := 0; !standard && started && i < 8; i++ {
		var prev observance
		prev, started = observanceAt(time.Unix(obs[0].onset-1, 0).In(loc))
		obs = slices.Insert(obs, 0, prev)
		standard = !prev.dst
	}
	return obs
}

// observanceAt returns the observance of t's Location in force at t, and
// whether a transition starts it.
func observanceAt(t time.Time) (observance, bool) {
	name, off := t.Zone()
	o := observance{from: off, to: off, name: name, dst: t.IsDST()}
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		_, o.from = start.Add(-time.Second).Zone()
		o.onset = start.Unix()
		return o, true
	}
	// No transition starts this observance: write the customary
	// 1970-01-01, or the day of t if that is earlier. DTSTART is local time
	// at offset o.from, so convert the wall clock back to an instant.
	wall := noOnset
	if w := wallTime(t.Unix(), off); w.Before(wall) {
		wall = time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC)
	}
	o.onset = wall.Unix() - int64(off)
	return o, false
}

// tzComponent is one STANDARD or DAYLIGHT sub-component.
type tzComponent struct {
	observanceKey
	onsets []int64 // the first is DTSTART; all are RDATEs unless rrule is set
	rrule  string
}

// vtimezoneComponents groups the observances into sub-components, ordered by
// DTSTART. If the transitions follow one yearly rule into standard time and
// one into daylight time, the result is two components with an RRULE each.
func vtimezoneComponents(obs []observance, to time.Time) []tzComponent {
	var comps []tzComponent
	index := make(map[observanceKey]int)
	for _, o := range obs {
		k := o.key()
		i, ok := index[k]
		if !ok {
			i = len(comps)
			index[k] = i
			comps = append(comps, tzComponent{observanceKey: k})
		}
		comps[i].onsets = append(comps[i].onsets, o.onset)
	}

	// A yearly rule needs evidence: two groups, one of them seen at least
	// twice, and both rules reproducing exactly the transitions of the window.
	if len(comps) == 2 && comps[0].dst != comps[1].dst && len(obs) >= 3 {
		r0, ok0 := yearlyRule(comps[0], to.Unix())
		r1, ok1 := yearlyRule(comps[1], to.Unix())
		if ok0 && ok1 {
			comps[0].rrule, comps[1].rrule = r0, r1
		}
	}

	slices.SortFunc(comps, func(a, b tzComponent) int {
		return cmp.Compare(a.onsets[0], b.onsets[0])
	})
	return comps
}

// yearlyRule returns an RRULE such as FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU that,
// starting at the component's first onset, yields exactly its onsets up to
// the Unix time to. It reports false if there is no such rule.
func yearlyRule(c tzComponent, to int64) (string, bool) {
	first := wallTime(c.onsets[0], c.from)
	// Prefer "last weekday of the month", the commonest rule in the zone
	// data; 4SU and -1SU agree on the first year but not on later ones.
	for _, nth := range []int{-1, (first.Day()-1)/7 + 1} {
		if nthWeekday(first.Year(), first.Month(), first.Weekday(), nth) != first.Day() {
			continue
		}
		if slices.Equal(ruleOnsets(first, nth, c.from, to), c.onsets) {
			rule := "FREQ=YEARLY;BYMONTH=" + strconv.Itoa(int(first.Month())) +
				";BYDAY=" + strconv.Itoa(nth) + weekdayCodes[first.Weekday()]
			return rule, true
		}
	}
	return "", false
}

// ruleOnsets returns the onsets, up to the Unix time to, of the yearly rule
// "the nth weekday of first's month at first's clock", where the clock is
// local time at UTC offset off and first is the first occurrence.
func ruleOnsets(first time.Time, nth, off int, to int64) []int64 {
	var onsets []int64
	lastYear := time.Unix(to, 0).UTC().Year() + 1
	for year := first.Year(); year <= lastYear; year++ {
		day := nthWeekday(year, first.Month(), first.Weekday(), nth)
		if day == 0 {
			continue // no 5th such weekday this year
		}
		wall := time.Date(year, first.Month(), day, first.Hour(), first.Minute(), first.Second(), 0, time.UTC)
		at := wall.Unix() - int64(off)
		if at > to {
			return onsets
		}
		onsets = append(onsets, at)
	}
	return onsets
}

// nthWeekday returns the day of month of the nth wd in year and month, the
// last one if nth is -1, or 0 if there is none.
func nthWeekday(year int, month time.Month, wd time.Weekday, nth int) int {
	days := time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if nth < 0 {
		last := time.Date(year, month, days, 0, 0, 0, 0, time.UTC).Weekday()
		return days - (int(last)-int(wd)+7)%7
	}
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC).Weekday()
	day := 1 + (int(wd)-int(first)+7)%7 + (nth-1)*7
	if day > days {
		return 0
	}
	return day
}

var weekdayCodes = [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

// wallTime returns the wall clock at UTC offset off of the Unix time at, as a
// time.Time in UTC.
func wallTime(at int64, off int) time.Time {
	return time.Unix(at+int64(off), 0).UTC()
}

// formatWall formats the Unix time at as local time at UTC offset off, the
// form of DTSTART and RDATE in a VTIMEZONE.
func formatWall(at int64, off int) string {
	return wallTime(at, off).Format(layoutLocal)
}

// formatOffset formats a UTC offset in seconds as RFC 5545 UTC-OFFSET:
// +HHMM, or +HHMMSS when the seconds are not zero.
func formatOffset(off int) string {
	b := make([]byte, 0, 7)
	if off < 0 {
		b = append(b, '-')
		off = -off
	} else {
		b = append(b, '+') // RFC 5545 forbids -0000 and Google rejects 0000
	}
	h, m, s := off/3600, off/60%60, off%60
	b = append(b, byte('0'+h/10), byte('0'+h%10), byte('0'+m/10), byte('0'+m%10))
	if s != 0 {
		b = append(b, byte('0'+s/10), byte('0'+s%10))
	}
	return string(b)
}
