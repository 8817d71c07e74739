package httpapi

// Units, availability, conflicts and the blocked-dates export feeds.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

type unitJSON struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	TimeZone        string    `json:"timeZone"`
	SameDayTurnover bool      `json:"sameDayTurnover"`
	ExportSummary   string    `json:"exportSummary"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

func toUnitJSON(u *store.Unit) unitJSON {
	return unitJSON{
		ID: u.ID, Name: u.Name, TimeZone: u.TimeZone, SameDayTurnover: u.SameDayTurnover,
		ExportSummary: u.ExportSummary, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func (h *Handler) createUnit(w http.ResponseWriter, r *http.Request) {
	var in availability.UnitInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	u, err := h.cfg.Availability.CreateUnit(r.Context(), accountFrom(r.Context()).ID, in)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUnitJSON(u))
}

func (h *Handler) listUnits(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Unit, error) {
		return h.cfg.Availability.ListUnits(r.Context(), store.ListUnitsParams{AccountID: accountFrom(r.Context()).ID, Page: p})
	}, func(u *store.Unit) int64 { return u.Seq }, toUnitJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getUnit(w http.ResponseWriter, r *http.Request) {
	u, err := h.cfg.Availability.Unit(r.Context(), accountFrom(r.Context()).ID, r.PathValue("unitId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toUnitJSON(u))
}

func (h *Handler) updateUnit(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	if _, err := h.cfg.Availability.Unit(r.Context(), acct.ID, r.PathValue("unitId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var in availability.UnitInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	u, err := h.cfg.Availability.UpdateUnit(r.Context(), acct.ID, r.PathValue("unitId"), in)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toUnitJSON(u))
}

func (h *Handler) deleteUnit(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Availability.DeleteUnit(r.Context(), accountFrom(r.Context()).ID, r.PathValue("unitId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setCalendarUnit applies a PATCH's "unitId": a string attaches the
// calendar to that unit, null detaches it.
func (h *Handler) setCalendarUnit(ctx context.Context, accountID, calendarID string, raw json.RawMessage) error {
	var unitID *string
	if err := json.Unmarshal(raw, &unitID); err != nil {
		return errInvalid("unitId must be a unit id or null")
	}
	if h.cfg.Availability == nil {
		return errInvalid("units are not enabled on this server")
	}
	id := ""
	if unitID != nil {
		if id = *unitID; id == "" {
			return errInvalid("unitId must be a unit id or null")
		}
	}
	return h.cfg.Availability.SetCalendarUnit(ctx, accountID, calendarID, id)
}

// withUnits fills the unitId and exportFeedUrl of calendars.
func (h *Handler) withUnits(r *http.Request, cals []calendarJSON) error {
	if h.cfg.Availability == nil || len(cals) == 0 {
		return nil
	}
	acct := accountFrom(r.Context())
	ids := make([]string, len(cals))
	for i, c := range cals {
		ids[i] = c.ID
	}
	units, err := h.cfg.Availability.CalendarUnits(r.Context(), acct.ID, ids)
	if err != nil {
		return err
	}
	base := h.baseURL(r)
	for i := range cals {
		if u, ok := units[cals[i].ID]; ok {
			cals[i].UnitID = &u
			cals[i].ExportFeedURL = exportFeedURL(base, acct.ID, cals[i].ID) + "?token=" + acct.FeedToken
		}
	}
	return nil
}

// exportFeedURL is the URL of a calendar's blocked-dates feed, without
// its token.
func exportFeedURL(base, accountID, calendarID string) string {
	return base + "/feeds/" + url.PathEscape(accountID) + "/" + url.PathEscape(calendarID) + "/blocked.ics"
}

type intervalJSON struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type busyJSON struct {
	Start  string          `json:"start"`
	End    string          `json:"end"`
	Events []busyEventJSON `json:"events"`
}

type busyEventJSON struct {
	CalendarID string `json:"calendarId"`
	EventID    string `json:"eventId"`
	UID        string `json:"uid"`
	Source     string `json:"source"`
	Start      string `json:"start"`
	End        string `json:"end"`
	AllDay     bool   `json:"allDay,omitempty"`
	Status     string `json:"status"`
}

type availabilityJSON struct {
	UnitID string         `json:"unitId"`
	From   string         `json:"from"`
	To     string         `json:"to"`
	Busy   []busyJSON     `json:"busy"`
	Free   []intervalJSON `json:"free"`
}

func toAvailabilityJSON(a *availability.UnitAvailability, from, to time.Time) availabilityJSON {
	out := availabilityJSON{
		UnitID: a.Unit.ID, From: rfc3339(from), To: rfc3339(to),
		Busy: make([]busyJSON, 0, len(a.Busy)), Free: make([]intervalJSON, 0, len(a.Free)),
	}
	for _, b := range a.Busy {
		bj := busyJSON{Start: rfc3339(b.Start), End: rfc3339(b.End), Events: make([]busyEventJSON, 0, len(b.Blocks))}
		for _, blk := range b.Blocks {
			e := blk.Event
			ev := busyEventJSON{
				CalendarID: e.CalendarID, EventID: e.ID, UID: e.UID, AllDay: e.AllDay, Status: e.Status,
				Start: calendar.FormatTime(blk.OccStart, e.AllDay, e.TimeZone),
				End:   calendar.FormatTime(blk.OccEnd, e.AllDay, e.TimeZone),
			}
			if c := a.Calendars[e.CalendarID]; c != nil {
				ev.Source = c.Kind
			}
			bj.Events = append(bj.Events, ev)
		}
		out.Busy = append(out.Busy, bj)
	}
	for _, f := range a.Free {
		out.Free = append(out.Free, intervalJSON{Start: rfc3339(f.Start), End: rfc3339(f.End)})
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// window reads the from and to of an availability query.
func window(r *http.Request) (from, to time.Time, err error) {
	q := r.URL.Query()
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		s := q.Get(name)
		if s == "" {
			return from, to, errInvalid("%s is required: an RFC 3339 date-time like 2026-12-01T00:00:00Z or a date like 2026-12-01", name)
		}
		if *dst, err = parseInstant(s); err != nil {
			return from, to, errInvalid("%s must be an RFC 3339 date-time like 2026-12-01T00:00:00Z or a date like 2026-12-01", name)
		}
	}
	return from, to, nil
}

func (h *Handler) unitAvailability(w http.ResponseWriter, r *http.Request) {
	// A foreign unit is a 404 whatever the query.
	if _, err := h.cfg.Availability.Unit(r.Context(), accountFrom(r.Context()).ID, r.PathValue("unitId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	from, to, err := window(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out, err := h.cfg.Availability.Availability(r.Context(), accountFrom(r.Context()).ID, []string{r.PathValue("unitId")}, from, to)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toAvailabilityJSON(out[0], from, to))
}

// availability answers many units at once: ?unit=A&unit=B or ?unit=A,B.
func (h *Handler) availability(w http.ResponseWriter, r *http.Request) {
	from, to, err := window(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var ids []string
	for _, v := range r.URL.Query()["unit"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	res, err := h.cfg.Availability.Availability(r.Context(), accountFrom(r.Context()).ID, ids, from, to)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := struct {
		Data []availabilityJSON `json:"data"`
	}{Data: make([]availabilityJSON, 0, len(res))}
	for _, a := range res {
		out.Data = append(out.Data, toAvailabilityJSON(a, from, to))
	}
	writeJSON(w, http.StatusOK, out)
}

type conflictJSON struct {
	ID         string              `json:"id"`
	UnitID     string              `json:"unitId"`
	State      string              `json:"state"`
	Overlap    intervalJSON        `json:"overlap"`
	Events     []conflictEventJSON `json:"events"`
	DetectedAt time.Time           `json:"detectedAt"`
	ResolvedAt *time.Time          `json:"resolvedAt,omitempty"`
}

type conflictEventJSON struct {
	CalendarID   string `json:"calendarId"`
	EventID      string `json:"eventId"`
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
	Source       string `json:"source"`
	SourceURL    string `json:"sourceUrl,omitempty"`
	Start        string `json:"start"`
	End          string `json:"end"`
	AllDay       bool   `json:"allDay,omitempty"`
	Status       string `json:"status"`
}

func toConflictJSON(c *store.Conflict) conflictJSON {
	out := conflictJSON{
		ID: c.ID, UnitID: c.UnitID, State: c.State, DetectedAt: c.DetectedAt,
		Overlap: intervalJSON{Start: rfc3339(c.OverlapStart), End: rfc3339(c.OverlapEnd)},
	}
	if !c.ResolvedAt.IsZero() {
		t := c.ResolvedAt
		out.ResolvedAt = &t
	}
	for _, s := range []store.ConflictSide{c.A, c.B} {
		out.Events = append(out.Events, conflictEventJSON{
			CalendarID: s.CalendarID, EventID: s.EventID, UID: s.UID, RecurrenceID: s.RecurrenceID,
			Source: s.Kind, SourceURL: s.SourceURL,
			Start: calendar.FormatTime(s.Start, s.AllDay, s.TimeZone), End: calendar.FormatTime(s.End, s.AllDay, s.TimeZone),
			AllDay: s.AllDay, Status: s.Status,
		})
	}
	return out
}

func (h *Handler) listConflicts(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Conflict, error) {
		return h.cfg.Availability.ListConflicts(r.Context(), store.ListConflictsParams{
			AccountID: accountFrom(r.Context()).ID, UnitID: r.PathValue("unitId"), State: r.URL.Query().Get("state"), Page: p,
		})
	}, func(c *store.Conflict) int64 { return c.Seq }, toConflictJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getConflict(w http.ResponseWriter, r *http.Request) {
	c, err := h.cfg.Availability.Conflict(r.Context(), accountFrom(r.Context()).ID, r.PathValue("conflictId"))
	if err == nil && c.UnitID != r.PathValue("unitId") {
		err = store.ErrNotFound
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toConflictJSON(c))
}

// exportFeed serves a calendar's blocked-dates feed, like the other feeds.
func (h *Handler) exportFeed(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("file") != "blocked.ics" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	accountID, calendarID := r.PathValue("accountId"), r.PathValue("calendarId")
	token := queryParam(r.URL.RawQuery, "token")
	if h.cfg.Availability == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	f, err := h.cfg.Availability.ExportFeed(r.Context(), accountID, calendarID, token)
	if err != nil {
		h.feedError(w, r, err, token, "no such calendar in a unit", "account", accountID, "calendar", calendarID, "export", true)
		return
	}
	h.registerHook(w, r, accountID, store.ExportFeedKey(calendarID), token, f.Version)
	h.writeFeed(w, r, f)
}
