package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
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
// Under /hostile it always fails with markup in its answer, which the
// console must show as text.
type hookReceiver struct {
	failing atomic.Bool
	got     atomic.Int64
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	rc.got.Add(1)
	switch {
	case strings.HasPrefix(r.URL.Path, "/hostile"):
		http.Error(w, hostileScript+hostileAttr+" down", http.StatusInternalServerError)
	case rc.failing.Load():
		http.Error(w, "Service unavailable: the property management system is restarting", http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// Hostile strings for the escaping step: shown as text, never run.
const (
	hostileScript = `<script>alert(1)</script>`
	hostileAttr   = `"><img src=x onerror=alert(1)>`
)

// channels serves the iCal exports of two booking channels, as Airbnb
// and Booking.com write them: all-day stays and blocked nights.
type channels struct {
	today time.Time
}

func (ch *channels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	type stay struct {
		uid, summary string
		from, to     int // days from today
	}
	var stays []stay
	switch r.URL.Path {
	case "/airbnb.ics":
		stays = []stay{
			{"1418fb94e984-a8e7b0e1@airbnb.com", "Reserved", -2, 1},
			{"1418fb94e984-c3d1f2a9@airbnb.com", "Reserved", 5, 8},
			{"1418fb94e984-77e0aa41@airbnb.com", "Airbnb (Not available)", 19, 22},
		}
	case "/booking.ics":
		stays = []stay{
			{"9f1c2e7a5b@booking.com", "CLOSED - Not available", 12, 15},
			{"4be80d2c11@booking.com", "CLOSED - Not available", 29, 32},
		}
	default:
		http.NotFound(w, r)
		return
	}
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Channel//Hosting Calendar//EN\r\nCALSCALE:GREGORIAN\r\n")
	for _, s := range stays {
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nDTSTAMP:%s\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\nUID:%s\r\nSUMMARY:%s\r\nEND:VEVENT\r\n",
			ch.today.UTC().Format("20060102T150405Z"), ch.today.AddDate(0, 0, s.from).Format("20060102"),
			ch.today.AddDate(0, 0, s.to).Format("20060102"), s.uid, s.summary)
	}
	b.WriteString("END:VCALENDAR\r\n")
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	io.WriteString(w, b.String())
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
// Chromium against the real binary. The screenshots come from a friendly
// dataset (a holiday rental with its channels); the hostile strings are
// in another account, visited at the end for the escaping checks.
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
	now := time.Now()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	channel := httptest.NewServer(&channels{today: today})
	defer channel.Close()
	// The operator's product, on another loopback origin, frames the portal.
	var portalURL atomic.Value
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := portalURL.Load().(string)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Seaside Rentals</title></head>
<body style="margin:0;font-family:system-ui,sans-serif;background:#eef3f7;color:#1b1f24">
<header style="background:#1d6fa5;color:#fff;padding:12px 24px;font-weight:700">Seaside Rentals · owner dashboard</header>
<main style="padding:16px 24px"><h1 style="font-size:1.3rem">Settings › Integrations</h1>
<iframe id="portal" title="Webhooks" src="%s" width="1000" height="820" style="border:1px solid #c8d3dd;border-radius:8px;background:#fff"></iframe></main></body></html>`, u)
	}))
	defer host.Close()

	admin := randomHex(16)
	srv := startServer(t, filepath.Join(t.TempDir(), "calhook.db"), admin,
		"--allow-http-webhooks", "--allow-http-feeds", "--allow-private-cidr", "127.0.0.1/32", "--retry-schedule", "3s,3s,3s,3s,3s",
		"--portal-frame-ancestors", host.URL)
	base := srv.baseURL()
	c := newClient()
	var acc struct {
		ID     string `json:"id"`
		APIKey string `json:"apiKey"`
	}
	c.mustDo(t, "POST", base+"/v1/accounts", admin, map[string]string{"name": "Seaside Rentals"}, &acc, http.StatusCreated)

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
	// audit runs axe-core on the page and fails on serious or critical
	// violations and on console errors so far.
	audit := func(name string) {
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
	}
	// check audits the page and saves a screenshot of it.
	check := func(name string) {
		t.Helper()
		audit(name)
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
	date := func(days int) string { return today.AddDate(0, 0, days).Format("2006-01-02") }
	signIn := func(key string) {
		t.Helper()
		run("sign in",
			chromedp.Navigate(base+"/console/signin"), chromedp.WaitVisible(css("#key")),
			chromedp.SendKeys(css("#key"), key),
			chromedp.Submit(css("#key")),
			chromedp.WaitVisible(`//h1[text()="Overview"]`))
	}

	// Sign in.
	run("sign-in page", chromedp.Navigate(base+"/console/signin"), chromedp.WaitVisible(css("#key")))
	check("signin")
	signIn(acc.APIKey)

	// Create the rental's own calendar and a stay.
	run("calendars", chromedp.Navigate(base+"/console/calendars"), chromedp.WaitVisible(css("#cal-name")))
	run("create calendar",
		chromedp.SendKeys(css("#cal-name"), "Seaside Cottage · direct"),
		fill("#cal-zone", "Europe/Lisbon"),
		chromedp.Submit(css("#cal-name")),
		chromedp.WaitVisible(`//p[@class="notice"][text()="Created."]`))
	calPath := eval("calendar page", `location.pathname`)
	calID := strings.TrimPrefix(calPath, "/console/calendars/")
	run("new event", chromedp.Click(`//a[text()="New event"]`), chromedp.WaitVisible(css("#ev-summary")))
	run("create event",
		chromedp.SendKeys(css("#ev-summary"), "Anna Müller · 3 nights"),
		fill("#ev-start", date(1)+"T00:00"), fill("#ev-end", date(4)+"T00:00"),
		chromedp.Click(css(`input[name="allDay"]`)),
		fill("#ev-location", "Seaside Cottage, Rua do Mar 12"),
		chromedp.Submit(css("#ev-summary")),
		chromedp.WaitVisible(`//a[contains(text(), "Anna Müller")]`))
	stay := func(summary string, from, to int) {
		t.Helper()
		c.mustDo(t, "POST", base+"/v1/calendars/"+calID+"/events", acc.APIKey, map[string]any{
			"summary": summary, "start": date(from), "end": date(to), "allDay": true,
		}, nil, http.StatusCreated)
	}
	stay("Jonas Weber · 3 nights", 10, 13)
	run("agenda", chromedp.Navigate(base+calPath), chromedp.WaitVisible(`//a[contains(text(), "Jonas Weber")]`))
	check("calendar-agenda")
	run("month view", chromedp.Navigate(base+calPath+"?view=month&month="+date(1)[:7]), chromedp.WaitVisible(`//a[contains(text(), "Anna Müller")]`))
	check("calendar-month")

	// Copy the feed URL and fetch it.
	run("feeds", chromedp.Navigate(base+"/console/feeds"), chromedp.WaitVisible(css("#feed-all")))
	run("copy feed URL", chromedp.Click(css(`button[data-copy="feed-all"]`)))
	poll("copied", `/^(Copied|Selected)/.test(document.querySelector('button[data-copy="feed-all"]').textContent)`)
	feedURL := eval("copied URL", `window.getSelection().toString() || document.getElementById("feed-all").textContent`)
	check("feeds")
	body := fetch(t, strings.TrimSpace(feedURL), http.StatusOK)
	if !strings.Contains(body, "SUMMARY:Anna Müller") {
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
	if body := fetch(t, strings.TrimSpace(feedURL), http.StatusOK); strings.Contains(body, "Anna Müller") {
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
		chromedp.SendKeys(css("#wh-url"), hook.URL+"/webhooks/calhook"),
		chromedp.SendKeys(css("#wh-desc"), "Front desk (property management system)"),
		chromedp.Submit(css("#wh-url")),
		chromedp.WaitVisible(css("#new-secret")))
	check("webhooks-created")
	run("open subscription", chromedp.Click(`//a[text()="Open the webhook"]`), chromedp.WaitVisible(css("#log")))
	stay("Maria Santos · 2 nights", 16, 18)
	run("delivery appears live", chromedp.WaitVisible(css(`#log td.st-delivered`)))
	check("subscription")

	// The hookReceiver fails: the message is retried, then delivered.
	rcv.failing.Store(true)
	stay("The Okafor family · 3 nights", 25, 28)
	run("failure appears live", chromedp.WaitVisible(`//div[@id="log"]//td[contains(text(), "503")]`))
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

	// The channels' calendars, imported; a unit with all three, where a
	// Booking.com block overlaps a direct stay: a conflict.
	var channelIDs []string
	for _, ch := range []struct{ name, path string }{{"Airbnb", "/airbnb.ics"}, {"Booking.com", "/booking.ics"}} {
		var cal struct {
			ID string `json:"id"`
		}
		c.mustDo(t, "POST", base+"/v1/calendars", acc.APIKey, map[string]any{
			"name": ch.name, "timeZone": "Europe/Lisbon", "source": map[string]any{"url": channel.URL + ch.path},
		}, &cal, http.StatusCreated)
		c.mustDo(t, "POST", base+"/v1/calendars/"+cal.ID+"/sync?wait=true", acc.APIKey, nil, nil, http.StatusOK)
		channelIDs = append(channelIDs, cal.ID)
	}
	run("units", chromedp.Navigate(base+"/console/units"), chromedp.WaitVisible(css("#unit-name")))
	audit("units-empty")
	run("create unit",
		chromedp.SendKeys(css("#unit-name"), "Seaside Cottage"),
		fill("#unit-zone", "Europe/Lisbon"),
		chromedp.Submit(css("#unit-name")),
		chromedp.WaitVisible(`//p[@class="notice"][text()="Created."]`))
	unitPath := eval("unit page", `location.pathname`)
	for _, id := range append([]string{calID}, channelIDs...) {
		run("attach "+id, chromedp.SetValue(css("#attach-cal"), id), chromedp.Submit(css("#attach-cal")),
			chromedp.WaitVisible(`//p[@class="notice"][starts-with(text(), "Attached")]`))
	}
	// The detector runs in the background: the conflict shows within
	// seconds, live or at the latest on a reload.
	deadline := time.Now().Add(30 * time.Second)
	for eval("conflict shown", `String(document.querySelectorAll("table.conflicts tbody tr").length)`) == "0" {
		if time.Now().After(deadline) {
			t.Fatal("no open conflict appeared on the unit page")
		}
		time.Sleep(500 * time.Millisecond)
		run("reload unit", chromedp.Navigate(base+unitPath), chromedp.WaitVisible(css(".timeline")))
	}
	if n := eval("bars", `String(document.querySelectorAll(".timeline .bar.ev").length)`); n != "9" {
		t.Errorf("the timeline draws %s stays; want 9", n)
	}
	if n := eval("conflict bars", `String(document.querySelectorAll(".timeline .bar.conflict").length)`); n != "2" {
		t.Errorf("the timeline marks %s stays in conflict; want the 2 that overlap", n)
	}
	check("units")
	// The same in the dark scheme: colours from the dark palette, and
	// axe checks their contrast.
	run("dark", colorScheme("dark"))
	check("units-dark")
	run("light", colorScheme(""))
	run("units list", chromedp.Navigate(base+"/console/units"), chromedp.WaitVisible(`//a[text()="1 open"]`))

	// API keys and the overview, which links the conflict.
	run("keys", chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(css("#key-name")))
	check("keys")
	run("overview", chromedp.Navigate(base+"/console/overview"), chromedp.WaitVisible(css("#latest")),
		chromedp.WaitVisible(`//li[@class="bad"]/a[text()="Seaside Cottage"]`))
	check("overview")

	// Readable at 360 px: no page scrolls sideways (wide tables and the
	// timeline scroll within themselves).
	run("narrow", chromedp.EmulateViewport(360, 800))
	for _, p := range []string{"/console/overview", calPath, "/console/webhooks", "/console/feeds", unitPath} {
		run("narrow "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(css("main")))
		if w := eval("width of "+p, `String(document.documentElement.scrollWidth)`); w != "360" {
			t.Errorf("%s at 360 px is %s px wide", p, w)
		}
	}
	check("narrow-units")
	run("narrow calendar", chromedp.Navigate(base+calPath), chromedp.WaitVisible(css("main")))
	check("narrow-calendar")
	// Back to the desktop size (EmulateReset leaves the page at 360 px).
	run("wide again", chromedp.EmulateViewport(1280, 900))

	// The portal, framed by another origin: manage an endpoint there.
	var link struct {
		URL string `json:"url"`
	}
	c.mustDo(t, "POST", base+"/v1/portal-links", acc.APIKey, map[string]any{
		"displayName": "Seaside Rentals", "accentColor": "#1d6fa5", "calendarIds": []string{calID},
	}, &link, http.StatusCreated)
	portalURL.Store(link.URL)
	run("portal in iframe", chromedp.Navigate(host.URL), chromedp.WaitVisible(css("#portal")))
	var doc *chromedp.Node
	deadline = time.Now().Add(20 * time.Second)
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
		chromedp.SendKeys(css("#wh-url"), hook.URL+"/portal/seaside", chromedp.FromNode(doc)),
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
			found = found || s.WebhookURL == hook.URL+"/portal/seaside" && s.CalendarID == calID
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
	if strings.Contains(nav, "Calendars") || strings.Contains(nav, "API keys") || strings.Contains(nav, "Units") {
		t.Errorf("the portal's navigation offers %q", nav)
	}
	check("portal-webhooks")
	if rcv.got.Load() < 3 {
		t.Errorf("the hookReceiver got %d requests; want the deliveries and the retry", rcv.got.Load())
	}

	hostilePages(t, hostileRun{base: base, admin: admin, hook: hook.URL, c: c, run: run, eval: eval, audit: audit, signIn: signIn})
	t.Logf("screenshots in %s (%s)", shots, runtime.Version())
}

// hostileRun is what the escaping step uses of the browser test.
type hostileRun struct {
	base, admin, hook string
	c                 *client
	run               func(string, ...chromedp.Action[chromedp.Void])
	eval              func(string, string) string
	audit             func(string)
	signIn            func(string)
}

// hostilePages fills another account with hostile names, summaries, a
// hostile receiver answer and unit, and checks in the browser that every
// page shows them as text: no injected element, no script run (the
// audit fails on console errors, CSP reports among them).
func hostilePages(t *testing.T, h hostileRun) {
	t.Helper()
	var acc struct {
		ID     string `json:"id"`
		APIKey string `json:"apiKey"`
	}
	h.c.mustDo(t, "POST", h.base+"/v1/accounts", h.admin, map[string]string{"name": "Hostile " + hostileScript}, &acc, http.StatusCreated)
	var cal, unit, sub struct {
		ID  string `json:"id"`
		Sub string `json:"webhookSubscriptionId"`
	}
	h.c.mustDo(t, "POST", h.base+"/v1/calendars", acc.APIKey, map[string]any{"name": "Beach House " + hostileScript}, &cal, http.StatusCreated)
	day := time.Now().AddDate(0, 0, 2).Format("2006-01-02")
	for i, summary := range []string{"Smith family " + hostileAttr, hostileScript, "javascript:alert(1)"} {
		h.c.mustDo(t, "POST", h.base+"/v1/calendars/"+cal.ID+"/events", acc.APIKey, map[string]any{
			"summary": summary, "location": hostileAttr, "start": fmt.Sprintf("%sT%02d:00:00", day, 9+i), "end": fmt.Sprintf("%sT%02d:00:00", day, 11+i),
		}, nil, http.StatusCreated)
	}
	h.c.mustDo(t, "POST", h.base+"/v1/units", acc.APIKey, map[string]any{"name": "Unit " + hostileAttr}, &unit, http.StatusCreated)
	h.c.mustDo(t, "PATCH", h.base+"/v1/calendars/"+cal.ID, acc.APIKey, map[string]any{"unitId": unit.ID}, nil, http.StatusOK)
	h.c.mustDo(t, "POST", h.base+"/v1/subscriptions", acc.APIKey, map[string]any{
		"webhookUrl": h.hook + "/hostile?x=" + url.QueryEscape(hostileAttr), "description": hostileScript,
	}, &sub, http.StatusCreated)

	h.signIn(acc.APIKey)
	pages := []struct{ name, path, wait string }{
		{"hostile overview", "/console/overview", "#latest"},
		{"hostile calendars", "/console/calendars", "#cal-name"},
		{"hostile agenda", "/console/calendars/" + cal.ID + "?from=" + day, "#events"},
		{"hostile month", "/console/calendars/" + cal.ID + "?view=month&month=" + day[:7], "#events"},
		{"hostile unit", "/console/units/" + unit.ID, ".timeline"},
		{"hostile units", "/console/units", "#unit-name"},
		{"hostile webhooks", "/console/webhooks", "#wh-url"},
	}
	// A test event to the receiver that answers with markup.
	h.run("hostile subscription", visit(h.base+"/console/webhooks/"+sub.Sub, "#log")...)
	h.run("send test event", chromedp.Click(`//button[text()="Send test event"]`), chromedp.WaitVisible(`//p[@class="notice"]`))
	h.run("hostile answer recorded", chromedp.WaitVisible(`//div[@id="log"]//td[contains(text(), "500")]`))
	h.run("hostile message", chromedp.Click(chromedp.CSS(`#log a`)), chromedp.WaitVisible(chromedp.CSS(`#attempts`)))
	pages = append(pages, struct{ name, path, wait string }{"hostile message", h.eval("message path", `location.pathname`), "#attempts"})
	for _, p := range pages {
		h.run(p.name, visit(h.base+p.path, p.wait)...)
		text := h.eval(p.name+" text", `document.body.innerText`)
		if !strings.Contains(text, "<script>alert(1)</script>") && !strings.Contains(text, `"><img src=x onerror=alert(1)>`) {
			t.Errorf("%s does not show the hostile strings as text", p.name)
		}
		if n := h.eval(p.name+" injected", `String(document.querySelectorAll('img[src="x"], a[href^="javascript:"]').length + document.scripts.length - 1)`); n != "0" {
			t.Errorf("%s: %s injected elements", p.name, n)
		}
		h.audit(p.name)
	}
}

// colorScheme emulates prefers-color-scheme (empty: the browser's own).
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var p emulation.SetEmulatedMediaParams
		if scheme != "" {
			p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, p)
		return err
	})
}

// visit opens url and waits for the element sel.
func visit(url, sel string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))}
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
