package httpapi_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
	"github.com/calhook/calhook/internal/store/storetest"
)

// fullFSEnv names the directory where the child process of
// TestFullDiskAnswers503 mounts its small filesystem.
const fullFSEnv = "CALHOOK_TEST_FULLFS_DIR"

// TestFullDiskAnswers503 runs calhook's API on a SQLite file on a really
// full filesystem: a 4 MiB tmpfs, mounted in a private mount namespace
// (unshare -rm re-runs this test in one), filled with a ballast file.
// Writes that find no room answer 503 storage_full with Retry-After,
// /readyz and the metrics report it, the log says it once; once the
// ballast is deleted, writes resume, and every acknowledged write is
// there.
func TestFullDiskAnswers503(t *testing.T) {
	dir := os.Getenv(fullFSEnv)
	if dir == "" {
		t.Parallel()
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("unshare (util-linux) is not installed: it makes the private mount namespace for the full filesystem")
		}
		if err := exec.Command(unshare, "-rm", "true").Run(); err != nil {
			t.Skipf("unshare -rm is not permitted here (%v): no private mount namespace for the full filesystem", err)
		}
		dir := t.TempDir()
		cmd := exec.Command(unshare, "-rm", "--", os.Args[0], "-test.run=^TestFullDiskAnswers503$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), fullFSEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFullDiskAnswers503") {
			t.Fatalf("the test in its mount namespace failed (%v):\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "acknowledged") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}

	// The child: mount the small filesystem and run calhook on it.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount a 4 MiB tmpfs on %s: %v", dir, err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "calhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := newServerOn(t, db, adminToken, nil)
	a := s.newAccount("Full")
	cal := s.newCalendar(a, "Cal", "UTC")
	// Leave about 256 KiB free.
	ballast := filepath.Join(dir, "ballast")
	fillDisk(t, dir, ballast, 256<<10)

	var acked []string
	var full response
	for i := 0; i < 2000; i++ {
		r := s.do("POST", "/v1/calendars/"+cal+"/events", a.key, map[string]any{
			"summary": strings.Repeat("booking ", 100) + fmt.Sprint(i), "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z",
		})
		if r.status == 201 {
			acked = append(acked, r.json(t)["id"].(string))
			continue
		}
		full = r
		break
	}
	if full.status != 503 || full.errorCode(t) != "storage_full" || full.header.Get("Retry-After") != "60" {
		t.Fatalf("a write on the full disk = %d %s (Retry-After %q); want 503 storage_full, Retry-After 60",
			full.status, full.body, full.header.Get("Retry-After"))
	}
	if len(acked) == 0 {
		t.Fatal("no write succeeded before the disk was full: the ballast left too little room")
	}
	t.Logf("%d writes acknowledged before the disk was full", len(acked))
	// Another write fails the same way, and is logged no more. A write
	// may still fit meanwhile: once a checkpoint has copied the WAL, the
	// next transaction writes it again from its start, in the file's
	// existing space. So the test writes until the next refusal.
	for i := 0; ; i++ {
		r := s.do("POST", "/v1/calendars/"+cal+"/events", a.key, map[string]any{
			"summary": strings.Repeat("x", 1000) + fmt.Sprint(i), "start": "2026-12-01", "end": "2026-12-02",
		})
		if r.status == 201 && i < 2000 {
			acked = append(acked, r.json(t)["id"].(string))
			continue
		}
		if r.status != 503 || r.errorCode(t) != "storage_full" {
			t.Errorf("write %d after the disk was full = %d %s; want 503 storage_full", i, r.status, r.body)
		}
		break
	}
	if n := strings.Count(s.logs.String(), "requests fail: the database has no room"); n != 1 {
		t.Errorf("log has %d storage_full lines; want 1 (at most once a minute):\n%s", n, s.logs)
	}
	if strings.Contains(s.logs.String(), "request failed") {
		t.Errorf("log has an internal error for a full disk:\n%s", s.logs)
	}
	if r := s.do("GET", "/readyz", "", nil); r.status != 503 || r.errorCode(t) != "storage_full" || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /readyz on the full disk = %d %s; want 503 storage_full with Retry-After", r.status, r.body)
	}
	m := s.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`calhook_database_condition{condition="storage_full"} 1`,
		`calhook_database_condition_errors_total{condition="storage_full"} 2`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Reads still work.
	s.must(200, "GET", "/v1/calendars/"+cal, a.key, nil)

	// Free the space: writes resume, and nothing acknowledged is lost.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	acked = append(acked, s.newEvent(a, cal, map[string]any{"summary": "after", "start": "2026-12-03", "end": "2026-12-04"})["id"].(string))
	for _, id := range acked {
		s.must(200, "GET", "/v1/calendars/"+cal+"/events/"+id, a.key, nil)
	}
	check, err := sql.Open("sqlite", filepath.Join(dir, "calhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var ok string
	if err := check.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check after the full disk = %q, %v; want ok", ok, err)
	}
}

// fillDisk writes path until the filesystem of dir has about free bytes
// left.
func fillDisk(t *testing.T, dir, path string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		t.Fatalf("only %d bytes free on %s", avail, dir)
	}
	if err := os.WriteFile(path, make([]byte, avail-free), 0o600); err != nil {
		t.Fatalf("write the ballast: %v", err)
	}
}

// TestDatabaseOutageAnswers503 cuts the connections between calhook and
// PostgreSQL, as a restart of the server does, and refuses new ones for a
// while: requests meanwhile answer 503 database_unavailable with
// Retry-After, never 500, /readyz says so, and once the database is back
// requests succeed again and every acknowledged write is there. The cut
// is a TCP proxy of the test's own, so the shared server is not touched.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	if os.Getenv("CALHOOK_TEST_BACKEND") != "postgres" {
		t.Skip("runs with CALHOOK_TEST_BACKEND=postgres (scripts/test.sh does)")
	}
	schemaURL := storetest.PostgresSchema(t, storetest.PostgresURL(t))
	u, err := url.Parse(schemaURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.addr
	db, err := postgres.Open(context.Background(), u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := newServerOn(t, db, adminToken, nil)
	a := s.newAccount("Outage")
	cal := s.newCalendar(a, "Cal", "UTC")
	var acked []string
	write := func(i int) response {
		return s.do("POST", "/v1/calendars/"+cal+"/events", a.key, map[string]any{
			"summary": fmt.Sprint("booking ", i), "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z",
		})
	}
	for i := range 5 {
		r := write(i)
		if r.status != 201 {
			t.Fatalf("write before the outage = %d %s", r.status, r.body)
		}
		acked = append(acked, r.json(t)["id"].(string))
	}

	proxy.cut(true)
	for i := range 5 {
		r := write(100 + i)
		if r.status != 503 || r.errorCode(t) != "database_unavailable" || r.header.Get("Retry-After") != "5" {
			t.Fatalf("write %d during the outage = %d %s (Retry-After %q); want 503 database_unavailable, Retry-After 5",
				i, r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	if r := s.do("GET", "/v1/calendars/"+cal, a.key, nil); r.status != 503 || r.errorCode(t) != "database_unavailable" {
		t.Errorf("read during the outage = %d %s; want 503 database_unavailable", r.status, r.body)
	}
	if r := s.do("GET", "/readyz", "", nil); r.status != 503 || r.errorCode(t) != "database_unavailable" {
		t.Errorf("GET /readyz during the outage = %d %s; want 503 database_unavailable", r.status, r.body)
	}
	if strings.Contains(s.logs.String(), "request failed") {
		t.Errorf("log has an internal error for the outage:\n%s", s.logs)
	}

	proxy.cut(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := write(200)
		if r.status == 201 {
			acked = append(acked, r.json(t)["id"].(string))
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("write after the outage = %d %s; want 201 (503 while the pool reconnects)", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range acked {
		s.must(200, "GET", "/v1/calendars/"+cal+"/events/"+id, a.key, nil)
	}
}

// cutProxy forwards TCP connections to a server until cut: then it closes
// every connection and refuses new ones, as a server that restarts does.
type cutProxy struct {
	addr   string
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close(); c.Close() }()
	io.Copy(c, up)
	c.Close()
	up.Close()
}

// cut takes the server down (closing every connection) or back up.
func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}
