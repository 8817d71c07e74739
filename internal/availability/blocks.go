package availability

import (
	"cmp"
	"slices"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

// maxOccurrences bounds the occurrences one recurring event expands to
// in one window (a minutely rule over two years would be a million).
const maxOccurrences = 5000

// Rules are how a unit's events block time.
type Rules struct {
	// Zone is the unit's zone: all-day events block from midnight there.
	Zone *time.Location
	// SameDayTurnover lets a stay end on the date the next one begins;
	// without it every block extends to the end of its last day.
	SameDayTurnover bool
	// Horizon is where recurring events stop being expanded.
	Horizon time.Time
}

// RulesOf returns the rules of a unit with the given recurrence horizon.
func RulesOf(u *store.Unit, horizon time.Time) Rules {
	loc, err := calendar.LoadZone(u.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	return Rules{Zone: loc, SameDayTurnover: u.SameDayTurnover, Horizon: horizon}
}

// Block is one stretch of time that one event blocks.
type Block struct {
	// Start and End are the blocked time, absolute, End exclusive.
	Start, End time.Time
	// Event is the row that causes the block: a single event, the series
	// of a recurring one, or an override.
	Event *store.Event
	// OccStart and OccEnd are the occurrence's own times as stored (for
	// all-day events, midnight UTC of the dates).
	OccStart, OccEnd time.Time
}

// Blocks returns the blocks that events cause in [from, to), ordered by
// start, then event id. Confirmed and tentative events block, cancelled
// ones never; all-day events block the nights [start, end) in the rules'
// zone; timed events block [start, end); recurring events block each
// occurrence up to the horizon, without their EXDATEs, with each
// override (RECURRENCE-ID) in place of the occurrence it replaces.
func Blocks(events []*store.Event, r Rules, from, to time.Time) ([]Block, error) {
	type groupKey struct{ calendar, uid string }
	groups := map[groupKey][]*store.Event{}
	var keys []groupKey
	for _, e := range events {
		k := groupKey{e.CalendarID, e.UID}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], e)
	}
	var out []Block
	for _, k := range keys {
		var series *store.Event
		var overrides []*store.Event
		for _, e := range groups[k] {
			if e.RecurrenceID == "" {
				series = e
			} else {
				overrides = append(overrides, e)
			}
		}
		add := func(e *store.Event, start, end time.Time) {
			if b, ok := r.block(e, start, end); ok && b.Start.Before(to) && b.End.After(from) {
				out = append(out, b)
			}
		}
		if series != nil && blocks(series.Status) {
			if series.RRule == "" {
				add(series, series.Start, series.End)
			} else {
				dur := series.End.Sub(series.Start)
				until := to
				if !r.Horizon.IsZero() && r.Horizon.Before(until) {
					until = r.Horizon
				}
				// An occurrence that starts before from may reach into
				// the window; a day's slack covers zone and turnover.
				starts, err := calendar.Occurrences(series, from.Add(-dur-48*time.Hour), until, maxOccurrences)
				if err != nil {
					return nil, err
				}
				for _, s := range starts {
					if overridden(overrides, s, series.AllDay) {
						continue
					}
					add(series, s, s.Add(dur))
				}
			}
		}
		for _, o := range overrides {
			if blocks(o.Status) {
				add(o, o.Start, o.End)
			}
		}
	}
	sortBlocks(out)
	return out, nil
}

// blocks reports whether an event of the status blocks time.
func blocks(status string) bool {
	return status == store.StatusConfirmed || status == store.StatusTentative
}

// overridden reports whether an override replaces the occurrence at s.
func overridden(overrides []*store.Event, s time.Time, allDay bool) bool {
	for _, o := range overrides {
		if r, ok := calendar.RecurrenceStart(o.RecurrenceID); ok && calendar.SameOccurrence(r, s, allDay) {
			return true
		}
	}
	return false
}

// block returns the time an occurrence [start, end) of e blocks.
func (r Rules) block(e *store.Event, start, end time.Time) (Block, bool) {
	b := Block{Event: e, OccStart: start, OccEnd: end}
	if e.AllDay {
		b.Start, b.End = r.midnight(start), r.midnight(end)
		if !r.SameDayTurnover {
			b.End = b.End.In(r.Zone).AddDate(0, 0, 1)
		}
	} else {
		b.Start, b.End = start, end
		if !r.SameDayTurnover {
			local := end.In(r.Zone)
			y, m, d := local.Date()
			if midnight := time.Date(y, m, d, 0, 0, 0, 0, r.Zone); !midnight.Equal(end) {
				b.End = midnight.AddDate(0, 0, 1)
			}
		}
	}
	b.Start, b.End = b.Start.UTC(), b.End.UTC()
	return b, b.End.After(b.Start)
}

// midnight maps an all-day date (stored as midnight UTC) to midnight of
// that date in the unit's zone.
func (r Rules) midnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, r.Zone)
}

func sortBlocks(bs []Block) {
	slices.SortFunc(bs, func(a, b Block) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Event.ID, b.Event.ID)
	})
}

// Interval is a stretch of time, End exclusive.
type Interval struct {
	Start, End time.Time
}

// Busy is a merged stretch of blocked time with the blocks that cause it.
type Busy struct {
	Interval
	Blocks []Block
}

// Merge merges blocks sorted by start into busy intervals (overlapping or
// touching blocks join), and returns them with the free intervals of
// [from, to) between them.
func Merge(bs []Block, from, to time.Time) (busy []Busy, free []Interval) {
	for _, b := range bs {
		if n := len(busy); n > 0 && !b.Start.After(busy[n-1].End) {
			last := &busy[n-1]
			if b.End.After(last.End) {
				last.End = b.End
			}
			last.Blocks = append(last.Blocks, b)
			continue
		}
		busy = append(busy, Busy{Interval: Interval{b.Start, b.End}, Blocks: []Block{b}})
	}
	at := from
	for _, b := range busy {
		if b.Start.After(at) {
			free = append(free, Interval{at, minTime(b.Start, to)})
		}
		if b.End.After(at) {
			at = b.End
		}
	}
	if at.Before(to) {
		free = append(free, Interval{at, to})
	}
	return busy, free
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pair is two overlapping blocks of events that may not overlap, with the
// event that sorts first as a.
type pair struct {
	a, b    Block
	overlap Interval
}

// collide reports whether two blocks' events may not overlap: they come
// from different calendars, or from one native calendar (a channel's own
// export is its business), and are not parts of one recurring event.
func collide(a, b Block, kinds map[string]string) bool {
	if a.Event.CalendarID != b.Event.CalendarID {
		return true
	}
	return kinds[a.Event.CalendarID] == store.KindNative && a.Event.UID != b.Event.UID
}

// addPair records the overlap of a and b in pairs, keeping the earliest
// overlap of each pair of events.
func addPair(pairs map[[2]string]*pair, a, b Block) {
	if a.Event.ID > b.Event.ID {
		a, b = b, a
	}
	ov := Interval{maxTime(a.Start, b.Start), minTime(a.End, b.End)}
	k := [2]string{a.Event.ID, b.Event.ID}
	if p, ok := pairs[k]; ok && !ov.Start.Before(p.overlap.Start) {
		return
	}
	pairs[k] = &pair{a: a, b: b, overlap: ov}
}

// sweep returns every overlapping pair among blocks sorted by start.
func sweep(bs []Block, kinds map[string]string) map[[2]string]*pair {
	pairs := map[[2]string]*pair{}
	var active []Block
	for _, b := range bs {
		keep := active[:0]
		for _, a := range active {
			if a.End.After(b.Start) {
				keep = append(keep, a)
			}
		}
		active = keep
		for _, a := range active {
			if collide(a, b, kinds) {
				addPair(pairs, a, b)
			}
		}
		active = append(active, b)
	}
	return pairs
}

// cross returns the overlapping pairs of one subject block and one other
// block, both sorted by start.
func cross(subject, others []Block, kinds map[string]string) map[[2]string]*pair {
	pairs := map[[2]string]*pair{}
	for _, s := range subject {
		for _, o := range others {
			if !o.Start.Before(s.End) {
				break
			}
			if o.End.After(s.Start) && collide(s, o, kinds) {
				addPair(pairs, s, o)
			}
		}
	}
	return pairs
}
