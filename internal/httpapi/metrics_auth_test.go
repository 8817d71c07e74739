package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/calhook/calhook/internal/httpapi"
)

// TestMetricsToken: with a metrics token, /metrics answers 401 without it
// or with another credential, and the metrics with it; without one it is
// open, as before.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-0123456789abcdef0123456789"
	for _, tt := range []struct {
		name, configured, sent string
		want                   int
	}{
		{"open without a token", "", "", http.StatusOK},
		{"no credential", token, "", http.StatusUnauthorized},
		{"wrong token", token, "metrics-wrong", http.StatusUnauthorized},
		{"right token", token, token, http.StatusOK},
	} {
		srv := httptest.NewServer(httpapi.New(httpapi.Config{MetricsToken: tt.configured}))
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if tt.sent != "" {
			req.Header.Set("Authorization", "Bearer "+tt.sent)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: GET /metrics = %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}
