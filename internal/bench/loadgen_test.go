package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newFeedServer serves body with ETag "v1", answering If-None-Match with
// 304; every failEvery-th request (if not zero) fails with 500.
func newFeedServer(t *testing.T, body string, failEvery int64) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failEvery > 0 && n.Add(1)%failEvery == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "f.ics", time.Time{}, strings.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGoLoadGen(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("BEGIN:VEVENT\r\n", 100)
	srv := newFeedServer(t, body, 0)
	for _, tt := range []target{
		{Name: "200", URL: srv.URL, Status: 200, BodySize: int64(len(body))},
		{Name: "304", URL: srv.URL, IfNoneMatch: `"v1"`, Status: 304, BodySize: int64(len(body))},
	} {
		st, err := goLoadGen{}.Run(t.Context(), tt, 4, 20*time.Millisecond, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("Run(%s): %v", tt.Name, err)
		}
		if st.OK == 0 || st.Errors != 0 {
			t.Errorf("Run(%s) = ok %d, errors %d (%s); want ok > 0, errors 0", tt.Name, st.OK, st.Errors, st.Detail)
		}
		if st.Elapsed < 100*time.Millisecond || st.RPS() <= 0 {
			t.Errorf("Run(%s): elapsed %v, rps %v", tt.Name, st.Elapsed, st.RPS())
		}
	}
}

func TestGoLoadGenCountsErrors(t *testing.T) {
	t.Parallel()
	body := "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
	srv := newFeedServer(t, body, 5)
	tests := []struct {
		name       string
		tg         target
		wantDetail string
	}{
		{"bad status", target{Name: "500s", URL: srv.URL, Status: 200, BodySize: int64(len(body))}, "status 500"},
		{"200 where 304 expected", target{Name: "no 304", URL: srv.URL, IfNoneMatch: `"other"`, Status: 304}, "status 200"},
		{"short body", target{Name: "short", URL: srv.URL, Status: 200, BodySize: int64(len(body)) + 1}, "body not"},
	}
	for _, tt := range tests {
		// Long enough that even an overloaded machine completes requests.
		st, err := goLoadGen{}.Run(t.Context(), tt.tg, 2, 0, 500*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: Run: %v", tt.name, err)
		}
		if st.Errors == 0 || !strings.Contains(st.Detail, tt.wantDetail) {
			t.Errorf("%s: Run() = ok %d, errors %d, detail %q; want errors mentioning %q", tt.name, st.OK, st.Errors, st.Detail, tt.wantDetail)
		}
	}
}

func TestGoLoadGenConnectionRefused(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	st, err := goLoadGen{}.Run(t.Context(), target{Name: "gone", URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/", Status: 200}, 2, 0, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != 0 || st.Errors == 0 {
		t.Errorf("Run() against a closed port = ok %d, errors %d; want only errors", st.OK, st.Errors)
	}
}

func TestGoLoadGenCancel(t *testing.T) {
	t.Parallel()
	srv := newFeedServer(t, "x", 0)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := goLoadGen{}.Run(ctx, target{Name: "c", URL: srv.URL, Status: 200}, 2, 0, time.Minute)
	if err == nil {
		t.Error("Run() after cancel: error = nil; want the context's error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run() took %v to notice the cancel", d)
	}
}
