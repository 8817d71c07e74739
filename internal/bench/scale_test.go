package bench

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseScaleSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    scaleSize
		wantErr bool
	}{
		{in: "full", want: scaleFull},
		{in: "medium", want: scaleSize{Accounts: 200, Calendars: 5000, Events: 200000, Updates: 800000,
			Subscriptions: 2000, Messages: 500000, Hooks: 20000, Imports: 3000, History: 20}},
		{in: "check", want: scaleSize{Accounts: 1, Calendars: 25, Events: 1000, Updates: 4000,
			Subscriptions: 10, Messages: 2500, Hooks: 100, Imports: 15, History: 1}},
		{in: "0", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "huge", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseScaleSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseScaleSize(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestScaleHistoryGrows(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	h := &scaleHistory{start: start, total: 100}
	if got := h.next(50); !got.Equal(start) {
		t.Errorf("first write at %v; want %v", got, start)
	}
	if got, want := h.next(50), start.Add(scaleHistorySpan/2); !got.Equal(want) {
		t.Errorf("second write at %v; want %v", got, want)
	}
}

// TestMixUpstream fetches one feed of each class twice, the second time
// as calhook's poller would (If-None-Match when it got an ETag), and
// checks what each answers and counts.
func TestMixUpstream(t *testing.T) {
	t.Parallel()
	up, err := newMixUpstream()
	if err != nil {
		t.Fatal(err)
	}
	// Every fetch is a second after the one before: the DTSTAMPs move on.
	var fetches atomic.Int64
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	up.now = func() time.Time { return start.Add(time.Duration(fetches.Add(1)) * time.Second) }
	t.Cleanup(func() { up.Close() })
	tests := []struct {
		feed       int
		wantStatus int
		wantSame   bool // second body equals the first, DTSTAMPs aside
		want       mixCounts
	}{
		{feed: 0, wantStatus: http.StatusOK, want: mixCounts{changed: 1}},
		{feed: 2, wantStatus: http.StatusNotModified, want: mixCounts{notModified: 1}},
		{feed: 7, wantStatus: http.StatusOK, wantSame: true, want: mixCounts{dtstamp: 1}},
	}
	for _, tt := range tests {
		before := up.counts()
		status1, etag, body1 := mixGet(t, up.URL+feedPath(tt.feed), "")
		if status1 != http.StatusOK {
			t.Fatalf("feed %d: first GET status %d; want 200", tt.feed, status1)
		}
		status2, _, body2 := mixGet(t, up.URL+feedPath(tt.feed), etag)
		if status2 != tt.wantStatus {
			t.Errorf("feed %d: second GET status %d; want %d", tt.feed, status2, tt.wantStatus)
		}
		if got := up.counts().minus(before); got != tt.want {
			t.Errorf("feed %d: counts %+v; want %+v", tt.feed, got, tt.want)
		}
		if status2 != http.StatusOK {
			continue
		}
		if bytes.Equal(body1, body2) {
			t.Errorf("feed %d: second body equals the first; want new DTSTAMPs", tt.feed)
		}
		same := bytes.Equal(stripDTSTAMP(body1), stripDTSTAMP(body2))
		if same != tt.wantSame {
			t.Errorf("feed %d: bodies the same but for DTSTAMP = %v; want %v", tt.feed, same, tt.wantSame)
		}
	}
	if got := up.firsts.Load(); got != int64(len(tests)) {
		t.Errorf("firsts = %d; want %d", got, len(tests))
	}
}

// mixGet GETs url, with If-None-Match when etag is set.
func mixGet(t *testing.T, url, etag string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), b.Bytes()
}

// stripDTSTAMP drops the DTSTAMP lines of an iCalendar body.
func stripDTSTAMP(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\r\n")) {
		if !bytes.HasPrefix(line, []byte("DTSTAMP:")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\r\n"))
}

func TestFirstImportsLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		feeds int
		want  time.Duration
	}{
		{15, 10 * time.Minute},
		{3000, 10 * time.Minute},
		{30000, 20 * time.Minute},
	} {
		if got := firstImportsLimit(tt.feeds); got != tt.want {
			t.Errorf("firstImportsLimit(%d) = %v, want %v", tt.feeds, got, tt.want)
		}
	}
}

func TestScaleNeedsATarget(t *testing.T) {
	t.Parallel()
	_, err := runScale(context.Background(), Config{SkipSQLite: true, ScaleSize: "check", Samples: 1, Bin: "/nonexistent/calhook"})
	if err == nil || !strings.Contains(err.Error(), "-skip-sqlite needs -postgres") {
		t.Fatalf("runScale with -skip-sqlite and no -postgres: %v", err)
	}
}
