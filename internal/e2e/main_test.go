package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the calhook binary built for this test binary; TestMain
// removes it.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// calhookBinary builds ./cmd/calhook once per test binary and returns its
// path. It is built without -race even under `go test -race`: the test
// checks behaviour, and the race detector would only slow the server down.
func calhookBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "calhook-e2e-*")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "calhook")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/calhook/calhook/cmd/calhook")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/calhook: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// readyTimeout bounds how long a starting calhook may take to listen.
const readyTimeout = 30 * time.Second

// server is one calhook process.
type server struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed once the process has exited
	err  error         // valid once done is closed

	mu  sync.Mutex
	log bytes.Buffer // everything the process wrote to stderr
}

// startServer runs `calhook serve` on a free loopback port with the JSON
// log, the given admin token and database, and extra flags. It returns
// once the server has logged its address; the test's cleanup kills it if
// it is still running.
func startServer(t *testing.T, db, adminToken string, extra ...string) *server {
	t.Helper()
	bin := calhookBinary(t)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	// Only this test's settings: no CALHOOK_* from the caller's shell.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALHOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CALHOOK_ADMIN_TOKEN="+adminToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start calhook: %v", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { s.kill() })

	addrc := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.log.Write(line)
			s.log.WriteByte('\n')
			s.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "calhook serving" && rec.Addr != "" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanned // Wait must not run before the pipe is drained
		s.err = cmd.Wait()
		close(s.done)
	}()

	select {
	case s.addr = <-addrc:
		return s
	case <-s.done:
		t.Fatalf("calhook exited before serving (%v); log:\n%s", s.err, s.logText())
	case <-time.After(readyTimeout):
		t.Fatalf("calhook did not log its address within %v; log:\n%s", readyTimeout, s.logText())
	}
	return nil
}

// baseURL is the server's root URL.
func (s *server) baseURL() string { return "http://" + s.addr }

// logText returns what the process has logged so far.
func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
// It is a no-op once the process has exited.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	// The only error is "already finished", which is what kill wants.
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop ends the process with SIGTERM and reports whether it shut down
// cleanly within timeout.
func (s *server) stop(timeout time.Duration) error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal calhook: %w", err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("calhook exited after SIGTERM: %w", s.err)
		}
		return nil
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("calhook did not exit within %v of SIGTERM", timeout)
	}
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error
	return hex.EncodeToString(b)
}

// client calls calhook's JSON API.
type client struct {
	http *http.Client
}

func newClient() *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &client{http: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// statusError is an answer with an unexpected status.
type statusError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URL, e.Status, e.Body)
}

// do sends in as JSON with the bearer token, checks the status against
// want and decodes the answer into out. A transport error comes back as
// is; a wrong status as a *statusError.
func (c *client) do(ctx context.Context, method, url, bearer string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	if resp.StatusCode != want {
		return &statusError{Method: method, URL: url, Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return nil
}

// mustDo is do for setup calls, which must succeed.
func (c *client) mustDo(t *testing.T, method, url, bearer string, in, out any, want int) {
	t.Helper()
	if err := c.do(t.Context(), method, url, bearer, in, out, want); err != nil {
		t.Fatal(err)
	}
}
