package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/store"
)

type accountJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	APIKey    string    `json:"apiKey,omitempty"`
	FeedToken string    `json:"feedToken,omitempty"`
}

func (h *Handler) createAccount(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	a, err := h.cfg.Accounts.Create(r.Context(), in.Name)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "account created", "account", a.ID)
	writeJSON(w, http.StatusCreated, accountJSON{
		ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt, APIKey: a.APIKey, FeedToken: a.FeedToken,
	})
}

func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := h.cfg.Accounts.Get(r.Context(), r.PathValue("accountId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, accountJSON{ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt})
}

func (h *Handler) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Accounts.Delete(r.Context(), r.PathValue("accountId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "account deleted", "account", r.PathValue("accountId"))
	w.WriteHeader(http.StatusNoContent)
}

type feedTokenJSON struct {
	FeedToken        string            `json:"feedToken"`
	FeedURL          string            `json:"feedUrl"`
	CalendarFeedURLs map[string]string `json:"calendarFeedUrls"`
}

func (h *Handler) getFeedToken(w http.ResponseWriter, r *http.Request) {
	// Afresh: the authenticated account may be a few seconds old, from
	// before a rotation through another node.
	a, err := h.cfg.Accounts.Get(r.Context(), accountFrom(r.Context()).ID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.writeFeedToken(w, r, a.ID, a.FeedToken)
}

func (h *Handler) rotateFeedToken(w http.ResponseWriter, r *http.Request) {
	a := accountFrom(r.Context())
	token, err := h.cfg.Accounts.RotateFeedToken(r.Context(), a.ID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "feed token rotated; its iCal Hooks were dropped", "account", a.ID)
	h.writeFeedToken(w, r, a.ID, token)
}

type feedSettingsJSON struct {
	Disabled bool `json:"disabled"`
}

func (h *Handler) getFeedSettings(w http.ResponseWriter, r *http.Request) {
	// Afresh, as getFeedToken: the switch may have moved on another node.
	a, err := h.cfg.Accounts.Get(r.Context(), accountFrom(r.Context()).ID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, feedSettingsJSON{Disabled: a.FeedsDisabled})
}

func (h *Handler) updateFeedSettings(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Disabled *bool `json:"disabled"`
	}
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if in.Disabled == nil {
		writeError(w, r, h.log, errInvalid("disabled: is required (true or false)"))
		return
	}
	a, err := h.cfg.Accounts.SetFeedsDisabled(r.Context(), accountFrom(r.Context()).ID, *in.Disabled)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.log.InfoContext(r.Context(), "feed switch changed", "account", a.ID, "disabled", a.FeedsDisabled)
	writeJSON(w, http.StatusOK, feedSettingsJSON{Disabled: a.FeedsDisabled})
}

// writeFeedToken answers the token with the URL of every feed it opens.
func (h *Handler) writeFeedToken(w http.ResponseWriter, r *http.Request, accountID, token string) {
	base := h.baseURL(r)
	out := feedTokenJSON{
		FeedToken:        token,
		FeedURL:          base + "/feeds/" + url.PathEscape(accountID) + ".ics?token=" + token,
		CalendarFeedURLs: map[string]string{},
	}
	p := store.Page{Limit: 1000}
	for {
		cals, err := h.cfg.Calendars.ListCalendars(r.Context(), store.ListCalendarsParams{AccountID: accountID, Page: p})
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		for _, c := range cals {
			out.CalendarFeedURLs[c.ID] = base + "/feeds/" + url.PathEscape(accountID) + "/" + url.PathEscape(c.ID) + ".ics?token=" + token
		}
		if len(cals) < p.Limit {
			break
		}
		p.After = cals[len(cals)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

// baseURL is the configured public URL, or the request's own origin.
func (h *Handler) baseURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimRight(h.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
