package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape returns the series of GET /metrics, by their full name with
// labels as Prometheus' text format writes them.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := freshClient().Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetrics scrapes until every series in want has its value (or, for
// a want below zero, at least its absolute value), and fails with the
// last values when that takes longer than 20 s.
func waitMetrics(t *testing.T, base string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := scrape(t, base)
		var wrong []string
		for k, w := range want {
			v, ok := got[k]
			if !ok || (w >= 0 && v != w) || (w < 0 && v < -w) {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present %v); want %v", k, v, ok, w))
			}
		}
		if len(wrong) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after 20 s:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// atLeast marks a want of waitMetrics as a lower bound.
func atLeast(v float64) float64 { return -v }

// TestMetricsAnswerQuestions drives a real server through webhooks that
// succeed, fail and are gone, an iCal Hooks ping, an import polled to a
// 304 and feed reads, and checks that the operator's figures on /metrics
// move with them.
func TestMetricsAnswerQuestions(t *testing.T) {
	t.Parallel()
	// Receivers: one answers 204, one 500 (retried in a minute), one 410.
	var traced atomic.Bool // a traceparent arrived: tracing is off, so none may
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			traced.Store(true)
		}
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/gone":
			w.WriteHeader(http.StatusGone)
		default: // iCal Hooks pings
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer receiver.Close()
	const ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" +
		"BEGIN:VEVENT\r\nUID:a@up\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:A\r\nEND:VEVENT\r\n" +
		"BEGIN:VEVENT\r\nUID:b@up\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\nSUMMARY:B\r\nEND:VEVENT\r\n" +
		"END:VCALENDAR\r\n"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		io.WriteString(w, ics)
	}))
	defer upstream.Close()

	s := newHookServer(t, "--allow-http-webhooks", "--allow-http-feeds")
	before := waitMetrics(t, s.base, map[string]float64{
		`calhook_store_stats_up`:                                            1,
		`calhook_delivery_queue_messages{state="due"}`:                      0,
		`calhook_delivery_oldest_undelivered_age_seconds`:                   0,
		`calhook_fanout_lag_seconds`:                                        0,
		`calhook_subscriptions_disabled`:                                    0,
		`calhook_icalhooks_armed`:                                           0,
		`calhook_imports_overdue`:                                           0,
		`calhook_import_polls_total{outcome="not_modified"}`:                0,
		`calhook_import_events_changed_total{change="created"}`:             0,
		`calhook_db_pool_connections{pool="write",state="max"}`:             1,
		`calhook_database_condition{condition="storage_full"}`:              0,
		`calhook_database_condition_errors_total{condition="storage_full"}`: 0,
	})
	if _, ok := before[`calhook_webhook_attempts_total{class="2xx",outcome="delivered"}`]; !ok {
		t.Errorf("/metrics lacks calhook_webhook_attempts_total{class=\"2xx\",outcome=\"delivered\"} before any attempt")
	}

	subs := map[string]string{}
	for _, path := range []string{"/ok", "/fail", "/gone"} {
		var sub struct{ WebhookSubscriptionID string }
		s.call("POST", "/v1/subscriptions", s.key, `{"webhookUrl":"`+receiver.URL+path+`"}`, 201, &sub)
		subs[path] = sub.WebhookSubscriptionID
	}
	// A feed read with a hook arms it; the next change pings it.
	if resp := s.fetch(s.feedPath(0), receiver.URL+"/ping"); resp.StatusCode != 200 {
		t.Fatalf("feed GET with X-ICALHOOKS-URL = %d; want 200", resp.StatusCode)
	}
	waitMetrics(t, s.base, map[string]float64{`calhook_icalhooks_armed`: 1})
	s.event(0)
	waitMetrics(t, s.base, map[string]float64{
		`calhook_webhook_attempts_total{class="2xx",outcome="delivered"}`:     1,
		`calhook_webhook_attempts_total{class="5xx",outcome="retry"}`:         1,
		`calhook_webhook_attempts_total{class="4xx",outcome="undeliverable"}`: 1,
		`calhook_icalhooks_pings_total{class="2xx",outcome="delivered"}`:      1,
		`calhook_delivery_latency_seconds_count{target="webhook"}`:            1,
		`calhook_delivery_latency_seconds_count{target="ping"}`:               1,
		`calhook_icalhooks_armed`:                                             0,
		// The 500 waits a minute for its retry; the 410 disabled its
		// subscription.
		`calhook_delivery_queue_messages{state="retrying"}`:      1,
		`calhook_delivery_queue_messages{state="undeliverable"}`: 1,
		`calhook_delivery_queue_messages{state="in_flight"}`:     0,
		`calhook_subscriptions_disabled`:                         1,
		`calhook_delivery_oldest_undelivered_age_seconds`:        atLeast(0.000001),
	})
	s.event(1)
	waitMetrics(t, s.base, map[string]float64{
		`calhook_webhook_attempts_total{class="2xx",outcome="delivered"}`:     2,
		`calhook_webhook_attempts_total{class="5xx",outcome="retry"}`:         2,
		`calhook_webhook_attempts_total{class="4xx",outcome="undeliverable"}`: 1,
		`calhook_delivery_latency_seconds_count{target="webhook"}`:            2,
		`calhook_delivery_queue_messages{state="retrying"}`:                   2,
	})
	// Disabling the failing subscription parks its messages.
	s.call("PATCH", "/v1/subscriptions/"+subs["/fail"], s.key, `{"disabled":true}`, 200, nil)
	waitMetrics(t, s.base, map[string]float64{
		`calhook_delivery_queue_messages{state="retrying"}`: 0,
		`calhook_delivery_queue_messages{state="parked"}`:   2,
		`calhook_subscriptions_disabled`:                    2,
		`calhook_delivery_oldest_undelivered_age_seconds`:   0,
	})

	if traced.Load() {
		t.Error("a delivery carried a traceparent with tracing off")
	}

	// Feed reads: a 200, then a 304 with its ETag.
	resp := s.fetch(s.feedPath(0), "")
	if resp = s.fetch(s.feedPath(0), "", "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != 304 {
		t.Fatalf("feed GET with its ETag = %d; want 304", resp.StatusCode)
	}
	feedRoute := `route="/feeds/{accountId}/{file}"`
	waitMetrics(t, s.base, map[string]float64{
		`calhook_http_requests_total{code="200",method="GET",` + feedRoute + `}`: 2,
		`calhook_http_requests_total{code="304",method="GET",` + feedRoute + `}`: 1,
	})

	// An import: the first poll fetches 2 events, a later one gets a 304.
	var cal struct{ ID string }
	s.call("POST", "/v1/calendars", s.key, `{"name":"Imported","source":{"url":"`+upstream.URL+`/cal.ics"}}`, 201, &cal)
	s.call("POST", "/v1/calendars/"+cal.ID+"/sync?wait=true", s.key, "", 200, nil)
	s.call("POST", "/v1/calendars/"+cal.ID+"/sync?wait=true", s.key, "", 200, nil)
	waitMetrics(t, s.base, map[string]float64{
		`calhook_import_polls_total{outcome="changed"}`:         1,
		`calhook_import_polls_total{outcome="not_modified"}`:    atLeast(1),
		`calhook_import_events_changed_total{change="created"}`: 2,
		`calhook_import_parse_seconds_count`:                    1,
	})
}

// TestMonitoringNamesExist checks that every metric the Grafana dashboard
// and the Prometheus rules under deploy/ use is one a running calhook
// exports, so renaming a metric cannot leave them silently empty.
func TestMonitoringNamesExist(t *testing.T) {
	t.Parallel()
	s := newHookServer(t)
	exported := map[string]bool{}
	for series := range scrape(t, s.base) {
		name, _, _ := strings.Cut(series, "{")
		exported[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")] = true
	}
	dash, err := os.ReadFile("../../deploy/grafana/calhook.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("deploy/grafana/calhook.json: %v", err)
	}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
	}
	rules, err := os.ReadFile("../../deploy/prometheus/calhook.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`calhook_[a-z_]+`).FindAllString(string(dash)+string(rules), -1)
	if len(used) < 20 {
		t.Fatalf("found %d metric names in the dashboard and rules; want them all", len(used))
	}
	for _, name := range used {
		base := strings.TrimSuffix(name, "_bucket")
		if !exported[base] {
			t.Errorf("deploy/ uses %s; calhook does not export it", name)
		}
	}
}

// TestMetricsListenApart serves /metrics on an address of its own: there
// it answers (behind the metrics token), the API's address answers 404,
// and the metrics address serves nothing else.
func TestMetricsListenApart(t *testing.T) {
	t.Parallel()
	const token = "metrics-0123456789abcdef"
	e, _, stderr := env(map[string]string{"CALHOOK_METRICS_TOKEN": token},
		"serve", "--addr", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "m.db"))
	metricsAddr := make(chan string, 1)
	e.MetricsReady = func(addr string) { metricsAddr <- addr }
	base, _ := serveEnv(t, e, stderr)
	metrics := "http://" + <-metricsAddr
	if metrics == base {
		t.Fatalf("metrics served on the API's address %s", base)
	}
	get := func(url, bearer string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := freshClient().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tt := range []struct {
		url, bearer string
		want        int
	}{
		{metrics + "/metrics", token, http.StatusOK},
		{metrics + "/metrics", "", http.StatusUnauthorized},
		{metrics + "/metrics", "wrong", http.StatusUnauthorized},
		{base + "/metrics", token, http.StatusNotFound},
		{metrics + "/healthz", "", http.StatusNotFound},
		{metrics + "/v1/calendars", token, http.StatusNotFound},
	} {
		if got, body := get(tt.url, tt.bearer); got != tt.want {
			t.Errorf("GET %s (token %q) = %d; want %d\n%s", tt.url, tt.bearer, got, tt.want, body)
		}
	}
	if _, body := get(metrics+"/metrics", token); !strings.Contains(body, "calhook_") {
		t.Errorf("GET /metrics on the metrics address lacks calhook's series:\n%.500s", body)
	}
	if got, _ := get(base+"/healthz", ""); got != http.StatusOK {
		t.Errorf("GET /healthz on the API = %d; want 200", got)
	}
}
