package httpapi

import (
	"net/http"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

type eventJSON struct {
	ID          string            `json:"id"`
	CalendarID  string            `json:"calendarId"`
	UID         string            `json:"uid"`
	Summary     string            `json:"summary"`
	Description string            `json:"description"`
	Location    string            `json:"location"`
	Start       string            `json:"start"`
	End         string            `json:"end"`
	AllDay      bool              `json:"allDay"`
	TimeZone    string            `json:"timeZone,omitempty"`
	Status      string            `json:"status"`
	RRule       string            `json:"rrule,omitempty"`
	ExDates     []string          `json:"exdates,omitempty"`
	Sequence    int               `json:"sequence"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
}

func toEventJSON(e *store.Event) eventJSON {
	out := eventJSON{
		ID: e.ID, CalendarID: e.CalendarID, UID: e.UID, Summary: e.Summary, Description: e.Description,
		Location: e.Location, AllDay: e.AllDay, TimeZone: e.TimeZone, Status: e.Status, RRule: e.RRule,
		Start:    calendar.FormatTime(e.Start, e.AllDay, e.TimeZone),
		End:      calendar.FormatTime(e.End, e.AllDay, e.TimeZone),
		Sequence: e.Sequence, Metadata: e.Metadata, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
	for _, t := range e.ExDates {
		out.ExDates = append(out.ExDates, calendar.FormatTime(t, e.AllDay, e.TimeZone))
	}
	return out
}

type eventInput struct {
	UID         *string            `json:"uid"`
	Summary     *string            `json:"summary"`
	Description *string            `json:"description"`
	Location    *string            `json:"location"`
	Start       *string            `json:"start"`
	End         *string            `json:"end"`
	AllDay      *bool              `json:"allDay"`
	TimeZone    *string            `json:"timeZone"`
	Status      *string            `json:"status"`
	RRule       *string            `json:"rrule"`
	ExDates     *[]string          `json:"exdates"`
	Metadata    *map[string]string `json:"metadata"`
}

func (h *Handler) createEvent(w http.ResponseWriter, r *http.Request) {
	// The service looks the calendar up before it validates anything, so
	// a foreign id is a 404 whatever the (well-formed) body holds.
	acct, cal := accountFrom(r.Context()).ID, r.PathValue("calendarId")
	var in eventInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	e, err := h.cfg.Calendars.CreateEvent(r.Context(), acct, cal, calendar.EventInput(in))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, toEventJSON(e))
}

func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Event, error) {
		params := store.ListEventsParams{AccountID: accountFrom(r.Context()).ID, CalendarID: r.PathValue("calendarId"), Page: p}
		for name, dst := range map[string]*time.Time{"from": &params.From, "to": &params.To} {
			if s := r.URL.Query().Get(name); s != "" {
				var err error
				if *dst, err = parseInstant(s); err != nil {
					return nil, errInvalid("%s must be an RFC 3339 date-time like 2026-12-01T00:00:00Z or a date like 2026-12-01", name)
				}
			}
		}
		return h.cfg.Calendars.ListEvents(r.Context(), params)
	}, func(e *store.Event) int64 { return e.Seq }, toEventJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getEvent(w http.ResponseWriter, r *http.Request) {
	e, err := h.cfg.Calendars.Event(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId"), r.PathValue("eventId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toEventJSON(e))
}

func (h *Handler) updateEvent(w http.ResponseWriter, r *http.Request) {
	acct, cal := accountFrom(r.Context()).ID, r.PathValue("calendarId")
	if _, err := h.cfg.Calendars.Event(r.Context(), acct, cal, r.PathValue("eventId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var in eventInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	e, err := h.cfg.Calendars.UpdateEvent(r.Context(), acct, cal, r.PathValue("eventId"), calendar.EventInput(in))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toEventJSON(e))
}

func (h *Handler) deleteEvent(w http.ResponseWriter, r *http.Request) {
	err := h.cfg.Calendars.DeleteEvent(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId"), r.PathValue("eventId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseInstant reads a list filter's bound: an RFC 3339 date-time, or a
// date (as event bodies take), meaning its midnight UTC.
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}
