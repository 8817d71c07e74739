package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

type calendarJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	TimeZone string `json:"timeZone"`
	Kind     string `json:"kind"`
	// FeedDisabled is the calendar's feed switch.
	FeedDisabled bool        `json:"feedDisabled"`
	Source       *sourceJSON `json:"source,omitempty"`
	// importJSON adds the sync state of an imported calendar.
	*importJSON
	// FeedWindowDays is the calendar's own feed window in days (0: all
	// history); null means the server's default.
	FeedWindowDays *int      `json:"feedWindowDays"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	// UnitID is the unit the calendar belongs to (null for none), and
	// ExportFeedURL its blocked-dates feed then (see units.go).
	UnitID        *string `json:"unitId"`
	ExportFeedURL string  `json:"exportFeedUrl,omitempty"`
}

func toCalendarJSON(c *store.Calendar) calendarJSON {
	out := calendarJSON{
		ID: c.ID, Name: c.Name, TimeZone: c.TimeZone, Kind: c.Kind, FeedDisabled: c.FeedDisabled, Version: c.Version,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, FeedWindowDays: c.FeedWindowDays,
	}
	if c.Kind == store.KindImported {
		out.Source, out.importJSON = toImportJSON(c)
	}
	return out
}

type calendarInput struct {
	Name     *string      `json:"name"`
	TimeZone *string      `json:"timeZone"`
	Source   *sourceInput `json:"source"`
	// FeedDisabled turns the calendar's feed off or on.
	FeedDisabled *bool `json:"feedDisabled"`
	// UnitID attaches the calendar to a unit; null detaches it.
	UnitID json.RawMessage `json:"unitId"`
	// FeedWindowDays sets the calendar's feed window; null resets it to
	// the server's default.
	FeedWindowDays json.RawMessage `json:"feedWindowDays"`
}

func (in calendarInput) domain() (calendar.CalendarInput, error) {
	out := calendar.CalendarInput{Name: in.Name, TimeZone: in.TimeZone, Source: in.Source.domain(), FeedDisabled: in.FeedDisabled}
	if in.FeedWindowDays != nil {
		out.FeedWindow = &calendar.FeedWindowInput{}
		if err := json.Unmarshal(in.FeedWindowDays, &out.FeedWindow.Days); err != nil {
			return out, fault.Invalidf("feedWindowDays", "must be a whole number of days or null")
		}
	}
	return out, nil
}

func (h *Handler) createCalendar(w http.ResponseWriter, r *http.Request) {
	var in calendarInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	dom, err := in.domain()
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	c, err := h.cfg.Calendars.CreateCalendar(r.Context(), accountFrom(r.Context()).ID, dom)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := toCalendarJSON(c)
	if err := h.withUnits(r, []calendarJSON{out}); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) listCalendars(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Calendar, error) {
		return h.cfg.Calendars.ListCalendars(r.Context(), store.ListCalendarsParams{AccountID: accountFrom(r.Context()).ID, Page: p})
	}, func(c *store.Calendar) int64 { return c.Seq }, toCalendarJSON)
	if err == nil {
		err = h.withUnits(r, pg.Data)
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getCalendar(w http.ResponseWriter, r *http.Request) {
	c, err := h.cfg.Calendars.Calendar(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.writeCalendar(w, r, c)
}

// writeCalendar answers one calendar with its unit.
func (h *Handler) writeCalendar(w http.ResponseWriter, r *http.Request, c *store.Calendar) {
	out := []calendarJSON{toCalendarJSON(c)}
	if err := h.withUnits(r, out); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, out[0])
}

func (h *Handler) updateCalendar(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	// Look the calendar up first so a foreign id is a 404 even when the
	// body is invalid.
	if _, err := h.cfg.Calendars.Calendar(r.Context(), acct.ID, r.PathValue("calendarId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var in calendarInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	calID := r.PathValue("calendarId")
	dom, err := in.domain()
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var c *store.Calendar
	if in.Name != nil || in.TimeZone != nil || in.Source != nil || in.FeedWindowDays != nil || in.FeedDisabled != nil || in.UnitID == nil {
		if c, err = h.cfg.Calendars.UpdateCalendar(r.Context(), acct.ID, calID, dom); err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}
	if in.UnitID != nil {
		if err := h.setCalendarUnit(r.Context(), acct.ID, calID, in.UnitID); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		if c, err = h.cfg.Calendars.Calendar(r.Context(), acct.ID, calID); err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}
	h.writeCalendar(w, r, c)
}

func (h *Handler) deleteCalendar(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Availability != nil {
		// Leaving its unit first records the unit's change, so the unit's
		// other export feeds are pinged (a foreign id fails below).
		if err := h.cfg.Availability.SetCalendarUnit(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId"), ""); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			writeError(w, r, h.log, err)
			return
		}
	}
	if err := h.cfg.Calendars.DeleteCalendar(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type changeJSON struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	CalendarID string    `json:"calendarId"`
	EventID    string    `json:"eventId"`
	UID        string    `json:"uid"`
	OccurredAt time.Time `json:"occurredAt"`
}

// listChanges serves incremental sync: the changes after a cursor, oldest
// first. An empty since starts from the newest change, so a client first
// reads everything and then follows nextCursor.
func (h *Handler) listChanges(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	calID := r.PathValue("calendarId")
	if _, err := h.cfg.Calendars.Calendar(r.Context(), acct.ID, calID); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	p, err := pageParams(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var since *store.ChangePos
	if s := r.URL.Query().Get("since"); s != "" {
		pos, err := h.cursors.decode(acct.ID, s)
		if err != nil {
			writeError(w, r, h.log, errInvalid("since is not a cursor this server issued"))
			return
		}
		since = &pos
	}
	changes, after, err := h.cfg.Calendars.Changes(r.Context(), acct.ID, calID, since, p.Limit)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := struct {
		Data       []changeJSON `json:"data"`
		NextCursor string       `json:"nextCursor"`
	}{Data: make([]changeJSON, 0, len(changes)), NextCursor: h.cursors.encode(acct.ID, after)}
	for _, ch := range changes {
		out.Data = append(out.Data, changeJSON{
			ID: h.cursors.encode(acct.ID, ch.Pos()), Type: ch.Type, CalendarID: ch.CalendarID, EventID: ch.EventID,
			UID: ch.EventUID, OccurredAt: ch.OccurredAt,
		})
		out.NextCursor = h.cursors.encode(acct.ID, ch.Pos())
	}
	writeJSON(w, http.StatusOK, out)
}
