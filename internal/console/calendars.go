package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

// listCalendars returns every calendar of the account that the session
// may see (bounded).
func (h *Handler) listCalendars(r *http.Request, v *view) ([]*store.Calendar, error) {
	var out []*store.Calendar
	p := store.ListCalendarsParams{AccountID: v.accountID(), Page: store.Page{Limit: 500}}
	for len(out) < 2000 {
		cals, err := h.cfg.Calendars.ListCalendars(r.Context(), p)
		if err != nil {
			return nil, err
		}
		for _, c := range cals {
			if v.allows(c.ID) {
				out = append(out, c)
			}
		}
		if len(cals) < p.Limit {
			break
		}
		p.After = cals[len(cals)-1].Seq
	}
	return out, nil
}

type calendarsData struct {
	Calendars []*store.Calendar
}

func (h *Handler) calendarsPage(w http.ResponseWriter, r *http.Request, v *view) {
	cals, err := h.listCalendars(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.render(w, r, v, http.StatusOK, "calendars", &pageData{Title: "Calendars", Nav: "calendars", Data: &calendarsData{Calendars: cals}})
}

func (h *Handler) createCalendar(w http.ResponseWriter, r *http.Request, v *view) {
	name, zone := r.PostFormValue("name"), r.PostFormValue("timeZone")
	in := calendar.CalendarInput{Name: &name}
	if zone != "" {
		in.TimeZone = &zone
	}
	if src := strings.TrimSpace(r.PostFormValue("sourceUrl")); src != "" {
		in.Source = &calendar.SourceInput{URL: src}
	}
	c, err := h.cfg.Calendars.CreateCalendar(r.Context(), v.accountID(), in)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if c.Kind == store.KindImported && h.cfg.Importer != nil {
		_ = h.cfg.Importer.Sync(r.Context(), v.accountID(), c.ID)
	}
	redirect(w, r, "/console/calendars/"+url.PathEscape(c.ID), "created")
}

// day is one cell of the month view.
type day struct {
	Num     int
	InMonth bool
	Events  []eventRow
	// More counts the events of the day not listed.
	More int
}

// eventRow is an event as a page lists it, prepared in Go so that the
// template does no per-row function calls.
type eventRow struct {
	Href, Summary, Location, Status string
	Start, End                      template.HTML
}

type calendarData struct {
	Calendar *store.Calendar
	View     string
	Events   []eventRow
	From     time.Time
	Prev     string
	Next     string
	// More links to the next page of the agenda.
	More string
	// Truncated says the month holds more events than the view reads.
	Truncated bool
	Weeks     [][]day
	Month     time.Time
	Imported  bool
	CanSync   bool
}

// Bounds of the calendar page: the agenda's span and page, the events
// the month view reads and those one of its days lists.
const (
	agendaDays     = 31
	agendaPageSize = 100
	maxMonthEvents = 2000
	eventsPerDay   = 3
)

func (h *Handler) calendarPage(w http.ResponseWriter, r *http.Request, v *view) {
	c, err := h.cfg.Calendars.Calendar(r.Context(), v.accountID(), r.PathValue("calendarId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	loc, err := calendar.LoadZone(c.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	q := r.URL.Query()
	d := &calendarData{Calendar: c, View: "agenda", Imported: c.Kind == store.KindImported, CanSync: h.cfg.Importer != nil}
	now := time.Now().In(loc)
	var from, to time.Time
	if q.Get("view") == "month" {
		d.View = "month"
		m, err := time.ParseInLocation("2006-01", q.Get("month"), loc)
		if err != nil {
			m = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
		}
		d.Month = m
		// The grid starts on the Monday on or before the 1st.
		from = m.AddDate(0, 0, -((int(m.Weekday()) + 6) % 7))
		to = from.AddDate(0, 0, 42)
		d.Prev = "?view=month&month=" + m.AddDate(0, -1, 0).Format("2006-01")
		d.Next = "?view=month&month=" + m.AddDate(0, 1, 0).Format("2006-01")
	} else {
		f, err := time.ParseInLocation("2006-01-02", q.Get("from"), loc)
		if err != nil {
			f = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
		}
		from, to = f, f.AddDate(0, 0, agendaDays)
		d.From = f
		d.Prev = "?from=" + f.AddDate(0, 0, -agendaDays).Format("2006-01-02")
		d.Next = "?from=" + to.Format("2006-01-02")
	}
	page := 0
	limit := maxMonthEvents
	if d.View == "agenda" {
		page, _ = strconv.Atoi(q.Get("page"))
		page, limit = max(page, 0), agendaPageSize+1
	}
	// The month grid also shows the stays that began before its first
	// day and still run in it.
	events, err := h.cfg.Calendars.EventsByStart(r.Context(), store.EventsByStartParams{
		AccountID: v.accountID(), CalendarID: c.ID, From: from, To: to, Ongoing: d.View == "month",
		Offset: page * agendaPageSize, Limit: limit,
	})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if d.View == "month" {
		d.Truncated = len(events) == maxMonthEvents
		d.Weeks = h.monthGrid(c.ID, from, d.Month, events)
	} else {
		if len(events) > agendaPageSize {
			events = events[:agendaPageSize]
			d.More = "?" + url.Values{"from": {d.From.Format("2006-01-02")}, "page": {strconv.Itoa(page + 1)}}.Encode()
		}
		for _, e := range events {
			d.Events = append(d.Events, h.row(c.ID, e))
		}
	}
	h.render(w, r, v, http.StatusOK, "calendar", &pageData{Title: c.Name, Nav: "calendars", Data: d})
}

func (h *Handler) row(calendarID string, e *store.Event) eventRow {
	row := eventRow{
		Href:    "/console/calendars/" + url.PathEscape(calendarID) + "/events/" + url.PathEscape(e.ID),
		Summary: e.Summary, Location: e.Location, Status: e.Status,
	}
	if e.AllDay {
		row.Start = template.HTML(template.HTMLEscapeString(e.Start.UTC().Format("2006-01-02")))
		row.End = template.HTML(template.HTMLEscapeString(e.End.UTC().Format("2006-01-02")))
	} else {
		row.Start, row.End = timeTag(e.Start), timeTag(e.End)
	}
	return row
}

// monthGrid lays sorted events out in six weeks from start.
func (h *Handler) monthGrid(calendarID string, start, month time.Time, events []*store.Event) [][]day {
	weeks := make([][]day, 6)
	for i := range 42 {
		dt := start.AddDate(0, 0, i)
		next := dt.AddDate(0, 0, 1)
		cell := day{Num: dt.Day(), InMonth: dt.Month() == month.Month()}
		for _, e := range events {
			es, ee := e.Start, e.End
			if e.AllDay { // dates, not instants: midnight in the grid's zone
				es, ee = localDate(es, start.Location()), localDate(ee, start.Location())
			}
			if !e.Start.Before(next.Add(24 * time.Hour)) {
				break // sorted by stored start: a day's slack covers the all-day shift
			}
			if es.Before(next) && (ee.After(dt) || es.Equal(dt)) {
				if len(cell.Events) < eventsPerDay {
					cell.Events = append(cell.Events, eventRow{
						Href:    "/console/calendars/" + url.PathEscape(calendarID) + "/events/" + url.PathEscape(e.ID),
						Summary: e.Summary,
					})
				} else {
					cell.More++
				}
			}
		}
		weeks[i/7] = append(weeks[i/7], cell)
	}
	return weeks
}

// localDate is midnight in loc of the date of an all-day time (stored as
// midnight UTC).
func localDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func (h *Handler) syncCalendar(w http.ResponseWriter, r *http.Request, v *view) {
	path := "/console/calendars/" + url.PathEscape(r.PathValue("calendarId"))
	if h.cfg.Importer == nil {
		h.renderError(w, r, v, errForbidden)
		return
	}
	if _, err := h.cfg.Importer.SyncWait(r.Context(), v.accountID(), r.PathValue("calendarId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, path, "synced")
}

func (h *Handler) deleteCalendar(w http.ResponseWriter, r *http.Request, v *view) {
	if err := h.cfg.Calendars.DeleteCalendar(r.Context(), v.accountID(), r.PathValue("calendarId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/calendars", "deleted")
}

type eventData struct {
	Calendar *store.Calendar
	Event    *store.Event
	// Start and End are the form's values.
	Start, End string
	Statuses   []string
}

func (h *Handler) eventPage(w http.ResponseWriter, r *http.Request, v *view) {
	c, err := h.cfg.Calendars.Calendar(r.Context(), v.accountID(), r.PathValue("calendarId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &eventData{Calendar: c, Statuses: []string{store.StatusConfirmed, store.StatusTentative, store.StatusCancelled}}
	title := "New event"
	if eid := r.PathValue("eventId"); eid != "" {
		e, err := h.cfg.Calendars.Event(r.Context(), v.accountID(), c.ID, eid)
		if err != nil {
			h.renderError(w, r, v, err)
			return
		}
		d.Event, title = e, e.Summary
		d.Start, d.End = formValue(e.Start, e.AllDay, e.TimeZone), formValue(e.End, e.AllDay, e.TimeZone)
	}
	h.render(w, r, v, http.StatusOK, "event", &pageData{Title: title, Nav: "calendars", Data: d})
}

// formValue is an event time as a datetime-local (or date) input value
// in the event's zone.
func formValue(t time.Time, allDay bool, zone string) string {
	if allDay {
		return t.UTC().Format("2006-01-02")
	}
	loc, err := calendar.LoadZone(zone)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02T15:04")
}

// inputTime turns a form's date or datetime-local value into what
// calendar.EventInput takes.
func inputTime(s string, allDay bool) string {
	s = strings.TrimSpace(s)
	if allDay && len(s) >= 10 {
		return s[:10]
	}
	if len(s) == 16 {
		return s + ":00"
	}
	return s
}

func (h *Handler) saveEvent(w http.ResponseWriter, r *http.Request, v *view) {
	calID, eventID := r.PathValue("calendarId"), r.PathValue("eventId")
	allDay := r.PostFormValue("allDay") == "on"
	text := func(k string) *string { s := r.PostFormValue(k); return &s }
	start, end := inputTime(r.PostFormValue("start"), allDay), inputTime(r.PostFormValue("end"), allDay)
	in := calendar.EventInput{
		Summary: text("summary"), Description: text("description"), Location: text("location"),
		Start: &start, End: &end, AllDay: &allDay, Status: text("status"),
	}
	if z := r.PostFormValue("timeZone"); z != "" {
		in.TimeZone = &z
	}
	var err error
	notice := "saved"
	if eventID == "" {
		_, err = h.cfg.Calendars.CreateEvent(r.Context(), v.accountID(), calID, in)
		notice = "created"
	} else {
		_, err = h.cfg.Calendars.UpdateEvent(r.Context(), v.accountID(), calID, eventID, in)
	}
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	q := ""
	if t, perr := time.Parse("2006-01-02", start[:min(len(start), 10)]); perr == nil {
		q = "?from=" + t.Format("2006-01-02")
	}
	redirect(w, r, "/console/calendars/"+url.PathEscape(calID)+q, notice)
}

func (h *Handler) deleteEvent(w http.ResponseWriter, r *http.Request, v *view) {
	calID := r.PathValue("calendarId")
	if err := h.cfg.Calendars.DeleteEvent(r.Context(), v.accountID(), calID, r.PathValue("eventId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/calendars/"+url.PathEscape(calID), "deleted")
}
