package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShutdownEndsLongWaits: a sync that waits for the poll of a feed
// whose host never answers does not hold a graceful shutdown until its
// timeout. It ends at once with 503 shutting_down and Retry-After, and
// serve exits cleanly.
func TestShutdownEndsLongWaits(t *testing.T) {
	t.Parallel()
	fetched := make(chan struct{}, 1)
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetched <- struct{}{}:
		default:
		}
		<-release // a host that accepts and never answers
	}))
	defer upstream.Close()
	defer close(release)

	admin := "adm-0123456789abcdef0123456789abcdef"
	base, stop := serveUntil(t, map[string]string{"CALHOOK_ADMIN_TOKEN": admin},
		"--db", filepath.Join(t.TempDir(), "calhook.db"), "--allow-private-cidr", "127.0.0.1/32",
		"--allow-http-feeds", "--log-level", "warn", "--shutdown-timeout", "30s")
	s := &hookServer{t: t, base: base}
	var acct struct{ APIKey string }
	s.call("POST", "/v1/accounts", admin, `{"name":"Acme"}`, 201, &acct)
	var cal struct{ ID string }
	s.call("POST", "/v1/calendars", acct.APIKey, `{"name":"Hanging","source":{"url":"`+upstream.URL+`/cal.ics"}}`, 201, &cal)

	type answer struct {
		status     int
		retryAfter string
		body       string
		err        error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/calendars/"+cal.ID+"/sync?wait=true", nil)
		req.Header.Set("Authorization", "Bearer "+acct.APIKey)
		resp, err := freshClient().Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
	}()
	select {
	case <-fetched:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream was never fetched")
	}
	// Let the sync request reach its wait (it is sent before the fetch
	// that it asked for, but may still be on its way to the handler's
	// wait): a shutdown before the handler started would be another case.
	time.Sleep(100 * time.Millisecond)

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	var a answer
	select {
	case a = <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting sync was not answered within 20 s of the shutdown (the fetch's idle timeout would end it only later)")
	}
	if a.err != nil {
		t.Fatalf("sync: %v", a.err)
	}
	var body struct{ Error struct{ Code string } }
	_ = json.Unmarshal([]byte(a.body), &body)
	if a.status != http.StatusServiceUnavailable || body.Error.Code != "shutting_down" || a.retryAfter != "1" {
		t.Errorf("sync during shutdown = %d %s (Retry-After %q); want 503 shutting_down, Retry-After 1", a.status,
			strings.TrimSpace(a.body), a.retryAfter)
	}
	<-stopped
}
