package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTracingFollowsChangesToDeliveries runs calhook with an in-memory
// span exporter and follows a write through the change log: the API
// write's span continues the client's trace, the fan-out step's span
// links to it, the delivery attempt is its child, and the receiver gets
// the attempt's traceparent; an import poll's changes go the same way.
func TestTracingFollowsChangesToDeliveries(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })

	var mu sync.Mutex
	var received []string // traceparent headers of the deliveries
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:imp@up\r\n"+
			"DTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:I\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	}))
	defer upstream.Close()

	e, _, stderr := env(map[string]string{"CALHOOK_ADMIN_TOKEN": "adm-0123456789abcdef0123456789abcdef"}, "serve", "--addr", "127.0.0.1:0",
		"--db", filepath.Join(t.TempDir(), "calhook.db"), "--allow-private-cidr", "127.0.0.1/32",
		"--allow-http-webhooks", "--allow-http-feeds", "--log-level", "warn")
	e.TracerProvider = tp
	base, _ := serveEnv(t, e, stderr)
	s := &hookServer{t: t, base: base}
	var acct struct{ ID, APIKey string }
	s.call("POST", "/v1/accounts", "adm-0123456789abcdef0123456789abcdef", `{"name":"Acme"}`, 201, &acct)
	s.key = acct.APIKey
	var cal struct{ ID string }
	s.call("POST", "/v1/calendars", s.key, `{"name":"Cal"}`, 201, &cal)
	s.call("POST", "/v1/subscriptions", s.key, `{"webhookUrl":"`+receiver.URL+`/hook"}`, 201, nil)

	// The client's own trace.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", base+"/v1/calendars/"+cal.ID+"/events",
		strings.NewReader(`{"summary":"Booking","start":"2026-12-01","end":"2026-12-02"}`))
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01")
	resp, err := freshClient().Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST event = %v, %v; want 201", resp, err)
	}
	resp.Body.Close()

	write := waitSpan(t, exp, func(s tracetest.SpanStub) bool {
		return s.Name == "POST /v1/calendars/{calendarId}/events" && s.SpanContext.TraceID().String() == clientTrace
	})
	if write.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("write span's parent = %s; want the client's span 00f067aa0ba902b7", write.Parent.SpanID())
	}
	fanout := waitSpan(t, exp, func(s tracetest.SpanStub) bool {
		return s.Name == "fanout" && linksTo(s, write.SpanContext)
	})
	if fanout.SpanContext.TraceID() == write.SpanContext.TraceID() {
		t.Errorf("fan-out step shares the write's trace; want a trace of its own, linked")
	}
	deliver := waitSpan(t, exp, func(s tracetest.SpanStub) bool {
		return s.Name == "deliver webhook" && s.SpanContext.TraceID().String() == clientTrace
	})
	if deliver.Parent.SpanID() != write.SpanContext.SpanID() {
		t.Errorf("delivery span's parent = %s; want the write's span %s", deliver.Parent.SpanID(), write.SpanContext.SpanID())
	}
	want := "00-" + clientTrace + "-" + deliver.SpanContext.SpanID().String() + "-01"
	mu.Lock()
	got := append([]string(nil), received...)
	mu.Unlock()
	if len(got) == 0 || got[0] != want {
		t.Errorf("receiver got traceparent %q; want %q (the attempt's span)", got, want)
	}

	// An import poll: its changes are delivered in its trace.
	var imported struct{ ID string }
	s.call("POST", "/v1/calendars", s.key, `{"name":"Imported","source":{"url":"`+upstream.URL+`/cal.ics"}}`, 201, &imported)
	poll := waitSpan(t, exp, func(s tracetest.SpanStub) bool {
		return s.Name == "import poll" && hasAttr(s, "calhook.outcome", "changed")
	})
	waitSpan(t, exp, func(s tracetest.SpanStub) bool {
		return s.Name == "deliver webhook" && s.Parent.SpanID() == poll.SpanContext.SpanID()
	})
}

// waitSpan waits up to 20 s for an ended span that matches.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, s := range exp.GetSpans() {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range exp.GetSpans() {
				names = append(names, s.Name+" "+s.SpanContext.TraceID().String())
			}
			t.Fatalf("no matching span within 20 s; spans:\n%s", strings.Join(names, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func linksTo(s tracetest.SpanStub, sc trace.SpanContext) bool {
	for _, l := range s.Links {
		if l.SpanContext.SpanID() == sc.SpanID() && l.SpanContext.TraceID() == sc.TraceID() {
			return true
		}
	}
	return false
}

func hasAttr(s tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.AsString() == value {
			return true
		}
	}
	return false
}
