package console

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/lifecycle"
)

// broadcaster wakes every open live stream; the bus calls wake, which
// never blocks.
type broadcaster struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func newBroadcaster() *broadcaster { return &broadcaster{subs: map[chan struct{}]struct{}{}} }

func (b *broadcaster) wake() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (b *broadcaster) add() chan struct{} {
	c := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs[c] = struct{}{}
	b.mu.Unlock()
	return c
}

func (b *broadcaster) remove(c chan struct{}) {
	b.mu.Lock()
	delete(b.subs, c)
	b.mu.Unlock()
}

// Timing of live streams: how often the activity mark is read when no
// wake-up came (delivery outcomes and other nodes' writes arrive this
// way), the heartbeat, and how long one stream lasts before the browser
// reconnects.
const (
	livePoll      = 2 * time.Second
	liveHeartbeat = 25 * time.Second
	liveMaxAge    = 10 * time.Minute
)

// stream sends a "change" event whenever a change or a delivery attempt
// is recorded; the page's script then refreshes its live parts.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, v *view) {
	rc := http.NewResponseController(w)
	// The server's write timeout would cut the stream.
	_ = rc.SetWriteDeadline(time.Now().Add(liveMaxAge + time.Minute))
	h.securityHeaders(w, v)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// The page says which mark it was read at: anything recorded since
	// refreshes it at once.
	mark := r.URL.Query().Get("mark")
	fmt.Fprint(w, "retry: 3000\nevent: hello\ndata: \n\n")
	if rc.Flush() != nil {
		return
	}
	wake := h.live.add()
	defer h.live.remove(wake)
	// A shutting-down server ends the stream; the browser reconnects (to
	// another node, or this one once it is back).
	ctx, stop := lifecycle.Draining(r.Context())
	defer stop()
	check := func() bool {
		next, err := h.cfg.Reader.ActivityMark(ctx)
		if err != nil {
			return false
		}
		if next != mark {
			mark = next
			fmt.Fprintf(w, "event: change\ndata: %s\n\n", mark)
			return rc.Flush() == nil
		}
		return true
	}
	if !check() {
		return
	}
	poll := time.NewTicker(livePoll)
	defer poll.Stop()
	beat := time.NewTicker(liveHeartbeat)
	defer beat.Stop()
	end := time.NewTimer(liveMaxAge)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-beat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			if rc.Flush() != nil {
				return
			}
			continue
		case <-wake:
		case <-poll.C:
		}
		if !check() {
			return
		}
	}
}

// limiter counts failed sign-ins per client address in a fixed window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	hits   map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(most int, per time.Duration, now func() time.Time) *limiter {
	return &limiter{max: most, window: per, now: now, hits: map[string]*window{}}
}

// blocked reports whether addr has used up its failures, and when it may
// try again.
func (l *limiter) blocked(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.hits[addr]
	now := l.now()
	if w == nil || now.Sub(w.start) >= l.window {
		return false, 0
	}
	return w.n >= l.max, w.start.Add(l.window).Sub(now)
}

// fail records a failed sign-in from addr.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.hits) > 100000 {
		for k, w := range l.hits {
			if now.Sub(w.start) >= l.window {
				delete(l.hits, k)
			}
		}
	}
	w := l.hits[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		w = &window{start: now}
		l.hits[addr] = w
	}
	w.n++
}
