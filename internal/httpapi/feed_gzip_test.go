package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return out
}

// TestFeedGzip checks content negotiation of feeds: gzip for a client
// that accepts it, the plain bytes otherwise, each representation with
// its own ETag and Vary: Accept-Encoding on every answer, for GET, HEAD
// and conditional requests. Accept-Encoding is always set explicitly, so
// Go's client neither adds gzip nor decompresses behind the test's back.
func TestFeedGzip(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Acme")
	cal := s.newCalendar(a, "Beach", "Europe/Berlin")
	for i := range 30 {
		s.newEvent(a, cal, map[string]any{"summary": fmt.Sprintf("Booking %d", i),
			"start": fmt.Sprintf("2026-12-%02dT15:00:00", i+1), "end": fmt.Sprintf("2026-12-%02dT16:00:00", i+1)})
	}
	path := feedPath(a, cal, a.feedToken)
	plainAE, gzipAE := []string{"Accept-Encoding", "identity"}, []string{"Accept-Encoding", "br;q=1, gzip;q=0.5"}

	plain := s.do("GET", path, "", nil, plainAE...)
	zipped := s.do("GET", path, "", nil, gzipAE...)
	if plain.status != 200 || zipped.status != 200 {
		t.Fatalf("GET = %d (plain), %d (gzip); want 200", plain.status, zipped.status)
	}
	for _, tt := range []struct {
		name     string
		r        response
		encoding string
		length   int
	}{
		{"plain", plain, "", len(plain.body)},
		{"gzip", zipped, "gzip", len(zipped.body)},
	} {
		h := tt.r.header
		if got := h.Get("Content-Encoding"); got != tt.encoding {
			t.Errorf("%s: Content-Encoding = %q; want %q", tt.name, got, tt.encoding)
		}
		if got := h.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("%s: Vary = %q; want Accept-Encoding", tt.name, got)
		}
		if got := h.Get("Content-Length"); got != strconv.Itoa(tt.length) {
			t.Errorf("%s: Content-Length = %q; want %d", tt.name, got, tt.length)
		}
		if got := h.Get("Content-Type"); got != "text/calendar; charset=utf-8" {
			t.Errorf("%s: Content-Type = %q", tt.name, got)
		}
	}
	if got := gunzip(t, zipped.body); !bytes.Equal(got, plain.body) {
		t.Errorf("gunzipped feed differs from the plain one:\n%s\nwant\n%s", got, plain.body)
	}
	plainTag, gzipTag := plain.header.Get("ETag"), zipped.header.Get("ETag")
	if plainTag == "" || gzipTag == "" || plainTag == gzipTag {
		t.Fatalf("ETags = %q (plain), %q (gzip); want two distinct ones", plainTag, gzipTag)
	}
	if len(zipped.body) >= len(plain.body)/2 {
		t.Errorf("gzip feed is %d bytes for %d plain; want under half", len(zipped.body), len(plain.body))
	}
	t.Logf("feed of 30 events: %d bytes plain, %d gzip (ratio %.2f)", len(plain.body), len(zipped.body),
		float64(len(plain.body))/float64(len(zipped.body)))

	// Compressed once per version: the same bytes again.
	if again := s.do("GET", path, "", nil, gzipAE...); !bytes.Equal(again.body, zipped.body) || again.header.Get("ETag") != gzipTag {
		t.Errorf("second gzip GET differs from the first")
	}

	conditional := []struct {
		name    string
		headers []string
		want    int
		etag    string
	}{
		{"gzip tag, gzip accepted", append([]string{"If-None-Match", gzipTag}, gzipAE...), 304, gzipTag},
		{"plain tag, plain", append([]string{"If-None-Match", plainTag}, plainAE...), 304, plainTag},
		{"gzip tag, plain asked", append([]string{"If-None-Match", gzipTag}, plainAE...), 200, plainTag},
		{"plain tag, gzip asked", append([]string{"If-None-Match", plainTag}, gzipAE...), 200, gzipTag},
		{"both tags, gzip asked", append([]string{"If-None-Match", plainTag + ", " + gzipTag}, gzipAE...), 304, gzipTag},
	}
	for _, tt := range conditional {
		r := s.do("GET", path, "", nil, tt.headers...)
		if r.status != tt.want || r.header.Get("ETag") != tt.etag || r.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: GET = %d, ETag %q, Vary %q; want %d, %q, Accept-Encoding",
				tt.name, r.status, r.header.Get("ETag"), r.header.Get("Vary"), tt.want, tt.etag)
		}
	}

	for _, tt := range []struct {
		name    string
		headers []string
		want    response
	}{{"plain", plainAE, plain}, {"gzip", gzipAE, zipped}} {
		r := s.do("HEAD", path, "", nil, tt.headers...)
		for _, k := range []string{"ETag", "Content-Length", "Content-Encoding", "Vary", "Content-Type"} {
			if r.header.Get(k) != tt.want.header.Get(k) {
				t.Errorf("HEAD %s: %s = %q; want %q as for GET", tt.name, k, r.header.Get(k), tt.want.header.Get(k))
			}
		}
		if r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("HEAD %s = %d with %d bytes; want 200 and no body", tt.name, r.status, len(r.body))
		}
	}

	// A new version: new tags for both representations.
	s.newEvent(a, cal, map[string]any{"summary": "Late booking", "start": "2026-12-31T15:00:00", "end": "2026-12-31T16:00:00"})
	if r := s.do("GET", path, "", nil, append([]string{"If-None-Match", gzipTag}, gzipAE...)...); r.status != 200 ||
		r.header.Get("ETag") == gzipTag || !bytes.Contains(gunzip(t, r.body), []byte("Late booking")) {
		t.Errorf("gzip GET after a change = %d, ETag %q; want 200 with a new ETag and the new event", r.status, r.header.Get("ETag"))
	}
}
