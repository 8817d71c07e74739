// Package session opens, checks and ends the web console's sessions and
// makes and redeems the portal's single-use links. Sessions live in the
// store, so any node serves them; the cookie carries a random secret of
// which only the hash is stored.
package session

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// Store is where sessions and portal links are kept.
type Store interface {
	CreateSession(ctx context.Context, s *store.Session) error
	Session(ctx context.Context, id string, now time.Time, idle time.Duration) (*store.Session, error)
	TouchSession(ctx context.Context, id string, now time.Time) error
	SetSessionAccount(ctx context.Context, id, accountID string) error
	DeleteSession(ctx context.Context, id string) error
	PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error)
	CreatePortalLink(ctx context.Context, l *store.PortalLink) error
	RedeemPortalLink(ctx context.Context, id string, now time.Time) (*store.PortalLink, error)
	Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error)
}

// Defaults.
const (
	DefaultIdle       = 12 * time.Hour
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultLinkTTL    = 10 * time.Minute
	DefaultPortalTTL  = 24 * time.Hour
	maxPortalTTL      = 7 * 24 * time.Hour
	touchEvery        = time.Minute
	maxDisplayName    = 100
	maxPortalCalendar = 100
)

// Config is what the service needs.
type Config struct {
	Store Store
	Now   func() time.Time
	// Idle ends a session that saw no request for this long.
	Idle time.Duration
	// MaxAge ends a console session this long after it opened.
	MaxAge time.Duration
	// AdminToken opens admin sessions; empty disables them.
	AdminToken string
}

// Service opens and checks sessions.
type Service struct {
	cfg Config
}

// New returns a Service with cfg's zero fields defaulted.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	return &Service{cfg: cfg}
}

// Idle returns how long a session may idle.
func (s *Service) Idle() time.Duration { return s.cfg.Idle }

// ErrBadCredential is returned for a key or token that opens nothing.
var ErrBadCredential error = &fault.Error{Code: fault.Forbidden, Message: "that key or token is not valid"}

// Opened is a new session and the secret its cookie carries.
type Opened struct {
	*store.Session
	Secret string
}

func (s *Service) open(ctx context.Context, sess *store.Session, ttl time.Duration) (*Opened, error) {
	secret := id.APIKey()
	now := s.cfg.Now().UTC()
	sess.ID, sess.CSRF = id.HashKey(secret), id.FeedToken()
	sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = now, now, now.Add(ttl)
	if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	// Sign-ins are rare enough to carry the sweep of dead sessions.
	if _, err := s.cfg.Store.PruneSessions(ctx, now, now.Add(-s.cfg.Idle)); err != nil {
		return nil, err
	}
	return &Opened{Session: sess, Secret: secret}, nil
}

// OpenWithKey opens a console session for the account of an API key that
// the caller authenticated.
func (s *Service) OpenWithKey(ctx context.Context, accountID, keyID string) (*Opened, error) {
	return s.open(ctx, &store.Session{AccountID: accountID, KeyID: keyID}, s.cfg.MaxAge)
}

// IsAdminToken reports, in constant time, whether token is the admin token.
func (s *Service) IsAdminToken(token string) bool {
	return s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}

// OpenAdmin opens an admin session with the admin token.
func (s *Service) OpenAdmin(ctx context.Context, token string) (*Opened, error) {
	if !s.IsAdminToken(token) {
		return nil, ErrBadCredential
	}
	return s.open(ctx, &store.Session{AdminTokenHash: id.HashKey(s.cfg.AdminToken)}, s.cfg.MaxAge)
}

// Lookup returns the live session whose cookie carries secret, or
// store.ErrNotFound. An admin session ends when the admin token changes.
func (s *Service) Lookup(ctx context.Context, secret string) (*store.Session, error) {
	if secret == "" {
		return nil, store.ErrNotFound
	}
	now := s.cfg.Now().UTC()
	sess, err := s.cfg.Store.Session(ctx, id.HashKey(secret), now, s.cfg.Idle)
	if err != nil {
		return nil, err
	}
	if sess.Admin() && (s.cfg.AdminToken == "" || sess.AdminTokenHash != id.HashKey(s.cfg.AdminToken)) {
		return nil, store.ErrNotFound
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.cfg.Store.TouchSession(ctx, sess.ID, now); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// End ends a session.
func (s *Service) End(ctx context.Context, sess *store.Session) error {
	return s.cfg.Store.DeleteSession(ctx, sess.ID)
}

// UseAccount makes an admin session show an account.
func (s *Service) UseAccount(ctx context.Context, sess *store.Session, accountID string) error {
	if !sess.Admin() {
		return store.ErrNotFound
	}
	return s.cfg.Store.SetSessionAccount(ctx, sess.ID, accountID)
}

// CSRFValid reports, in constant time, whether token is the session's
// CSRF token.
func CSRFValid(sess *store.Session, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) == 1
}

// PortalInput is what a portal link may ask for.
type PortalInput struct {
	Feeds       bool
	CalendarIDs []string
	DisplayName string
	Accent      string
	LogoURL     string
	// LinkTTL is how long the link may be used; SessionTTL how long the
	// session it opens lasts. Zero means the defaults.
	LinkTTL, SessionTTL time.Duration
}

var accentRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// PortalLink is a new link and the secret its URL carries.
type PortalLink struct {
	Secret    string
	ExpiresAt time.Time
}

// CreatePortalLink makes a single-use link that opens a portal session
// for an account, made with the key keyID.
func (s *Service) CreatePortalLink(ctx context.Context, accountID, keyID string, in PortalInput) (*PortalLink, error) {
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	switch {
	case len(in.DisplayName) > maxDisplayName || !utf8.ValidString(in.DisplayName) ||
		strings.ContainsFunc(in.DisplayName, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, fault.Invalidf("displayName", "must be at most %d bytes of text without control characters", maxDisplayName)
	case in.Accent != "" && !accentRE.MatchString(in.Accent):
		return nil, fault.Invalidf("accentColor", "must be a colour like #1a7f5a")
	case len(in.CalendarIDs) > maxPortalCalendar:
		return nil, fault.Invalidf("calendarIds", "at most %d calendars", maxPortalCalendar)
	case in.LinkTTL < 0 || in.LinkTTL > time.Hour:
		return nil, fault.Invalidf("linkTtlSeconds", "must be from 1 to 3600 seconds")
	case in.SessionTTL < 0 || in.SessionTTL > maxPortalTTL:
		return nil, fault.Invalidf("sessionTtlSeconds", "must be from 1 second to 7 days")
	}
	if in.LogoURL != "" {
		u, err := url.Parse(in.LogoURL)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || len(in.LogoURL) > 2048 {
			return nil, fault.Invalidf("logoUrl", "must be an http or https URL")
		}
		in.LogoURL = u.String()
	}
	ids := []string{}
	for _, c := range in.CalendarIDs {
		if slices.Contains(ids, c) {
			continue
		}
		if _, err := s.cfg.Store.Calendar(ctx, accountID, c); err != nil {
			return nil, fault.Invalidf("calendarIds", "no calendar %q in this account", c)
		}
		ids = append(ids, c)
	}
	linkTTL, sessTTL := in.LinkTTL, in.SessionTTL
	if linkTTL == 0 {
		linkTTL = DefaultLinkTTL
	}
	if sessTTL == 0 {
		sessTTL = DefaultPortalTTL
	}
	secret := id.APIKey()
	now := s.cfg.Now().UTC()
	l := &store.PortalLink{
		ID: id.HashKey(secret), AccountID: accountID, KeyID: keyID,
		Scope: store.PortalScope{
			Feeds: in.Feeds, CalendarIDs: ids, DisplayName: in.DisplayName, Accent: strings.ToLower(in.Accent), LogoURL: in.LogoURL,
		},
		SessionTTL: sessTTL, CreatedAt: now, ExpiresAt: now.Add(linkTTL),
	}
	if len(ids) == 0 {
		l.Scope.CalendarIDs = nil
	}
	if err := s.cfg.Store.CreatePortalLink(ctx, l); err != nil {
		return nil, fmt.Errorf("create portal link: %w", err)
	}
	return &PortalLink{Secret: secret, ExpiresAt: l.ExpiresAt}, nil
}

// RedeemPortalLink opens the portal session of a link, once.
func (s *Service) RedeemPortalLink(ctx context.Context, secret string) (*Opened, error) {
	l, err := s.cfg.Store.RedeemPortalLink(ctx, id.HashKey(secret), s.cfg.Now().UTC())
	if err != nil {
		return nil, err
	}
	scope := l.Scope
	return s.open(ctx, &store.Session{AccountID: l.AccountID, KeyID: l.KeyID, Portal: &scope}, l.SessionTTL)
}
