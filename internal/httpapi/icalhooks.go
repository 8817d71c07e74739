package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/store"
)

// registerHook handles X-ICALHOOKS-URL on a feed GET that passed the token
// check; the feed is answered the same either way.
func (h *Handler) registerHook(w http.ResponseWriter, r *http.Request, accountID, calendarID, token string, version int64) {
	hookURL := r.Header.Get("X-Icalhooks-Url")
	if hookURL == "" || h.cfg.Hooks == nil {
		return
	}
	status := h.cfg.Hooks.Register(r.Context(), icalhooks.Registration{
		AccountID: accountID, CalendarID: calendarID, URL: hookURL, Token: token,
		ClientIP: clientIP(r, h.cfg.TrustedProxies), UserAgent: r.UserAgent(), Version: version,
	})
	w.Header().Set("X-Icalhooks-Status", status)
}

// clientIP is the address of the client: the connection's peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not one.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
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
