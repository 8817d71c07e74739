package bench

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calhook/calhook/webhook"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		sorted []float64
		p      float64
		want   float64
	}{
		{nil, 50, 0},
		{[]float64{7}, 50, 7},
		{[]float64{7}, 99, 7},
		{[]float64{1, 2}, 50, 1},
		{[]float64{1, 2, 3}, 50, 2},
		{[]float64{1, 2, 3, 4}, 50, 2},
		{[]float64{1, 2, 3, 4}, 75, 3},
		{[]float64{1, 2, 3, 4}, 100, 4},
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.5, 100},
		{hundred, 100, 100},
		{hundred, 0.1, 1},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %v; want %v", len(tt.sorted), tt.p, got, tt.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	// A real line, with a command name holding a space and a ')'.
	line := "4242 (calhook (x) y) S 1 4242 4242 0 -1 4194560 1364 0 0 0 250 75 0 0 20 0 9 0 12345 1000 200 18446744073709551615\n"
	got, err := parseProcStat(line)
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("parseProcStat() = %v, %v; want 3.25s (325 ticks)", got, err)
	}
	for _, bad := range []string{"", "4242 calhook S 1", "1 (a) S 1 2 3"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) succeeded; want an error", bad)
		}
	}
}

func TestWarmupValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", -1},
		{"0s", -1},
		{"2s", 2 * time.Second},
	}
	for _, tt := range tests {
		var v warmupValue
		if err := v.Set(tt.in); err != nil || time.Duration(v) != tt.want {
			t.Errorf("Set(%q) = %v, %v; want %v", tt.in, time.Duration(v), err, tt.want)
		}
	}
	if v := warmupValue(-1); v.String() != "0s" {
		t.Errorf("String() of none = %q; want 0s", v.String())
	}
}

// signed returns a POST of body to url signed with secret as message id.
func signed(t *testing.T, url, id string, secret webhook.Secret, body string) *http.Request {
	t.Helper()
	h, err := webhook.Signer{Secrets: []webhook.Secret{secret}}.Sign(id, time.Now(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, h)
	return req
}

func TestHookReceiver(t *testing.T) {
	t.Parallel()
	rv, err := newHookReceiver(1)
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	if !strings.HasPrefix(rv.URL, "http://127.0.0.1:") {
		t.Errorf("receiver URL %q; want one on 127.0.0.1", rv.URL)
	}
	secret := webhook.MustParseSecret("whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw=")
	other := webhook.MustParseSecret("whsec_aoOKTG+P3gG3z34O59bSdtfkOBX5Lij4tdQi+3qq5Qg=")
	rv.reset(true)
	rv.addEndpoint("/hooks/0", secret)

	body := func(uid string) string { return `{"webhookId":"x","data":{"uid":"` + uid + `"}}` }
	send := func(req *http.Request, want int) {
		t.Helper()
		resp, err := freshClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: status %d; want %d", req.Method, req.URL.Path, resp.StatusCode, want)
		}
	}
	before := time.Now()
	send(signed(t, rv.URL+"/hooks/0", "msg_1", secret, body("a")), http.StatusNoContent)
	send(signed(t, rv.URL+"/hooks/0", "msg_1", secret, body("a")), http.StatusNoContent) // a retry
	send(signed(t, rv.URL+"/hooks/0", "msg_2", other, body("b")), http.StatusNoContent)  // forged
	send(signed(t, rv.URL+"/hooks/9", "msg_3", secret, body("c")), http.StatusNotFound)  // no such endpoint
	send(signed(t, rv.URL+"/hooks/0", "msg_4", secret, `not json`), http.StatusNoContent)

	if err := rv.waitFor(t.Context(), 3, time.Second, nil); err != nil {
		t.Fatalf("waitFor(3) = %v", err)
	}
	st, last, problem := rv.stats()
	want := receiverStats{Requests: 4, Distinct: 3, Duplicates: 1, Verified: 3, BadSignature: 1, Unexpected: 1, BadBody: 1}
	if st != want {
		t.Errorf("stats = %+v; want %+v", st, want)
	}
	if st.errors() != 3 {
		t.Errorf("errors() = %d; want 3", st.errors())
	}
	if last.Before(before) || problem == "" {
		t.Errorf("last arrival %v (sent after %v), first problem %q; want a later arrival and a problem", last, before, problem)
	}
	if at, ok := rv.arrival("a"); !ok || at.Before(before) {
		t.Errorf("arrival(a) = %v, %v; want a time after the send", at, ok)
	}
	if _, ok := rv.arrival("c"); ok {
		t.Error("arrival(c) found a webhook sent to no endpoint")
	}

	err = rv.waitFor(t.Context(), 10, 50*time.Millisecond, nil)
	if !errors.Is(err, errStalled) {
		t.Errorf("waitFor(10) = %v; want errStalled", err)
	}

	// After a warm-up: fresh counts, the same endpoints, and the ids seen
	// are still known.
	rv.restartCounts()
	if st, last, problem := rv.stats(); st != (receiverStats{}) || !last.IsZero() || problem != "" {
		t.Errorf("after restartCounts: stats %+v, last %v, problem %q; want none", st, last, problem)
	}
	if _, ok := rv.arrival("a"); ok {
		t.Error("arrival(a) still known after restartCounts")
	}
	send(signed(t, rv.URL+"/hooks/0", "msg_1", secret, body("a")), http.StatusNoContent) // a late retry
	send(signed(t, rv.URL+"/hooks/0", "msg_6", secret, body("e")), http.StatusNoContent)
	if st, _, _ := rv.stats(); st != (receiverStats{Requests: 2, Distinct: 1, Duplicates: 1, Verified: 1}) {
		t.Errorf("after restartCounts and two webhooks, one a repeat: stats %+v", st)
	}

	rv.reset(false)
	if st, _, problem := rv.stats(); st != (receiverStats{}) || problem != "" {
		t.Errorf("after reset: stats %+v, problem %q; want none", st, problem)
	}
	send(signed(t, rv.URL+"/hooks/0", "msg_5", secret, body("d")), http.StatusNotFound) // endpoints were reset
}

func TestHookReceiverSamplesSignatures(t *testing.T) {
	t.Parallel()
	rv, err := newHookReceiver(10)
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	secret := webhook.MustParseSecret("whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw=")
	rv.addEndpoint("/h", secret)
	for i := range 25 {
		req := signed(t, rv.URL+"/h", "msg_"+strings.Repeat("x", i+1), secret, "{}")
		resp, err := freshClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The 1st, 11th and 21st.
	if st, _, _ := rv.stats(); st.Verified != 3 || st.Distinct != 25 || st.BadSignature != 0 {
		t.Errorf("stats = %+v; want 25 distinct, 3 verified, none bad", st)
	}
}

func TestPostAll(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	var mu sync.Mutex
	var got [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "headers", http.StatusUnauthorized)
			return
		}
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		mu.Lock()
		got = append(got, b.Bytes())
		mu.Unlock()
		if n.Add(1)%10 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	bodies := make([][]byte, 50)
	for i := range bodies {
		bodies[i] = []byte(`{"n":1}`)
	}
	st := postAll(t.Context(), srv.Client(), []string{srv.URL}, "k", bodies, 4)
	if st.OK != 45 || st.Failed != 5 || st.Detail != "status 500 ×5" {
		t.Errorf("postAll() = ok %d, failed %d (%s); want 45, 5 (status 500 ×5)", st.OK, st.Failed, st.Detail)
	}
	if len(got) != 50 || !st.Last.After(st.First) || st.RPS() <= 0 {
		t.Errorf("server got %d bodies, first %v, last %v; want 50 and a positive rate", len(got), st.First, st.Last)
	}
}

// TestWebhookScenariosEndToEnd runs each webhook scenario once with tiny
// numbers against the real calhook. It does not run in parallel: it
// measures, and other tests' load would only add noise.
func TestWebhookScenariosEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs calhook; skipped with -short")
	}
	bin := buildTestCalhook(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	tests := []struct {
		scenario string
		cfg      Config
		metrics  []string
	}{
		{"webhooks-throughput", Config{Changes: 200, Writers: 4, FanoutSubscriptions: 20, FanoutChanges: 5},
			[]string{"api_write_rps", "delivered_rps", "fanout_delivered_rps"}},
		{"webhooks-latency", Config{Changes: 40, Rate: 100, Warmup: -1}, []string{"latency_p50_ms", "latency_p99_ms"}},
		{"webhooks-baseline", Config{Changes: 300, DeliveryWorkers: 8}, []string{"baseline_rps"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Bin, cfg.Runs, cfg.Logger = bin, 1, logger
			got := runScenario(t, tt.scenario, cfg)
			if m := got["machine"]; m.Info["nproc"] == nil {
				t.Errorf("machine = %+v; want nproc", m)
			}
			checkMeasured(t, got, tt.metrics)
			if len(got) != len(tt.metrics)+1 {
				t.Errorf("%d results; want the machine line and %v", len(got), tt.metrics)
			}
		})
	}
}

// freshClient returns a client that shares no connections: closing a
// test server drops the idle connections of http.DefaultClient, and with
// them a request of a parallel test that was about to reuse one.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
