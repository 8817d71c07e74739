package console

import (
	"net/http"

	"github.com/calhook/calhook/internal/store"
)

type overviewData struct {
	Failing     []*store.Subscription
	Disabled    []*store.Subscription
	Undelivered []*store.Subscription
	Imports     []*store.Calendar
	Changes     []*store.Change
	Calendars   map[string]string
	Quiet       bool
}

// overview shows what needs attention first, then the latest changes.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	subs, err := h.listSubscriptions(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &overviewData{Calendars: map[string]string{}}
	for _, s := range subs {
		switch {
		case s.Disabled:
			d.Disabled = append(d.Disabled, s)
		case !s.FailingSince.IsZero():
			d.Failing = append(d.Failing, s)
		}
		failed, _, err := h.cfg.Subscriptions.FilterMessages(ctx, store.ConsoleMessagesParams{
			AccountID: v.accountID(), SubscriptionID: s.ID, Status: store.MessageUndeliverable, Page: store.Page{Limit: 1},
		})
		if err != nil {
			h.renderError(w, r, v, err)
			return
		}
		if len(failed) > 0 {
			d.Undelivered = append(d.Undelivered, s)
		}
	}
	cals, err := h.listCalendars(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	for _, c := range cals {
		d.Calendars[c.ID] = c.Name
		if c.Kind == store.KindImported && (c.Import.LastError != "" || c.Import.Held != nil) {
			d.Imports = append(d.Imports, c)
		}
	}
	if d.Changes, err = h.cfg.Reader.RecentChanges(ctx, v.accountID(), 20); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d.Quiet = len(d.Failing)+len(d.Disabled)+len(d.Undelivered)+len(d.Imports) == 0
	h.render(w, r, v, http.StatusOK, "overview", &pageData{Title: "Overview", Nav: "overview", Data: d})
}
