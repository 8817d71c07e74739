package console

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
)

// home sends a visitor where they belong.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, v *view) {
	switch {
	case v.sess == nil:
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	case v.sess.Portal != nil:
		http.Redirect(w, r, "/console/webhooks", http.StatusSeeOther)
	case v.sess.AccountID == "":
		http.Redirect(w, r, "/console/accounts", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
	}
}

// signInData is the sign-in form.
type signInData struct {
	Next  string
	Error string
	// PreCSRF protects the sign-in form itself (double-submit cookie), so
	// another site cannot sign a visitor into its own account.
	PreCSRF string
}

const preCookie = "calhook_signin"

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request, v *view) {
	h.showSignIn(w, r, http.StatusOK, "")
}

func (h *Handler) showSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := ""
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) == 64 {
		token = c.Value
	} else {
		token = newToken()
		http.SetCookie(w, &http.Cookie{Name: preCookie, Value: token, Path: "/console/", HttpOnly: true,
			Secure: h.secure(r), SameSite: http.SameSiteStrictMode})
	}
	h.render(w, r, nil, status, "signin", &pageData{Title: "Sign in", Data: &signInData{
		Next: safeNext(r.FormValue("next")), Error: msg, PreCSRF: token,
	}})
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return ""
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, v *view) {
	addr := h.cfg.ClientIP(r)
	if blocked, wait := h.limiter.blocked(addr); blocked {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		h.showSignIn(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address. Wait a minute and try again.")
		return
	}
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, nil, errCSRF)
		return
	}
	c, err := r.Cookie(preCookie)
	if err != nil || !session.CSRFValid(&store.Session{CSRF: c.Value}, r.PostFormValue("csrf")) {
		h.renderError(w, r, nil, errCSRF)
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	var opened *session.Opened
	if h.cfg.Sessions.IsAdminToken(key) {
		opened, err = h.cfg.Sessions.OpenAdmin(r.Context(), key)
	} else {
		a, k, aerr := h.cfg.Accounts.AuthenticateKey(r.Context(), key)
		err = aerr
		if err == nil {
			opened, err = h.cfg.Sessions.OpenWithKey(r.Context(), a.ID, k.ID)
		}
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, session.ErrBadCredential) {
		h.limiter.fail(addr)
		h.showSignIn(w, r, http.StatusUnauthorized, "That key is not valid. Use an API key of your account, or the admin token.")
		return
	}
	if err != nil {
		h.renderError(w, r, nil, err)
		return
	}
	h.setCookie(w, r, opened)
	if next := safeNext(r.PostFormValue("next")); next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.home(w, r, &view{sess: opened.Session})
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, v *view) {
	if err := h.cfg.Sessions.End(r.Context(), v.sess); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.clearCookie(w, r)
	redirect(w, r, "/console/signin", "signed-out")
}

// redeemPortal opens the portal session of a single-use link.
func (h *Handler) redeemPortal(w http.ResponseWriter, r *http.Request, v *view) {
	opened, err := h.cfg.Sessions.RedeemPortalLink(r.Context(), r.PathValue("secret"))
	if errors.Is(err, store.ErrNotFound) {
		h.renderError(w, r, nil, &pageError{http.StatusGone, "Link expired",
			"This portal link was already used or has expired. Ask for a new one."})
		return
	}
	if err != nil {
		h.renderError(w, r, nil, err)
		return
	}
	h.setCookie(w, r, opened)
	http.Redirect(w, r, "/console/webhooks", http.StatusSeeOther)
}

// theme is the portal's accent colour as a stylesheet: the policy allows
// no inline style, and the colour was checked to be #rrggbb.
func (h *Handler) theme(w http.ResponseWriter, r *http.Request, v *view) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-cache")
	h.securityHeaders(w, v)
	if p := v.sess.Portal; p != nil && accentOK(p.Accent) {
		fmt.Fprintf(w, ":root { --accent: %s; }\n", p.Accent)
	}
}

func accentOK(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for _, c := range s[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// accountsData is the admin's accounts list.
type accountsData struct {
	Accounts []*store.Account
	Next     string
	// Created is an account just made, with its key shown once.
	Created *createdAccount
}

type createdAccount struct {
	ID, Name, APIKey string
}

func (h *Handler) accountsPage(w http.ResponseWriter, r *http.Request, v *view) {
	h.showAccounts(w, r, v, nil)
}

func (h *Handler) showAccounts(w http.ResponseWriter, r *http.Request, v *view, created *createdAccount) {
	const limit = 50
	list, err := h.cfg.Accounts.List(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &accountsData{Accounts: list, Created: created}
	if len(list) == limit {
		d.Next = list[len(list)-1].ID
	}
	h.render(w, r, v, http.StatusOK, "accounts", &pageData{Title: "Accounts", Nav: "accounts", Data: d})
}

func (h *Handler) createAccount(w http.ResponseWriter, r *http.Request, v *view) {
	a, err := h.cfg.Accounts.Create(r.Context(), r.PostFormValue("name"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.log.InfoContext(r.Context(), "account created", "account", a.ID)
	h.showAccounts(w, r, v, &createdAccount{ID: a.ID, Name: a.Name, APIKey: a.APIKey})
}

func (h *Handler) openAccount(w http.ResponseWriter, r *http.Request, v *view) {
	a, err := h.cfg.Accounts.Get(r.Context(), r.PathValue("accountId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if err := h.cfg.Sessions.UseAccount(r.Context(), v.sess, a.ID); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/overview", "")
}
