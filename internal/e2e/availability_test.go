package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// channel is a loopback upstream shaped like a channel's iCal export: a
// list of all-day stays, rendered the way that channel renders them
// (VALUE=DATE, its SUMMARY, a fresh DTSTAMP on every fetch). It records
// the X-ICALHOOKS-URL calhook sends when it polls, and can push to it.
type channel struct {
	name, prodID, summary, domain string

	mu    sync.Mutex
	stays map[string][2]string // uid → start, end dates (YYYYMMDD)
	hook  string
}

func newChannel(name, prodID, summary, domain string) *channel {
	return &channel{name: name, prodID: prodID, summary: summary, domain: domain, stays: map[string][2]string{}}
}

func (c *channel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := r.Header.Get("X-ICALHOOKS-URL"); h != "" {
		c.hook = h
	}
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nPRODID:" + c.prodID + "\r\nCALSCALE:GREGORIAN\r\nVERSION:2.0\r\n")
	uids := make([]string, 0, len(c.stays))
	for uid := range c.stays {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	for _, uid := range uids {
		s := c.stays[uid]
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nDTSTAMP:%s\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\nUID:%s\r\nSUMMARY:%s\r\n",
			time.Now().UTC().Format("20060102T150405Z"), s[0], s[1], uid, c.summary)
		if c.name == "airbnb" {
			b.WriteString("DESCRIPTION:Reservation URL: https://www.airbnb.com/hosting/reservations/details/HM" + strings.ToUpper(uid[:6]) +
				"\\nPhone Number (Last 4 Digits): 4242\r\n")
		}
		b.WriteString("END:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	io.WriteString(w, b.String())
}

// set changes a stay (an empty start removes it).
func (c *channel) set(uid, start, end string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if start == "" {
		delete(c.stays, uid)
		return
	}
	c.stays[uid] = [2]string{start, end}
}

// push sends calhook the iCal Hooks HEAD it registered, as a channel that
// speaks iCal Hooks would when its feed changes.
func (c *channel) push(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	if hook == "" {
		t.Fatalf("%s: calhook registered no iCal Hooks URL", c.name)
	}
	resp, err := http.Head(hook)
	if err != nil {
		t.Fatalf("%s: push: %v", c.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s: push answered %d", c.name, resp.StatusCode)
	}
}

func (c *channel) hooked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hook != ""
}

// conflictLog collects availability.conflict.* webhooks with their
// arrival times.
type conflictLog struct {
	mu  sync.Mutex
	got []conflictHook
}

type conflictHook struct {
	at        time.Time
	EventType string `json:"eventType"`
	Data      struct {
		ConflictID string `json:"conflictId"`
		UnitID     string `json:"unitId"`
		Events     []struct {
			CalendarID string `json:"calendarId"`
			EventID    string `json:"eventId"`
			UID        string `json:"uid"`
			Source     string `json:"source"`
			Start      string `json:"start"`
			End        string `json:"end"`
		} `json:"events"`
	} `json:"data"`
}

func (l *conflictLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var h conflictHook
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &h); err == nil {
		h.at = time.Now()
		l.mu.Lock()
		l.got = append(l.got, h)
		l.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (l *conflictLog) wait(t *testing.T, n int) []conflictHook {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		have := len(l.got)
		l.mu.Unlock()
		if have >= n {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive within this
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// pingLog counts the iCal Hooks HEADs a feed consumer got.
type pingLog struct {
	mu    sync.Mutex
	pings []time.Time
}

func (p *pingLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.pings = append(p.pings, time.Now())
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (p *pingLog) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pings)
}

// TestChannelsAvailability runs calhook with a unit of four calendars: a
// native one and imports of Airbnb, Booking.com and Vrbo exports served on
// loopback. Each channel pushes with iCal Hooks; a consumer watches
// Airbnb's export feed with iCal Hooks. A booking on Booking.com shows in
// the other channels' export feeds (not in its own) and pings the
// consumer; an overlapping Vrbo booking produces exactly one
// availability.conflict.detected naming both events, and its cancellation
// exactly one resolved.
func TestChannelsAvailability(t *testing.T) {
	t.Parallel()
	api := newClient()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	srv := startServer(t, filepath.Join(t.TempDir(), "calhook.db"), "adm-0123456789abcdef0123456789abcdef", "--addr", "127.0.0.1:"+strconv.Itoa(port),
		"--public-url", base, "--allow-private-cidr", "127.0.0.1/32", "--allow-http-feeds", "--allow-http-webhooks")

	airbnb := newChannel("airbnb", "-//Airbnb Inc//Hosting Calendar 0.8.8//EN", "Reserved", "airbnb.com")
	booking := newChannel("booking", "-//admin.booking.com//NONSGML v1.0//EN", "CLOSED - Not available", "booking.com")
	vrbo := newChannel("vrbo", "-//HomeAway.com, Inc.//NONSGML Calendar//EN", "Reserved", "vrbo.com")
	airbnb.set("1418fb94e984-aa11@airbnb.com", "20270601", "20270605")
	// A stay that stays: removing the only one would be a mass deletion,
	// which calhook holds.
	vrbo.set("e21b8c4f-0000@vrbo.com", "20270801", "20270805")
	channels := []*channel{airbnb, booking, vrbo}

	var acc struct{ ID, APIKey, FeedToken string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/accounts", "adm-0123456789abcdef0123456789abcdef", map[string]string{"name": "Rentals"}, &acc, 201)
	var unit struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/units", acc.APIKey, map[string]string{"name": "Beach house", "timeZone": "Europe/Lisbon"}, &unit, 201)
	conflicts := &conflictLog{}
	rcv := httptest.NewServer(conflicts)
	defer rcv.Close()
	api.mustDo(t, "POST", srv.baseURL()+"/v1/subscriptions", acc.APIKey, map[string]any{
		"webhookUrl": rcv.URL, "eventTypes": []string{"availability.conflict.detected", "availability.conflict.resolved"},
	}, nil, 201)

	var direct struct{ ID string }
	api.mustDo(t, "POST", srv.baseURL()+"/v1/calendars", acc.APIKey, map[string]string{"name": "Direct"}, &direct, 201)
	cals := map[string]string{"direct": direct.ID}
	for _, ch := range channels {
		up := httptest.NewServer(ch)
		defer up.Close()
		var c struct{ ID string }
		api.mustDo(t, "POST", srv.baseURL()+"/v1/calendars", acc.APIKey, map[string]any{
			"name": ch.name, "source": map[string]any{"url": up.URL + "/" + ch.name + ".ics", "pollIntervalSeconds": 3600},
		}, &c, 201)
		cals[ch.name] = c.ID
	}
	exportURL := map[string]string{}
	for name, id := range cals {
		var c struct{ ExportFeedURL string }
		api.mustDo(t, "PATCH", srv.baseURL()+"/v1/calendars/"+id, acc.APIKey, map[string]any{"unitId": unit.ID}, &c, 200)
		if !strings.HasPrefix(c.ExportFeedURL, base+"/feeds/"+acc.ID+"/"+id+"/blocked.ics?token=") {
			t.Fatalf("%s: exportFeedUrl = %q", name, c.ExportFeedURL)
		}
		exportURL[name] = c.ExportFeedURL
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if airbnb.hooked() && booking.hooked() && vrbo.hooked() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calhook did not poll every channel; log:\n%s", srv.logText())
		}
	}

	// A consumer (another channel manager) watches Airbnb's export feed.
	pings := &pingLog{}
	consumer := httptest.NewServer(pings)
	defer consumer.Close()
	getExport := func(name string, register bool) string {
		t.Helper()
		req, _ := http.NewRequest("GET", exportURL[name], nil)
		if register {
			req.Header.Set("X-ICALHOOKS-URL", consumer.URL+"/ping")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s's export feed = %d %s", name, resp.StatusCode, body)
		}
		if register && !strings.HasPrefix(resp.Header.Get("X-ICALHOOKS-STATUS"), "active") {
			t.Fatalf("X-ICALHOOKS-STATUS = %q", resp.Header.Get("X-ICALHOOKS-STATUS"))
		}
		return string(body)
	}
	// Wait until Airbnb's stay is imported: it shows in Booking's export.
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(getExport("booking", false), "20270601"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Airbnb's stay never reached Booking's export feed; log:\n%s", srv.logText())
		}
	}
	if body := getExport("airbnb", true); strings.Contains(body, "20270601") {
		t.Errorf("Airbnb's own stay is echoed back in its export feed:\n%s", body)
	}

	// A booking on Booking.com, pushed: it reaches the other channels'
	// export feeds and pings Airbnb's consumer.
	booking.set("7d1c0e4b6a2f58c39e104b7a2d6f8e31@booking.com", "20270610", "20270614")
	booking.push(t)
	for deadline := time.Now().Add(15 * time.Second); pings.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer of Airbnb's export feed was not pinged; log:\n%s", srv.logText())
		}
	}
	for _, name := range []string{"airbnb", "vrbo", "direct"} {
		body := getExport(name, name == "airbnb")
		if !strings.Contains(body, "DTSTART;VALUE=DATE:20270610") || !strings.Contains(body, "SUMMARY:Not available") {
			t.Errorf("%s's export feed lacks Booking's stay:\n%s", name, body)
		}
		for _, leak := range []string{"CLOSED", "Reserved", "Reservation URL", "4242", "@booking.com", "@airbnb.com"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s's export feed leaks %q:\n%s", name, leak, body)
			}
		}
	}
	if body := getExport("booking", false); strings.Contains(body, "20270610") {
		t.Errorf("Booking's own stay is echoed back in its export feed:\n%s", body)
	}
	if got := conflicts.wait(t, 0); len(got) != 0 {
		t.Fatalf("conflict webhooks before any overlap: %+v", got)
	}

	// An overlapping Vrbo booking, pushed: exactly one detected, naming
	// both events.
	vrboUID := "e21b8c4f-0001@vrbo.com"
	vrbo.set(vrboUID, "20270612", "20270616")
	pushed := time.Now()
	vrbo.push(t)
	got := conflicts.wait(t, 1)
	if len(got) != 1 || got[0].EventType != "availability.conflict.detected" {
		t.Fatalf("after the overlap: webhooks %+v; want one availability.conflict.detected", got)
	}
	t.Logf("upstream push to availability.conflict.detected at the receiver: %v (one sample, loaded machine)", got[0].at.Sub(pushed).Round(time.Millisecond))
	d := got[0].Data
	byUID := map[string]string{}
	for _, e := range d.Events {
		byUID[e.UID] = e.CalendarID + " " + e.Source + " " + e.Start + "/" + e.End
	}
	want := map[string]string{
		"7d1c0e4b6a2f58c39e104b7a2d6f8e31@booking.com": cals["booking"] + " imported 2027-06-10/2027-06-14",
		vrboUID: cals["vrbo"] + " imported 2027-06-12/2027-06-16",
	}
	if d.UnitID != unit.ID || fmt.Sprint(byUID) != fmt.Sprint(want) {
		t.Errorf("conflict body = %+v; want unit %s and events %v", d, unit.ID, want)
	}

	// Vrbo cancels (the stay leaves its export): exactly one resolved.
	vrbo.set(vrboUID, "", "")
	vrbo.push(t)
	got = conflicts.wait(t, 2)
	if len(got) != 2 || got[1].EventType != "availability.conflict.resolved" || got[1].Data.ConflictID != d.ConflictID {
		t.Fatalf("after the cancellation: webhooks %+v; want one resolved of %s", got, d.ConflictID)
	}
	var list struct {
		Data []struct{ ID, State string }
	}
	api.mustDo(t, "GET", srv.baseURL()+"/v1/units/"+unit.ID+"/conflicts", acc.APIKey, nil, &list, 200)
	if len(list.Data) != 1 || list.Data[0].State != "resolved" {
		t.Errorf("conflicts = %+v; want one, resolved", list.Data)
	}
}
