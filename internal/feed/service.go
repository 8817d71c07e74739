package feed

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// ErrForbidden is returned for a missing or wrong feed token. An unknown
// account gets it too, so feed URLs reveal nothing about which accounts
// exist.
var ErrForbidden error = &fault.Error{Code: fault.Forbidden, Message: "invalid feed token"}

// The answers of a feed that is turned off. They come after the token
// check, so only a holder of the token learns that a feed is disabled
// rather than wrong.
var (
	ErrAccountDisabled error = &fault.Error{Code: fault.Forbidden, Reason: fault.FeedDisabled,
		Message: "feed disabled: the account's iCal feeds are turned off; enable them in the account's feed settings"}
	ErrCalendarDisabled error = &fault.Error{Code: fault.Forbidden, Reason: fault.FeedDisabled,
		Message: "feed disabled: this calendar's iCal feed is turned off; enable it in the calendar's feed settings"}
)

// Disabled returns the error for a feed in the given state, or nil when
// its feed is on: the account's switch comes first.
func Disabled(st *store.FeedState) error {
	switch {
	case st.AccountDisabled:
		return ErrAccountDisabled
	case st.CalendarDisabled:
		return ErrCalendarDisabled
	}
	return nil
}

// Feed is a rendered feed, ready to serve.
type Feed struct {
	Body         []byte
	ETag         string
	LastModified time.Time
	Version      int64
	// Header holds the response header values, formatted once per render.
	Header struct {
		ETag, LastModified, ContentLength []string
	}

	gzipOnce sync.Once
	gzip     *Encoded
}

// Encoded is a feed's body in a content coding, with its own ETag: a
// cache must not answer a client that cannot decode it with these bytes,
// nor take one for the other when revalidating.
type Encoded struct {
	// Coding is the Content-Encoding, e.g. "gzip".
	Coding string
	Body   []byte
	ETag   string
	// Header holds the response header values, formatted once.
	Header struct {
		ContentEncoding, ETag, ContentLength []string
	}
}

// Gzip returns the feed compressed with gzip, or nil when compression
// would not make it smaller. The first call compresses (at the best
// level: it happens once per feed version, as feeds are cached per
// version); later calls return the same bytes.
func (f *Feed) Gzip() *Encoded {
	f.gzipOnce.Do(func() {
		var buf bytes.Buffer
		buf.Grow(len(f.Body) / 4)
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
		// Writes to a bytes.Buffer do not fail.
		_, _ = zw.Write(f.Body)
		zw.Close()
		if buf.Len() >= len(f.Body) {
			return
		}
		e := &Encoded{Coding: "gzip", Body: buf.Bytes()}
		// The identity ETag with a suffix: distinct, and still derived
		// from the content, so every node computes the same one.
		e.ETag = strings.TrimSuffix(f.ETag, `"`) + `-gzip"`
		e.Header.ContentEncoding = []string{"gzip"}
		e.Header.ETag = []string{e.ETag}
		e.Header.ContentLength = []string{strconv.Itoa(len(e.Body))}
		f.gzip = e
	})
	return f.gzip
}

// Store is what the feed service reads: a feed's content and version,
// and its account (for the feed token).
type Store interface {
	Account(ctx context.Context, id string) (*store.Account, error)
	FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error)
	FeedContent(ctx context.Context, accountID, calendarID string) (*store.FeedContent, error)
}

// Service renders feeds and caches them until a change drops them.
type Service struct {
	store Store
	opts  Options

	mu    sync.RWMutex
	cache map[key]*entry
	// epochs counts invalidations per account. A render only enters the
	// cache if no invalidation of its account happened while it read the
	// store, so a write racing a render can never leave a stale entry.
	epochs map[string]uint64
	// generation counts InvalidateAll calls; a render started before one
	// is not cached.
	generation uint64
}

// Options configure a Service.
type Options struct {
	// ProdID is written as PRODID.
	ProdID string
	// RefreshInterval is the REFRESH-INTERVAL hint given to clients.
	RefreshInterval time.Duration
	// MaxCached bounds the number of cached feeds.
	MaxCached int
	// Bus tells the cache which feeds changed, on any node
	// (FeedsChanged). Nil leaves invalidation to the caller.
	Bus *notify.Bus
}

type key struct{ accountID, calendarID string }

type entry struct {
	token string
	feed  *Feed
	// err is the answer of a disabled feed instead of feed: cached too,
	// and dropped like a render when the switch changes.
	err error
}

// NewService returns a Service reading from s.
func NewService(s Store, opts Options) *Service {
	if opts.MaxCached <= 0 {
		opts.MaxCached = 10000
	}
	svc := &Service{store: s, opts: opts, cache: map[key]*entry{}, epochs: map[string]uint64{}}
	if opts.Bus != nil {
		opts.Bus.FeedsChanged.Subscribe(svc.feedsChanged)
	}
	return svc
}

// feedsChanged drops the cached feeds a change may have touched.
func (s *Service) feedsChanged(c notify.FeedChange) {
	if c.All() {
		s.InvalidateAll()
		return
	}
	s.Invalidate(c.AccountID, c.CalendarID)
}

// Get returns the feed of one calendar, or of all the account's calendars
// when calendarID is empty, if token is the account's feed token. An
// unchanged feed is served from memory without touching the database.
func (s *Service) Get(ctx context.Context, accountID, calendarID, token string) (*Feed, error) {
	if token == "" {
		return nil, ErrForbidden
	}
	k := key{accountID, calendarID}
	s.mu.RLock()
	e, ok := s.cache[k]
	epoch, gen := s.epochs[accountID], s.generation
	s.mu.RUnlock()
	if ok {
		if !tokenEqual(e.token, token) {
			return nil, ErrForbidden
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.feed, nil
	}

	// Check the token against the account row before any event is read,
	// so a wrong token costs one small read, not a render: account ids
	// are public in feed URLs and webhook bodies.
	acct, err := s.store.FeedVersion(ctx, accountID, "")
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, fmt.Errorf("read feed token: %w", err)
	}
	if !tokenEqual(acct.FeedToken, token) {
		return nil, ErrForbidden
	}
	if err := Disabled(acct); err != nil {
		s.put(k, epoch, gen, &entry{token: acct.FeedToken, err: err})
		return nil, err
	}

	content, err := s.store.FeedContent(ctx, accountID, calendarID)
	if errors.Is(err, store.ErrNotFound) && calendarID != "" {
		// The caller holds the right token, so it may learn that the
		// calendar does not exist.
		return nil, err
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	// The token may have been rotated between the two reads.
	if !tokenEqual(content.FeedToken, token) {
		return nil, ErrForbidden
	}
	if err := Disabled(&content.FeedState); err != nil {
		s.put(k, epoch, gen, &entry{token: content.FeedToken, err: err})
		return nil, err
	}
	if calendarID == "" {
		content.Events = publishedEvents(content)
	}
	f, err := s.render(ctx, accountID, calendarID, content)
	if err != nil {
		return nil, err
	}
	s.put(k, epoch, gen, &entry{token: content.FeedToken, feed: f})
	return f, nil
}

// put caches e unless the account's feeds were invalidated since epoch
// and gen were read: a write racing the read never leaves a stale entry.
func (s *Service) put(k key, epoch, gen uint64, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epochs[k.accountID] != epoch || s.generation != gen {
		return
	}
	if len(s.cache) >= s.opts.MaxCached {
		for k := range s.cache { // evict an arbitrary entry
			delete(s.cache, k)
			break
		}
	}
	s.cache[k] = e
}

// publishedEvents returns the events of an all-calendars feed's content
// without those of calendars whose feed is turned off: a disabled
// calendar is published nowhere.
func publishedEvents(content *store.FeedContent) []*store.Event {
	off := map[string]bool{}
	for _, c := range content.Calendars {
		if c.FeedDisabled {
			off[c.ID] = true
		}
	}
	if len(off) == 0 {
		return content.Events
	}
	out := make([]*store.Event, 0, len(content.Events))
	for _, e := range content.Events {
		if !off[e.CalendarID] {
			out = append(out, e)
		}
	}
	return out
}

func (s *Service) render(ctx context.Context, accountID, calendarID string, content *store.FeedContent) (*Feed, error) {
	opts := RenderOptions{ProdID: s.opts.ProdID, RefreshInterval: s.opts.RefreshInterval}
	if calendarID != "" && len(content.Calendars) == 1 {
		opts.Name = content.Calendars[0].Name
		opts.TimeZone = content.Calendars[0].TimeZone
	} else {
		acct, err := s.store.Account(ctx, accountID)
		if err != nil {
			return nil, fmt.Errorf("read feed account: %w", err)
		}
		opts.Name = acct.Name
	}
	var buf bytes.Buffer
	if err := Render(&buf, content.Events, opts); err != nil {
		return nil, fmt.Errorf("render feed: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	f := &Feed{
		Body:         buf.Bytes(),
		ETag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		LastModified: content.UpdatedAt.Truncate(time.Second),
		Version:      content.Version,
	}
	f.Header.ETag = []string{f.ETag}
	f.Header.LastModified = []string{f.LastModified.UTC().Format(http.TimeFormat)}
	f.Header.ContentLength = []string{strconv.Itoa(len(f.Body))}
	return f, nil
}

// Invalidate drops the cached feeds that a write to the calendar may have
// changed: the calendar's own and the account's all-calendars feed. An
// empty calendarID drops every cached feed of the account.
func (s *Service) Invalidate(accountID, calendarID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epochs[accountID]++
	if calendarID != "" {
		delete(s.cache, key{accountID, calendarID})
		delete(s.cache, key{accountID, ""})
		return
	}
	for k := range s.cache {
		if k.accountID == accountID {
			delete(s.cache, k)
		}
	}
}

// InvalidateAll drops every cached feed, for when writes may have been
// missed (another node's notifications were lost while reconnecting).
func (s *Service) InvalidateAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.epochs {
		s.epochs[a]++
	}
	// Renders in flight for accounts never invalidated before must not
	// enter the cache either.
	s.generation++
	clear(s.cache)
}

// tokenEqual compares tokens in constant time.
func tokenEqual(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
