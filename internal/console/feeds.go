package console

import (
	"net/http"
	"net/url"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

type feedLink struct {
	ID, Name, URL string
	// Disabled is the calendar's feed switch.
	Disabled bool
}

type feedsData struct {
	// All is the account-wide feed; empty for a session scoped to
	// calendars.
	All string
	// AllDisabled is the account's feed switch.
	AllDisabled bool
	Calendars   []feedLink
	Hooks       []*store.Hook
	CanRotate   bool
}

func (h *Handler) feedURL(r *http.Request, accountID, calendarID, token string) string {
	base := h.baseURL(r) + "/feeds/" + url.PathEscape(accountID)
	if calendarID != "" {
		base += "/" + url.PathEscape(calendarID)
	}
	return base + ".ics?token=" + url.QueryEscape(token)
}

func (h *Handler) feedsPage(w http.ResponseWriter, r *http.Request, v *view) {
	// Afresh: the token may have been rotated on another node.
	a, err := h.cfg.Accounts.Get(r.Context(), v.accountID())
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	cals, err := h.listCalendars(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &feedsData{CanRotate: !v.calendarScoped(), AllDisabled: a.FeedsDisabled}
	if !v.calendarScoped() {
		d.All = h.feedURL(r, a.ID, "", a.FeedToken)
	}
	for _, c := range cals {
		d.Calendars = append(d.Calendars, feedLink{ID: c.ID, Name: c.Name, URL: h.feedURL(r, a.ID, c.ID, a.FeedToken), Disabled: c.FeedDisabled})
	}
	hooks, err := h.cfg.Hooks.List(r.Context(), store.ListHooksParams{AccountID: a.ID, Page: store.Page{Limit: 200}})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	for _, hk := range hooks {
		if v.allows(hk.CalendarID) {
			d.Hooks = append(d.Hooks, hk)
		}
	}
	h.render(w, r, v, http.StatusOK, "feeds", &pageData{Title: "Feeds", Nav: "feeds", Data: d})
}

func (h *Handler) rotateFeedToken(w http.ResponseWriter, r *http.Request, v *view) {
	// The token opens every calendar's feed: a session that sees only
	// some of them may not change it.
	if v.calendarScoped() {
		h.renderError(w, r, v, errForbidden)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		h.renderError(w, r, v, &pageError{http.StatusBadRequest, "Not confirmed",
			"Tick the box that confirms the old feed URLs stop working at once, then regenerate."})
		return
	}
	if _, err := h.cfg.Accounts.RotateFeedToken(r.Context(), v.accountID()); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/feeds", "rotated")
}

// switchFeeds turns every feed of the account off or on (the form's
// "disabled" is "true" or "false"). Like the token, the switch covers
// every calendar: a session that sees only some may not move it.
func (h *Handler) switchFeeds(w http.ResponseWriter, r *http.Request, v *view) {
	if v.calendarScoped() {
		h.renderError(w, r, v, errForbidden)
		return
	}
	disabled, ok := switchValue(r)
	if !ok {
		h.renderError(w, r, v, errSwitch)
		return
	}
	if _, err := h.cfg.Accounts.SetFeedsDisabled(r.Context(), v.accountID(), disabled); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/feeds", switchNotice(disabled))
}

// switchCalendarFeed turns one calendar's feed off or on.
func (h *Handler) switchCalendarFeed(w http.ResponseWriter, r *http.Request, v *view) {
	calID := r.PathValue("calendarId")
	if !v.allows(calID) {
		h.renderError(w, r, v, errNotFound)
		return
	}
	disabled, ok := switchValue(r)
	if !ok {
		h.renderError(w, r, v, errSwitch)
		return
	}
	if _, err := h.cfg.Calendars.UpdateCalendar(r.Context(), v.accountID(), calID, calendar.CalendarInput{FeedDisabled: &disabled}); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/feeds", switchNotice(disabled))
}

// errSwitch answers a switch form without a valid value.
var errSwitch = &pageError{http.StatusBadRequest, "Nothing changed", "The form did not say whether to enable or disable the feed. Reload the page and use its button."}

// switchValue reads a switch form's "disabled" field.
func switchValue(r *http.Request) (disabled, ok bool) {
	switch r.PostFormValue("disabled") {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func switchNotice(disabled bool) string {
	if disabled {
		return "feed-disabled"
	}
	return "feed-enabled"
}

func (h *Handler) deleteHook(w http.ResponseWriter, r *http.Request, v *view) {
	if v.calendarScoped() {
		hooks, err := h.cfg.Hooks.List(r.Context(), store.ListHooksParams{AccountID: v.accountID(), Page: store.Page{Limit: 1000}})
		if err != nil {
			h.renderError(w, r, v, err)
			return
		}
		found := false
		for _, hk := range hooks {
			found = found || hk.ID == r.PathValue("hookId") && v.allows(hk.CalendarID)
		}
		if !found {
			h.renderError(w, r, v, errNotFound)
			return
		}
	}
	if err := h.cfg.Hooks.Delete(r.Context(), v.accountID(), r.PathValue("hookId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/feeds", "deleted")
}
