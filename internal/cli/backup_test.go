package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // PRAGMA integrity_check on the restored file

	"github.com/calhook/calhook/internal/cli"
)

// serveUntil runs `calhook serve` until the returned stop is called (or
// the test ends) and returns its base URL.
func serveUntil(t *testing.T, vars map[string]string, args ...string) (base string, stop func()) {
	t.Helper()
	e, _, stderr := env(vars, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	return serveEnv(t, e, stderr)
}

// serveEnv is serveUntil with the Env made.
func serveEnv(t *testing.T, e cli.Env, stderr *lockedBuffer) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	e.Ready = func(addr string) { ready <- addr }
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, e) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited with %d: %s", code, stderr)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case code := <-done:
		t.Fatalf("serve exited early with %d: %s", code, stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not become ready: %s", stderr)
	}
	return "", stop
}

// apiCall sends one API request and decodes a 2xx answer into out.
func apiCall(base, method, path, key, body string, out any) (int, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := freshClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

// webhookSink is a receiver that fails every delivery until accept is
// set, then records the webhookId and eventId of each.
type webhookSink struct {
	accept atomic.Bool
	mu     sync.Mutex
	ids    map[string]int    // webhookId → deliveries
	events map[string]string // eventId → webhookId
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.accept.Load() {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	var msg struct {
		WebhookID string `json:"webhookId"`
		Data      struct {
			EventID string `json:"eventId"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.ids[msg.WebhookID]++
	s.events[msg.Data.EventID] = msg.WebhookID
	s.mu.Unlock()
}

// TestBackupRestoreResumesDeliveries backs a live database up during a
// stream of API writes whose webhooks cannot be delivered yet, restores
// it into a new file, and serves from that: every write acknowledged
// before the backup began is there and is delivered, once.
func TestBackupRestoreResumesDeliveries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	live, backup, restored := filepath.Join(dir, "live.db"), filepath.Join(dir, "backup.db"), filepath.Join(dir, "restored.db")
	sink := &webhookSink{ids: map[string]int{}, events: map[string]string{}}
	receiver := httptest.NewServer(sink)
	t.Cleanup(receiver.Close)
	vars := map[string]string{"CALHOOK_ADMIN_TOKEN": "adm-0123456789abcdef0123456789abcdef"}
	// Retries every second, for long enough to outlast the test.
	args := []string{"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32", "--log-level", "error",
		"--retry-schedule", strings.TrimSuffix(strings.Repeat("1s,", 60), ",")}

	base, stop := serveUntil(t, vars, append([]string{"--db", live}, args...)...)
	var acct struct{ APIKey string }
	var cal struct{ ID string }
	if _, err := apiCall(base, "POST", "/v1/accounts", "adm-0123456789abcdef0123456789abcdef", `{"name":"Acme"}`, &acct); err != nil {
		t.Fatal(err)
	}
	if _, err := apiCall(base, "POST", "/v1/calendars", acct.APIKey, `{"name":"Cottage"}`, &cal); err != nil {
		t.Fatal(err)
	}
	if _, err := apiCall(base, "POST", "/v1/subscriptions", acct.APIKey,
		fmt.Sprintf(`{"webhookUrl":%q,"eventTypes":["calendar.event.created"]}`, receiver.URL), nil); err != nil {
		t.Fatal(err)
	}

	// A writer creates events one after another; acked holds the ids of
	// those answered 201.
	var (
		mu    sync.Mutex
		acked []string
	)
	writing, stopWriting, wrote := make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				wrote <- nil
				return
			default:
			}
			var ev struct{ ID string }
			body := fmt.Sprintf(`{"summary":"Booking %d","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, i)
			if _, err := apiCall(base, "POST", "/v1/calendars/"+cal.ID+"/events", acct.APIKey, body, &ev); err != nil {
				wrote <- err
				return
			}
			mu.Lock()
			acked = append(acked, ev.ID)
			n := len(acked)
			mu.Unlock()
			if n == 50 {
				writing <- struct{}{}
			}
		}
	}()
	<-writing
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	e, stdout, stderr := env(nil, "backup", "--db", live, "--to", backup)
	if code := cli.Main(context.Background(), e); code != 0 {
		t.Fatalf("backup = %d: %s", code, stderr)
	}
	close(stopWriting)
	if err := <-wrote; err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("%s; %d events acknowledged before the backup, %d in all", strings.TrimSpace(stdout.String()), len(before), len(acked))

	// The live database is open: restoring over it is refused.
	e, _, stderr = env(nil, "restore", "--db", live, "--from", backup)
	if code := cli.Main(context.Background(), e); code != 1 || !strings.Contains(stderr.String(), "in use") {
		t.Errorf("restore over the running server's database = %d, %q; want 1 and \"in use\"", code, stderr)
	}
	stop()

	e, _, stderr = env(map[string]string{"CALHOOK_DB": restored}, "restore", "--from", backup)
	if code := cli.Main(context.Background(), e); code != 0 {
		t.Fatalf("restore = %d: %s", code, stderr)
	}
	db, err := sql.Open("sqlite", restored)
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the restored database = %q, %v; want ok", check, err)
	}
	db.Close()

	// Serve from the restored database with the receiver back up.
	sink.accept.Store(true)
	base, _ = serveUntil(t, vars, append([]string{"--db", restored}, args...)...)
	for _, id := range before {
		if _, err := apiCall(base, "GET", "/v1/calendars/"+cal.ID+"/events/"+id, acct.APIKey, "", nil); err != nil {
			t.Errorf("event %s, acknowledged before the backup: %v", id, err)
		}
	}
	// A message claimed at the moment of the backup waits out its lease
	// (webhook timeout + 30 s) before it is sent again.
	deadline := time.Now().Add(90 * time.Second)
	for {
		sink.mu.Lock()
		var missing []string
		for _, id := range before {
			if _, ok := sink.events[id]; !ok {
				missing = append(missing, id)
			}
		}
		sink.mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events acknowledged before the backup were never delivered, e.g. %s", len(missing), len(before), missing[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let any duplicate arrive: two retry periods.
	time.Sleep(2500 * time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for id, n := range sink.ids {
		if n != 1 {
			t.Errorf("webhook %s delivered %d times; want once", id, n)
		}
	}
	if len(sink.ids) != len(sink.events) {
		t.Errorf("%d webhook ids for %d events; want one each", len(sink.ids), len(sink.events))
	}
	t.Logf("restored server delivered %d webhooks", len(sink.ids))
}
