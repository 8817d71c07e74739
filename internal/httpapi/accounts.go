package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/feed"
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

func (h *Handler) accountFeed(w http.ResponseWriter, r *http.Request) {
	accountID, ok := strings.CutSuffix(r.PathValue("file"), ".ics")
	if !ok {
		http.Error(w, "feeds end in .ics", http.StatusNotFound)
		return
	}
	h.serveFeed(w, r, accountID, "")
}

func (h *Handler) calendarFeed(w http.ResponseWriter, r *http.Request) {
	calendarID, ok := strings.CutSuffix(r.PathValue("file"), ".ics")
	if !ok {
		http.Error(w, "feeds end in .ics", http.StatusNotFound)
		return
	}
	h.serveFeed(w, r, r.PathValue("accountId"), calendarID)
}

// serveFeed answers a feed with ETag and Last-Modified, and 304 to a
// matching If-None-Match or If-Modified-Since. The body goes out in one
// write: feeds are large and served far more often than they change.
func (h *Handler) serveFeed(w http.ResponseWriter, r *http.Request, accountID, calendarID string) {
	token := queryParam(r.URL.RawQuery, "token")
	f, err := h.cfg.Feeds.Get(r.Context(), accountID, calendarID, token)
	switch {
	case errors.Is(err, feed.ErrForbidden):
		reason := "invalid feed token: check that the token in the URL is the account's current one"
		if token == "" {
			reason = "missing feed token: add ?token=YOUR_FEED_TOKEN to the URL"
		}
		http.Error(w, reason, http.StatusForbidden)
		return
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "calendar not found", http.StatusNotFound)
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "feed failed", "account", accountID, "calendar", calendarID, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.registerHook(w, r, accountID, calendarID, token, f.Version)
	// The representation: gzip, compressed once per feed version, for a
	// client that accepts it, else the plain bytes. Each has its own ETag.
	body, etag, etagHdr, length, coding := f.Body, f.ETag, f.Header.ETag, f.Header.ContentLength, []string(nil)
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		if gz := f.Gzip(); gz != nil {
			body, etag, etagHdr, length, coding = gz.Body, gz.ETag, gz.Header.ETag, gz.Header.ContentLength, gz.Header.ContentEncoding
		}
	}
	hdr := w.Header()
	hdr["Etag"] = etagHdr
	hdr["Last-Modified"] = f.Header.LastModified
	hdr["Cache-Control"] = feedCacheControl
	hdr["Vary"] = varyAcceptEncoding
	if notModified(r, etag, f.LastModified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"] = feedContentType
	hdr["Content-Length"] = length
	if coding != nil {
		hdr["Content-Encoding"] = coding
	}
	hdr["X-Content-Type-Options"] = nosniff
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// Header values shared by every feed response; never modified.
var (
	feedCacheControl = []string{"private, no-cache"}
	feedContentType  = []string{"text/calendar; charset=utf-8"}
	nosniff          = []string{"nosniff"}
	// varyAcceptEncoding goes on every feed answer, plain ones too: a
	// shared cache must not hand a stored gzip body to a client that did
	// not ask for it, nor the plain one to one that did.
	varyAcceptEncoding = []string{"Accept-Encoding"}
)

// notModified applies RFC 9110's conditional GET rules: If-None-Match wins
// over If-Modified-Since.
func notModified(r *http.Request, etag string, lastModified time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for tag := range strings.SplitSeq(inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !lastModified.After(t)
	}
	return false
}

// queryParam returns the first value of key in a raw query string without
// parsing the whole query (the feed path runs for every calendar poll).
func queryParam(raw, key string) string {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}
