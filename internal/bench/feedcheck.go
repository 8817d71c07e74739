package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// feedResponse is one server's answer for the feed, probed plainly and
// conditionally.
type feedResponse struct {
	body []byte
	// plain is the decompressed body of a compressed answer.
	plain   []byte
	etag    string
	vevents int
	// header200 and header304 are the sizes of the status line and
	// headers of each answer.
	header200, header304 int64
	// notes lists departures from what a feed should look like.
	notes []string
}

// probeFeed GETs u, then GETs it again with If-None-Match. wantLen, when
// not zero, is the body length to expect.
func probeFeed(ctx context.Context, u string, wantLen int) (*feedResponse, error) {
	return probeFeedEncoded(ctx, u, "", wantLen)
}

// probeFeedEncoded is probeFeed asking for a content coding (gzip), or
// for none when enc is empty; the body is then the compressed bytes as
// served, which must be that coding.
func probeFeedEncoded(ctx context.Context, u, enc string, wantLen int) (*feedResponse, error) {
	// No transparent gzip: the body must be the bytes on the wire.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	get := func(inm string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	resp, body, err := get("")
	if err != nil {
		return nil, fmt.Errorf("get feed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get feed: status %d: %s", resp.StatusCode, truncate(body, 200))
	}
	if wantLen != 0 && len(body) != wantLen {
		return nil, fmt.Errorf("get feed: %d bytes, want %d", len(body), wantLen)
	}
	f := &feedResponse{body: body, etag: resp.Header.Get("ETag"), header200: headerSize(resp), notes: []string{}}
	if f.etag == "" {
		return nil, errors.New("get feed: no ETag header, so there is nothing to revalidate with")
	}
	if got := resp.Header.Get("Content-Encoding"); got != enc {
		return nil, fmt.Errorf("get feed with Accept-Encoding %q: Content-Encoding %q", enc, got)
	}
	f.notes = append(f.notes, checkFeedHeaders(resp)...)
	plain := body
	if enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("get feed: gzip body: %w", err)
		}
		if plain, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("get feed: gzip body: %w", err)
		}
		f.plain = plain
	}
	f.vevents, f.notes = checkFeedBody(plain, f.notes)

	resp, body, err = get(f.etag)
	if err != nil {
		return nil, fmt.Errorf("get feed with If-None-Match: %w", err)
	}
	f.header304 = headerSize(resp)
	switch {
	case resp.StatusCode != http.StatusNotModified:
		f.notes = append(f.notes, fmt.Sprintf("If-None-Match with the feed's own ETag answered %d, not 304", resp.StatusCode))
	case len(body) > 0:
		f.notes = append(f.notes, fmt.Sprintf("304 carried a %d-byte body", len(body)))
	case resp.Header.Get("ETag") != f.etag:
		f.notes = append(f.notes, fmt.Sprintf("304 carried ETag %q, not %q (RFC 9110 §15.4.5)", resp.Header.Get("ETag"), f.etag))
	}
	return f, nil
}

// headerSize approximates the bytes of resp's status line and headers.
func headerSize(resp *http.Response) int64 {
	n := len(resp.Proto) + 1 + len(resp.Status) + 2 + 2
	for k, vs := range resp.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return int64(n)
}

// checkFeedHeaders returns notes on a 200 feed response's headers.
func checkFeedHeaders(resp *http.Response) []string {
	var notes []string
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "text/calendar") {
		notes = append(notes, fmt.Sprintf("Content-Type %q, want text/calendar", ct))
	} else if !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
		notes = append(notes, fmt.Sprintf("Content-Type %q names no charset=utf-8", ct))
	}
	if etag := resp.Header.Get("ETag"); etag != "" && !strings.HasSuffix(etag, `"`) {
		notes = append(notes, fmt.Sprintf("ETag %q is not a quoted entity tag (RFC 9110 §8.8.3)", etag))
	}
	if resp.Header.Get("Last-Modified") == "" {
		notes = append(notes, "no Last-Modified header")
	}
	if resp.ContentLength < 0 {
		notes = append(notes, "no Content-Length (chunked)")
	}
	return notes
}

// checkFeedBody counts VEVENTs and appends notes on the iCalendar framing
// that RFC 5545 §3.1 demands: CRLF line ends and lines of at most 75
// octets.
func checkFeedBody(body []byte, notes []string) (int, []string) {
	if !bytes.HasPrefix(body, []byte("BEGIN:VCALENDAR\r\n")) {
		notes = append(notes, "body does not start with BEGIN:VCALENDAR CRLF")
	}
	if !bytes.HasSuffix(body, []byte("END:VCALENDAR\r\n")) {
		notes = append(notes, "body does not end with END:VCALENDAR CRLF")
	}
	var vevents, bareLF, long int
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\r' {
			bareLF++
		} else {
			line = line[:len(line)-1]
		}
		if len(line) > 75 {
			long++
		}
		if string(line) == "BEGIN:VEVENT" {
			vevents++
		}
	}
	if bareLF > 0 {
		notes = append(notes, fmt.Sprintf("%d lines without CRLF", bareLF))
	}
	if long > 0 {
		notes = append(notes, fmt.Sprintf("%d lines longer than 75 octets (unfolded)", long))
	}
	return vevents, notes
}
