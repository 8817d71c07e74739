package sdnotify_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/sdnotify"
)

// listen opens a unixgram socket as systemd would and returns its
// NOTIFY_SOCKET value and a function that reads the next datagram.
func listen(t *testing.T, abstract bool) (string, func() string) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		addr = "@calhook-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return addr, func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	for _, abstract := range []bool{false, true} {
		t.Run(map[bool]string{false: "path", true: "abstract"}[abstract], func(t *testing.T) {
			t.Parallel()
			addr, next := listen(t, abstract)
			n := sdnotify.New(func(k string) string { return map[string]string{"NOTIFY_SOCKET": addr}[k] })
			if err := n.Notify(context.Background(), sdnotify.Ready, "STATUS=serving"); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			if got, want := next(), "READY=1\nSTATUS=serving"; got != want {
				t.Errorf("datagram = %q; want %q", got, want)
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Parallel()
	n := sdnotify.New(func(string) string { return "" })
	if n.Enabled() {
		t.Errorf("Enabled() = true without NOTIFY_SOCKET")
	}
	if err := n.Notify(context.Background(), sdnotify.Ready); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v; want nil", err)
	}
	n.RunWatchdog(context.Background(), time.Second, nil, nil) // returns at once
}

func TestNotifyNobodyListening(t *testing.T) {
	t.Parallel()
	addr := filepath.Join(t.TempDir(), "gone.sock")
	n := sdnotify.New(func(string) string { return addr })
	if err := n.Notify(context.Background(), sdnotify.Ready); err == nil || !strings.Contains(err.Error(), "gone.sock") {
		t.Errorf("Notify to a missing socket = %v; want an error naming it", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{usec: "", want: 0},
		{usec: "30000000", want: 30 * time.Second},
		{usec: "30000000", pid: "42", want: 30 * time.Second},
		{usec: "30000000", pid: "43", want: 0}, // meant for another process
		{usec: "soon", wantErr: true},
		{usec: "0", wantErr: true},
	}
	for _, tt := range tests {
		getenv := func(k string) string { return map[string]string{"WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid}[k] }
		got, err := sdnotify.WatchdogInterval(getenv, 42)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("WatchdogInterval(USEC=%q, PID=%q) = %v, %v; want %v (error: %v)", tt.usec, tt.pid, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRunWatchdog(t *testing.T) {
	t.Parallel()
	addr, next := listen(t, false)
	n := sdnotify.New(func(string) string { return addr })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The first tick is unhealthy and must send nothing; the next ones
	// send keep-alives.
	ticks := 0
	healthy := func(context.Context) bool { ticks++; return ticks > 1 }
	go func() {
		defer close(done)
		n.RunWatchdog(ctx, 40*time.Millisecond, healthy, func(err error) { t.Errorf("watchdog: %v", err) })
	}()
	start := time.Now()
	for i := 0; i < 3; i++ {
		if got := next(); got != sdnotify.Watchdog {
			t.Fatalf("datagram %d = %q; want %q", i, got, sdnotify.Watchdog)
		}
	}
	// Three keep-alives after one skipped tick: at least four half
	// intervals.
	if elapsed := time.Since(start); elapsed < 4*20*time.Millisecond {
		t.Errorf("three keep-alives after %v; want them every half interval (20ms) after one skipped", elapsed)
	}
	cancel()
	<-done
}
