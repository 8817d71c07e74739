package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

// Bounds of the Units screens.
const (
	unitsPageSize = 50
	// timelineDays is the window of a unit's timeline, and timelineStep
	// how far Earlier and Later move it (a week stays in view).
	timelineDays = 35
	timelineStep = 28
	// maxLanes is how many overlapping bars a timeline row stacks; more
	// share the last lane.
	maxLanes = 4
	// openConflictsShown and resolvedShown bound the conflict lists.
	openConflictsShown = 100
	resolvedShown      = 10
)

// unitRow is a unit as the list shows it.
type unitRow struct {
	Unit      *store.Unit
	Calendars int
	Open      int
}

type unitsData struct {
	Units []unitRow
	// More links to the next page.
	More string
}

func (h *Handler) unitsPage(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	units, err := h.cfg.Units.ListUnits(ctx, store.ListUnitsParams{AccountID: v.accountID(), Page: store.Page{After: after, Limit: unitsPageSize + 1}})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &unitsData{}
	if len(units) > unitsPageSize {
		units = units[:unitsPageSize]
		d.More = "?after=" + strconv.FormatInt(units[len(units)-1].Seq, 10)
	}
	ids := make([]string, len(units))
	for i, u := range units {
		ids[i] = u.ID
	}
	cals, err := h.cfg.Units.UnitCalendars(ctx, v.accountID(), ids)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	perUnit := map[string]int{}
	for _, c := range cals {
		perUnit[c.UnitID]++
	}
	open := map[string]int{}
	if len(ids) > 0 {
		if open, err = h.cfg.Reader.OpenConflictCounts(ctx, v.accountID(), ids); err != nil {
			h.renderError(w, r, v, err)
			return
		}
	}
	for _, u := range units {
		d.Units = append(d.Units, unitRow{Unit: u, Calendars: perUnit[u.ID], Open: open[u.ID]})
	}
	h.render(w, r, v, http.StatusOK, "units", &pageData{Title: "Units", Nav: "units", Data: d})
}

// unitInput reads the unit form.
func unitInput(r *http.Request) availability.UnitInput {
	name := r.PostFormValue("name")
	turnover := r.PostFormValue("sameDayTurnover") == "on"
	in := availability.UnitInput{Name: &name, SameDayTurnover: &turnover}
	if z := strings.TrimSpace(r.PostFormValue("timeZone")); z != "" {
		in.TimeZone = &z
	}
	return in
}

func (h *Handler) createUnit(w http.ResponseWriter, r *http.Request, v *view) {
	u, err := h.cfg.Units.CreateUnit(r.Context(), v.accountID(), unitInput(r))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/units/"+url.PathEscape(u.ID), "created")
}

func (h *Handler) updateUnit(w http.ResponseWriter, r *http.Request, v *view) {
	u, err := h.cfg.Units.UpdateUnit(r.Context(), v.accountID(), r.PathValue("unitId"), unitInput(r))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/units/"+url.PathEscape(u.ID), "saved")
}

func (h *Handler) deleteUnit(w http.ResponseWriter, r *http.Request, v *view) {
	if r.PostFormValue("confirm") != "yes" {
		h.renderError(w, r, v, &pageError{http.StatusBadRequest, "Not confirmed",
			"Tick the box that confirms the unit's conflicts and export feeds end, then delete."})
		return
	}
	if err := h.cfg.Units.DeleteUnit(r.Context(), v.accountID(), r.PathValue("unitId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/units", "deleted")
}

func (h *Handler) attachCalendar(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	u, err := h.cfg.Units.Unit(ctx, v.accountID(), r.PathValue("unitId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	calID := r.PostFormValue("calendarId")
	if calID == "" {
		h.renderError(w, r, v, &pageError{http.StatusBadRequest, "No calendar chosen", "Choose the calendar to attach, then attach it."})
		return
	}
	if err := h.cfg.Units.SetCalendarUnit(ctx, v.accountID(), calID, u.ID); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/units/"+url.PathEscape(u.ID), "attached")
}

func (h *Handler) detachCalendar(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	u, err := h.cfg.Units.Unit(ctx, v.accountID(), r.PathValue("unitId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	calID := r.PathValue("calendarId")
	// Only a calendar of this unit leaves it from this unit's page.
	in, err := h.cfg.Units.CalendarUnits(ctx, v.accountID(), []string{calID})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if in[calID] != u.ID {
		h.renderError(w, r, v, errNotFound)
		return
	}
	if err := h.cfg.Units.SetCalendarUnit(ctx, v.accountID(), calID, ""); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/units/"+url.PathEscape(u.ID), "detached")
}

// unitCalendar is a calendar of the unit page.
type unitCalendar struct {
	*store.Calendar
	// Channel is the host an imported calendar comes from.
	Channel string
	// Export is the URL of its blocked-dates feed.
	Export string
}

// attachable is a calendar of the account that the unit page offers.
type attachable struct {
	ID, Name string
	// Unit names the unit the calendar is in now, if any.
	Unit string
}

// conflictSide is one event of a conflict as the page shows it.
type conflictSide struct {
	Summary, Href, Calendar, Channel string
	// Gone says the event was deleted since.
	Gone       bool
	Start, End template.HTML
}

// conflictRow is a conflict as the page lists it.
type conflictRow struct {
	ID                       string
	A, B                     conflictSide
	OverlapStart, OverlapEnd template.HTML
	Detected, Resolved       template.HTML
}

type unitData struct {
	Unit       *store.Unit
	Calendars  []unitCalendar
	Attachable []attachable
	Timeline   *timeline
	Open       []conflictRow
	// OpenMore says the unit has more open conflicts than listed.
	OpenMore bool
	Resolved []conflictRow
	Zones    []string
}

func (h *Handler) unitPage(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	u, err := h.cfg.Units.Unit(ctx, v.accountID(), r.PathValue("unitId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	loc, err := calendar.LoadZone(u.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	now := h.cfg.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	from, err := time.ParseInLocation("2006-01-02", r.URL.Query().Get("from"), loc)
	if err != nil {
		from = today.AddDate(0, 0, -3) // a little of the recent past for context
	}
	to := from.AddDate(0, 0, timelineDays)

	ua, err := h.avail.get(ctx, v.accountID(), u.ID, from, to, h.cfg.Now(), func(ctx context.Context) (*availability.UnitAvailability, error) {
		av, err := h.cfg.Units.Availability(ctx, v.accountID(), []string{u.ID}, from, to)
		if err != nil {
			return nil, err
		}
		return av[0], nil
	})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	ucs, err := h.cfg.Units.UnitCalendars(ctx, v.accountID(), []string{u.ID})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	acc := v.account
	d := &unitData{Unit: u}
	calName := map[string]string{}
	for _, c := range ucs {
		uc := unitCalendar{Calendar: c.Calendar}
		if c.Kind == store.KindImported {
			if su, err := url.Parse(c.SourceURL); err == nil {
				uc.Channel = su.Hostname()
			}
		}
		if acc != nil {
			uc.Export = h.baseURL(r) + "/feeds/" + url.PathEscape(acc.ID) + "/" + url.PathEscape(c.ID) + "/blocked.ics?token=" + url.QueryEscape(acc.FeedToken)
		}
		d.Calendars = append(d.Calendars, uc)
		calName[c.ID] = c.Name
	}
	if d.Attachable, err = h.attachable(r, v, u); err != nil {
		h.renderError(w, r, v, err)
		return
	}

	open, err := h.cfg.Units.ListConflicts(ctx, store.ListConflictsParams{
		AccountID: v.accountID(), UnitID: u.ID, State: store.ConflictOpen, Page: store.Page{Limit: openConflictsShown + 1},
	})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if len(open) > openConflictsShown {
		open, d.OpenMore = open[:openConflictsShown], true
	}
	resolved, err := h.cfg.Reader.LatestConflicts(ctx, v.accountID(), u.ID, store.ConflictResolved, resolvedShown)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d.Timeline = buildTimeline(ua, d.Calendars, open, from, today, loc)
	d.Timeline.Prev = "?from=" + from.AddDate(0, 0, -timelineStep).Format("2006-01-02")
	d.Timeline.Next = "?from=" + from.AddDate(0, 0, timelineStep).Format("2006-01-02")
	if d.Open, err = h.conflictRows(r, v, open, calName); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if d.Resolved, err = h.conflictRows(r, v, resolved, calName); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.render(w, r, v, http.StatusOK, "unit", &pageData{Title: u.Name, Nav: "units", Data: d})
}

// attachable returns the account's calendars outside unit u, each with the
// unit it is in now.
func (h *Handler) attachable(r *http.Request, v *view, u *store.Unit) ([]attachable, error) {
	ctx := r.Context()
	cals, err := h.listCalendars(r, v)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cals))
	for i, c := range cals {
		ids[i] = c.ID
	}
	in, err := h.cfg.Units.CalendarUnits(ctx, v.accountID(), ids)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, uid := range in {
		if uid != u.ID && !slices.Contains(others, uid) {
			others = append(others, uid)
		}
	}
	names := map[string]string{}
	units, err := h.cfg.Units.UnitsByID(ctx, v.accountID(), others)
	if err != nil {
		return nil, err
	}
	for _, o := range units {
		names[o.ID] = o.Name
	}
	var out []attachable
	for _, c := range cals {
		if in[c.ID] == u.ID {
			continue
		}
		out = append(out, attachable{ID: c.ID, Name: c.Name, Unit: names[in[c.ID]]})
	}
	return out, nil
}

// conflictRows prepares conflicts for the page, with their events'
// summaries when the events still exist.
func (h *Handler) conflictRows(r *http.Request, v *view, cs []*store.Conflict, calName map[string]string) ([]conflictRow, error) {
	out := make([]conflictRow, 0, len(cs))
	for _, c := range cs {
		row := conflictRow{ID: c.ID, Detected: timeTag(c.DetectedAt), Resolved: timeTag(c.ResolvedAt)}
		allDay := c.A.AllDay && c.B.AllDay
		row.OverlapStart, row.OverlapEnd = when(c.OverlapStart, allDay), when(c.OverlapEnd, allDay)
		for i, s := range []store.ConflictSide{c.A, c.B} {
			side := conflictSide{Summary: s.UID, Calendar: calName[s.CalendarID], Start: when(s.Start, s.AllDay), End: when(s.End, s.AllDay)}
			if side.Calendar == "" {
				side.Calendar = "a calendar no longer in this unit"
			}
			if s.Kind == store.KindImported {
				if su, err := url.Parse(s.SourceURL); err == nil {
					side.Channel = su.Hostname()
				}
			}
			e, err := h.cfg.Calendars.Event(r.Context(), v.accountID(), s.CalendarID, s.EventID)
			switch {
			case err == nil:
				side.Href = "/console/calendars/" + url.PathEscape(s.CalendarID) + "/events/" + url.PathEscape(s.EventID)
				if e.Summary != "" {
					side.Summary = e.Summary
				}
			case errors.Is(err, store.ErrNotFound):
				side.Gone = true
			default:
				return nil, err
			}
			if i == 0 {
				row.A = side
			} else {
				row.B = side
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// when shows an instant as a <time> in the viewer's zone, or an all-day
// date as the date.
func when(t time.Time, allDay bool) template.HTML {
	if allDay {
		return template.HTML(template.HTMLEscapeString(t.UTC().Format("2006-01-02")))
	}
	return timeTag(t)
}

// timeline is a unit's availability laid out on a grid of half days:
// column 1 holds the row names, then two columns per day (morning and
// afternoon), so that a stay runs from its check-in afternoon to its
// check-out morning, as channel managers draw them.
type timeline struct {
	Days []tlDay
	// Shades are the classes of the weekend and today backgrounds that
	// every row repeats.
	Shades     []string
	Rows       []tlRow
	Busy       tlRow
	Zone       string
	Prev, Next string
	From, To   time.Time
}

// tlDay is a day column's heading.
type tlDay struct {
	Weekday, Num, Month string
	Class               string
	Date                string
}

// tlRow is one row of the timeline: a calendar, or the merged busy time.
type tlRow struct {
	Name, Kind, Href string
	Lanes            int
	Bars             []tlBar
}

// tlBar is one bar. Class places it (see gridCSS); Text is shown in it,
// Label read out and shown on hover.
type tlBar struct {
	Class, Text, Label, Href string
}

// span is a bar's extent in half days from the window's start, End
// exclusive.
type span struct{ start, end int }

// buildTimeline lays out availability ua over the days from from.
func buildTimeline(ua *availability.UnitAvailability, cals []unitCalendar, open []*store.Conflict, from, today time.Time, loc *time.Location) *timeline {
	tl := &timeline{Zone: loc.String(), From: from, To: from.AddDate(0, 0, timelineDays-1)}
	for i := range timelineDays {
		day := from.AddDate(0, 0, i)
		td := tlDay{Weekday: day.Format("Mon")[:2], Num: strconv.Itoa(day.Day()), Date: day.Format("Monday 2 January 2006")}
		if i == 0 || day.Day() == 1 {
			td.Month = day.Format("Jan")
		}
		var cls []string
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			cls = append(cls, "we")
		}
		if day.Equal(today) {
			cls = append(cls, "today")
		}
		td.Class = strings.Join(cls, " ")
		tl.Days = append(tl.Days, td)
		if len(cls) > 0 {
			// Shade the day's two columns down every row.
			tl.Shades = append(tl.Shades, fmt.Sprintf("shade %s gs%d ge%d", td.Class, 2*i+2, 2*i+4))
		}
	}
	half := func(t time.Time, up bool) int {
		lt := t.In(loc)
		d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
		days := int(d.Sub(from).Round(24*time.Hour) / (24 * time.Hour))
		h := 2 * days
		switch noon := time.Date(lt.Year(), lt.Month(), lt.Day(), 12, 0, 0, 0, loc); {
		case !lt.Before(noon):
			h++
			if up && lt.After(noon) {
				h++
			}
		case up && lt.After(d):
			h++
		}
		return h
	}
	// date is the half-day column of an all-day date's afternoon.
	date := func(t time.Time) int {
		y, m, dd := t.UTC().Date()
		d := time.Date(y, m, dd, 0, 0, 0, 0, loc)
		return 2*int(d.Sub(from).Round(24*time.Hour)/(24*time.Hour)) + 1
	}
	// A bar shows the occurrence's own times (the busy row's label the
	// blocked time, turnover rules included).
	spanOf := func(b availability.Block) span {
		if b.Event.AllDay {
			return span{date(b.OccStart), max(date(b.OccEnd), date(b.OccStart)+1)}
		}
		return span{half(b.OccStart, false), max(half(b.OccEnd, true), half(b.OccStart, false)+1)}
	}
	inConflict := map[string]bool{}
	for _, c := range open {
		inConflict[c.A.EventID], inConflict[c.B.EventID] = true, true
	}
	// A calendar's events that fall on the same half days share one bar
	// (a dense calendar would draw hundreds of unreadable ones).
	type slot struct {
		span
		first    availability.Block
		n        int
		conflict bool
	}
	spansOf := map[string]span{} // by event id, for the overlaps
	slots := map[string][]*slot{}
	slotOf := map[string]map[span]*slot{}
	var busy []tlBar
	var busySpans []span
	for _, bz := range ua.Busy {
		var all span
		for i, b := range bz.Blocks {
			s := spanOf(b)
			if i == 0 || s.start < all.start {
				all.start = s.start
			}
			all.end = max(all.end, s.end)
			spansOf[b.Event.ID] = s
			cal := b.Event.CalendarID
			if slotOf[cal] == nil {
				slotOf[cal] = map[span]*slot{}
			}
			sl := slotOf[cal][s]
			if sl == nil {
				sl = &slot{span: s, first: b}
				slotOf[cal][s] = sl
				slots[cal] = append(slots[cal], sl)
			}
			sl.n++
			sl.conflict = sl.conflict || inConflict[b.Event.ID]
		}
		busy = append(busy, tlBar{Class: "busy", Text: "Busy", Label: "Busy " + interval(bz.Start, bz.End, loc)})
		busySpans = append(busySpans, all)
	}
	perCal := map[string][]tlBar{}
	perCalSpans := map[string][]span{}
	for cal, ss := range slots {
		slices.SortStableFunc(ss, func(a, b *slot) int { return a.start - b.start })
		for _, sl := range ss {
			b := sl.first
			bar := tlBar{Class: "ev"}
			if sl.conflict {
				bar.Class = "ev conflict"
			}
			if sl.n == 1 {
				if b.Event.Status == store.StatusTentative {
					bar.Class += " tentative"
				}
				bar.Text = b.Event.Summary
				if bar.Text == "" {
					bar.Text = "(no summary)"
				}
				bar.Label = bar.Text + ", " + occurrence(b, loc)
				bar.Href = "/console/calendars/" + url.PathEscape(cal) + "/events/" + url.PathEscape(b.Event.ID)
			} else {
				day := from.AddDate(0, 0, max(sl.start, 0)/2)
				bar.Text = strconv.Itoa(sl.n) + " events"
				bar.Label = bar.Text + " from " + occurrence(b, loc)
				bar.Href = "/console/calendars/" + url.PathEscape(cal) + "?from=" + day.Format("2006-01-02")
			}
			if sl.conflict {
				bar.Label += ", in conflict"
			}
			perCal[cal] = append(perCal[cal], bar)
			perCalSpans[cal] = append(perCalSpans[cal], sl.span)
		}
	}
	for _, c := range open {
		a, okA := spansOf[c.A.EventID]
		b, okB := spansOf[c.B.EventID]
		s := span{max(a.start, b.start), min(a.end, b.end)}
		if !okA || !okB || s.end <= s.start { // drawn apart: place the overlap itself
			s = span{half(c.OverlapStart, false), max(half(c.OverlapEnd, true), half(c.OverlapStart, false)+1)}
		}
		busy = append(busy, tlBar{Class: "overlap", Text: "Conflict", Label: "Conflict " + interval(c.OverlapStart, c.OverlapEnd, loc)})
		busySpans = append(busySpans, s)
	}
	for _, c := range cals {
		row := tlRow{Name: c.Name, Kind: c.Kind, Href: "/console/calendars/" + url.PathEscape(c.ID)}
		if c.Channel != "" {
			row.Kind = c.Channel
		}
		row.Bars, row.Lanes = place(perCal[c.ID], perCalSpans[c.ID], false)
		tl.Rows = append(tl.Rows, row)
	}
	tl.Busy = tlRow{Name: "Busy (all calendars)"}
	tl.Busy.Bars, tl.Busy.Lanes = place(busy, busySpans, true)
	return tl
}

// place clips bars to the window and gives each its grid classes and a
// lane, stacking overlapping bars; with one lane every bar shares the
// first (the busy row, where conflicts are drawn over the busy time).
func place(bars []tlBar, spans []span, oneLane bool) ([]tlBar, int) {
	cols := 2 * timelineDays
	var ends []int // per lane, where its last bar ends
	var out []tlBar
	for i, b := range bars {
		s := spans[i]
		s.start, s.end = max(s.start, 0), min(s.end, cols)
		if s.end <= s.start {
			continue
		}
		lane := 0
		if !oneLane {
			for lane < len(ends) && ends[lane] > s.start {
				lane++
			}
			lane = min(lane, maxLanes-1)
		}
		for len(ends) <= lane {
			ends = append(ends, 0)
		}
		ends[lane] = max(ends[lane], s.end)
		// Column 1 holds the row's name.
		b.Class += fmt.Sprintf(" gs%d ge%d ln%d", s.start+2, s.end+2, lane+1)
		out = append(out, b)
	}
	return out, max(len(ends), 1)
}

// occurrence describes a block's own dates or times in the unit's zone.
func occurrence(b availability.Block, loc *time.Location) string {
	if b.Event.AllDay {
		return b.OccStart.UTC().Format("2 Jan") + " to " + b.OccEnd.UTC().Format("2 Jan")
	}
	return interval(b.OccStart, b.OccEnd, loc)
}

// interval describes [start, end) in loc.
func interval(start, end time.Time, loc *time.Location) string {
	return start.In(loc).Format("2 Jan 15:04") + " to " + end.In(loc).Format("2 Jan 15:04")
}

// gridCSS is the stylesheet that places timeline bars: a class per start
// and end column and per lane, since the Content-Security-Policy allows
// no style attributes.
func gridCSS() []byte {
	var b strings.Builder
	b.WriteString("/* Generated by gridCSS (units.go): timeline bar positions. */\n")
	for c := 2; c <= 2*timelineDays+2; c++ {
		fmt.Fprintf(&b, ".gs%d{grid-column-start:%d}.ge%d{grid-column-end:%d}\n", c, c, c, c)
	}
	for l := 1; l <= maxLanes; l++ {
		fmt.Fprintf(&b, ".ln%d{grid-row:%d}.lanes%d .tl-name,.lanes%d .shade{grid-row:1/%d}\n", l, l, l, l, l+1)
	}
	return []byte(b.String())
}
