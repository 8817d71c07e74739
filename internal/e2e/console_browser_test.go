package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which scripts/test.sh installs.
const chromiumPath = "/usr/bin/chromium"

// axePath is axe-core from test/console/package-lock.json; the test
// injects it into each page (calhook never serves it).
const axePath = "../../test/console/node_modules/axe-core/axe.min.js"

// ScreenshotsEnv names a directory the browser test writes its
// screenshots to (make screenshots sets docs/screenshots); without it they
// go to a temporary directory named in the log.
const ScreenshotsEnv = "CALHOOK_SCREENSHOTS"

// requireBrowser returns axe-core's source, or skips the test when
// chromium or axe-core is missing outside CI; in CI (CI=true) a missing
// piece fails the test.
func requireBrowser(t *testing.T) string {
	t.Helper()
	missing := ""
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = chromiumPath + " (apt-get install chromium)"
	}
	axe, err := os.ReadFile(axePath)
	if err != nil && missing == "" {
		missing = "axe-core (npm ci --prefix test/console)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("the browser test needs %s, and CI is set", missing)
		}
		t.Skipf("skipping the browser test: %s is missing (scripts/test.sh installs it; CI=true makes this a failure)", missing)
	}
	return string(axe)
}

// hookReceiver is a loopback webhook endpoint that can be told to fail.
type hookReceiver struct {
	failing atomic.Bool
	got     atomic.Int64
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	rc.got.Add(1)
	if rc.failing.Load() {
		http.Error(w, `<script>alert("hookReceiver")</script> down`, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pageProblems collects console errors, uncaught exceptions and browser
// log errors (CSP violations among them) of a tab.
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *pageProblems) add(s string) {
	p.mu.Lock()
	p.list = append(p.list, s)
	p.mu.Unlock()
}

func (p *pageProblems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.list
	p.list = nil
	return out
}

// listen collects the tab's errors until ctx ends.
func (p *pageProblems) listen(ctx context.Context) {
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// A live stream closed by leaving the page is not a fault.
			if (m.Type == "error" || m.IsException()) && !strings.Contains(m.URL, "/console/live") {
				p.add(m.String())
			}
		}
	}()
}

// axeResult is what axe.run reports that the test checks.
type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	} `json:"violations"`
}

// TestConsoleInBrowser walks the console and the portal in headless
// Chromium against the real binary.
func TestConsoleInBrowser(t *testing.T) {
	axe := requireBrowser(t)
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	rcv := &hookReceiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	// The operator's product, on another loopback origin, frames the portal.
	var portalURL atomic.Value
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := portalURL.Load().(string)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Acme app</title></head><body><h1>Acme settings</h1>
<iframe id="portal" title="Webhooks" src="%s" width="1000" height="900"></iframe></body></html>`, u)
	}))
	defer host.Close()

	admin := randomHex(16)
	srv := startServer(t, filepath.Join(t.TempDir(), "calhook.db"), admin,
		"--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32", "--retry-schedule", "3s,3s,3s,3s,3s",
		"--portal-frame-ancestors", host.URL)
	base := srv.baseURL()
	c := newClient()
	var acc struct {
		ID     string `json:"id"`
		APIKey string `json:"apiKey"`
	}
	c.mustDo(t, "POST", base+"/v1/accounts", admin, map[string]string{"name": "Acme Rentals"}, &acc, http.StatusCreated)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.WindowSize(1280, 900))
	if os.Getuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	problems := &pageProblems{}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	problems.listen(ctx)

	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s)", step, err, loc)
		}
	}
	eval := func(step, expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	poll := func(step, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s)", step, err, loc)
		}
	}
	// check runs axe-core on the page, fails on serious or critical
	// violations and on console errors so far, and saves a screenshot.
	check := func(name string) {
		t.Helper()
		run("load axe on "+name, chromedp.Evaluate[chromedp.Void](axe))
		res, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](`axe.run(document, {resultTypes: ["violations"]})`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s: %v", name, err)
		}
		for _, v := range res.Violations {
			if v.Impact == "serious" || v.Impact == "critical" {
				b, _ := json.Marshal(v.Nodes)
				t.Errorf("%s: axe %s (%s): %s at %s", name, v.ID, v.Impact, v.Help, b)
			}
		}
		for _, p := range problems.take() {
			t.Errorf("%s: %s", name, p)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	fill := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SetValue(css(sel), v) }

	// Sign in.
	run("sign-in page", chromedp.Navigate(base+"/console/signin"), chromedp.WaitVisible(css("#key")))
	check("signin")
	run("sign in",
		chromedp.SendKeys(css("#key"), acc.APIKey),
		chromedp.Submit(css("#key")),
		chromedp.WaitVisible(`//h1[text()="Overview"]`))

	// Create a calendar and an event.
	run("calendars", chromedp.Navigate(base+"/console/calendars"), chromedp.WaitVisible(css("#cal-name")))
	run("create calendar",
		chromedp.SendKeys(css("#cal-name"), `Beach House <script>alert(1)</script>`),
		fill("#cal-zone", "Europe/Berlin"),
		chromedp.Submit(css("#cal-name")),
		chromedp.WaitVisible(`//p[@class="notice"][text()="Created."]`))
	calPath := eval("calendar page", `location.pathname`)
	calID := strings.TrimPrefix(calPath, "/console/calendars/")
	run("new event", chromedp.Click(`//a[text()="New event"]`), chromedp.WaitVisible(css("#ev-summary")))
	day := time.Now().AddDate(0, 0, 3).Format("2006-01-02")
	run("create event",
		chromedp.SendKeys(css("#ev-summary"), `Smith family "><img src=x onerror=alert(1)>`),
		fill("#ev-start", day+"T15:00"), fill("#ev-end", day+"T18:00"),
		chromedp.Submit(css("#ev-summary")),
		chromedp.WaitVisible(`//a[contains(text(), "Smith family")]`))
	check("calendar-agenda")
	run("month view", chromedp.Navigate(base+calPath+"?view=month&month="+day[:7]), chromedp.WaitVisible(`//a[contains(text(), "Smith family")]`))
	check("calendar-month")

	// Copy the feed URL and fetch it.
	run("feeds", chromedp.Navigate(base+"/console/feeds"), chromedp.WaitVisible(css("#feed-all")))
	run("copy feed URL", chromedp.Click(css(`button[data-copy="feed-all"]`)))
	poll("copied", `/^(Copied|Selected)/.test(document.querySelector('button[data-copy="feed-all"]').textContent)`)
	feedURL := eval("copied URL", `window.getSelection().toString() || document.getElementById("feed-all").textContent`)
	check("feeds")
	body := fetch(t, strings.TrimSpace(feedURL), http.StatusOK)
	if !strings.Contains(body, "SUMMARY:Smith family") {
		t.Errorf("the copied feed URL serves no event:\n%s", body)
	}

	// The feed switch: the calendar's feed off (403 with the reason, and
	// its events out of the all-calendars feed), then every feed, then
	// both on again.
	calFeed := strings.TrimSpace(eval("calendar feed URL", `document.getElementById("feed-0").textContent`))
	run("disable the calendar's feed", chromedp.Click(`//button[text()="Disable"]`),
		chromedp.WaitVisible(`//p[@class="notice"][starts-with(text(), "Feed disabled")]`))
	check("feeds-disabled")
	if body := fetch(t, calFeed, http.StatusForbidden); !strings.Contains(body, "this calendar's iCal feed is turned off") {
		t.Errorf("a disabled calendar feed answers %q; want the reason", body)
	}
	if body := fetch(t, strings.TrimSpace(feedURL), http.StatusOK); strings.Contains(body, "Smith family") {
		t.Errorf("the all-calendars feed still shows a disabled calendar's event")
	}
	run("disable every feed", chromedp.Click(`//button[text()="Disable all feeds"]`),
		chromedp.WaitVisible(`//button[text()="Enable all feeds"]`))
	if body := fetch(t, strings.TrimSpace(feedURL), http.StatusForbidden); !strings.Contains(body, "the account's iCal feeds are turned off") {
		t.Errorf("a disabled account feed answers %q; want the reason", body)
	}
	run("enable every feed", chromedp.Click(`//button[text()="Enable all feeds"]`),
		chromedp.WaitVisible(`//button[text()="Disable all feeds"]`))
	run("enable the calendar's feed", chromedp.Click(`//button[text()="Enable"]`),
		chromedp.WaitVisible(`//button[text()="Disable"]`))
	fetch(t, calFeed, http.StatusOK)

	// A subscription to the loopback hookReceiver; deliveries appear live.
	run("webhooks", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(css("#wh-url")))
	check("webhooks-empty")
	run("create subscription",
		chromedp.SendKeys(css("#wh-url"), hook.URL+"/hook"),
		chromedp.SendKeys(css("#wh-desc"), "Front desk"),
		chromedp.Submit(css("#wh-url")),
		chromedp.WaitVisible(css("#new-secret")))
	check("webhooks-created")
	run("open subscription", chromedp.Click(`//a[text()="Open the webhook"]`), chromedp.WaitVisible(css("#log")))
	event := func(summary string) {
		t.Helper()
		c.mustDo(t, "POST", base+"/v1/calendars/"+calID+"/events", acc.APIKey, map[string]any{
			"summary": summary, "start": day + "T09:00:00", "end": day + "T10:00:00",
		}, nil, http.StatusCreated)
	}
	event("Walk-in")
	run("delivery appears live", chromedp.WaitVisible(css(`#log td.st-delivered`)))
	check("subscription")

	// The hookReceiver fails: the message is retried, then delivered.
	rcv.failing.Store(true)
	event("Late booking")
	run("failure appears live", chromedp.WaitVisible(`//div[@id="log"]//td[contains(text(), "500")]`))
	rcv.failing.Store(false)
	check("subscription-failing")
	poll("retry delivers", `document.querySelectorAll("#log td.st-delivered").length >= 2`)

	// Redeliver one message and see its attempt.
	run("open message", chromedp.Click(css(`#log a`)), chromedp.WaitVisible(css("#attempts")))
	before := eval("attempts", `String(document.querySelectorAll("#attempts tbody tr").length)`)
	run("redeliver", chromedp.Click(`//button[text()="Redeliver"]`), chromedp.WaitVisible(`//p[@class="notice"]`))
	poll("redelivered", fmt.Sprintf(`document.querySelectorAll("#attempts tbody tr").length > %s`, before))
	check("message")

	// Rotate the feed token: the old URL stops at once.
	run("rotate feed token", chromedp.Navigate(base+"/console/feeds"),
		chromedp.Click(css(`input[name="confirm"]`)),
		chromedp.Click(`//button[text()="Regenerate token"]`),
		chromedp.WaitVisible(`//p[@class="notice"]`))
	fetch(t, strings.TrimSpace(feedURL), http.StatusForbidden)

	// API keys and the overview.
	run("keys", chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(css("#key-name")))
	check("keys")
	run("overview", chromedp.Navigate(base+"/console/overview"), chromedp.WaitVisible(css("#latest")))
	check("overview")

	// Readable at 360 px: no page scrolls sideways (wide tables scroll
	// within themselves).
	run("narrow", chromedp.EmulateViewport(360, 800))
	for _, p := range []string{"/console/overview", calPath, "/console/webhooks", "/console/feeds"} {
		run("narrow "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(css("main")))
		if w := eval("width of "+p, `String(document.documentElement.scrollWidth)`); w != "360" {
			t.Errorf("%s at 360 px is %s px wide", p, w)
		}
	}
	check("narrow-calendar")
	run("wide again", chromedp.EmulateReset())

	// The portal, framed by another origin: manage an endpoint there.
	var link struct {
		URL string `json:"url"`
	}
	c.mustDo(t, "POST", base+"/v1/portal-links", acc.APIKey, map[string]any{
		"displayName": "Acme Rentals", "accentColor": "#7a3cff", "calendarIds": []string{calID},
	}, &link, http.StatusCreated)
	portalURL.Store(link.URL)
	run("portal in iframe", chromedp.Navigate(host.URL), chromedp.WaitVisible(css("#portal")))
	var doc *chromedp.Node
	deadline := time.Now().Add(20 * time.Second)
	for doc == nil {
		frames, err := chromedp.Run(ctx, chromedp.Nodes(css("#portal")))
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) > 0 && frames[0].ContentDocument != nil {
			n, err := chromedp.Run(ctx, chromedp.Nodes(css("#wh-url"), chromedp.FromNode(frames[0].ContentDocument), chromedp.AtLeast(0)))
			if err == nil && len(n) > 0 {
				doc = frames[0].ContentDocument
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the portal did not load in the iframe")
		}
		time.Sleep(200 * time.Millisecond)
	}
	run("create endpoint in the portal",
		chromedp.SendKeys(css("#wh-url"), hook.URL+"/portal", chromedp.FromNode(doc)),
		chromedp.Submit(css("#wh-url"), chromedp.FromNode(doc)))
	var subs struct {
		Data []struct {
			WebhookURL string `json:"webhookUrl"`
			CalendarID string `json:"calendarId"`
		} `json:"data"`
	}
	found := false
	for !found && time.Now().Before(deadline.Add(10*time.Second)) {
		c.mustDo(t, "GET", base+"/v1/subscriptions", acc.APIKey, nil, &subs, http.StatusOK)
		for _, s := range subs.Data {
			found = found || s.WebhookURL == hook.URL+"/portal" && s.CalendarID == calID
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !found {
		t.Errorf("the endpoint made in the portal is not among %+v", subs.Data)
	}
	check("portal")
	// The portal's own page, opened directly with its session, for axe
	// (which does not reach into another origin's frame).
	run("portal webhooks", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(css("#wh-url")))
	nav, err := chromedp.Run(ctx, chromedp.Text(css("header nav")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(nav, "Calendars") || strings.Contains(nav, "API keys") {
		t.Errorf("the portal's navigation offers %q", nav)
	}
	check("portal-webhooks")

	if rcv.got.Load() < 3 {
		t.Errorf("the hookReceiver got %d requests; want the deliveries and the retry", rcv.got.Load())
	}
	t.Logf("screenshots in %s (%s)", shots, runtime.Version())
}

// fetch GETs url and checks the status.
func fetch(t *testing.T, url string, want int) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d; want %d", url, res.StatusCode, want)
	}
	return string(b)
}
