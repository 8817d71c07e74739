package httpapi

import (
	"net/http"
	"net/url"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/session"
)

type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	// Key is the secret, present only in the answer to a create.
	Key string `json:"key,omitempty"`
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	a := accountFrom(r.Context())
	k, err := h.cfg.Accounts.CreateKey(r.Context(), a.ID, in.Name)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "api key created", "account", a.ID, "key", k.ID)
	writeJSON(w, http.StatusCreated, apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, Key: k.Key})
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.cfg.Accounts.ListKeys(r.Context(), accountFrom(r.Context()).ID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := make([]apiKeyJSON, 0, len(keys))
	for _, k := range keys {
		j := apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt}
		if !k.LastUsedAt.IsZero() {
			j.LastUsedAt = &k.LastUsedAt
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "nextPageToken": nil})
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	a := accountFrom(r.Context())
	if err := h.cfg.Accounts.RevokeKey(r.Context(), a.ID, r.PathValue("keyId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "api key revoked", "account", a.ID, "key", r.PathValue("keyId"))
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) createPortalLink(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Sessions == nil {
		writeError(w, r, h.log, &fault.Error{Code: fault.Forbidden, Message: "the portal is not served by this server"})
		return
	}
	var in struct {
		Feeds             bool     `json:"feeds"`
		CalendarIDs       []string `json:"calendarIds"`
		DisplayName       string   `json:"displayName"`
		AccentColor       string   `json:"accentColor"`
		LogoURL           string   `json:"logoUrl"`
		LinkTTLSeconds    int64    `json:"linkTtlSeconds"`
		SessionTTLSeconds int64    `json:"sessionTtlSeconds"`
	}
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	a, k := accountFrom(r.Context()), keyFrom(r.Context())
	l, err := h.cfg.Sessions.CreatePortalLink(r.Context(), a.ID, k.ID, session.PortalInput{
		Feeds: in.Feeds, CalendarIDs: in.CalendarIDs, DisplayName: in.DisplayName, Accent: in.AccentColor, LogoURL: in.LogoURL,
		LinkTTL: time.Duration(in.LinkTTLSeconds) * time.Second, SessionTTL: time.Duration(in.SessionTTLSeconds) * time.Second,
	})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"url":       h.baseURL(r) + "/console/portal/" + url.PathEscape(l.Secret),
		"expiresAt": l.ExpiresAt,
	})
}
