package feed

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestFeedGzipOncePerFeed(t *testing.T) {
	t.Parallel()
	f := &Feed{Body: []byte(strings.Repeat("BEGIN:VEVENT\r\nSUMMARY:Booking\r\nEND:VEVENT\r\n", 200)), ETag: `"abc"`}
	var wg sync.WaitGroup
	got := make([]*Encoded, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = f.Gzip() }()
	}
	wg.Wait()
	for i, e := range got {
		if e == nil || e != got[0] {
			t.Fatalf("Gzip() #%d = %p; want the same encoding every time (%p)", i, e, got[0])
		}
	}
	e := got[0]
	if e.Coding != "gzip" || e.ETag != `"abc-gzip"` || e.Header.ContentLength[0] != strconv.Itoa(len(e.Body)) {
		t.Errorf("Gzip() = coding %q, ETag %q, Content-Length %v for %d bytes", e.Coding, e.ETag, e.Header.ContentLength, len(e.Body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, f.Body) {
		t.Errorf("gunzip(Gzip().Body) = %d bytes, %v; want the feed's %d", len(plain), err, len(f.Body))
	}
}

func TestFeedGzipSkipsWhatDoesNotShrink(t *testing.T) {
	t.Parallel()
	f := &Feed{Body: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), ETag: `"x"`}
	if e := f.Gzip(); e != nil {
		t.Errorf("Gzip() of %d bytes = %d bytes; want nil, as it does not shrink", len(f.Body), len(e.Body))
	}
}
