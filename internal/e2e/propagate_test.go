package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestTwoInstancesPropagate runs two calhooks: B imports A's feed and
// registers its iCal Hooks URL when it fetches; a change on A pings B,
// which polls at once and sends its webhook. The import's poll interval
// is an hour, so only the push can explain a fast arrival.
func TestTwoInstancesPropagate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	api := newClient()
	a := startServer(t, filepath.Join(dir, "a.db"), "adm-a-0123456789abcdef0123456789abcdef", "--allow-private-cidr", "127.0.0.1/32")
	portB := freePort(t)
	bURL := "http://127.0.0.1:" + strconv.Itoa(portB)
	b := startServer(t, filepath.Join(dir, "b.db"), "adm-b-0123456789abcdef0123456789abcdef", "--addr", "127.0.0.1:"+strconv.Itoa(portB),
		"--public-url", bURL, "--allow-private-cidr", "127.0.0.1/32", "--allow-http-feeds", "--allow-http-webhooks")

	var accA, accB struct{ ID, APIKey, FeedToken string }
	api.mustDo(t, "POST", a.baseURL()+"/v1/accounts", "adm-a-0123456789abcdef0123456789abcdef", map[string]string{"name": "Upstream"}, &accA, 201)
	api.mustDo(t, "POST", b.baseURL()+"/v1/accounts", "adm-b-0123456789abcdef0123456789abcdef", map[string]string{"name": "Downstream"}, &accB, 201)
	var calA struct{ ID string }
	api.mustDo(t, "POST", a.baseURL()+"/v1/calendars", accA.APIKey, map[string]string{"name": "Cottage"}, &calA, 201)
	feed := fmt.Sprintf("%s/feeds/%s/%s.ics?token=%s", a.baseURL(), accA.ID, calA.ID, accA.FeedToken)

	arrived := make(chan string, 100)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			EventType string
			Data      struct{ UID string }
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &p)
		if p.EventType == "calendar.event.created" {
			arrived <- p.Data.UID
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	api.mustDo(t, "POST", b.baseURL()+"/v1/subscriptions", accB.APIKey, map[string]string{"webhookUrl": rcv.URL}, nil, 201)
	var calB struct{ ID string }
	api.mustDo(t, "POST", b.baseURL()+"/v1/calendars", accB.APIKey, map[string]any{
		"name": "Cottage (imported)", "source": map[string]any{"url": feed, "pollIntervalSeconds": 3600},
	}, &calB, 201)
	// B's first poll registers its hook on A's feed.
	waitArmed := func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var hooks struct {
				Data []struct {
					URL   string
					Armed bool
				}
			}
			api.mustDo(t, "GET", a.baseURL()+"/v1/icalhooks", accA.APIKey, nil, &hooks, 200)
			if len(hooks.Data) == 1 && hooks.Data[0].Armed {
				if want := bURL + "/hooks/in/"; len(hooks.Data[0].URL) <= len(want) || hooks.Data[0].URL[:len(want)] != want {
					t.Fatalf("A's hook = %q; want B's /hooks/in/ URL", hooks.Data[0].URL)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("B's hook is not armed on A: %+v\nB's log:\n%s", hooks.Data, b.logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range 3 {
		waitArmed()
		uid := fmt.Sprintf("booking-%d@upstream", i)
		start := time.Now()
		api.mustDo(t, "POST", fmt.Sprintf("%s/v1/calendars/%s/events", a.baseURL(), calA.ID), accA.APIKey, map[string]any{
			"uid": uid, "summary": "Booking", "start": fmt.Sprintf("2027-01-%02d", 10+i), "end": fmt.Sprintf("2027-01-%02d", 12+i),
		}, nil, 201)
		select {
		case got := <-arrived:
			took := time.Since(start)
			if got != uid {
				t.Fatalf("webhook for %q; want %q", got, uid)
			}
			if took > 2*time.Second {
				t.Errorf("change %d took %v from A's API to B's webhook; want under 2 s", i, took)
			}
			t.Logf("change %d: A's write to B's webhook in %v", i, took)
		case <-time.After(10 * time.Second):
			t.Fatalf("change %d never reached B's subscriber\nA's log:\n%s\nB's log:\n%s", i, a.logText(), b.logText())
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
