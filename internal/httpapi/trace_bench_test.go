package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/calhook/calhook/internal/store/storetest"
	"github.com/calhook/calhook/internal/tracing"
)

// BenchmarkEventWrite is an API event write through the whole handler
// (middleware, service, SQLite), with tracing off (the default) and on
// (every write sampled, spans kept in memory): off must cost nothing.
func BenchmarkEventWrite(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run("tracing="+mode, func(b *testing.B) {
			var tracer *tracing.Tracer
			if mode == "on" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { tp.Shutdown(b.Context()) })
				tracer = tracing.New(tp)
			}
			s := newServerOn(b, storetest.OpenSQLite(b), adminToken, tracer)
			a := s.newAccount("Bench")
			cal := s.newCalendar(a, "Cal", "UTC")
			body := []byte(`{"summary":"Booking","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`)
			path := "/v1/calendars/" + cal + "/events"
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+a.key)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				s.handler.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("POST = %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
