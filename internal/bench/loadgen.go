package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is one URL under load and what a good answer to it is.
type target struct {
	// Name is the metric prefix, such as "calhook_304".
	Name string
	URL  string
	// IfNoneMatch, when set, is sent as If-None-Match.
	IfNoneMatch string
	// AcceptEncoding, when set, is sent as Accept-Encoding.
	AcceptEncoding string
	// Status is the expected status code.
	Status int
	// BodySize is the feed's length: what a 200 must carry.
	BodySize int64
	// HeaderSize is the length of the expected response's status line
	// and headers, measured by a probe; wrk's byte count is checked
	// against it.
	HeaderSize int64
}

// runStats is the outcome of one measured load run.
type runStats struct {
	// OK counts responses with the expected status (and, for 200, the
	// full body).
	OK int64
	// Errors counts everything else: other statuses, short bodies,
	// transport and socket errors.
	Errors int64
	// Elapsed is the measured time.
	Elapsed time.Duration
	// Detail describes the errors, empty when there were none.
	Detail string
}

// RPS returns successful responses per second.
func (s runStats) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.OK) / s.Elapsed.Seconds()
}

// loadGenerator drives one target with keep-alive connections.
type loadGenerator interface {
	// Name is reported on the machine line.
	Name() string
	// Run loads t with conns connections for warmup, unmeasured, and then
	// for d, measured.
	Run(ctx context.Context, t target, conns int, warmup, d time.Duration) (runStats, error)
}

// pickLoadGen returns the generator asked for: wrk when installed (or
// demanded), else the built-in one.
func pickLoadGen(choice string) (loadGenerator, error) {
	switch choice {
	case LoadGenGo:
		return goLoadGen{}, nil
	case LoadGenWrk, LoadGenAuto:
		path, err := exec.LookPath("wrk")
		if err == nil {
			return wrkLoadGen{path: path}, nil
		}
		if choice == LoadGenWrk {
			return nil, fmt.Errorf("loadgen wrk: %w (Debian: apt-get install wrk)", err)
		}
		return goLoadGen{}, nil
	}
	return nil, fmt.Errorf("loadgen %q: must be auto, wrk or go", choice)
}

// goLoadGen is the built-in load generator: one goroutine per connection,
// each sending the next request as soon as it has read the last body. It
// counts statuses exactly but costs more CPU per request than wrk: on two
// cores it, not the server, sets the pace for small 304 answers, which
// pulls the 304 ratio towards 1.
type goLoadGen struct{}

// Name implements loadGenerator.
func (goLoadGen) Name() string { return "go" }

// workerCounts is one worker's tally, merged after the run.
type workerCounts struct {
	ok, short int64
	statuses  map[int]int64
	errs      map[string]int64
}

// Run implements loadGenerator. Only responses that complete inside the
// measured window count, so the warm-up and the requests cut off at the end
// neither add nor subtract. The window lasts d, and longer if no response
// has completed by then (up to the client's timeout).
func (goLoadGen) Run(ctx context.Context, t target, conns int, warmup, d time.Duration) (runStats, error) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true, // measure the bytes as served, as wrk does
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var measuring atomic.Bool
	// counted is closed by the first response of the window, which waits
	// for one: a window without any says nothing, and on an overloaded
	// machine a short one can pass before a request completes.
	counted := make(chan struct{})
	var countOnce sync.Once
	counts := make([]workerCounts, conns)
	var wg sync.WaitGroup
	for w := range conns {
		c := &counts[w]
		c.statuses = map[int]int64{}
		c.errs = map[string]int64{}
		wg.Go(func() {
			for loadCtx.Err() == nil {
				status, n, err := fetch(loadCtx, client, t)
				if !measuring.Load() {
					continue
				}
				countOnce.Do(func() { close(counted) })
				switch {
				case err != nil:
					c.errs[shortErr(err)]++
				case status != t.Status:
					c.statuses[status]++
				case status == http.StatusOK && t.BodySize > 0 && n != t.BodySize:
					c.short++
				default:
					c.ok++
				}
			}
		})
	}

	wait := func(d time.Duration) error {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(warmup); err != nil {
		cancel()
		wg.Wait()
		return runStats{}, fmt.Errorf("load %s: %w", t.Name, err)
	}
	measuring.Store(true)
	start := time.Now()
	err := wait(d)
	if err == nil {
		select {
		case <-counted:
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(client.Timeout):
		}
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err != nil {
		return runStats{}, fmt.Errorf("load %s: %w", t.Name, err)
	}

	stats := runStats{Elapsed: elapsed}
	statuses := map[int]int64{}
	errs := map[string]int64{}
	var short int64
	for _, c := range counts {
		stats.OK += c.ok
		short += c.short
		for k, v := range c.statuses {
			statuses[k] += v
		}
		for k, v := range c.errs {
			errs[k] += v
		}
	}
	var detail []string
	for _, k := range slices.Sorted(maps.Keys(statuses)) {
		stats.Errors += statuses[k]
		detail = append(detail, fmt.Sprintf("status %d ×%d", k, statuses[k]))
	}
	if short > 0 {
		stats.Errors += short
		detail = append(detail, fmt.Sprintf("body not %d bytes ×%d", t.BodySize, short))
	}
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		stats.Errors += errs[k]
		detail = append(detail, fmt.Sprintf("%s ×%d", k, errs[k]))
	}
	stats.Detail = strings.Join(detail, "; ")
	return stats, nil
}

// fetch sends one request and reads the whole body, returning the status
// and the body length.
func fetch(ctx context.Context, client *http.Client, t target) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return 0, 0, err
	}
	if t.IfNoneMatch != "" {
		req.Header.Set("If-None-Match", t.IfNoneMatch)
	}
	if t.AcceptEncoding != "" {
		req.Header.Set("Accept-Encoding", t.AcceptEncoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, n, err
	}
	return resp.StatusCode, n, nil
}

// shortErr reduces a transport error to a groupable kind.
func shortErr(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed early"
	}
	s := err.Error()
	// "Get \"http://…\": dial tcp …: connect: connection refused" → the tail.
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
