package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets between SIGTERM and SIGKILL.
const stopTimeout = 10 * time.Second

// proc is a long-running child process (calhook or nginx) whose output goes
// to a log file in the scenario's temporary directory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed

	stopOnce sync.Once
	stopErr  error
}

// startProc starts bin with args and env, sending its stdout and stderr to
// logPath. The child gets its own process group so that a Ctrl-C at the
// terminal reaches only the bench, which then stops it in order.
func startProc(name, logPath, bin string, args, env []string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited is closed once the process has ended.
func (p *proc) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to stopTimeout and then kills the process.
// It is idempotent and returns an error when the process did not exit
// cleanly on SIGTERM, since that is worth reporting about the server.
func (p *proc) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("%s had already exited: %v", p.name, p.waitErr)
			return
		default:
		}
		start := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("signal %s: %w", p.name, err)
		}
		select {
		case <-p.done:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("%s exited after SIGTERM: %w", p.name, p.waitErr)
			}
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, time.Since(start).Round(time.Millisecond))
		}
	})
	return p.stopErr
}

// logTail returns the last n lines of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// readyTimeout bounds how long a child may take to answer; it is generous
// because a slow server is a result, not a reason to give up.
const readyTimeout = 2 * time.Minute

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", p.name, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(body.String()))
		} else {
			last = err.Error()
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited before answering %s (%v); log:\n%s", p.name, url, p.waitErr, p.logTail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s (last: %s): %w", p.name, url, last, ctx.Err())
		case <-tick.C:
		}
	}
}
