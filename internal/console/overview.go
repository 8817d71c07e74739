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
	// Conflicts are the units with open conflicts.
	Conflicts []unitRow
	Changes   []*store.Change
	Calendars map[string]string
	Quiet     bool
}

// recentChanges is how many changes the Overview lists.
const recentChanges = 20

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
	if h.cfg.Units != nil {
		if d.Conflicts, err = h.conflictedUnits(r, v); err != nil {
			h.renderError(w, r, v, err)
			return
		}
	}
	// Internal bookkeeping (a unit's calendars changed) is no news: read
	// more than shown and leave it out.
	changes, err := h.cfg.Reader.RecentChanges(ctx, v.accountID(), 2*recentChanges)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	for _, c := range changes {
		if !store.IsInternalChange(c.Type) && len(d.Changes) < recentChanges {
			d.Changes = append(d.Changes, c)
		}
	}
	d.Quiet = len(d.Failing)+len(d.Disabled)+len(d.Undelivered)+len(d.Imports)+len(d.Conflicts) == 0
	h.render(w, r, v, http.StatusOK, "overview", &pageData{Title: "Overview", Nav: "overview", Data: d})
}

// conflictedUnits returns the account's units that have open conflicts,
// in creation order, with how many.
func (h *Handler) conflictedUnits(r *http.Request, v *view) ([]unitRow, error) {
	counts, err := h.cfg.Reader.OpenConflictCounts(r.Context(), v.accountID(), nil)
	if err != nil || len(counts) == 0 {
		return nil, err
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	units, err := h.cfg.Units.UnitsByID(r.Context(), v.accountID(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]unitRow, len(units))
	for i, u := range units {
		out[i] = unitRow{Unit: u, Open: counts[u.ID]}
	}
	return out, nil
}
