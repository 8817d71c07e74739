// Package sdnotify implements the service side of systemd's notification
// protocol (sd_notify(3)) without cgo or libsystemd: readiness, stopping
// and watchdog keep-alives, each one datagram on the unix socket named by
// $NOTIFY_SOCKET.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The states calhook sends; sd_notify(3) lists them all.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends states to the service manager. The zero value and a nil
// *Notifier are valid and send nothing: the process was not started by
// systemd with NotifyAccess.
type Notifier struct {
	addr string
}

// New returns the Notifier for the socket that getenv("NOTIFY_SOCKET")
// names (a path, or an abstract socket starting with "@"), or nil when it
// is unset.
func New(getenv func(string) string) *Notifier {
	addr := getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	return &Notifier{addr: addr}
}

// Enabled reports whether n sends anything.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Notify sends the states, newline-separated, in one datagram.
func (n *Notifier) Notify(ctx context.Context, states ...string) error {
	if !n.Enabled() {
		return nil
	}
	// Go maps a leading "@" to Linux's abstract namespace, as systemd
	// means it.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixgram", n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", n.addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetWriteDeadline(deadline); err != nil {
			return fmt.Errorf("sd_notify: %w", err)
		}
	}
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: send to %s: %w", n.addr, err)
	}
	return nil
}

// WatchdogInterval returns how often the service manager expects
// WATCHDOG=1: WATCHDOG_USEC, if set and meant for this process (a
// WATCHDOG_PID, when given, must be pid), else 0.
func WatchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0, nil
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("sd_notify: invalid WATCHDOG_USEC %q", usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// RunWatchdog sends WATCHDOG=1 every half interval, as sd_watchdog_enabled(3)
// advises, until ctx ends. healthy, when not nil, is asked first, and a
// false answer skips that keep-alive: a process that stays unhealthy for a
// whole interval is restarted by the service manager. Send errors go to
// onError, if set, and do not stop the loop.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, healthy func(context.Context) bool, onError func(error)) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if healthy != nil && !healthy(ctx) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, interval/2)
		err := n.Notify(sctx, Watchdog)
		cancel()
		if err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
	}
}
