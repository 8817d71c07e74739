package feed

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calhook/calhook/internal/calendar"
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

// Feed is a rendered feed, ready to serve, or a streamed one (Streamed)
// that is rendered as it is written.
type Feed struct {
	// Body is the rendered feed; nil when the feed is streamed.
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
	// gzipped, when set, learns the size of the gzip body once it is
	// made, so the cache holding the feed can count it.
	gzipped func(n int)

	// stream is what a streamed feed renders from.
	stream *streamSource
}

// Streamed reports whether the feed is rendered as it is written (by
// Write) rather than held in memory: it was too big to cache.
func (f *Feed) Streamed() bool { return f.stream != nil }

// Write writes the feed's bytes to w: the body, or for a streamed feed a
// render of its content, read from the store as it is written.
func (f *Feed) Write(ctx context.Context, w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	if f.stream == nil {
		_, err := cw.Write(f.Body)
		return cw.n, err
	}
	err := renderStream(ctx, cw, f.stream)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// GzipETag returns the ETag of the gzip coding of a representation whose
// identity ETag is etag: the same with a suffix, so it stays derived from
// the content and every node computes the same one.
func GzipETag(etag string) string { return strings.TrimSuffix(etag, `"`) + `-gzip"` }

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
// would not make it smaller or the feed is streamed. The first call
// compresses (at the best level: it happens once per feed version, as
// feeds are cached per version); later calls return the same bytes.
func (f *Feed) Gzip() *Encoded {
	if f.stream != nil {
		return nil
	}
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
		e.ETag = GzipETag(f.ETag)
		e.Header.ContentEncoding = []string{"gzip"}
		e.Header.ETag = []string{e.ETag}
		e.Header.ContentLength = []string{strconv.Itoa(len(e.Body))}
		f.gzip = e
		if f.gzipped != nil {
			f.gzipped(len(e.Body))
		}
	})
	return f.gzip
}

// Store is what the feed service reads: a feed's content within its
// window and version, its account (for the feed token), and the events of
// a feed too big to hold, page by page.
type Store interface {
	PageStore
	Account(ctx context.Context, id string) (*store.Account, error)
	FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error)
	WindowFeedContent(ctx context.Context, accountID, calendarID string, w store.FeedWindow) (*store.FeedContent, error)
}

// Service renders feeds and caches them, within a byte budget, until a
// change drops them.
type Service struct {
	store   Store
	opts    Options
	metrics *cacheMetrics

	mu sync.RWMutex
	// cache holds the rendered feeds by key; lru orders its elements
	// (*entry values), most recently used first; bytes is their size.
	cache map[key]*list.Element
	lru   *list.List
	bytes int64
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
	// CacheBytes is the render cache's budget: the bytes of the cached
	// feeds and their gzip codings. The least recently served feeds leave
	// first. Default 64 MiB.
	CacheBytes int64
	// StreamBytes is the estimated size above which a feed is not
	// rendered into memory and cached but streamed to each client, its
	// events read a page at a time. Default an eighth of CacheBytes.
	StreamBytes int64
	// Window is the default feed window: events that ended longer ago
	// leave a feed, unless the calendar sets its own. Zero keeps all.
	Window time.Duration
	// Now is the clock the windows count back from; default time.Now.
	Now func() time.Time
	// Bus tells the cache which feeds changed, on any node
	// (FeedsChanged). Nil leaves invalidation to the caller.
	Bus *notify.Bus
	// Registerer, when set, receives the cache's metrics.
	Registerer prometheus.Registerer
}

// DefaultCacheBytes is the render cache's default budget.
const DefaultCacheBytes = 64 << 20

// disabledSize is what a disabled feed's cached answer counts against the
// budget: no body, but not free either.
const disabledSize = 256

type key struct{ accountID, calendarID string }

type entry struct {
	key   key
	token string
	// day is the window's day the feed was rendered for: the window
	// moves daily, so a feed cached on an earlier day is rendered again.
	day  time.Time
	feed *Feed
	// size is what the entry counts against the budget.
	size int64
	// err is the answer of a disabled feed instead of feed: cached too,
	// and dropped like a render when the switch changes.
	err error
	// known are the events the feed was rendered from, by id. An
	// invalidated entry keeps them and their VEVENTs (stale, without its
	// feed) as the base of the next render, which then reads only the
	// events that changed (store.FeedWindow.Known) and renders only those
	// (renderChunks).
	known  map[string]*store.Event
	chunks map[*store.Event]chunk
	// baseSize is the memory known and chunks hold (the chunks are
	// slices of the feed's body).
	baseSize int64
	stale    bool
}

// NewService returns a Service reading from s.
func NewService(s Store, opts Options) *Service {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.StreamBytes <= 0 {
		opts.StreamBytes = opts.CacheBytes / 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	svc := &Service{store: s, opts: opts, metrics: newCacheMetrics(opts.Registerer),
		cache: map[key]*list.Element{}, lru: list.New(), epochs: map[string]uint64{}}
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

// windowDay is the instant feed windows count back from: the start of
// the current UTC day, so a feed's content, and so its ETag, stays the
// same all day.
func (s *Service) windowDay() time.Time {
	return s.opts.Now().UTC().Truncate(24 * time.Hour)
}

// Get returns the feed of one calendar, or of all the account's calendars
// when calendarID is empty, if token is the account's feed token. An
// unchanged feed is served from memory without touching the database.
func (s *Service) Get(ctx context.Context, accountID, calendarID, token string) (*Feed, error) {
	if token == "" {
		return nil, ErrForbidden
	}
	k := key{accountID, calendarID}
	day := s.windowDay()
	if f, ok, err := s.cached(k, token, day); ok || err != nil {
		return f, err
	}
	s.mu.RLock()
	epoch, gen := s.epochs[accountID], s.generation
	s.mu.RUnlock()

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
		s.add(&entry{key: k, token: acct.FeedToken, day: day, err: err, size: disabledSize}, epoch, gen)
		return nil, err
	}

	known, chunks := s.base(k)
	window := store.FeedWindow{Now: day, Default: s.opts.Window, Known: known, MaxEvents: s.maxEvents()}
	content, err := s.store.WindowFeedContent(ctx, accountID, calendarID, window)
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
		s.add(&entry{key: k, token: content.FeedToken, day: day, err: err, size: disabledSize}, epoch, gen)
		return nil, err
	}
	if calendarID == "" {
		content.Events = publishedEvents(content)
	}
	events, windowed := inWindow(content, window)
	opts, err := s.renderOptions(ctx, accountID, calendarID, content)
	if err != nil {
		return nil, err
	}
	lastModified := content.UpdatedAt
	if windowed && day.After(lastModified) {
		// Events left the window today: the content changed without a
		// write.
		lastModified = day
	}
	if content.TooBig || estimateSize(events) > s.opts.StreamBytes {
		s.metrics.streamed.Inc()
		src := &streamSource{store: s.store, calendars: publishedCalendars(content), opts: opts,
			window: store.FeedWindow{Now: day, Default: s.opts.Window}}
		return s.streamed(k, day, content.Version, lastModified, src), nil
	}
	body, next, err := renderChunks(events, opts, chunks)
	if err != nil {
		return nil, fmt.Errorf("render feed: %w", err)
	}
	f := New(body, lastModified, content.Version)
	known = make(map[string]*store.Event, len(content.Events))
	for _, e := range content.Events {
		known[e.ID] = e
	}
	base := knownSize(content.Events) + int64(len(body))
	s.add(&entry{key: k, token: content.FeedToken, day: day, feed: f, size: base, known: known, chunks: next, baseSize: base},
		epoch, gen)
	return f, nil
}

// base returns the events and VEVENTs of k's last render, if the cache
// still holds them.
func (s *Service) base(k key) (map[string]*store.Event, map[*store.Event]chunk) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if el, ok := s.cache[k]; ok {
		e := el.Value.(*entry)
		return e.known, e.chunks
	}
	return nil, nil
}

// knownSize is about the memory events take: the struct and its texts.
func knownSize(events []*store.Event) int64 {
	const perEvent = 400
	n := int64(0)
	for _, e := range events {
		n += perEvent + int64(len(e.ID)+len(e.UID)+len(e.Summary)+len(e.Description)+len(e.Location)+len(e.RRule)+
			len(e.TimeZone)+24*len(e.ExDates))
		for k, v := range e.Extra {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// cached returns the cached feed of k, if any, for today's window; a
// wrong token is ErrForbidden.
func (s *Service) cached(k key, token string, day time.Time) (*Feed, bool, error) {
	s.mu.RLock()
	el, ok := s.cache[k]
	var e *entry
	front := false
	if ok {
		e = el.Value.(*entry)
		front = s.lru.Front() == el
	}
	s.mu.RUnlock()
	if !ok || e.stale || !e.day.Equal(day) {
		return nil, false, nil
	}
	if !tokenEqual(e.token, token) {
		return nil, false, ErrForbidden
	}
	if e.err != nil {
		return nil, true, e.err
	}
	if !front {
		// The most served feed stays in front, so its hits take no
		// write lock.
		s.mu.Lock()
		if el, ok := s.cache[k]; ok && el.Value == e {
			s.lru.MoveToFront(el)
		}
		s.mu.Unlock()
	}
	return e.feed, true, nil
}

// add caches a rendered feed, unless its account was invalidated since
// epoch and gen were read, and evicts the least recently served feeds
// beyond the budget.
func (s *Service) add(e *entry, epoch, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epochs[e.key.accountID] != epoch || s.generation != gen {
		return
	}
	if old, ok := s.cache[e.key]; ok {
		s.remove(old)
	}
	s.cache[e.key] = s.lru.PushFront(e)
	s.bytes += e.size
	if e.feed != nil {
		e.feed.gzipped = func(n int) { s.grow(e, int64(n)) }
	}
	s.evict()
	s.observe()
}

// grow counts the gzip coding of a cached feed once it is made.
func (s *Service) grow(e *entry, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.cache[e.key]; ok && el.Value == e {
		e.size += n
		s.bytes += n
		s.evict()
		s.observe()
	}
}

// evict drops the least recently served feeds until the cache fits its
// budget; the caller holds mu.
func (s *Service) evict() {
	for s.bytes > s.opts.CacheBytes && s.lru.Len() > 0 {
		s.remove(s.lru.Back())
		s.metrics.evictions.Inc()
	}
}

// retire drops one cached feed but keeps the events it was rendered
// from and their VEVENTs, if any, as the base of the next render; the
// caller holds mu.
// The entry is replaced, not changed: readers hold it without the lock.
func (s *Service) retire(el *list.Element) {
	e := el.Value.(*entry)
	if e.known == nil {
		s.remove(el)
		return
	}
	if e.stale {
		return
	}
	el.Value = &entry{key: e.key, token: e.token, day: e.day, size: e.baseSize, known: e.known, chunks: e.chunks,
		baseSize: e.baseSize, stale: true}
	s.bytes -= e.size - e.baseSize
}

// remove drops one cached feed; the caller holds mu.
func (s *Service) remove(el *list.Element) {
	e := el.Value.(*entry)
	s.lru.Remove(el)
	delete(s.cache, e.key)
	s.bytes -= e.size
}

// observe publishes the cache's size; the caller holds mu.
func (s *Service) observe() {
	s.metrics.bytes.Set(float64(s.bytes))
	s.metrics.entries.Set(float64(s.lru.Len()))
}

// CacheSize returns the bytes and the number of feeds the cache holds.
func (s *Service) CacheSize() (bytes int64, feeds int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes, s.lru.Len()
}

// streamed returns a feed rendered as it is written. Its ETag cannot come
// from bytes not yet rendered, so it is derived from what determines
// them: the feed, its version, the window's day and the render options;
// every node computes the same one.
func (s *Service) streamed(k key, day time.Time, version int64, lastModified time.Time, src *streamSource) *Feed {
	opts := src.opts
	h := sha256.New()
	for _, part := range []string{k.accountID, k.calendarID, opts.ProdID, opts.RefreshInterval.String()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(version))
	binary.BigEndian.PutUint64(buf[8:], uint64(day.Unix()))
	h.Write(buf[:])
	f := &Feed{
		ETag:         `"v-` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`,
		LastModified: lastModified.Truncate(time.Second),
		Version:      version,
		stream:       src,
	}
	f.Header.ETag = []string{f.ETag}
	f.Header.LastModified = []string{f.LastModified.UTC().Format(http.TimeFormat)}
	return f
}

// eventBytes is what a VEVENT's fixed properties render to, about.
const eventBytes = 330

// estimateSize is about the bytes events render to: what a VEVENT's fixed
// properties take, plus its texts.
func estimateSize(events []*store.Event) int64 {
	n := int64(0)
	for _, e := range events {
		n += eventBytes + int64(len(e.Summary)+len(e.Description)+len(e.Location)+len(e.RRule))
	}
	return n
}

// maxEvents is the most events a feed read holds: past it, the feed
// would render over StreamBytes however short its texts, so it is
// streamed without reading the rest.
func (s *Service) maxEvents() int {
	return int(s.opts.StreamBytes/eventBytes) + 1
}

// inWindow returns the content's events that belong in the feed: those
// that end after their calendar's cutoff, and the recurring series with
// an occurrence that does. It reports whether any calendar has a window.
func inWindow(content *store.FeedContent, w store.FeedWindow) ([]*store.Event, bool) {
	cutoffs := make(map[string]time.Time, len(content.Calendars))
	windowed := false
	for _, c := range content.Calendars {
		cut := w.Cutoff(c)
		cutoffs[c.ID] = cut
		windowed = windowed || !cut.IsZero()
	}
	if !windowed || content.TooBig {
		return content.Events, windowed
	}
	out := content.Events[:0:0]
	for _, e := range content.Events {
		if keep(e, cutoffs[e.CalendarID]) {
			out = append(out, e)
		}
	}
	return out, true
}

// farFuture bounds the search for a recurring series' occurrence after a
// cutoff.
const farFuture = 200 * 365 * 24 * time.Hour

// keep reports whether e belongs in a feed whose window starts at cutoff.
func keep(e *store.Event, cutoff time.Time) bool {
	if cutoff.IsZero() || !e.End.Before(cutoff) {
		return true
	}
	if e.RRule == "" || e.RecurrenceID != "" {
		return false
	}
	if unbounded(e.RRule) {
		// It recurs for ever: no need to walk it to the cutoff (a rule
		// whose parts never meet is kept too; it shows nothing).
		return true
	}
	// An occurrence ends after the cutoff when it starts after the
	// cutoff less the event's length.
	from := cutoff.Add(-e.End.Sub(e.Start))
	starts, err := calendar.Occurrences(e, from, cutoff.Add(farFuture), 1)
	// A rule that cannot be expanded is kept: the client may still read it.
	return err != nil || len(starts) > 0
}

// unbounded reports whether a recurrence rule has neither COUNT nor
// UNTIL.
func unbounded(rule string) bool {
	rule = strings.ToUpper(rule)
	return !strings.Contains(rule, "COUNT=") && !strings.Contains(rule, "UNTIL=")
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

// publishedCalendars returns the content's calendars whose events the
// feed publishes: those whose own feed is on (a calendar's own feed is
// only rendered when it is).
func publishedCalendars(content *store.FeedContent) []*store.Calendar {
	out := make([]*store.Calendar, 0, len(content.Calendars))
	for _, c := range content.Calendars {
		if !c.FeedDisabled {
			out = append(out, c)
		}
	}
	return out
}

func (s *Service) renderOptions(ctx context.Context, accountID, calendarID string, content *store.FeedContent) (RenderOptions, error) {
	opts := RenderOptions{ProdID: s.opts.ProdID, RefreshInterval: s.opts.RefreshInterval}
	if calendarID != "" && len(content.Calendars) == 1 {
		opts.Name = content.Calendars[0].Name
		opts.TimeZone = content.Calendars[0].TimeZone
		return opts, nil
	}
	acct, err := s.store.Account(ctx, accountID)
	if err != nil {
		return opts, fmt.Errorf("read feed account: %w", err)
	}
	opts.Name = acct.Name
	return opts, nil
}

// Invalidate drops the cached feeds that a write to the calendar may have
// changed: the calendar's own and the account's all-calendars feed. An
// empty calendarID drops every cached feed of the account. What they were
// rendered from stays, within the budget, so that the next render reads
// only what changed.
func (s *Service) Invalidate(accountID, calendarID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epochs[accountID]++
	if calendarID != "" {
		for _, k := range []key{{accountID, calendarID}, {accountID, ""}} {
			if el, ok := s.cache[k]; ok {
				s.retire(el)
			}
		}
		s.observe()
		return
	}
	for k, el := range s.cache {
		if k.accountID == accountID {
			s.retire(el)
		}
	}
	s.observe()
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
	s.lru.Init()
	s.bytes = 0
	s.observe()
}

// tokenEqual compares tokens in constant time.
func tokenEqual(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// cacheMetrics describe the render cache.
type cacheMetrics struct {
	bytes, entries      prometheus.Gauge
	evictions, streamed prometheus.Counter
}

func newCacheMetrics(reg prometheus.Registerer) *cacheMetrics {
	m := &cacheMetrics{
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calhook_feed_cache_bytes",
			Help: "Bytes of the rendered feeds (and their gzip codings) in the render cache.",
		}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calhook_feed_cache_feeds",
			Help: "Rendered feeds in the render cache.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calhook_feed_cache_evictions_total",
			Help: "Feeds dropped from the render cache to keep within its byte budget.",
		}),
		streamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calhook_feed_streamed_total",
			Help: "Feed renders too big to cache, streamed to the client instead.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.entries, m.evictions, m.streamed)
	}
	return m
}
