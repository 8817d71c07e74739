package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/store"
)

// sourceJSON is an imported calendar's origin.
type sourceJSON struct {
	URL string `json:"url"`
	// PollIntervalSeconds is null when the server's default applies.
	PollIntervalSeconds *int64 `json:"pollIntervalSeconds"`
}

// importJSON is the sync state of an imported calendar, shown beside its
// other fields. Times are null until they happen; lastError is null while
// the feed is healthy.
type importJSON struct {
	LastSyncAt    *time.Time `json:"lastSyncAt"`
	LastSuccessAt *time.Time `json:"lastSuccessAt"`
	LastError     *string    `json:"lastError"`
	ETag          *string    `json:"etag"`
	NextPollAt    *time.Time `json:"nextPollAt"`
	EventCount    int        `json:"eventCount"`
	// HeldDeletes is the mass deletion waiting for a confirming fetch
	// (or POST …/sync/confirm); null when none.
	HeldDeletes *heldJSON `json:"heldDeletes"`
	// SkippedEvents are the feed's events calhook could not represent;
	// null when none.
	SkippedEvents *skippedJSON `json:"skippedEvents"`
}

// maxHeldListed bounds the held events a calendar lists (all are counted),
// so that a calendar of thousands of events stays a small answer.
const maxHeldListed = 100

// heldJSON is a held mass deletion.
type heldJSON struct {
	Count  int            `json:"count"`
	Events []eventKeyJSON `json:"events"`
	Since  time.Time      `json:"since"`
	Reason string         `json:"reason"`
}

// eventKeyJSON names an imported event by its UID and RECURRENCE-ID.
type eventKeyJSON struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
}

// skippedJSON lists the events a poll left out: all are counted, the
// first few listed with the reason.
type skippedJSON struct {
	Count  int                `json:"count"`
	Events []skippedEventJSON `json:"events"`
}

type skippedEventJSON struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
	Reason       string `json:"reason"`
}

func toImportJSON(c *store.Calendar) (*sourceJSON, *importJSON) {
	src := &sourceJSON{URL: c.SourceURL}
	if c.PollInterval > 0 {
		s := int64(c.PollInterval / time.Second)
		src.PollIntervalSeconds = &s
	}
	im := c.Import
	out := &importJSON{
		LastSyncAt: optTime(im.LastSyncAt), LastSuccessAt: optTime(im.LastSuccessAt), LastError: optString(im.LastError),
		ETag: optString(im.ETag), NextPollAt: optTime(im.NextPollAt), EventCount: im.EventCount,
	}
	if h := im.Held; h != nil {
		listed := h.Events[:min(len(h.Events), maxHeldListed)]
		out.HeldDeletes = &heldJSON{Count: len(h.Events), Events: make([]eventKeyJSON, len(listed)), Since: h.Since.UTC(), Reason: h.Reason}
		for k, e := range listed {
			out.HeldDeletes.Events[k] = eventKeyJSON{UID: e.UID, RecurrenceID: e.RecurrenceID}
		}
	}
	if sk := im.Skipped; sk != nil {
		out.SkippedEvents = &skippedJSON{Count: sk.Count, Events: make([]skippedEventJSON, len(sk.Events))}
		for k, e := range sk.Events {
			out.SkippedEvents.Events[k] = skippedEventJSON{UID: e.UID, RecurrenceID: e.RecurrenceID, Reason: e.Reason}
		}
	}
	return src, out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sourceInput is the `source` of POST /v1/calendars.
type sourceInput struct {
	URL                 *string `json:"url"`
	PollIntervalSeconds *int64  `json:"pollIntervalSeconds"`
}

func (in *sourceInput) domain() *calendar.SourceInput {
	if in == nil {
		return nil
	}
	out := &calendar.SourceInput{PollIntervalSeconds: in.PollIntervalSeconds}
	if in.URL != nil {
		out.URL = *in.URL
	}
	return out
}

// maxSyncWait bounds POST …/sync?wait=true: a fetch is bounded by the
// importer's timeout, but the poll may first wait for a free slot.
const maxSyncWait = 2 * time.Minute

var (
	errNoImporter  = &apiError{http.StatusServiceUnavailable, "imports_disabled", "importing feeds is not enabled on this server"}
	errSyncTimeout = &apiError{http.StatusServiceUnavailable, "sync_timeout",
		"the poll did not finish in time; it is still requested: read the calendar later"}
)

// syncJSON is the answer of POST /v1/calendars/{id}/sync.
type syncJSON struct {
	// Status is queued (without wait), or the poll's outcome: changed,
	// unchanged, not_modified or error.
	Status  string `json:"status"`
	Created *int   `json:"created,omitempty"`
	Updated *int   `json:"updated,omitempty"`
	Deleted *int   `json:"deleted,omitempty"`
	// Held is the number of deletes the calendar holds after the poll.
	Held     *int         `json:"held,omitempty"`
	Error    string       `json:"error,omitempty"`
	Calendar calendarJSON `json:"calendar"`
}

// syncCalendar polls an imported calendar now. Without wait it answers 202
// at once; with ?wait=true it answers 200 after the poll with its outcome,
// so a booking flow can re-check availability just before it confirms.
func (h *Handler) syncCalendar(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	calID := r.PathValue("calendarId")
	wait := false
	if v := r.URL.Query().Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, r, h.log, errInvalid("wait must be true or false"))
			return
		}
		wait = b
	}
	imp := h.cfg.Importer
	if imp == nil {
		h.writeNoImporter(w, r, acct.ID, calID)
		return
	}
	if !wait {
		if err := imp.Sync(r.Context(), acct.ID, calID); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		c, err := h.cfg.Calendars.Calendar(r.Context(), acct.ID, calID)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		writeJSON(w, http.StatusAccepted, syncJSON{Status: "queued", Calendar: toCalendarJSON(c)})
		return
	}
	drain, stop := lifecycle.Draining(r.Context())
	defer stop()
	ctx, cancel := context.WithTimeout(drain, maxSyncWait)
	defer cancel()
	res, err := imp.SyncWait(ctx, acct.ID, calID)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
			err = errSyncTimeout
		}
		writeError(w, r, h.log, err)
		return
	}
	c, err := h.cfg.Calendars.Calendar(r.Context(), acct.ID, calID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := syncJSON{Status: res.Status, Calendar: toCalendarJSON(c)}
	if res.Status == importer.StatusError {
		out.Error = res.Message
	} else {
		out.Created, out.Updated, out.Deleted, out.Held = &res.Created, &res.Updated, &res.Deleted, &res.Held
	}
	writeJSON(w, http.StatusOK, out)
}

// confirmSync applies the deletes an imported calendar holds at once: the
// operator knows the channel really cancelled those events. It answers
// like POST …/sync?wait=true.
func (h *Handler) confirmSync(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r.Context())
	calID := r.PathValue("calendarId")
	imp := h.cfg.Importer
	if imp == nil {
		h.writeNoImporter(w, r, acct.ID, calID)
		return
	}
	res, err := imp.ConfirmHeld(r.Context(), acct.ID, calID)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	zero := 0
	writeJSON(w, http.StatusOK, syncJSON{
		Status: res.Status, Created: &zero, Updated: &zero, Deleted: &res.Deleted, Held: &zero,
		Calendar: toCalendarJSON(res.Calendar),
	})
}

// writeNoImporter answers a sync route on a server without an importer:
// still 404 for an unknown calendar and 409 for a native one.
func (h *Handler) writeNoImporter(w http.ResponseWriter, r *http.Request, accountID, calendarID string) {
	c, err := h.cfg.Calendars.Calendar(r.Context(), accountID, calendarID)
	switch {
	case err != nil:
		writeError(w, r, h.log, err)
	case c.Kind != store.KindImported:
		writeError(w, r, h.log, importer.ErrNotImported)
	default:
		writeError(w, r, h.log, errNoImporter)
	}
}

// hookIn is calhook's own iCal Hooks receiver: an upstream feed that
// calhook imports changed, so the calendar is polled now (pings within a
// few seconds of each other are coalesced into one poll). The token in the
// URL is the only credential; an unknown one is a 404. HEAD is what the
// draft sends; GET and POST are accepted too.
func (h *Handler) hookIn(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Importer == nil {
		writeError(w, r, h.log, errNotFound)
		return
	}
	if err := h.cfg.Importer.Ping(r.Context(), r.PathValue("token")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted"})
}
