package cli_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestServeNotifiesSystemd plays systemd's part of Type=notify with a
// watchdog: serve must send READY=1 once it accepts requests, WATCHDOG=1
// at half of WATCHDOG_USEC, and STOPPING=1 when it shuts down.
func TestServeNotifiesSystemd(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", sock, err)
	}
	defer conn.Close()
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vars := map[string]string{
		"NOTIFY_SOCKET": sock,
		"WATCHDOG_USEC": "200000", // 200ms: keep-alives every 100ms
		"WATCHDOG_PID":  strconv.Itoa(os.Getpid()),
	}
	e, _, stderr := env(vars, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "calhook.db"))
	ready := make(chan string, 1)
	e.Ready = func(addr string) { ready <- addr }
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, e) }()

	got := next()
	if !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification = %q; want READY=1 first", got)
	}
	addr := <-ready
	if !strings.Contains(got, "STATUS=serving on "+addr) {
		t.Errorf("first notification = %q; want a STATUS naming %s", got, addr)
	}
	// Ready means ready: the server answers at once.
	resp, err := freshClient().Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz after READY=1 = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	for i := 0; i < 2; i++ {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %d after READY = %q; want WATCHDOG=1", i, got)
		}
	}
	cancel()
	for {
		got := next()
		if got == "WATCHDOG=1" { // one may have been in flight
			continue
		}
		if !strings.HasPrefix(got, "STOPPING=1") {
			t.Errorf("notification at shutdown = %q; want STOPPING=1", got)
		}
		break
	}
	if code := <-done; code != 0 {
		t.Errorf("serve exited with %d: %s", code, stderr)
	}
}
