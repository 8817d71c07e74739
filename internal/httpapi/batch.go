package httpapi

// Bulk writes: a batch of event writes, and the replacement of a native
// calendar's content by an uploaded .ics body.

import (
	"io"
	"mime"
	"net/http"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
)

// Body bounds of the bulk routes, above maxBodyBytes: a full batch of
// events with long descriptions, and a calendar's whole content.
const (
	maxBatchBytes = 8 << 20
	maxICSBytes   = 10 << 20
)

type batchItemJSON struct {
	Op    string      `json:"op"`
	ID    string      `json:"id"`
	UID   string      `json:"uid"`
	Event *eventInput `json:"event"`
}

type batchRequest struct {
	Items []batchItemJSON `json:"items"`
}

type batchResultJSON struct {
	Status int    `json:"status"`
	ID     string `json:"id,omitempty"`
	UID    string `json:"uid,omitempty"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// opStatus is the status of an applied item: the single route's.
var opStatus = map[string]int{
	calendar.OpCreate: http.StatusCreated,
	calendar.OpUpdate: http.StatusOK,
	calendar.OpDelete: http.StatusNoContent,
}

// writeBatch answers POST /v1/calendars/{calendarId}/events/batch: 200
// when every item was applied, 207 when some were refused, each item's
// outcome in item order.
func (h *Handler) writeBatch(w http.ResponseWriter, r *http.Request) {
	acct, cal := accountFrom(r.Context()).ID, r.PathValue("calendarId")
	// Look the calendar up first so a foreign id is a 404 whatever the
	// body holds.
	if _, err := h.cfg.Calendars.Calendar(r.Context(), acct, cal); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var in batchRequest
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	items := make([]calendar.BatchItem, len(in.Items))
	for k, it := range in.Items {
		items[k] = calendar.BatchItem{Op: it.Op, ID: it.ID, UID: it.UID}
		if it.Event != nil {
			ev := calendar.EventInput(*it.Event)
			items[k].Event = &ev
		}
	}
	res, err := h.cfg.Calendars.WriteBatch(r.Context(), acct, cal, items)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := make([]batchResultJSON, len(res))
	status := http.StatusOK
	for k, rs := range res {
		if rs.Err != nil {
			status = http.StatusMultiStatus
			ae := itemError(rs.Err)
			out[k].Status = ae.status
			out[k].Error = &struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}{ae.code, ae.message}
			continue
		}
		out[k] = batchResultJSON{Status: opStatus[rs.Op], ID: rs.Event.ID, UID: rs.Event.UID}
	}
	writeJSON(w, status, map[string]any{"results": out})
}

// itemError is the status and code of an item a batch refused: the
// mapping of writeError.
func itemError(err error) *apiError {
	if fe := fault.As(err); fe != nil {
		if ae := faultResponse(fe); ae != nil {
			return ae
		}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal error"}
}

type replaceJSON struct {
	Status  string `json:"status"`
	Created int    `json:"created"`
	Updated int    `json:"updated"`
	Deleted int    `json:"deleted"`
}

// replaceICS answers PUT /v1/calendars/{calendarId}/ics: the native
// calendar's events become those of the body, and only the differences
// are written.
func (h *Handler) replaceICS(w http.ResponseWriter, r *http.Request) {
	if _, err := h.cfg.Calendars.Calendar(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId")); err != nil {
		writeError(w, r, h.log, err) // a foreign id is a 404 before anything else
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "text/calendar" && mt != "application/octet-stream" && mt != "text/plain" {
			writeError(w, r, h.log, &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type",
				"send the body as text/calendar"})
			return
		}
	}
	if h.cfg.Importer == nil {
		writeError(w, r, h.log, errNoImporter) // the parser and the diff are the importer's
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if len(body) == 0 {
		writeError(w, r, h.log, errInvalid("request body is empty: send an iCalendar file"))
		return
	}
	res, err := h.cfg.Importer.Replace(r.Context(), accountFrom(r.Context()).ID, r.PathValue("calendarId"), body)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, replaceJSON{Status: res.Status, Created: res.Created, Updated: res.Updated, Deleted: res.Deleted})
}
