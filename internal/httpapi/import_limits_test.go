package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/importer"
)

// TestImportLimits runs the importer's refusals through the API, on
// whichever database the package runs against: a feed with more events
// than MaxEvents fails its sync with a clear error and stores nothing,
// and a feed that stalls is abandoned after the idle timeout (its error
// names it; the fetch timeout, 5 s, would say only "timed out").
func TestImportLimits(t *testing.T) {
	t.Parallel()
	s := newImportServerWith(t, func(c *importer.Config) {
		c.MaxEvents = 2
		c.IdleTimeout = 300 * time.Millisecond
	})
	a := s.newAccount("Limits")
	up := newUpstreamFeed(t, icsFeed(
		icsEvent("a@up", "20261201T100000Z", "A", ""),
		icsEvent("b@up", "20261202T100000Z", "B", ""),
		icsEvent("c@up", "20261203T100000Z", "C", ""),
	))
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(stall.Close)
	tests := []struct{ name, url, want string }{
		{"too many events", up.URL + "/cal.ics", "the feed has 3 events, more than the 2 an imported calendar may hold"},
		{"silent upstream", stall.URL + "/cal.ics", "timed out: the server sent nothing for 300ms"},
	}
	for _, tt := range tests {
		cal := s.must(201, "POST", "/v1/calendars", a.key, map[string]any{
			"name": tt.name, "source": map[string]any{"url": tt.url},
		})["id"].(string)
		res := s.must(200, "POST", "/v1/calendars/"+cal+"/sync?wait=true", a.key, nil)
		c := res["calendar"].(map[string]any)
		if msg, _ := res["error"].(string); res["status"] != "error" || !strings.Contains(msg, tt.want) || c["eventCount"] != 0.0 {
			t.Errorf("%s: sync = %v; want an error %q and no events", tt.name, res, tt.want)
		}
	}
}
