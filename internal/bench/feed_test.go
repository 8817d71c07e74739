package bench

import (
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckFeedBody(t *testing.T) {
	t.Parallel()
	good := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:a\r\nEND:VEVENT\r\n" +
		"BEGIN:VEVENT\r\nDESCRIPTION:" + strings.Repeat("x", 62) + "\r\n " + strings.Repeat("ü", 30) + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	tests := []struct {
		name        string
		body        string
		wantVEvents int
		wantNotes   []string
	}{
		{"good", good, 2, nil},
		{"bare LF", strings.ReplaceAll(good, "\r\n", "\n"), 2, []string{"lines without CRLF", "does not start", "does not end"}},
		{"unfolded", strings.Replace(good, "\r\n ", "", 1), 2, []string{"1 lines longer than 75 octets"}},
		{"not a calendar", "<html></html>", 0, []string{"does not start", "does not end", "without CRLF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, notes := checkFeedBody([]byte(tt.body), nil)
			if n != tt.wantVEvents {
				t.Errorf("checkFeedBody() vevents = %d; want %d", n, tt.wantVEvents)
			}
			if len(notes) != len(tt.wantNotes) {
				t.Errorf("checkFeedBody() notes = %q; want %d notes like %q", notes, len(tt.wantNotes), tt.wantNotes)
			}
			for _, w := range tt.wantNotes {
				if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, w) }) {
					t.Errorf("checkFeedBody() notes = %q; want one containing %q", notes, w)
				}
			}
		})
	}
}

func TestCheckFeedHeaders(t *testing.T) {
	t.Parallel()
	resp := func(kv ...string) *http.Response {
		r := &http.Response{Header: http.Header{}, ContentLength: 10}
		for i := 0; i < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	good := []string{"Content-Type", "text/calendar; charset=utf-8", "ETag", `"abc"`, "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT"}
	if notes := checkFeedHeaders(resp(good...)); len(notes) != 0 {
		t.Errorf("checkFeedHeaders(good) = %q; want none", notes)
	}
	if notes := checkFeedHeaders(resp("Content-Type", "text/plain", "ETag", "abc")); len(notes) != 3 {
		t.Errorf("checkFeedHeaders(bad) = %q; want 3 notes (type, unquoted ETag, no Last-Modified)", notes)
	}
	r := resp(good...)
	r.ContentLength = -1
	if notes := checkFeedHeaders(r); len(notes) != 1 {
		t.Errorf("checkFeedHeaders(chunked) = %q; want 1 note", notes)
	}
}

// TestFeedScenarioEndToEnd builds the real calhook, fills a small calendar
// and runs every target once with each load generator. It does not run in
// parallel: it measures, and other tests' load would only add noise.
func TestFeedScenarioEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds calhook and starts nginx; skipped with -short")
	}
	if _, err := findNginx(""); err != nil {
		t.Skipf("skipping: %v", err)
	}
	bin := buildTestCalhook(t)

	loadgens := []string{LoadGenGo}
	if _, err := exec.LookPath("wrk"); err == nil {
		loadgens = append(loadgens, LoadGenWrk)
	} else {
		t.Log("wrk not installed; testing the Go load generator only")
	}
	for _, lg := range loadgens {
		t.Run(lg, func(t *testing.T) {
			results, err := runFeed(t.Context(), Config{
				Bin:         bin,
				Events:      50,
				Duration:    300 * time.Millisecond,
				Warmup:      -1,
				Runs:        1,
				Connections: 4,
				LoadGen:     lg,
				Logger:      slog.New(slog.NewTextHandler(t.Output(), nil)),
			})
			if err != nil {
				t.Fatalf("runFeed: %v", err)
			}
			got := map[string]Result{}
			for _, r := range results {
				if r.Scenario != "feed" {
					t.Errorf("result %s has scenario %q", r.Metric, r.Scenario)
				}
				got[r.Metric] = r
			}
			for _, m := range []string{"calhook_200_rps", "nginx_200_rps", "calhook_304_rps", "nginx_304_rps",
				"calhook_gzip_200_rps", "nginx_gzip_200_rps", "calhook_gzip_304_rps", "nginx_gzip_304_rps"} {
				r, ok := got[m]
				switch {
				case !ok:
					t.Errorf("no %s result", m)
				case r.Value <= 0 || len(r.Runs) != 1 || r.Unit != "req/s":
					t.Errorf("%s = %+v; want a positive req/s value from 1 run", m, r)
				case r.Errors == nil || *r.Errors != 0:
					t.Errorf("%s errors = %v; want 0", m, r.Errors)
				}
			}
			for _, m := range []string{"ratio_200", "ratio_304", "ratio_gzip_200", "ratio_gzip_304"} {
				r := got[m]
				if r.Value <= 0 || r.Unit != "ratio" || r.Target == nil || *r.Target != ratioTarget {
					t.Errorf("%s = %+v; want a positive ratio with target %v", m, r, ratioTarget)
				}
			}
			if r := got["feed_bytes"]; r.Value < 50*100 {
				t.Errorf("feed_bytes = %v; want at least 100 bytes an event", r.Value)
			}
			if r := got["feed_gzip_bytes"]; r.Value <= 0 || r.Value >= got["feed_bytes"].Value {
				t.Errorf("feed_gzip_bytes = %v; want fewer bytes than the plain feed's %v", r.Value, got["feed_bytes"].Value)
			}
			if r := got["machine"]; r.Info["loadgen"] != lg || r.Info["nproc"] == nil {
				t.Errorf("machine = %+v; want loadgen %q and nproc", r, lg)
			}
		})
	}
}
