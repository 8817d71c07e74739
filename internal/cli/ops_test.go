package cli_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/cli"
)

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	base := startServe(t, nil, "--db", filepath.Join(t.TempDir(), "calhook.db"))
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name     string
		vars     map[string]string
		args     []string
		wantCode int
		want     string
	}{
		{"ready, by --url", nil, []string{"--url", base + "/readyz"}, 0, "200 OK"},
		{"ready, by CALHOOK_ADDR", map[string]string{"CALHOOK_ADDR": strings.TrimPrefix(base, "http://")}, nil, 0, "200 OK"},
		{"not ready", nil, []string{"--url", failing.URL}, 1, "503 Service Unavailable"},
		{"nothing listening", nil, []string{"--url", closed.URL + "/readyz"}, 1, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, stdout, stderr := env(tt.vars, append([]string{"healthcheck"}, tt.args...)...)
			code := cli.Main(context.Background(), e)
			if code != tt.wantCode || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
				t.Errorf("healthcheck %v = %d, stdout %q, stderr %q; want %d mentioning %q",
					tt.args, code, stdout, stderr, tt.wantCode, tt.want)
			}
		})
	}
}
