package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// networkText matches what an answer must never say about the network
// calhook runs in: a private or loopback address, a port on one, the
// resolver's port, or raw dial text.
var networkText = regexp.MustCompile(`\b(10|127|192\.168|172\.(1[6-9]|2\d|3[01]))\.\d+\.\d+(\.\d+)?\b|:53\b|dial tcp|lookup `)

// TestErrorsNameNoAddress makes every kind of refusal and failed fetch a
// tenant can cause and checks that the API answers (the refusal, the
// sync outcome, lastError) name the class of failure only.
func TestErrorsNameNoAddress(t *testing.T) {
	t.Parallel()
	s := newImportServer(t)
	a := s.newAccount("Prober")
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.9.8.7/metadata", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)

	refusals := []struct {
		name, path string
		body       any
		want       string
	}{
		{"subscription to a private address", "/v1/subscriptions",
			map[string]any{"webhookUrl": "http://10.0.0.1/hook"}, "forbidden address"},
		{"subscription to a link-local address", "/v1/subscriptions",
			map[string]any{"webhookUrl": "http://169.254.169.254/latest"}, "forbidden address"},
		{"source at a private address", "/v1/calendars",
			map[string]any{"name": "x", "source": map[string]any{"url": "http://192.168.1.1/cal.ics"}}, "forbidden address"},
		{"subscription to a local name", "/v1/subscriptions",
			map[string]any{"webhookUrl": "http://metadata.internal/"}, "forbidden address"},
	}
	for _, tt := range refusals {
		r := s.do("POST", tt.path, a.key, tt.body)
		msg := string(r.body)
		if r.status != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %s; want 400 naming %q", tt.name, r.status, msg, tt.want)
		}
		if m := networkText.FindString(msg); m != "" {
			t.Errorf("%s: answer %s names %q of the network", tt.name, msg, m)
		}
	}

	fetches := []struct {
		name, source, want string
	}{
		{"redirect to a private address", redirect.URL + "/cal.ics", "redirect 1 refused: forbidden address"},
		{"connection refused", "http://127.0.0.1:1/cal.ics", "connection refused"},
	}
	for _, tt := range fetches {
		cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
			"name": tt.name, "source": map[string]any{"url": tt.source},
		})["id"].(string)
		res := s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
		got, _ := res["error"].(string)
		if res["status"] != "error" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: sync = %v; want an error naming %q", tt.name, res, tt.want)
		}
		c := s.must(200, "GET", "/v1/calendars/"+cal, a.key, nil)
		last, _ := c["lastError"].(string)
		if last != got {
			t.Errorf("%s: lastError %q; want the sync's error %q", tt.name, last, got)
		}
		for _, text := range []string{got, last} {
			if m := networkText.FindString(text); m != "" {
				t.Errorf("%s: error %q names %q of the network", tt.name, text, m)
			}
		}
	}
	// The operator's log has the detail the tenant does not get.
	if logs := s.logs.String(); !strings.Contains(logs, "10.9.8.7") || !strings.Contains(logs, "connection refused") {
		t.Errorf("operator log lacks the failures' detail:\n%s", logs)
	}
}
