package bench

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHookIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want int
		ok   bool
	}{
		{"/h/0", 0, true},
		{"/h/9", 9, true},
		{"/h/10", 0, false}, // n is 10
		{"/h/-1", 0, false},
		{"/h/01", 0, false},
		{"/h/+1", 0, false},
		{"/h/", 0, false},
		{"/h/1/x", 0, false},
		{"/x/1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := hookIndex(tt.path, 10)
		if got != tt.want || ok != tt.ok {
			t.Errorf("hookIndex(%q, 10) = %d, %v; want %d, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	for _, i := range []int{0, 7, 9999} {
		if got, ok := hookIndex(hookPath(i), 10000); !ok || got != i {
			t.Errorf("hookIndex(hookPath(%d)) = %d, %v", i, got, ok)
		}
	}
}

func TestCheckPingHeaders(t *testing.T) {
	t.Parallel()
	const feed = "http://127.0.0.1:1/feeds/acc_1/cal_1.ics"
	h := func(ua, f string) http.Header {
		hdr := http.Header{}
		if ua != "" {
			hdr.Set("User-Agent", ua)
		}
		if f != "" {
			hdr.Set(hookFeedHeader, f)
		}
		return hdr
	}
	tests := []struct {
		hdr  http.Header
		want string // substring of the problem; "" for none
	}{
		{h("calhook/1.2.3", feed), ""},
		{h("calhook/dev", feed), ""},
		{h("Go-http-client/1.1", feed), "User-Agent"},
		{h("", feed), "User-Agent"},
		{h("calhook/1", ""), hookFeedHeader},
		{h("calhook/1", feed+"?token=abc"), "token"},
		{h("calhook/1", "http://127.0.0.1:1/feeds/acc_1.ics"), "want"},
	}
	for _, tt := range tests {
		got := checkPingHeaders(tt.hdr, feed)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkPingHeaders(%v) = %q; want a problem containing %q", tt.hdr, got, tt.want)
		}
	}
}

func TestFeedAnswerProblem(t *testing.T) {
	t.Parallel()
	active := http.Header{"X-Icalhooks-Status": {"active"}}
	rejected := http.Header{"X-Icalhooks-Status": {"rejected; reason=100 hooks per feed"}}
	tests := []struct {
		status   int
		n        int64
		hdr      http.Header
		withHook bool
		want     string
	}{
		{200, 500, active, true, ""},
		{200, 500, http.Header{}, false, ""},
		{200, 7, active, true, "body not 500 bytes"},
		{304, 0, active, true, "status 304"},
		{200, 500, rejected, true, `X-ICALHOOKS-STATUS "rejected; reason=100 hooks per feed"`},
		{200, 500, http.Header{}, true, `X-ICALHOOKS-STATUS ""`},
		{200, 500, active, false, `X-ICALHOOKS-STATUS "active" without X-ICALHOOKS-URL`},
	}
	for _, tt := range tests {
		if got := feedAnswerProblem(tt.status, tt.n, tt.hdr, tt.withHook, 500); got != tt.want {
			t.Errorf("feedAnswerProblem(%d, %d, %v, %v) = %q; want %q", tt.status, tt.n, tt.hdr, tt.withHook, got, tt.want)
		}
	}
	if got := feedAnswerProblem(200, 7, active, true, 0); got != "" {
		t.Errorf("feedAnswerProblem with no length to check = %q; want none", got)
	}
}

func TestWrkHookArgs(t *testing.T) {
	t.Parallel()
	l := hookLoad{target: target{URL: "http://x/f.ics?token=a"}, HookURL: "http://127.0.0.1:9/h/0"}
	got := wrkHookArgs(l, 4, 2*time.Second)
	want := []string{"-t", got[1], "-c", "4", "-d", "2s", "--timeout", "10s",
		"-H", "X-ICALHOOKS-URL: http://127.0.0.1:9/h/0", "http://x/f.ics?token=a"}
	if !slices.Equal(got, want) {
		t.Errorf("wrkHookArgs() = %q; want %q", got, want)
	}
	l.HookURL = ""
	if got := wrkHookArgs(l, 4, 2*time.Second); !slices.Equal(got, wrkArgs(l.target, 4, 2*time.Second)) {
		t.Errorf("wrkHookArgs() without a hook = %q; want wrkArgs'", got)
	}
}

func TestPingReceiver(t *testing.T) {
	t.Parallel()
	rcv, err := newPingReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	const feed = "http://127.0.0.1:1/feeds/a/c.ics"
	rcv.reset(3, feed)
	send := func(method, path, ua, feedHdr string) int {
		t.Helper()
		req, err := http.NewRequest(method, rcv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", ua)
		req.Header.Set(hookFeedHeader, feedHdr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t0 := time.Now()
	if err := rcv.wait(t.Context(), 10*time.Millisecond, nil); err == nil {
		t.Error("wait() before any ping = nil; want a timeout")
	}
	if got := send(http.MethodHead, "/h/0", "calhook/1", feed); got != 200 {
		t.Errorf("HEAD /h/0 = %d; want 200", got)
	}
	send(http.MethodHead, "/h/1", "curl/8", feed)      // bad User-Agent
	send(http.MethodHead, "/h/0", "calhook/1", feed)   // second HEAD
	send(http.MethodGet, "/h/2", "calhook/1", feed)    // not a HEAD
	send(http.MethodHead, "/h/3", "calhook/1", feed)   // no such hook
	send(http.MethodHead, "/other", "calhook/1", feed) // no hook path
	if _, early, missing := rcv.latencies(t0); early != 0 || missing != 1 {
		t.Errorf("latencies() early %d, missing %d; want 0, 1", early, missing)
	}
	send(http.MethodHead, "/h/2", "calhook/1", feed)
	if err := rcv.wait(t.Context(), time.Second, nil); err != nil {
		t.Errorf("wait() after every hook's ping = %v", err)
	}
	st, first := rcv.stats()
	want := pingStats{Requests: 7, Distinct: 3, Duplicates: 1, Unexpected: 3, BadHeaders: 1}
	if st != want || st.errors() != 5 {
		t.Errorf("stats() = %+v (errors %d); want %+v (errors 5)", st, st.errors(), want)
	}
	if !strings.Contains(first, "User-Agent") {
		t.Errorf("first problem %q; want the bad User-Agent", first)
	}
	lat, early, missing := rcv.latencies(t0)
	if len(lat) != 3 || early != 0 || missing != 0 || !slices.IsSorted(lat) || lat[0] < 0 {
		t.Errorf("latencies() = %v, %d, %d; want 3 sorted non-negative values", lat, early, missing)
	}
	if _, early, _ := rcv.latencies(time.Now()); early != 3 {
		t.Errorf("latencies(now) early = %d; want 3", early)
	}

	rcv.reset(1, feed)
	if st, first := rcv.stats(); st != (pingStats{}) || first != "" {
		t.Errorf("after reset stats() = %+v, %q; want nothing", st, first)
	}
}

// newHookFeedServer serves a feed that answers X-ICALHOOKS-URL with
// X-ICALHOOKS-STATUS: active, or rejected for URLs containing reject, and
// records the hook URLs.
func newHookFeedServer(t *testing.T, body string) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var hooks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get(hookURLHeader); u != "" {
			mu.Lock()
			hooks = append(hooks, u)
			mu.Unlock()
			status := hookStatusActive
			if strings.Contains(u, "reject") {
				status = "rejected; reason=cap"
			}
			w.Header().Set(hookStatusHeader, status)
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hooks)
	}
}

func TestRegisterHooks(t *testing.T) {
	t.Parallel()
	srv, hooks := newHookFeedServer(t, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
	d, err := registerHooks(t.Context(), srv.URL+"/f.ics", "http://127.0.0.1:9", 50, 4)
	if err != nil || d <= 0 {
		t.Fatalf("registerHooks() = %v, %v", d, err)
	}
	got := hooks()
	if len(got) != 50 || got[0] != "http://127.0.0.1:9/h/0" {
		t.Fatalf("registered %d hooks, first %q; want 50, /h/0 first", len(got), got[0])
	}
	slices.Sort(got)
	if got = slices.Compact(got); len(got) != 50 {
		t.Errorf("%d distinct hook URLs; want 50", len(got))
	}
	_, err = registerHooks(t.Context(), srv.URL+"/f.ics", "http://127.0.0.1:9/reject", 5, 2)
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("registerHooks() with rejections = %v; want an error naming the status", err)
	}
}

func TestGoHookLoad(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("BEGIN:VEVENT\r\n", 50)
	srv, _ := newHookFeedServer(t, body)
	for _, tt := range []struct {
		hook       string
		wantErrors bool
	}{
		{"http://127.0.0.1:9/h/0", false},
		{"", false},
		{"http://127.0.0.1:9/reject", true},
	} {
		l := hookLoad{target: target{Name: "t", URL: srv.URL, Status: 200, BodySize: int64(len(body))}, HookURL: tt.hook}
		st, err := goHookLoad(t.Context(), l, 2, 20*time.Millisecond, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("goHookLoad(%q): %v", tt.hook, err)
		}
		if st.Elapsed < 100*time.Millisecond {
			t.Errorf("goHookLoad(%q) elapsed %v; want at least the duration", tt.hook, st.Elapsed)
		}
		switch {
		case tt.wantErrors && (st.OK != 0 || st.Errors == 0 || !strings.Contains(st.Detail, "rejected")):
			t.Errorf("goHookLoad(%q) = %+v; want only errors naming the status", tt.hook, st)
		case !tt.wantErrors && (st.OK == 0 || st.Errors != 0):
			t.Errorf("goHookLoad(%q) = %+v; want answers and no errors", tt.hook, st)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := goHookLoad(ctx, hookLoad{target: target{URL: srv.URL, Status: 200}}, 1, 0, time.Second); err == nil {
		t.Error("goHookLoad() with a cancelled context = nil; want an error")
	}
}

func TestCountRecorded(t *testing.T) {
	t.Parallel()
	at := time.Now()
	got := countRecorded([]hookInfo{
		{LastPingAt: &at, LastPingStatus: 200},
		{LastPingAt: &at, LastPingStatus: 204, Armed: true},
		{LastPingAt: &at, LastPingStatus: 500},
		{Armed: true},
	})
	if got.recorded != 2 || got.armed != 2 {
		t.Errorf("countRecorded() = %+v; want 2 recorded, 2 armed", got)
	}
}

func TestIcalhooksResults(t *testing.T) {
	t.Parallel()
	cfg := Config{FanoutSubscriptions: 4, Events: 3, Runs: 3}.withDefaults()
	round := func(rps, all, with, without float64) icalhooksRound {
		return icalhooksRound{
			feedBytes: 1234, registerRPS: rps,
			pings:    []float64{all / 4, all / 2, all * 3 / 4, all},
			recorded: 4,
			with:     runStats{OK: int64(with), Elapsed: time.Second},
			without:  runStats{OK: int64(without), Elapsed: time.Second},
		}
	}
	rounds := []icalhooksRound{round(1000, 800, 900, 1000), round(3000, 400, 950, 1000), round(2000, 1200, 800, 1000)}
	rounds[1].rcv.Duplicates = 1
	rounds[2].missing = 2
	rounds[2].rewritten = true
	got := map[string]Result{}
	for _, r := range icalhooksResults(cfg, goLoadGen{}, rounds) {
		if r.Scenario != icalhooksName {
			t.Errorf("%s: scenario %q", r.Metric, r.Scenario)
		}
		got[r.Metric] = r
	}
	check := func(metric string, value float64, runs []float64) Result {
		t.Helper()
		r, ok := got[metric]
		if !ok {
			t.Fatalf("no %s", metric)
		}
		if r.Value != value || !slices.Equal(r.Runs, runs) {
			t.Errorf("%s = %v %v; want %v %v", metric, r.Value, r.Runs, value, runs)
		}
		return r
	}
	check("register_rps", 2000, []float64{1000, 3000, 2000})
	all := check("pings_all_received_ms", 800, []float64{800, 400, 1200})
	if all.Target == nil || *all.Target != pingsTargetMS || all.Errors == nil || *all.Errors != 3 {
		t.Errorf("pings_all_received_ms target %v errors %v; want %v and 3", all.Target, all.Errors, pingsTargetMS)
	}
	check("pings_p50_ms", 400, []float64{400, 200, 600})
	check("pings_p99_ms", 800, []float64{800, 400, 1200})
	check("feed_rps_with_header", 900, []float64{900, 950, 800})
	check("feed_rps_without_header", 1000, []float64{1000, 1000, 1000})
	oh := check("header_overhead", 0.1, []float64{0.1, 0.05, 0.2})
	if oh.Target == nil || *oh.Target != headerOverheadTarget || oh.Info["hook_rewritten_rounds"] != 1 {
		t.Errorf("header_overhead = %+v; want target %v and 1 rewritten round", oh, headerOverheadTarget)
	}
	if m := got["machine"]; m.Info["hooks"] != 4 || m.Info["loadgen"] != "go" || m.Info["feed_bytes"] != 1234 {
		t.Errorf("machine = %+v", m)
	}
	if len(got) != 8 {
		t.Errorf("%d results; want 8", len(got))
	}
}

// TestIcalhooksEndToEnd runs the scenario once with 200 hooks against the
// real calhook. It does not run in parallel: it measures, and other
// tests' load would only add noise.
func TestIcalhooksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs calhook; skipped with -short")
	}
	bin := buildTestCalhook(t)
	loadgens := []string{LoadGenGo}
	if _, err := exec.LookPath("wrk"); err == nil {
		loadgens = append(loadgens, LoadGenWrk)
	}
	for _, lg := range loadgens {
		t.Run(lg, func(t *testing.T) {
			got := runScenario(t, icalhooksName, Config{
				Bin: bin, FanoutSubscriptions: 200, Events: 3, Duration: time.Second, Warmup: -1,
				Runs: 1, Connections: 4, LoadGen: lg, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
			})
			checkMeasured(t, got, []string{"register_rps", "pings_all_received_ms", "pings_p50_ms", "pings_p99_ms",
				"feed_rps_with_header", "feed_rps_without_header"})
			info := got["pings_all_received_ms"].Info
			if rec, _ := info["recorded"].([]int); len(rec) != 1 || rec[0] != 200 {
				t.Errorf("recorded = %v; want calhook to have recorded 200 pings", info["recorded"])
			}
			if oh := got["header_overhead"]; oh.Info["hook_rewritten_rounds"] != 0 {
				t.Errorf("header_overhead = %+v; want no database write for the armed hook", oh)
			}
			if m := got["machine"]; m.Info["loadgen"] != lg || m.Info["hooks"] != 200 {
				t.Errorf("machine = %+v", m)
			}
		})
	}
}
