package httpapi

// The feeds: GET /feeds/…, answered from the render cache with ETag and
// 304s, and the iCal Hooks registrations that ride on them.

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/store"
)

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
	if err != nil {
		h.feedError(w, r, err, token, "calendar not found", "account", accountID, "calendar", calendarID)
		return
	}
	h.registerHook(w, r, accountID, calendarID, token, f.Version)
	h.writeFeed(w, r, f)
}

// feedError answers a feed that could not be read: 403 for a wrong or
// missing token (saying which) or a disabled feed (saying which switch),
// 404 with notFound, else 500 after logging err with the attrs. Feeds
// answer plain text, not the API's JSON.
func (h *Handler) feedError(w http.ResponseWriter, r *http.Request, err error, token, notFound string, attrs ...any) {
	switch {
	case errors.Is(err, feed.ErrAccountDisabled) || errors.Is(err, feed.ErrCalendarDisabled):
		http.Error(w, err.Error(), http.StatusForbidden)
	case errors.Is(err, feed.ErrForbidden):
		reason := "invalid feed token: check that the token in the URL is the account's current one"
		if token == "" {
			reason = "missing feed token: add ?token=YOUR_FEED_TOKEN to the URL"
		}
		http.Error(w, reason, http.StatusForbidden)
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, notFound, http.StatusNotFound)
	default:
		h.log.ErrorContext(r.Context(), "feed failed", append(attrs, "error", err)...)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// writeFeed answers a rendered feed, or 304 when the client has it.
func (h *Handler) writeFeed(w http.ResponseWriter, r *http.Request, f *feed.Feed) {
	if f.Streamed() {
		h.streamFeed(w, r, f)
		return
	}
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

// streamFeed answers a feed too big to cache: rendered as it is sent
// (compressed on the fly for a client that accepts gzip), without a
// Content-Length, with the same ETag and 304 rules as a cached one.
func (h *Handler) streamFeed(w http.ResponseWriter, r *http.Request, f *feed.Feed) {
	gz := acceptsGzip(r.Header["Accept-Encoding"])
	etag := f.ETag
	if gz {
		etag = feed.GzipETag(f.ETag)
	}
	hdr := w.Header()
	hdr["Etag"] = []string{etag}
	hdr["Last-Modified"] = f.Header.LastModified
	hdr["Cache-Control"] = feedCacheControl
	hdr["Vary"] = varyAcceptEncoding
	if notModified(r, etag, f.LastModified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"] = feedContentType
	if gz {
		hdr["Content-Encoding"] = []string{"gzip"}
	}
	hdr["X-Content-Type-Options"] = nosniff
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// The render reads the whole feed once for its zones before the
	// first byte: the client gets the headers now, not after that pass.
	_ = http.NewResponseController(w).Flush()
	var out io.Writer = w
	var zw *gzip.Writer
	if gz {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
		out = zw
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	_, err := f.Write(r.Context(), bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		// The status is sent: all that is left is to log and cut the
		// answer short.
		h.log.WarnContext(r.Context(), "stream feed", "error", err)
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

// registerHook handles X-ICALHOOKS-URL on a feed GET that passed the token
// check; the feed is answered the same either way.
func (h *Handler) registerHook(w http.ResponseWriter, r *http.Request, accountID, calendarID, token string, version int64) {
	hookURL := r.Header.Get("X-Icalhooks-Url")
	if hookURL == "" || h.cfg.Hooks == nil {
		return
	}
	status := h.cfg.Hooks.Register(r.Context(), icalhooks.Registration{
		AccountID: accountID, CalendarID: calendarID, URL: hookURL, Token: token,
		ClientIP: ClientIP(r, h.cfg.TrustedProxies), UserAgent: r.UserAgent(), Version: version,
	})
	w.Header().Set("X-Icalhooks-Status", status)
}

// ClientIP is the address of the client: the connection's peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not one.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if !isTrusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		if !isTrusted(hop) {
			return hop
		}
	}
	return host
}
