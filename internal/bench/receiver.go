package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/webhook"
)

// hookReceiver is the webhook endpoint of the webhook scenarios: an HTTP
// server on 127.0.0.1 in the bench process, so that its arrival times and
// the writers' send times come from one clock. It answers 204 at once and
// counts distinct webhook ids; it checks the signature of a sample of the
// deliveries, enough to know they are genuine without letting HMACs set
// the pace.
type hookReceiver struct {
	// URL is the receiver's root, such as http://127.0.0.1:41234.
	URL string

	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	// verifyEvery: the first and then every verifyEvery-th distinct
	// webhook of a round is verified; 1 verifies every one.
	verifyEvery int
	// trackUIDs makes the receiver decode each body and note the first
	// arrival of every data.uid (and data.events[].uid), for latency.
	trackUIDs atomic.Bool

	mu        sync.Mutex
	verifiers map[string]webhook.Verifier // by URL path
	seen      map[string]struct{}         // webhook ids of this round
	byUID     map[string]time.Time        // first arrival by uid
	last      time.Time                   // arrival of the newest distinct webhook
	st        receiverStats
	firstErr  string
	// notify gets a token whenever a new webhook id arrives.
	notify chan struct{}
}

// receiverStats counts what arrived in a round.
type receiverStats struct {
	// Requests counts every request, Distinct the webhook ids among them
	// and Duplicates the requests that repeated one.
	Requests, Distinct, Duplicates int64
	// Verified counts the signatures checked, BadSignature those that
	// did not verify, Unexpected requests to no registered endpoint or
	// without a webhook-id, and BadBody bodies that were not a payload.
	Verified, BadSignature, Unexpected, BadBody int64
}

// errors returns how many requests were wrong in some way.
func (s receiverStats) errors() int64 { return s.BadSignature + s.Unexpected + s.BadBody }

// newHookReceiver listens on a free loopback port and serves until Close.
func newHookReceiver(verifyEvery int) (*hookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	rv := &hookReceiver{
		URL:         "http://" + ln.Addr().String(),
		served:      make(chan struct{}),
		verifyEvery: max(verifyEvery, 1),
		verifiers:   map[string]webhook.Verifier{},
		seen:        map[string]struct{}{},
		byUID:       map[string]time.Time{},
		notify:      make(chan struct{}, 1),
	}
	rv.srv = &http.Server{
		Handler:           rv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		defer close(rv.served)
		rv.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	return rv, nil
}

// Close stops the server and waits for it.
func (rv *hookReceiver) Close() error {
	err := rv.srv.Close()
	<-rv.served
	return err
}

// reset forgets the previous round: endpoints, ids, arrivals and counts.
func (rv *hookReceiver) reset(trackUIDs bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.verifiers = map[string]webhook.Verifier{}
	rv.seen = map[string]struct{}{}
	rv.trackUIDs.Store(trackUIDs)
	rv.clearCounts()
}

// restartCounts starts the round's counts afresh after a warm-up, keeping
// the endpoints and the webhook ids seen: a warm-up webhook that arrives
// again counts as a duplicate, not as a new delivery.
func (rv *hookReceiver) restartCounts() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.clearCounts()
}

// clearCounts forgets the arrivals, counts and first problem, and a
// pending wake-up of waitFor. rv.mu must be held.
func (rv *hookReceiver) clearCounts() {
	rv.byUID = map[string]time.Time{}
	rv.last = time.Time{}
	rv.st = receiverStats{}
	rv.firstErr = ""
	select {
	case <-rv.notify:
	default:
	}
}

// addEndpoint accepts webhooks at path, signed with secret.
func (rv *hookReceiver) addEndpoint(path string, secret webhook.Secret) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.verifiers[path] = webhook.Verifier{Secret: secret}
}

// fail counts a bad request and keeps the first description.
func (rv *hookReceiver) fail(counter *int64, format string, args ...any) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	*counter++
	if rv.firstErr == "" {
		rv.firstErr = fmt.Sprintf(format, args...)
	}
}

func (rv *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err != nil {
		rv.fail(&rv.st.Unexpected, "%s: read body: %v", r.URL.Path, err)
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	var uids []string
	if rv.trackUIDs.Load() {
		// An event's webhook names its uid, a conflict's the uids of
		// both of its events.
		var p struct {
			Data struct {
				UID    string `json:"uid"`
				Events []struct {
					UID string `json:"uid"`
				} `json:"events"`
			} `json:"data"`
		}
		err := json.Unmarshal(body, &p)
		if p.Data.UID != "" {
			uids = append(uids, p.Data.UID)
		}
		for _, e := range p.Data.Events {
			uids = append(uids, e.UID)
		}
		if err != nil || len(uids) == 0 {
			rv.fail(&rv.st.BadBody, "%s: body without data.uid or data.events: %q", r.URL.Path, truncate(body, 200))
		}
	}

	rv.mu.Lock()
	v, ok := rv.verifiers[r.URL.Path]
	if !ok || r.Method != http.MethodPost || id == "" {
		rv.mu.Unlock()
		rv.fail(&rv.st.Unexpected, "unexpected %s %s (webhook-id %q)", r.Method, r.URL.Path, id)
		http.NotFound(w, r)
		return
	}
	rv.st.Requests++
	_, dup := rv.seen[id]
	verify := false
	if dup {
		rv.st.Duplicates++
	} else {
		rv.seen[id] = struct{}{}
		rv.st.Distinct++
		rv.last = now
		verify = rv.st.Distinct%int64(rv.verifyEvery) == 1 || rv.verifyEvery == 1
		for _, uid := range uids {
			if _, ok := rv.byUID[uid]; !ok && uid != "" {
				rv.byUID[uid] = now
			}
		}
	}
	if verify {
		rv.st.Verified++
	}
	rv.mu.Unlock()
	if !dup {
		select {
		case rv.notify <- struct{}{}:
		default:
		}
	}
	if verify {
		if err := v.Verify(body, r.Header); err != nil {
			rv.fail(&rv.st.BadSignature, "%s: webhook %s: %v", r.URL.Path, id, err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// stats returns the counts of the round so far, the arrival of the newest
// distinct webhook and the first problem seen.
func (rv *hookReceiver) stats() (receiverStats, time.Time, string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.st, rv.last, rv.firstErr
}

// arrival returns when the first webhook about data.uid arrived.
func (rv *hookReceiver) arrival(uid string) (time.Time, bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	t, ok := rv.byUID[uid]
	return t, ok
}

// errStalled is returned when deliveries stop arriving.
var errStalled = errors.New("webhooks stopped arriving")

// waitFor waits until n distinct webhooks have arrived this round. It
// gives up when none arrived for stall, or when server (if not nil) exits.
func (rv *hookReceiver) waitFor(ctx context.Context, n int64, stall time.Duration, server *proc) error {
	timer := time.NewTimer(stall)
	defer timer.Stop()
	var exited <-chan struct{}
	if server != nil {
		exited = server.Exited()
	}
	for {
		st, _, _ := rv.stats()
		if st.Distinct >= n {
			return nil
		}
		select {
		case <-rv.notify:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(stall)
		case <-timer.C:
			return fmt.Errorf("%w: %d of %d after %v without a new one", errStalled, st.Distinct, n, stall)
		case <-exited:
			return fmt.Errorf("%s exited with %d of %d webhooks delivered (%v); log:\n%s", server.name, st.Distinct, n, server.waitErr, server.logTail(20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for webhooks (%d of %d): %w", st.Distinct, n, ctx.Err())
		}
	}
}
