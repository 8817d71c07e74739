package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBodyThatNeverArrives sends the headers of a JSON request and only
// part of its body: when the server's read timeout ends the wait, the
// answer is 408 request_timeout, not 500.
func TestBodyThatNeverArrives(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.newAccount("Slow")
	// The same handler, behind a server with a short read timeout.
	srv := &http.Server{Handler: s.handler, ReadTimeout: 300 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"Never finished"}`
	fmt.Fprintf(conn, "POST /v1/calendars HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		a.key, len(body)+100, body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(b.String(), "request_timeout") {
		t.Errorf("answer = %d %s; want 408 request_timeout", resp.StatusCode, b.String())
	}
}
