package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/calhook/calhook/internal/cli"
)

// lockedBuffer is written by the server's logger while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func env(vars map[string]string, args ...string) (cli.Env, *lockedBuffer, *lockedBuffer) {
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	return cli.Env{
		Args:   append([]string{"calhook"}, args...),
		Getenv: func(k string) string { return vars[k] },
		Stdout: stdout,
		Stderr: stderr,
	}, stdout, stderr
}

// startServe runs `calhook serve` until the test ends and returns its base
// URL.
func startServe(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	base, _ := serveUntil(t, vars, args...)
	return base
}

func TestServeCreatesDatabaseAndServes(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "fresh.db")
	base := startServe(t, map[string]string{"CALHOOK_ADMIN_TOKEN": "adm-0123456789abcdef0123456789abcdef", "CALHOOK_DB": db})
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /readyz = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+"/v1/accounts", strings.NewReader(`{"name":"Acme"}`))
	req.Header.Set("Authorization", "Bearer adm-0123456789abcdef0123456789abcdef")
	req.Header.Set("Content-Type", "application/json")
	resp, err = freshClient().Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST /v1/accounts = %v, %v; want 201 (CALHOOK_DB and CALHOOK_ADMIN_TOKEN from the environment)", resp, err)
	}
	resp.Body.Close()
}

func TestMigrateThenAccountCreate(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "calhook.db")
	e, stdout, stderr := env(nil, "migrate", "--db", db)
	if code := cli.Main(context.Background(), e); code != 0 {
		t.Fatalf("migrate = %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`schema version [1-9]`).MatchString(stdout.String()) {
		t.Errorf("migrate printed %q; want the schema version", stdout)
	}
	e, stdout, stderr = env(map[string]string{"CALHOOK_DB": db}, "account", "create", "--name", "Beach Rentals")
	if code := cli.Main(context.Background(), e); code != 0 {
		t.Fatalf("account create = %d: %s", code, stderr)
	}
	var created struct{ ID, Name, APIKey, FeedToken string }
	if err := json.Unmarshal([]byte(stdout.String()), &created); err != nil {
		t.Fatalf("account create output %q: %v", stdout, err)
	}
	if created.Name != "Beach Rentals" || created.APIKey == "" || len(created.FeedToken) != 64 {
		t.Errorf("account create = %+v", created)
	}

	// The key works against a server on the same database.
	base := startServe(t, nil, "--db", db)
	req, _ := http.NewRequest("GET", base+"/v1/calendars", nil)
	req.Header.Set("x-api-key", created.APIKey)
	resp, err := freshClient().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/calendars with the CLI-made key = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"no command", nil, nil, "no command"},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"bad addr", []string{"serve", "--addr", "nonsense", "--db", filepath.Join(dir, "a.db")}, nil, `invalid addr "nonsense"`},
		{"bad log format", []string{"serve", "--log-format", "xml", "--db", filepath.Join(dir, "b.db")}, nil, `invalid log-format "xml"`},
		{"bad duration env", []string{"serve", "--db", filepath.Join(dir, "c.db")}, map[string]string{"CALHOOK_SHUTDOWN_TIMEOUT": "soon"}, "CALHOOK_SHUTDOWN_TIMEOUT"},
		{"bad public url", []string{"serve", "--public-url", "ftp://x", "--db", filepath.Join(dir, "d.db")}, nil, "public-url"},
		{"account without name", []string{"account", "create", "--db", filepath.Join(dir, "e.db")}, nil, "name is required"},
		{"unreachable postgres", []string{"migrate", "--db", "postgres://nobody@127.0.0.1:1/x"}, nil, "connect to PostgreSQL"},
		{"hold percent out of range", []string{"serve", "--import-hold-percent", "0", "--db", filepath.Join(dir, "g.db")}, nil, `invalid import-hold-percent "0"`},
		{"hold delay below the floor", []string{"serve", "--import-hold-delay", "10s", "--db", filepath.Join(dir, "h.db")}, nil, `invalid import-hold-delay "10s"`},
		{"bad hold switch env", []string{"serve", "--db", filepath.Join(dir, "i.db")}, map[string]string{"CALHOOK_IMPORT_HOLD_DELETES": "maybe"}, "CALHOOK_IMPORT_HOLD_DELETES"},
		{"short admin token", []string{"serve", "--db", filepath.Join(dir, "k.db")}, map[string]string{"CALHOOK_ADMIN_TOKEN": "   short-but-spaced   "}, `invalid CALHOOK_ADMIN_TOKEN "16 characters": must have at least 32`},
		{"blank admin token", []string{"serve", "--db", filepath.Join(dir, "l.db")}, map[string]string{"CALHOOK_ADMIN_TOKEN": " "}, `invalid CALHOOK_ADMIN_TOKEN "0 characters"`},
		{"negative webhook host rate", []string{"serve", "--webhook-host-rate", "-1", "--db", filepath.Join(dir, "m.db")}, nil, `invalid webhook-host-rate "-1"`},
		{"no import idle timeout", []string{"serve", "--import-idle-timeout", "0s", "--db", filepath.Join(dir, "n.db")}, nil, `invalid import-idle-timeout "0s"`},
		{"no subscriptions allowed", []string{"serve", "--max-subscriptions", "0", "--db", filepath.Join(dir, "j.db")}, nil, `invalid max-subscriptions "0"`},
		{"bad metrics address", []string{"serve", "--metrics-listen", "9090", "--db", filepath.Join(dir, "o.db")}, nil, `invalid metrics-listen "9090"`},
		{"metrics address unusable", []string{"serve", "--addr", "127.0.0.1:0", "--metrics-listen", "256.0.0.1:9090", "--db", filepath.Join(dir, "p.db")}, nil, "listen on 256.0.0.1:9090 for metrics"},
		{"unreadable secret file", []string{"serve", "--db", filepath.Join(dir, "f.db")}, map[string]string{"CALHOOK_ADMIN_TOKEN_FILE": filepath.Join(dir, "missing")}, "CALHOOK_ADMIN_TOKEN_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, stderr := env(tt.vars, tt.args...)
			if code := cli.Main(context.Background(), e); code != 1 {
				t.Errorf("exit code = %d; want 1", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q; want it to mention %q", stderr, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	e, stdout, _ := env(nil, "version")
	if code := cli.Main(context.Background(), e); code != 0 || !strings.HasPrefix(stdout.String(), "calhook ") ||
		!strings.Contains(stdout.String(), "\ncommit: ") || !strings.Contains(stdout.String(), "\nbuilt: ") {
		t.Errorf("version = %d %q", code, stdout)
	}
}

// freshClient returns a client that shares no connections: closing a
// test server drops the idle connections of http.DefaultClient, and with
// them a request of a parallel test that was about to reuse one.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
