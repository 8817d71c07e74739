// Package console serves calhook's web console and its embeddable portal
// at /console/: server-rendered pages (html/template) over the same
// services as the API, sessions kept in the store, a CSRF token on every
// form that changes something, a strict Content-Security-Policy, embedded
// assets with content-hashed names, and live updates over Server-Sent
// Events fed by the notify.Bus.
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/importer"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
)

// Reader is what the console reads beyond the services.
type Reader interface {
	RecentChanges(ctx context.Context, accountID string, limit int) ([]*store.Change, error)
	ActivityMark(ctx context.Context) (string, error)
	OpenConflictCounts(ctx context.Context, accountID string, unitIDs []string) (map[string]int, error)
	LatestConflicts(ctx context.Context, accountID, unitID, state string, limit int) ([]*store.Conflict, error)
}

// Config is what the console needs.
type Config struct {
	Accounts      *account.Service
	Calendars     *calendar.Service
	Subscriptions *subscription.Service
	Hooks         *icalhooks.Service
	// Importer syncs imported calendars; nil hides "Sync now".
	Importer *importer.Importer
	// Units manages units and their availability; nil hides the Units
	// screens.
	Units    *availability.Service
	Sessions *session.Service
	Reader   Reader
	Bus      *notify.Bus
	Logger   *slog.Logger
	// PublicURL is the base of feed and portal URLs; when empty the
	// request's own origin is used. An https PublicURL makes cookies
	// Secure.
	PublicURL string
	// FrameAncestors are the origins that may frame the portal.
	FrameAncestors []string
	// ClientIP returns the address a request came from, for the sign-in
	// rate limit.
	ClientIP func(*http.Request) string
	// SignInAttempts is how many failed sign-ins one address may make per
	// minute; zero means 10.
	SignInAttempts int
	Now            func() time.Time
}

// Handler serves /console/.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	pages   *pages
	assets  *assets
	limiter *limiter
	live    *broadcaster
	avail   *availCache
}

// cookieName is the session cookie.
const cookieName = "calhook_session"

// New returns the console handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if cfg.SignInAttempts <= 0 {
		cfg.SignInAttempts = 10
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	ps, err := loadPages(as)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg, log: cfg.Logger.With("component", "console"), mux: http.NewServeMux(), pages: ps, assets: as,
		limiter: newLimiter(cfg.SignInAttempts, time.Minute, cfg.Now), live: newBroadcaster(),
	}
	bus := notify.Or(cfg.Bus)
	h.avail = newAvailCache(bus)
	bus.FeedsChanged.Subscribe(func(notify.FeedChange) { h.live.wake() })
	bus.MessagesDue.Subscribe(func(notify.Due) { h.live.wake() })
	h.routes()
	return h, nil
}

// access is who may open a route.
type access int

const (
	public   access = iota // anyone
	signedIn               // any session
	admin                  // an admin session
	console                // a console session with an account
	portal                 // a console session, or a portal session
	feeds                  // a console session, or a portal session with feeds
)

func (h *Handler) routes() {
	h.mux.Handle("GET /console/assets/{name}", h.assets)
	h.route("GET /console/{$}", public, h.home)
	h.route("GET /console/signin", public, h.signInPage)
	h.route("POST /console/signin", public, h.signIn)
	h.route("GET /console/portal/{secret}", public, h.redeemPortal)
	h.route("POST /console/signout", signedIn, h.signOut)
	h.route("GET /console/theme.css", signedIn, h.theme)
	h.route("GET /console/live", signedIn, h.stream)

	h.route("GET /console/accounts", admin, h.accountsPage)
	h.route("POST /console/accounts", admin, h.createAccount)
	h.route("POST /console/accounts/{accountId}/open", admin, h.openAccount)

	h.route("GET /console/overview", console, h.overview)
	h.route("GET /console/calendars", console, h.calendarsPage)
	h.route("POST /console/calendars", console, h.createCalendar)
	h.route("GET /console/calendars/{calendarId}", console, h.calendarPage)
	h.route("POST /console/calendars/{calendarId}/sync", console, h.syncCalendar)
	h.route("POST /console/calendars/{calendarId}/delete", console, h.deleteCalendar)
	h.route("GET /console/calendars/{calendarId}/events/new", console, h.eventPage)
	h.route("POST /console/calendars/{calendarId}/events", console, h.saveEvent)
	h.route("GET /console/calendars/{calendarId}/events/{eventId}", console, h.eventPage)
	h.route("POST /console/calendars/{calendarId}/events/{eventId}", console, h.saveEvent)
	h.route("POST /console/calendars/{calendarId}/events/{eventId}/delete", console, h.deleteEvent)
	if h.cfg.Units != nil {
		h.route("GET /console/units", console, h.unitsPage)
		h.route("POST /console/units", console, h.createUnit)
		h.route("GET /console/units/{unitId}", console, h.unitPage)
		h.route("POST /console/units/{unitId}", console, h.updateUnit)
		h.route("POST /console/units/{unitId}/delete", console, h.deleteUnit)
		h.route("POST /console/units/{unitId}/calendars", console, h.attachCalendar)
		h.route("POST /console/units/{unitId}/calendars/{calendarId}/detach", console, h.detachCalendar)
	}
	h.route("GET /console/keys", console, h.keysPage)
	h.route("POST /console/keys", console, h.createKey)
	h.route("POST /console/keys/{keyId}/revoke", console, h.revokeKey)

	h.route("GET /console/feeds", feeds, h.feedsPage)
	h.route("POST /console/feeds/rotate", feeds, h.rotateFeedToken)
	h.route("POST /console/feeds/switch", feeds, h.switchFeeds)
	h.route("POST /console/feeds/calendars/{calendarId}/switch", feeds, h.switchCalendarFeed)
	h.route("POST /console/feeds/hooks/{hookId}/delete", feeds, h.deleteHook)

	h.route("GET /console/webhooks", portal, h.webhooksPage)
	h.route("POST /console/webhooks", portal, h.createSubscription)
	h.route("GET /console/webhooks/{subscriptionId}", portal, h.subscriptionPage)
	h.route("POST /console/webhooks/{subscriptionId}/{action}", portal, h.subscriptionAction)
	h.route("GET /console/messages/{messageId}", portal, h.messagePage)
	h.route("POST /console/messages/{messageId}/redeliver", portal, h.redeliver)

	h.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, nil, errNotFound)
	})
}

// ServeHTTP serves a request under /console/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// view is what a page handler gets: the request's session (nil on
// public pages) and its account.
type view struct {
	sess    *store.Session
	account *store.Account
	// mark is the activity mark read before the page's data (see stream).
	mark string
}

// accountID returns the id of the account shown.
func (v *view) accountID() string {
	if v.sess == nil {
		return ""
	}
	return v.sess.AccountID
}

// allows reports whether the session may see what belongs to calendarID
// (empty: every calendar of the account): always, unless a portal session
// is limited to calendars and calendarID is not among them.
func (v *view) allows(calendarID string) bool {
	if v.sess == nil || v.sess.Portal == nil || len(v.sess.Portal.CalendarIDs) == 0 {
		return true
	}
	return calendarID != "" && slices.Contains(v.sess.Portal.CalendarIDs, calendarID)
}

// calendarScoped reports whether the session sees only some calendars.
func (v *view) calendarScoped() bool {
	return v.sess != nil && v.sess.Portal != nil && len(v.sess.Portal.CalendarIDs) > 0
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v *view)

// Errors pages answer with.
var (
	errNotFound  = &pageError{http.StatusNotFound, "Not found", "There is nothing here, or it belongs to another account."}
	errForbidden = &pageError{http.StatusForbidden, "Not allowed", "This page is not open to this session."}
	errCSRF      = &pageError{http.StatusForbidden, "Form expired", "The form was not sent from this console session. Go back, reload the page and try again."}
)

// route registers a page with its access rule, the security headers and,
// for POSTs, the CSRF check.
func (h *Handler) route(pattern string, level access, fn pageFunc) {
	post := strings.HasPrefix(pattern, "POST ")
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v := &view{}
		if level != public || r.URL.Path == "/console/" {
			sess, err := h.cfg.Sessions.Lookup(r.Context(), h.cookie(r))
			switch {
			case errors.Is(err, store.ErrNotFound):
				if level == public {
					break
				}
				h.clearCookie(w, r)
				if r.Method == http.MethodGet && r.URL.Path != "/console/live" {
					http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				h.renderError(w, r, nil, &pageError{http.StatusUnauthorized, "Signed out", "Your session ended. Sign in again."})
				return
			case err != nil:
				h.renderError(w, r, nil, err)
				return
			}
			v.sess = sess
		}
		if v.sess != nil && !h.permits(v.sess, level) {
			h.renderError(w, r, v, errForbidden)
			return
		}
		if post && v.sess != nil {
			if err := r.ParseForm(); err != nil || !session.CSRFValid(v.sess, r.PostFormValue("csrf")) {
				h.renderError(w, r, v, errCSRF)
				return
			}
		}
		if v.sess != nil && r.Method == http.MethodGet {
			// Read before the page's data, so that a write between the two
			// reads makes the live stream refresh the page.
			mark, err := h.cfg.Reader.ActivityMark(r.Context())
			if err != nil {
				h.renderError(w, r, v, err)
				return
			}
			v.mark = mark
		}
		if v.sess != nil && v.sess.AccountID != "" && level != public {
			a, err := h.cfg.Accounts.Get(r.Context(), v.sess.AccountID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				h.renderError(w, r, v, err)
				return
			}
			v.account = a
			if a == nil && level >= console {
				h.renderError(w, r, v, errNotFound)
				return
			}
		}
		fn(w, r, v)
	})
}

// permits reports whether a session may open a route of the given level.
func (h *Handler) permits(s *store.Session, level access) bool {
	switch level {
	case public, signedIn:
		return true
	case admin:
		return s.Admin()
	case console:
		return s.Portal == nil && s.AccountID != ""
	case portal:
		return s.AccountID != ""
	case feeds:
		return s.AccountID != "" && (s.Portal == nil || s.Portal.Feeds)
	}
	return false
}

func (h *Handler) cookie(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// secure reports whether cookies must be Secure.
func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(h.cfg.PublicURL, "https://")
}

// setCookie sets the session cookie. A portal session framed by another
// site only gets its cookie back with SameSite=None (and Partitioned, for
// browsers that block third-party cookies), which needs https; otherwise
// cookies are SameSite=Strict.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, o *session.Opened) {
	c := &http.Cookie{
		Name: cookieName, Value: o.Secret, Path: "/console/", HttpOnly: true, Secure: h.secure(r),
		SameSite: http.SameSiteStrictMode, Expires: o.ExpiresAt,
	}
	if o.Portal != nil && c.Secure && len(h.cfg.FrameAncestors) > 0 {
		c.SameSite, c.Partitioned = http.SameSiteNoneMode, true
	}
	http.SetCookie(w, c)
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/console/", HttpOnly: true, Secure: h.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
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

// redirect answers a form with 303 to path, with a notice code the page
// turns into a fixed message (no user input is reflected).
func redirect(w http.ResponseWriter, r *http.Request, path, notice string) {
	if notice != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "notice=" + url.QueryEscape(notice)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}
