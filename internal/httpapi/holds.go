package httpapi

// Holds: check and hold a unit's dates before a booking.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/calhook/calhook/internal/holds"
	"github.com/calhook/calhook/internal/idempotency"
	"github.com/calhook/calhook/internal/store"
)

type holdJSON struct {
	ID          string     `json:"id"`
	UnitID      string     `json:"unitId"`
	CalendarID  string     `json:"calendarId"`
	EventID     string     `json:"eventId"`
	Start       string     `json:"start"`
	End         string     `json:"end"`
	AllDay      bool       `json:"allDay"`
	Summary     string     `json:"summary"`
	ExternalRef *string    `json:"externalRef"`
	State       string     `json:"state"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	CreatedAt   time.Time  `json:"createdAt"`
	EndedAt     *time.Time `json:"endedAt"`
}

// when formats a hold's or conflict's bound as the client gave it: a date
// for all-day intervals, else an RFC 3339 time.
func when(t time.Time, allDay bool) string {
	if allDay {
		return t.UTC().Format(time.DateOnly)
	}
	return t.UTC().Format(time.RFC3339)
}

func toHoldJSON(h *store.Hold) holdJSON {
	return holdJSON{
		ID: h.ID, UnitID: h.UnitID, CalendarID: h.CalendarID, EventID: h.EventID,
		Start: when(h.Start, h.AllDay), End: when(h.End, h.AllDay), AllDay: h.AllDay,
		Summary: h.Summary, ExternalRef: optString(h.ExternalRef), State: h.State,
		ExpiresAt: h.ExpiresAt, CreatedAt: h.CreatedAt, EndedAt: optTime(h.EndedAt),
	}
}

type holdSourceJSON struct {
	CalendarID    string     `json:"calendarId"`
	URL           string     `json:"url"`
	State         string     `json:"state"`
	Outcome       string     `json:"outcome"`
	LastSuccessAt *time.Time `json:"lastSuccessAt"`
	Error         *string    `json:"error"`
}

func toHoldSources(srcs []holds.Source) []holdSourceJSON {
	out := make([]holdSourceJSON, len(srcs))
	for i, s := range srcs {
		out[i] = holdSourceJSON{CalendarID: s.CalendarID, URL: s.URL, State: s.State, Outcome: s.Outcome,
			LastSuccessAt: optTime(s.LastSuccessAt), Error: optString(s.Error)}
	}
	return out
}

type holdConflictJSON struct {
	Kind         string  `json:"kind"`
	HoldID       *string `json:"holdId"`
	CalendarID   string  `json:"calendarId"`
	EventID      string  `json:"eventId"`
	UID          string  `json:"uid"`
	RecurrenceID string  `json:"recurrenceId,omitempty"`
	Start        string  `json:"start"`
	End          string  `json:"end"`
	AllDay       bool    `json:"allDay"`
	Status       string  `json:"status"`
}

// placeHold answers POST /v1/units/{unitId}/holds: 201 with the hold, or
// 409 with what blocks the interval (or the stale sources, with
// requireFresh).
func (h *Handler) placeHold(w http.ResponseWriter, r *http.Request) {
	var in holds.PlaceInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	placed, err := h.cfg.Holds.Place(r.Context(), accountFrom(r.Context()).ID, r.PathValue("unitId"), in)
	var ce *holds.ConflictError
	var se *holds.StaleError
	switch {
	case errors.As(err, &ce):
		cs := make([]holdConflictJSON, len(ce.Conflicts))
		for i, c := range ce.Conflicts {
			cs[i] = holdConflictJSON{Kind: c.Kind, HoldID: optString(c.HoldID), CalendarID: c.CalendarID, EventID: c.EventID,
				UID: c.UID, RecurrenceID: c.RecurrenceID, Start: when(c.Start, c.AllDay), End: when(c.End, c.AllDay),
				AllDay: c.AllDay, Status: c.Status}
		}
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":     map[string]string{"code": "unavailable", "message": ce.Error()},
			"conflicts": cs, "sources": toHoldSources(ce.Sources),
		})
	case errors.As(err, &se):
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":   map[string]string{"code": "sources_stale", "message": se.Error()},
			"sources": toHoldSources(se.Sources),
		})
	case err != nil:
		writeError(w, r, h.log, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"hold": toHoldJSON(placed.Hold), "sources": toHoldSources(placed.Sources)})
	}
}

func (h *Handler) listHolds(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	pg, err := listPage(r, func(p store.Page) ([]*store.Hold, error) {
		return h.cfg.Holds.List(r.Context(), store.ListHoldsParams{AccountID: acct.ID, UnitID: r.PathValue("unitId"), Page: p})
	}, func(h *store.Hold) int64 { return h.Seq }, toHoldJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getHold(w http.ResponseWriter, r *http.Request) {
	hd, err := h.cfg.Holds.Hold(r.Context(), accountFrom(r.Context()).ID, r.PathValue("holdId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toHoldJSON(hd))
}

func (h *Handler) confirmHold(w http.ResponseWriter, r *http.Request) {
	hd, err := h.cfg.Holds.Confirm(r.Context(), accountFrom(r.Context()).ID, r.PathValue("holdId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toHoldJSON(hd))
}

func (h *Handler) releaseHold(w http.ResponseWriter, r *http.Request) {
	if _, err := h.cfg.Holds.Release(r.Context(), accountFrom(r.Context()).ID, r.PathValue("holdId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// idempotent runs next once per Idempotency-Key of the account: a request
// with a key seen before gets the first answer again (with
// Idempotent-Replayed: true). Answers of 5xx are not kept, so a retry
// runs again. Without the header, or without a Keeper, next just runs.
func (h *Handler) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || h.cfg.Idempotency == nil {
			next(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		acct := accountFrom(r.Context())
		kept, err := h.cfg.Idempotency.Begin(r.Context(), acct.ID, key, idempotency.Fingerprint(r.Method, r.URL.Path, body))
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		if kept != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(kept.Status)
			_, _ = w.Write(kept.Body)
			return
		}
		rec := &recorder{header: w.Header(), status: http.StatusOK}
		next(rec, r)
		// Keep the answer even if the client went away: its retry must
		// find it.
		ctx := context.WithoutCancel(r.Context())
		if rec.status >= 500 {
			err = h.cfg.Idempotency.Abandon(ctx, acct.ID, key)
		} else {
			err = h.cfg.Idempotency.Finish(ctx, acct.ID, key, rec.status, rec.body.Bytes())
		}
		if err != nil {
			h.log.Error("keeping an idempotent answer failed", "error", err)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// recorder holds a response so it can be kept before it is sent.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
