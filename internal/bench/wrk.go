package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// wrkLoadGen runs wrk (github.com/wg/wrk, Debian package wrk).
type wrkLoadGen struct {
	path string
}

// Name implements loadGenerator.
func (wrkLoadGen) Name() string { return "wrk" }

// wrkReport is what the bench reads from wrk's summary.
type wrkReport struct {
	// Requests counts complete responses of any status.
	Requests int64
	// Elapsed is wrk's measured run time.
	Elapsed time.Duration
	// BytesRead is the total read, headers included; wrk prints it with
	// three significant digits.
	BytesRead float64
	// RequestsPerSec is Requests / Elapsed at wrk's precision.
	RequestsPerSec float64
	// BadStatus counts responses with status 400 and up: wrk's
	// "Non-2xx or 3xx responses", which despite the name lets 3xx through.
	BadStatus int64
	// Socket errors.
	Connect, Read, Write, Timeout int64
}

var (
	wrkTotalRE   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGTP]?B) read`)
	wrkRPSRE     = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkBadRE     = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocketRE  = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkUnitScale = map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50}
	wrkTimeScale = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}
)

// parseWrk reads wrk 4's plain summary.
func parseWrk(out string) (wrkReport, error) {
	var r wrkReport
	m := wrkTotalRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("parse wrk output: no \"N requests in T, B read\" line")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	secs, _ := strconv.ParseFloat(m[2], 64)
	r.Elapsed = time.Duration(secs * float64(wrkTimeScale[m[3]]))
	size, _ := strconv.ParseFloat(m[4], 64)
	r.BytesRead = size * wrkUnitScale[m[5]]

	m = wrkRPSRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("parse wrk output: no Requests/sec line")
	}
	r.RequestsPerSec, _ = strconv.ParseFloat(m[1], 64)

	if m = wrkBadRE.FindStringSubmatch(out); m != nil {
		r.BadStatus, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = wrkSocketRE.FindStringSubmatch(out); m != nil {
		r.Connect, _ = strconv.ParseInt(m[1], 10, 64)
		r.Read, _ = strconv.ParseInt(m[2], 10, 64)
		r.Write, _ = strconv.ParseInt(m[3], 10, 64)
		r.Timeout, _ = strconv.ParseInt(m[4], 10, 64)
	}
	return r, nil
}

// wrkStats turns a report into runStats for t. wrk cannot tell 200 from
// 304, so the bytes read stand in for the status check: a 304 carries
// headers only and a 200 the whole body, and responses of the wrong kind
// are estimated from how far the total strays from what was expected.
func wrkStats(r wrkReport, t target) runStats {
	s := runStats{Elapsed: r.Elapsed}
	if r.Requests > 0 && r.RequestsPerSec > 0 {
		// wrk prints the run time to 10 ms but the rate to more digits;
		// derive the time from the rate so RPS() keeps wrk's precision.
		s.Elapsed = time.Duration(float64(r.Requests) / r.RequestsPerSec * float64(time.Second))
	}
	ok := r.Requests - r.BadStatus
	var detail []string
	if r.BadStatus > 0 {
		detail = append(detail, fmt.Sprintf("status ≥400 ×%d", r.BadStatus))
	}
	if sock := r.Connect + r.Read + r.Write + r.Timeout; sock > 0 {
		s.Errors += sock
		detail = append(detail, fmt.Sprintf("socket errors: connect %d, read %d, write %d, timeout %d", r.Connect, r.Read, r.Write, r.Timeout))
	}
	if wrong := wrkWrongKind(r, t, ok); wrong > 0 {
		ok -= wrong
		detail = append(detail, fmt.Sprintf("about %d responses of the wrong size for status %d (wrk cannot see 2xx/3xx codes)", wrong, t.Status))
		s.Errors += wrong
	}
	s.Errors += r.BadStatus
	s.OK = max(ok, 0)
	s.Detail = strings.Join(detail, "; ")
	return s
}

// wrkWrongKind estimates how many of ok responses were not what t expects,
// judging by size, when the body is large enough to tell from headers. It
// catches a server that answers a sizeable share wrongly (say, ignores
// If-None-Match); a handful among 10⁵ hides in the slack, and only the Go
// generator counts exactly.
func wrkWrongKind(r wrkReport, t target, ok int64) int64 {
	// slack per response absorbs headers that vary in length and the
	// rounding of wrk's byte count.
	const slack = 64
	header := t.HeaderSize
	if header <= 0 {
		header = 1 << 10
	}
	if ok <= 0 || t.BodySize < 8*(header+slack) {
		return 0
	}
	body := float64(t.BodySize)
	switch t.Status {
	case 304:
		// Whatever exceeds the expected headers must be bodies.
		extra := r.BytesRead - float64(ok)*float64(header)
		if extra <= float64(ok)*slack {
			return 0
		}
		return min(ok, int64(math.Ceil(extra/body)))
	case 200:
		// Each 200 brings at least the body; allow 1% for wrk's rounding.
		full := int64(r.BytesRead * 1.01 / body)
		if full >= ok {
			return 0
		}
		return ok - full
	}
	return 0
}

// Run implements loadGenerator. wrk takes whole seconds, so warm-up and
// duration are rounded up; the measured time is wrk's own.
func (g wrkLoadGen) Run(ctx context.Context, t target, conns int, warmup, d time.Duration) (runStats, error) {
	if warmup > 0 {
		if _, err := g.exec(ctx, t, conns, warmup); err != nil {
			return runStats{}, fmt.Errorf("warm up %s: %w", t.Name, err)
		}
	}
	r, err := g.exec(ctx, t, conns, d)
	if err != nil {
		return runStats{}, fmt.Errorf("load %s: %w", t.Name, err)
	}
	return wrkStats(r, t), nil
}

// wrkArgs returns wrk's command line for t.
func wrkArgs(t target, conns int, d time.Duration) []string {
	secs := max(1, int(math.Ceil(d.Seconds())))
	threads := min(runtime.NumCPU(), conns)
	args := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s",
		"--timeout", "10s",
	}
	if t.IfNoneMatch != "" {
		args = append(args, "-H", "If-None-Match: "+t.IfNoneMatch)
	}
	if t.AcceptEncoding != "" {
		args = append(args, "-H", "Accept-Encoding: "+t.AcceptEncoding)
	}
	return append(args, t.URL)
}

// exec runs wrk once and parses its summary.
func (g wrkLoadGen) exec(ctx context.Context, t target, conns int, d time.Duration) (wrkReport, error) {
	cmd := exec.CommandContext(ctx, g.path, wrkArgs(t, conns, d)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return wrkReport{}, ctx.Err()
	}
	if err != nil {
		return wrkReport{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkReport{}, fmt.Errorf("%w:\n%s", err, out)
	}
	return r, nil
}
