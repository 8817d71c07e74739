// Package icalhooks implements iCal Hooks on calhook's feeds: a consumer
// that GETs a feed with an X-ICALHOOKS-URL header registers that URL, and
// gets one HEAD when the feed next changes (one-shot; its next GET with the
// header re-arms it). The package decides whether a registration is
// allowed (public URL, caps, optional challenge), builds the pings
// (NewPing, for registrations and the fan-out alike), and keeps re-arming
// an already armed hook free of database writes.
package icalhooks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/outbound"
	"github.com/calhook/calhook/internal/store"
)

// Status values of the X-ICALHOOKS-STATUS response header.
const (
	StatusActive  = "active"
	StatusPending = "pending; reason=verification"
)

// Rejected returns the status of a refused registration.
func Rejected(reason string) string {
	return "rejected; reason=" + strings.NewReplacer("\r", " ", "\n", " ").Replace(reason)
}

// URLChecker validates a hook URL against the SSRF rules.
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) (*url.URL, error)
}

// Store is what the service keeps hooks in.
type Store interface {
	RegisterHook(ctx context.Context, p store.RegisterHookParams) (*store.HookRegistration, error)
	VerifyHook(ctx context.Context, id string, ok bool) error
	ListHooks(ctx context.Context, p store.ListHooksParams) ([]*store.Hook, error)
	DeleteHook(ctx context.Context, accountID, id string) error
}

// Config configures a Service.
type Config struct {
	Store  Store
	URLs   URLChecker
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// BaseURL is the public URL of this calhook, for feed URLs.
	BaseURL string
	// Verify makes new hooks answer a challenge before they are armed.
	Verify bool
	// Caps on hooks per feed, per feed token and per target host.
	MaxPerFeed, MaxPerToken, MaxPerHost int
	// RenewEvery is how often re-registering an armed hook of an
	// unchanged feed is written to the database (its last registration
	// time); in between, such GETs cost no write.
	RenewEvery time.Duration
	// Bus hears of pings a registration queued at once (MessagesDue),
	// and tells the service which accounts' hooks to forget
	// (FeedsChanged of an account, HooksDropped). Nil gives the Service
	// a Bus of its own.
	Bus *notify.Bus
}

// MaxURLBytes bounds a hook URL.
const MaxURLBytes = 2048

// Service registers hooks.
type Service struct {
	cfg  Config
	caps caps

	mu    sync.RWMutex
	armed map[regKey]armedAt
	// verifying bounds concurrent challenges.
	verifying chan struct{}
}

type regKey struct{ accountID, calendarID, url string }

// armedAt remembers that a hook was armed for a feed version.
type armedAt struct {
	version   int64
	tokenHash string
	written   time.Time
}

// NewService returns a Service with defaults filled in.
func NewService(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = 10 * time.Minute
	}
	cfg.Bus = notify.Or(cfg.Bus)
	s := &Service{
		cfg: cfg, armed: map[regKey]armedAt{}, verifying: make(chan struct{}, 16),
		caps: newCaps(cfg.MaxPerFeed, cfg.MaxPerToken, cfg.MaxPerHost),
	}
	cfg.Bus.FeedsChanged.Subscribe(s.feedsChanged)
	cfg.Bus.HooksDropped.Subscribe(func(d notify.HooksDrop) { s.Forget(d.AccountID) })
	return s
}

// feedsChanged forgets the hooks of an account whose feed token rotated
// or that was deleted, on any node; or every hook, when anything may
// have changed.
func (s *Service) feedsChanged(c notify.FeedChange) {
	switch {
	case c.All():
		s.ForgetAll()
	case c.CalendarID == "":
		s.Forget(c.AccountID)
	}
}

// Registration is one GET of a feed with the X-ICALHOOKS-URL header.
type Registration struct {
	AccountID  string
	CalendarID string
	URL        string
	// Token is the feed token the GET came with (already checked).
	Token     string
	ClientIP  string
	UserAgent string
	// Version is the feed version the GET was served.
	Version int64
}

// Register records a registration and returns the X-ICALHOOKS-STATUS to
// answer with. It never fails the feed request: refusals and errors come
// back as a rejected status.
func (s *Service) Register(ctx context.Context, r Registration) string {
	key := regKey{r.AccountID, r.CalendarID, r.URL}
	tokenHash := hashToken(r.Token)
	now := s.cfg.Now()
	s.mu.RLock()
	a, ok := s.armed[key]
	s.mu.RUnlock()
	if ok && a.version == r.Version && a.tokenHash == tokenHash && now.Sub(a.written) < s.cfg.RenewEvery {
		return StatusActive // armed for this version already: nothing to write
	}
	log := s.cfg.Logger.With("account", r.AccountID, "calendar", r.CalendarID, "hook_url", r.URL,
		"client_ip", r.ClientIP, "user_agent", r.UserAgent)
	if len(r.URL) > MaxURLBytes {
		return Rejected(fmt.Sprintf("the URL is longer than %d bytes", MaxURLBytes))
	}
	u, err := s.cfg.URLs.CheckURL(ctx, strings.TrimSpace(r.URL))
	if err != nil {
		log.Info("icalhook refused", "reason", err.Error())
		return Rejected(outbound.Describe(err))
	}
	reg, err := s.cfg.Store.RegisterHook(ctx, store.RegisterHookParams{
		Hook: store.Hook{
			AccountID: r.AccountID, CalendarID: r.CalendarID, URL: r.URL, Host: u.Hostname(), TokenHash: tokenHash,
			ClientIP: r.ClientIP, UserAgent: truncate(r.UserAgent, 512), ServedVersion: r.Version,
		},
		Verify: s.cfg.Verify, Count: s.caps.scopes(), Admit: s.caps.admit,
		Ping: func(h *store.Hook, changeID int64) *store.Message { return NewPing(s.cfg.BaseURL, h, changeID, now) },
		Now:  now,
	})
	if fe := fault.As(err); fe != nil && fe.Reason == fault.HookLimit {
		log.Warn("icalhook refused", "reason", fe.Message)
		return Rejected(fe.Message)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Rejected("the feed no longer exists")
	case err != nil:
		log.Error("register icalhook", "error", err)
		return Rejected("internal error")
	}
	h := reg.Hook
	if reg.Created {
		log.Info("icalhook registered", "hook", h.ID, "verify", !h.Verified)
	}
	if reg.Pinged {
		s.cfg.Bus.MessagesDue.Publish(notify.Due{})
	}
	if !h.Verified {
		if reg.Created {
			s.challenge(h)
		}
		return StatusPending
	}
	s.mu.Lock()
	if h.Armed {
		s.armed[key] = armedAt{version: r.Version, tokenHash: tokenHash, written: now}
	} else {
		delete(s.armed, key)
	}
	s.mu.Unlock()
	return StatusActive
}

// List returns a page of an account's hooks.
func (s *Service) List(ctx context.Context, p store.ListHooksParams) ([]*store.Hook, error) {
	return s.cfg.Store.ListHooks(ctx, p)
}

// Delete deletes one of an account's hooks, and forgets what the service
// remembers of the account's hooks.
func (s *Service) Delete(ctx context.Context, accountID, hookID string) error {
	if err := s.cfg.Store.DeleteHook(ctx, accountID, hookID); err != nil {
		return err
	}
	s.cfg.Bus.HooksDropped.Publish(notify.HooksDrop{AccountID: accountID})
	return nil
}

// Forget drops what the service remembers of an account's hooks, after
// they were deleted or the feed token rotated.
func (s *Service) Forget(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.armed {
		if k.accountID == accountID {
			delete(s.armed, k)
		}
	}
}

// ForgetAll drops everything the service remembers, for when another
// node's changes may have been missed.
func (s *Service) ForgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.armed)
}

// FeedURL returns the URL of a feed without its token, as sent in
// X-ICALHOOKS-FEED.
func (s *Service) FeedURL(accountID, calendarID string) string {
	return FeedURL(s.cfg.BaseURL, accountID, calendarID)
}

// FeedURL returns the URL of a feed under base, without its token: the
// account's all-calendars feed when calendarID is empty.
func FeedURL(base, accountID, calendarID string) string {
	if cal, ok := store.ExportFeedCalendar(calendarID); ok {
		return base + "/feeds/" + url.PathEscape(accountID) + "/" + url.PathEscape(cal) + "/blocked.ics"
	}
	if calendarID == "" {
		return base + "/feeds/" + url.PathEscape(accountID) + ".ics"
	}
	return base + "/feeds/" + url.PathEscape(accountID) + "/" + url.PathEscape(calendarID) + ".ics"
}

// NewPing returns the ping that tells hook h its feed changed, as of the
// change changeID: a HEAD to the hook's URL whose X-ICALHOOKS-FEED names
// the feed under base (its payload), due at now. Its id is time-ordered
// (no receiver sees it), so the delivery log's indexes on message ids
// grow at their end rather than at a random page each.
func NewPing(base string, h *store.Hook, changeID int64, now time.Time) *store.Message {
	return &store.Message{
		ID: id.UUIDv7(), AccountID: h.AccountID, HookID: h.ID, ChangeID: changeID, EventType: store.PingEventType,
		Payload: []byte(FeedURL(base, h.AccountID, h.CalendarID)), NextAttemptAt: now, CreatedAt: now,
	}
}

// ChallengeParam is the query parameter of the verification request.
const ChallengeParam = "icalhooks.challenge"

// challenge asks the hook URL to echo a random value (WebSub-style) and
// arms the hook only if it does; it runs in the background, bounded.
func (s *Service) challenge(h *store.Hook) {
	select {
	case s.verifying <- struct{}{}:
	default:
		s.cfg.Logger.Warn("icalhook challenge skipped: too many in flight; the next registration retries", "hook", h.ID)
		return
	}
	go func() {
		defer func() { <-s.verifying }()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		ok, why := s.verify(ctx, h.URL)
		if err := s.cfg.Store.VerifyHook(ctx, h.ID, ok); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.cfg.Logger.Error("record icalhook challenge", "hook", h.ID, "error", err)
			return
		}
		if ok {
			s.cfg.Logger.Info("icalhook verified", "hook", h.ID, "account", h.AccountID)
		} else {
			s.cfg.Logger.Info("icalhook dropped: challenge failed", "hook", h.ID, "account", h.AccountID,
				"hook_url", h.URL, "client_ip", h.ClientIP, "reason", why)
		}
	}()
}

func (s *Service) verify(ctx context.Context, hookURL string) (bool, string) {
	var b [16]byte
	rand.Read(b[:])
	want := hex.EncodeToString(b[:])
	u, err := url.Parse(hookURL)
	if err != nil {
		return false, err.Error()
	}
	q := u.Query()
	q.Set(ChallengeParam, want)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Sprintf("answered %d", resp.StatusCode)
	}
	if strings.TrimSpace(string(body)) != want {
		return false, "the body did not echo the challenge"
	}
	return true, ""
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
