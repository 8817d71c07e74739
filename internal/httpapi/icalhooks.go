package httpapi

import (
	"net/http"
	"time"

	"github.com/calhook/calhook/internal/store"
)

type hookJSON struct {
	ID                string     `json:"id"`
	CalendarID        *string    `json:"calendarId"`
	Feed              string     `json:"feed"`
	URL               string     `json:"url"`
	Status            string     `json:"status"`
	Armed             bool       `json:"armed"`
	ClientIP          string     `json:"clientIp"`
	UserAgent         string     `json:"userAgent"`
	FirstRegisteredAt time.Time  `json:"firstRegisteredAt"`
	LastRegisteredAt  time.Time  `json:"lastRegisteredAt"`
	LastPingAt        *time.Time `json:"lastPingAt,omitempty"`
	LastPingStatus    int        `json:"lastPingStatus,omitempty"`
	LastPingError     string     `json:"lastPingError,omitempty"`
	Failures          int        `json:"failures"`
}

func (h *Handler) toHookJSON(k *store.Hook) hookJSON {
	out := hookJSON{
		ID: k.ID, URL: k.URL, Armed: k.Armed, ClientIP: k.ClientIP, UserAgent: k.UserAgent,
		FirstRegisteredAt: k.FirstRegisteredAt, LastRegisteredAt: k.LastRegisteredAt, LastPingAt: optTime(k.LastPingAt),
		LastPingStatus: k.LastPingStatus, LastPingError: k.LastPingError, Failures: k.Failures,
		Feed: h.cfg.Hooks.FeedURL(k.AccountID, k.CalendarID), Status: "active",
	}
	if !k.Verified {
		out.Status = "pending"
	}
	if k.CalendarID != "" {
		out.CalendarID = &k.CalendarID
	}
	return out
}

func (h *Handler) listHooks(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Hook, error) {
		return h.cfg.Hooks.List(r.Context(), store.ListHooksParams{AccountID: accountFrom(r.Context()).ID, Page: p})
	}, func(k *store.Hook) int64 { return k.Seq }, h.toHookJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) deleteHook(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context()).ID
	if err := h.cfg.Hooks.Delete(r.Context(), acct, r.PathValue("hookId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "icalhook deleted through the API", "account", acct, "hook", r.PathValue("hookId"))
	w.WriteHeader(http.StatusNoContent)
}
