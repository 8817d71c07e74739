package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// Real wrk 4.1 summaries, one clean and one with every error line.
const (
	wrkClean = `Running 1s test @ http://127.0.0.1:18555/ok
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.80ms    1.52ms  11.20ms   81.58%
    Req/Sec     2.51k   331.73     3.21k    65.00%
  5004 requests in 1.00s, 1.40GB read
Requests/sec:   5001.04
Transfer/sec:      1.40GB
`
	wrkErrors = `Running 5s test @ http://127.0.0.1:8080/feeds/a/b.ics?token=x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   329.86us  733.36us   8.29ms   91.65%
    Req/Sec    33.97k     5.37k   53.90k    90.48%
  71007 requests in 1.10m, 4.47MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 70712
Requests/sec:  64536.15
Transfer/sec:      4.06MB`
)

func TestParseWrk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want wrkReport
	}{
		{"clean", wrkClean, wrkReport{
			Requests: 5004, Elapsed: time.Second, BytesRead: 1.40 * (1 << 30), RequestsPerSec: 5001.04,
		}},
		{"errors", wrkErrors, wrkReport{
			Requests: 71007, Elapsed: 66 * time.Second, BytesRead: 4.47 * (1 << 20), RequestsPerSec: 64536.15,
			BadStatus: 70712, Connect: 1, Read: 2, Write: 3, Timeout: 4,
		}},
		{"bytes and microseconds", strings.Replace(strings.Replace(wrkClean, "1.00s", "900.00us", 1), "1.40GB", "512.00B", 1), wrkReport{
			Requests: 5004, Elapsed: 900 * time.Microsecond, BytesRead: 512, RequestsPerSec: 5001.04,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseWrk(tt.in)
			if err != nil {
				t.Fatalf("parseWrk() error: %v", err)
			}
			if math.Abs(got.BytesRead-tt.want.BytesRead) > 1 {
				t.Errorf("parseWrk().BytesRead = %v; want %v", got.BytesRead, tt.want.BytesRead)
			}
			got.BytesRead = tt.want.BytesRead
			if got != tt.want {
				t.Errorf("parseWrk() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"unable to connect to 127.0.0.1:18556 Connection refused",
		strings.Replace(wrkClean, "Requests/sec", "Reqs", 1),
	} {
		if _, err := parseWrk(in); err == nil {
			t.Errorf("parseWrk(%q) error = nil; want an error", in)
		}
	}
}

func TestWrkStats(t *testing.T) {
	t.Parallel()
	const body = 300_000
	tests := []struct {
		name       string
		r          wrkReport
		t          target
		wantOK     int64
		wantErrors int64
	}{
		{
			name:   "clean 200",
			r:      wrkReport{Requests: 1000, RequestsPerSec: 500, BytesRead: 1000 * (body + 200)},
			t:      target{Status: 200, BodySize: body, HeaderSize: 200},
			wantOK: 1000,
		},
		{
			name:   "clean 304",
			r:      wrkReport{Requests: 100_000, RequestsPerSec: 50_000, BytesRead: 100_000 * 180},
			t:      target{Status: 304, BodySize: body, HeaderSize: 180},
			wantOK: 100_000,
		},
		{
			name:       "304 expected, one in a hundred was a 200",
			r:          wrkReport{Requests: 100_000, RequestsPerSec: 50_000, BytesRead: 99_000*180 + 1000*(body+200)},
			t:          target{Status: 304, BodySize: body, HeaderSize: 180},
			wantOK:     100_000 - 1001, // the 200s' extra headers round up
			wantErrors: 1001,
		},
		{
			name:   "304 expected, a handful of 200s hide in the slack",
			r:      wrkReport{Requests: 100_000, RequestsPerSec: 50_000, BytesRead: 99_990*180 + 10*(body+200)},
			t:      target{Status: 304, BodySize: body, HeaderSize: 180},
			wantOK: 100_000,
		},
		{
			name:       "200 expected, half were short",
			r:          wrkReport{Requests: 1000, RequestsPerSec: 500, BytesRead: 500*(body+200) + 500*180},
			t:          target{Status: 200, BodySize: body, HeaderSize: 200},
			wantOK:     505, // the 1% rounding allowance
			wantErrors: 495,
		},
		{
			name:       "bad statuses and socket errors",
			r:          wrkReport{Requests: 1000, RequestsPerSec: 500, BytesRead: 1000 * 180, BadStatus: 100, Read: 3, Timeout: 2},
			t:          target{Status: 304, BodySize: body, HeaderSize: 180},
			wantOK:     900,
			wantErrors: 105,
		},
		{
			name:   "small feed: sizes not judged",
			r:      wrkReport{Requests: 1000, RequestsPerSec: 500, BytesRead: 1000 * 1000},
			t:      target{Status: 304, BodySize: 1000, HeaderSize: 180},
			wantOK: 1000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := wrkStats(tt.r, tt.t)
			if got.OK != tt.wantOK || got.Errors != tt.wantErrors {
				t.Errorf("wrkStats() = ok %d, errors %d (%s); want ok %d, errors %d",
					got.OK, got.Errors, got.Detail, tt.wantOK, tt.wantErrors)
			}
			if (got.Errors > 0) != (got.Detail != "") {
				t.Errorf("wrkStats().Detail = %q with %d errors", got.Detail, got.Errors)
			}
			wantRPS := tt.r.RequestsPerSec * float64(tt.wantOK) / float64(tt.r.Requests)
			if math.Abs(got.RPS()-wantRPS) > 0.01 {
				t.Errorf("wrkStats().RPS() = %v; want %v", got.RPS(), wantRPS)
			}
		})
	}
}

func TestWrkArgs(t *testing.T) {
	t.Parallel()
	got := wrkArgs(target{URL: "http://x/f.ics?token=a", IfNoneMatch: `"abc"`}, 1, 300*time.Millisecond)
	want := []string{"-t", "1", "-c", "1", "-d", "1s", "--timeout", "10s", "-H", `If-None-Match: "abc"`, "http://x/f.ics?token=a"}
	if !slices.Equal(got, want) {
		t.Errorf("wrkArgs() = %q; want %q", got, want)
	}
	got = wrkArgs(target{URL: "http://x/"}, 32, 5*time.Second)
	if i := slices.Index(got, "-d"); got[i+1] != "5s" || slices.Contains(got, "-H") {
		t.Errorf("wrkArgs() = %q; want -d 5s and no -H", got)
	}
}
