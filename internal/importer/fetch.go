package importer

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/outbound"
)

// DefaultMaxBytes is the largest feed body accepted, after decompression.
const DefaultMaxBytes = 20 << 20

// fetchRequest is what a conditional GET of a feed needs.
type fetchRequest struct {
	url          string
	etag         string
	lastModified string
	// hookURL, when set, is sent as X-ICALHOOKS-URL so that an upstream
	// that speaks iCal Hooks pings calhook when the feed changes.
	hookURL  string
	maxBytes int64
	// idle abandons the fetch when the server sends nothing for this
	// long: no response headers, or no body byte (zero: no limit).
	idle time.Duration
}

// errIdle is the cause of a fetch abandoned for its silence.
var errIdle = errors.New("the server sent nothing")

// idleTimer cancels a fetch that has received nothing for its duration;
// every byte received starts the wait anew.
type idleTimer struct {
	d time.Duration
	t *time.Timer
}

// startIdle arms an idle timer that calls cancel(errIdle); d <= 0 arms
// none.
func startIdle(d time.Duration, cancel context.CancelCauseFunc) *idleTimer {
	if d <= 0 {
		return &idleTimer{}
	}
	return &idleTimer{d: d, t: time.AfterFunc(d, func() { cancel(errIdle) })}
}

// touch notes that bytes arrived.
func (it *idleTimer) touch() {
	if it.t != nil {
		it.t.Reset(it.d)
	}
}

func (it *idleTimer) stop() {
	if it.t != nil {
		it.t.Stop()
	}
}

// touchReader reads through r and touches the idle timer on every read
// that returned bytes.
type touchReader struct {
	r    io.Reader
	idle *idleTimer
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.idle.touch()
	}
	return n, err
}

// fetched is a successful answer.
type fetched struct {
	// notModified is true for a 304: body is empty.
	notModified bool
	// body is a string so that the parsed events can share it (see
	// ical.ParseString) rather than each hold a copy.
	body         string
	etag         string
	lastModified string
	// maxAge is the response's Cache-Control max-age, if any.
	maxAge time.Duration
}

// FetchError is a failed fetch, with what the server asked for.
type FetchError struct {
	// Status is the HTTP status, or 0 when there was no response.
	Status int
	// RetryAfter is the server's Retry-After (429, 503), if any.
	RetryAfter time.Duration
	// Msg describes the failure for the calendar's lastError, in words
	// any tenant may read: the class of failure, never an address calhook
	// resolved or a raw dial error (see outbound.Describe).
	Msg string
	// Err is the cause in full, for the operator's log.
	Err error
}

// Error returns Msg, the quiet description.
func (e *FetchError) Error() string { return e.Msg }

func (e *FetchError) Unwrap() error { return e.Err }

// fetch GETs a feed conditionally, with gzip, within maxBytes.
//
// The fetch is abandoned when the server sends nothing for r.idle, be it
// the response headers or the next byte of the body; a slow but steady
// server is bounded only by the caller's overall timeout.
func fetch(ctx context.Context, client *http.Client, r fetchRequest, now time.Time) (*fetched, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := startIdle(r.idle, cancel)
	defer idle.stop()
	f, err := fetchBody(ctx, client, r, idle, now)
	if err != nil && errors.Is(context.Cause(ctx), errIdle) {
		return nil, &FetchError{Msg: fmt.Sprintf("timed out: the server sent nothing for %s", r.idle), Err: err}
	}
	return f, err
}

func fetchBody(ctx context.Context, client *http.Client, r fetchRequest, idle *idleTimer, now time.Time) (*fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, &FetchError{Msg: "invalid source URL: " + err.Error(), Err: err}
	}
	req.Header.Set("Accept", "text/calendar, text/plain;q=0.5, */*;q=0.1")
	// Setting Accept-Encoding ourselves turns off the transport's
	// transparent decompression, so the size limit can be applied to the
	// decompressed body too.
	req.Header.Set("Accept-Encoding", "gzip")
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	if r.lastModified != "" {
		req.Header.Set("If-Modified-Since", r.lastModified)
	}
	if r.hookURL != "" {
		req.Header.Set("X-ICALHOOKS-URL", r.hookURL)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &FetchError{Msg: outbound.Describe(err), Err: err}
	}
	defer resp.Body.Close()
	idle.touch()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{touchReader{r: resp.Body, idle: idle}, resp.Body}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // keep the connection reusable
		return &fetched{notModified: true, etag: resp.Header.Get("ETag"), maxAge: maxAge(resp.Header)}, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		fe := &FetchError{Status: resp.StatusCode, Msg: "HTTP " + resp.Status}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			fe.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
		}
		return nil, fe
	}
	body, err := readBody(resp, r.maxBytes)
	if err != nil {
		return nil, err
	}
	return &fetched{
		body: body, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified"),
		maxAge: maxAge(resp.Header),
	}, nil
}

// readBody reads a response body, decoding gzip, and refuses one larger
// than limit bytes before or after decompression: a gzip bomb stops at the
// limit.
func readBody(resp *http.Response, limit int64) (string, error) {
	tooLarge := &FetchError{Status: resp.StatusCode, Msg: "body larger than " + formatBytes(limit)}
	if resp.ContentLength > limit {
		return "", tooLarge
	}
	r := io.LimitReader(resp.Body, limit+1)
	size := int64(-1)
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		// The announced length is the body's: one allocation, no
		// doubling slack.
		size = resp.ContentLength
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(r)
		if err != nil {
			return "", &FetchError{Status: resp.StatusCode, Msg: "invalid gzip body: " + err.Error(), Err: err}
		}
		defer gz.Close()
		r = gz
	default:
		return "", &FetchError{Status: resp.StatusCode, Msg: fmt.Sprintf("unsupported Content-Encoding %q", enc)}
	}
	body, err := readAll(io.LimitReader(r, limit+1), size)
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", &FetchError{Status: resp.StatusCode, Msg: "invalid gzip body: " + err.Error(), Err: err}
		}
		return "", &FetchError{Status: resp.StatusCode, Msg: "reading body: " + outbound.Describe(err), Err: err}
	}
	if int64(len(body)) > limit {
		return "", tooLarge
	}
	return body, nil
}

// readAll reads r to its end into a string of exactly its length. With
// size, the announced length (-1: unknown), it reads into that at once.
// Otherwise it reads into blocks and copies them once at the end: a
// buffer grown as it fills allocates about five times the body on the
// way (each growth by a quarter copies all before it), garbage by which
// the collector then paces the poll's heap.
func readAll(r io.Reader, size int64) (string, error) {
	if size > 0 {
		var b strings.Builder
		b.Grow(int(size))
		_, err := io.Copy(&b, r)
		return b.String(), err
	}
	const first, most = 32 << 10, 1 << 20
	var (
		blocks [][]byte
		n      int
		blk    = make([]byte, 0, first)
	)
	for {
		if len(blk) == cap(blk) {
			blocks = append(blocks, blk)
			blk = make([]byte, 0, min(2*cap(blk), most))
		}
		k, err := r.Read(blk[len(blk):cap(blk)])
		blk = blk[:len(blk)+k]
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if len(blocks) == 0 {
		return string(blk), nil
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range append(blocks, blk) {
		b.Write(p)
	}
	return b.String(), nil
}

// formatBytes writes a limit the way operators set it: "20 MiB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// maxAge returns the Cache-Control max-age of a response, or 0.
func maxAge(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name, val, ok := strings.Cut(d, "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "max-age") {
				continue
			}
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}
