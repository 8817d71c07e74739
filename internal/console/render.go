package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	name, contentType string
	body, gz          []byte
}

// assets serves the embedded static files under content-hashed names,
// cached for a year: a new build changes the name of what it changes.
type assets struct {
	byName map[string]*asset // by hashed name
	paths  map[string]string // plain name → /console/assets/hashed name
}

func loadAssets() (*assets, error) {
	as := &assets{byName: map[string]*asset{}, paths: map[string]string{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		return as.add(path.Base(p), body)
	})
	if err == nil {
		err = as.add("timeline.css", gridCSS())
	}
	if err != nil {
		return nil, fmt.Errorf("load console assets: %w", err)
	}
	return as, nil
}

// add makes body the asset of the plain name base.
func (as *assets) add(base string, body []byte) error {
	sum := sha256.Sum256(body)
	ext := path.Ext(base)
	hashed := strings.TrimSuffix(base, ext) + "." + hex.EncodeToString(sum[:6]) + ext
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	as.byName[hashed] = &asset{name: hashed, contentType: mime.TypeByExtension(ext), body: body, gz: gz.Bytes()}
	as.paths[base] = "/console/assets/" + hashed
	return nil
}

func (as *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := as.byName[r.PathValue("name")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	body := a.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}

// pages are the parsed templates: each page with the layout.
type pages struct {
	byName map[string]*template.Template
}

func loadPages(as *assets) (*pages, error) {
	funcs := template.FuncMap{
		"asset": func(name string) string { return as.paths[name] },
		"time":  timeTag,
		"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":   strings.Join,
		"dotted": dotted,
		"query":  url.QueryEscape,
		"path":   url.PathEscape,
		"contains": func(list []string, s string) bool {
			for _, v := range list {
				if v == s {
					return true
				}
			}
			return false
		},
	}
	ps := &pages{byName: map[string]*template.Template{}}
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("parse console template %s: %w", name, err)
		}
		ps.byName[name] = t
	}
	return ps, nil
}

// timeTag renders an instant as a <time> element in UTC, which the
// script rewrites into the viewer's zone; the UTC form stays on hover.
func timeTag(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		u.Format(time.RFC3339), u.Format("2006-01-02 15:04:05 UTC"), u.Format("2006-01-02 15:04 UTC")))
}

// dotted escapes a dotted name such as an event type with a line break
// opportunity after each dot, so that a narrow column breaks it there
// rather than inside a word.
func dotted(s string) template.HTML {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(strings.Join(parts, ".<wbr>"))
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Nav     string
	Session *store.Session
	Account *store.Account
	Portal  *store.PortalScope
	CSRF    string
	Notice  string
	// Mark is the activity mark the page was read at; its live stream
	// starts from it.
	Mark string
	// Units shows the Units screens in the navigation.
	Units bool
	// Data is the page's own.
	Data any
}

// notices are the fixed messages a redirect may ask a page to show.
var notices = map[string]string{
	"created":       "Created.",
	"saved":         "Saved.",
	"deleted":       "Deleted.",
	"revoked":       "Revoked. It stopped working at once.",
	"rotated":       "The feed token was regenerated: the old feed URLs stopped working.",
	"feed-disabled": "Feed disabled: its URL now answers 403 (feed disabled) until you enable it again. The URL and token stay the same.",
	"feed-enabled":  "Feed enabled: its URL serves the calendar again.",
	"disabled":      "Disabled: nothing is delivered to it until you enable it.",
	"enabled":       "Enabled.",
	"test":          "A calhook.test message was queued; its attempt appears below.",
	"redelivered":   "Queued for delivery again.",
	"synced":        "Synced.",
	"sync-started":  "A sync was started; the result appears here when it ends.",
	"signed-out":    "You are signed out.",
	"attached":      "Attached: its bookings now count for this unit.",
	"detached":      "Detached: its bookings no longer count for this unit.",
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}

// render writes a page with the security headers, gzipped when the
// client accepts it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, v *view, status int, name string, d *pageData) {
	t := h.pages.byName[name]
	if v != nil && v.sess != nil {
		d.Session, d.CSRF, d.Portal = v.sess, v.sess.CSRF, v.sess.Portal
		d.Account, d.Mark = v.account, v.mark
		d.Units = h.cfg.Units != nil && v.sess.Portal == nil
	}
	if d.Notice == "" {
		d.Notice = notices[r.URL.Query().Get("notice")]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.securityHeaders(w, v)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Encoding, Cookie")
	if buf.Len() > 1024 && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(w)
		// A failed write is the client gone; nothing is left to tell it.
		_, _ = zw.Write(buf.Bytes())
		_ = zw.Close()
		gzipPool.Put(zw)
		return
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// securityHeaders sets the Content-Security-Policy: no inline script or
// style, nothing from elsewhere but a portal's logo, and no framing but by
// the portal's configured origins.
func (h *Handler) securityHeaders(w http.ResponseWriter, v *view) {
	img := "'self'"
	frame := "'none'"
	if v != nil && v.sess != nil && v.sess.Portal != nil {
		if u, err := url.Parse(v.sess.Portal.LogoURL); err == nil && u.Host != "" {
			img += " " + u.Scheme + "://" + u.Host
		}
		if len(h.cfg.FrameAncestors) > 0 {
			frame = strings.Join(h.cfg.FrameAncestors, " ")
		}
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src "+img+
		"; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors "+frame)
	if frame == "'none'" {
		hd.Set("X-Frame-Options", "DENY")
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
}

// pageError is an error shown as a page with a status.
type pageError struct {
	status      int
	title, text string
}

func (e *pageError) Error() string { return e.text }

// renderError shows an error page: the HTML twin of httpapi's writeError.
// Errors a person can act on say what went wrong; others are logged and
// shown as an internal error.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, v *view, err error) {
	var pe *pageError
	var fe *fault.Error
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, store.ErrNotFound):
		pe = errNotFound
	case errors.As(err, &fe):
		status := map[fault.Code]int{
			fault.Invalid: http.StatusBadRequest, fault.Conflict: http.StatusConflict, fault.Forbidden: http.StatusForbidden,
			fault.Gone: http.StatusGone, fault.RateLimited: http.StatusTooManyRequests,
		}[fe.Code]
		if status == 0 {
			status = http.StatusBadRequest
		}
		pe = &pageError{status, "That did not work", fe.Message}
	default:
		h.log.ErrorContext(r.Context(), "console request failed", "path", r.URL.Path, "error", err)
		pe = &pageError{http.StatusInternalServerError, "Internal error", "Something went wrong on the server. Try again."}
	}
	h.render(w, r, v, pe.status, "error", &pageData{Title: pe.title, Data: pe})
}

// Title and Text let the error template read a pageError.
func (e *pageError) Title() string { return e.title }

// Text is the explanation shown.
func (e *pageError) Text() string { return e.text }
