package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// moduleDir returns the root of the Go module around the working
// directory, where ./cmd/calhook is built from.
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find module: not inside the calhook module; run from the repository or pass --bin")
	}
	return filepath.Dir(gomod), nil
}

// buildCalhook builds ./cmd/calhook of the module at dir into out.
func buildCalhook(ctx context.Context, dir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/calhook")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build calhook: %w\n%s", err, b)
	}
	return nil
}

// calhookServer is a running calhook and how to reach it.
type calhookServer struct {
	*proc
	baseURL    string
	adminToken string
}

// startCalhook starts bin serving a fresh SQLite database in dir on a free
// loopback port, with extra flags after serve's own, and waits until
// /readyz answers.
func startCalhook(ctx context.Context, bin, dir string, extra ...string) (*calhookServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "calhook.db")
	return serveSpec{
		name: "calhook", bin: bin, dir: dir, db: db, addr: addr, adminToken: randomHex(32),
		env: []string{"CALHOOK_DB=" + db, "CALHOOK_ADDR=" + addr}, extra: extra,
	}.start(ctx)
}

// benchMaxSubscriptions lifts the per-tenant limits that a benchmark's one account
// would hit (the fan-out part subscribes 1,000 endpoints). Set through the
// environment, which binaries from before a limit existed ignore, so that
// any commit can be measured.
const benchMaxSubscriptions = "CALHOOK_MAX_SUBSCRIPTIONS=1000000"

// benchWebhookHostRate lifts the per-host webhook rate the same way: every
// receiver of a benchmark is on one loopback host, which in production
// would be as many hosts as receivers.
const benchWebhookHostRate = "CALHOOK_WEBHOOK_HOST_RATE=0"

// serveSpec is how to run one calhook serve process; startCalhook,
// startCalhookAt and startNode fill it in for their kinds of server.
type serveSpec struct {
	// name names the process in messages; bin is the calhook binary;
	// dir, made if missing, holds the process's log.
	name, bin, dir string
	// db is a SQLite file or a postgres:// URL; addr is host:port.
	db, addr, adminToken string
	// env holds CALHOOK_* settings besides the admin token.
	env []string
	// extra holds flags after serve's own.
	extra []string
}

// start starts the process and waits until /readyz answers. It drops any
// CALHOOK_* settings of the caller's environment so that the server sees
// only this run's.
func (s serveSpec) start(ctx context.Context) (*calhookServer, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALHOOK_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CALHOOK_ADMIN_TOKEN="+s.adminToken)
	env = append(env, benchMaxSubscriptions, benchWebhookHostRate)
	env = append(env, s.env...)
	p, err := startProc(s.name, filepath.Join(s.dir, "calhook.log"), s.bin,
		append([]string{"serve", "--db", s.db, "--addr", s.addr}, s.extra...), env)
	if err != nil {
		return nil, err
	}
	srv := &calhookServer{proc: p, baseURL: "http://" + s.addr, adminToken: s.adminToken}
	if err := waitHTTP(ctx, p, srv.baseURL+"/readyz"); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return srv, nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error; it crashes the program instead
	return hex.EncodeToString(b)
}

// apiClient calls calhook's JSON API.
type apiClient struct {
	baseURL string
	http    *http.Client
}

// newAPIClient returns a client whose pool fits the given concurrency.
func newAPIClient(baseURL string, conns int) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &apiClient{baseURL: baseURL, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends in as JSON with the bearer token and decodes the answer into
// out, failing unless the status is want.
func (c *apiClient) do(ctx context.Context, method, path, bearer string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, path, truncate(b, 200), err)
		}
	}
	return nil
}

// truncate shortens b for messages.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// account is the part of AccountCreated the bench needs.
type account struct {
	ID        string `json:"id"`
	APIKey    string `json:"apiKey"`
	FeedToken string `json:"feedToken"`
}

// calendar is the part of Calendar the bench needs.
type calendar struct {
	ID       string `json:"id"`
	TimeZone string `json:"timeZone"`
}

// createAccount creates an account with the admin token.
func (c *apiClient) createAccount(ctx context.Context, adminToken, name string) (*account, error) {
	var a account
	if err := c.do(ctx, http.MethodPost, "/v1/accounts", adminToken, map[string]string{"name": name}, &a, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	if a.ID == "" || a.APIKey == "" || a.FeedToken == "" {
		return nil, fmt.Errorf("create account: answer lacks id, apiKey or feedToken: %+v", a)
	}
	return &a, nil
}

// createCalendar creates a native calendar in the given zone.
func (c *apiClient) createCalendar(ctx context.Context, apiKey, name, tz string) (*calendar, error) {
	var cal calendar
	in := map[string]string{"name": name, "timeZone": tz}
	if err := c.do(ctx, http.MethodPost, "/v1/calendars", apiKey, in, &cal, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("create calendar: %w", err)
	}
	if cal.ID == "" {
		return nil, errors.New("create calendar: answer lacks id")
	}
	return &cal, nil
}

// createAccountCalendar creates the bench's account with the admin token
// and in it a native calendar named name in Europe/Berlin, the zone the
// generated events are in.
func (c *apiClient) createAccountCalendar(ctx context.Context, adminToken, name string) (*account, *calendar, error) {
	acc, err := c.createAccount(ctx, adminToken, "calhookbench")
	if err != nil {
		return nil, nil, err
	}
	cal, err := c.createCalendar(ctx, acc.APIKey, name, "Europe/Berlin")
	if err != nil {
		return nil, nil, err
	}
	return acc, cal, nil
}

// createEvents posts events with the given number of concurrent workers,
// stopping at the first failure.
func (c *apiClient) createEvents(ctx context.Context, apiKey, calendarID string, events []eventInput, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	path := "/v1/calendars/" + calendarID + "/events"
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				var out struct {
					ID string `json:"id"`
				}
				if err := c.do(ctx, http.MethodPost, path, apiKey, events[i], &out, http.StatusCreated); err != nil {
					cancel(fmt.Errorf("create event %d (%q): %w", i, events[i].Summary, err))
					return
				}
			}
		})
	}
feed:
	for i := range events {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
