package delivery_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
	"github.com/calhook/calhook/internal/tracing"
)

// BenchmarkWriteToDelivery is one event write carried through the change
// log, the fan-out and a signed webhook POST to a receiver on loopback,
// with tracing off (the default) and on (every write, fan-out step and
// attempt sampled, spans batched to a no-op exporter): off must cost
// nothing, on is what the spans cost.
func BenchmarkWriteToDelivery(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run("tracing="+mode, func(b *testing.B) {
			var tracer *tracing.Tracer
			if mode == "on" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { tp.Shutdown(context.Background()) })
				tracer = tracing.New(tp)
			}
			p := newPipeline(b, pipelineOpts{realTime: true, tracer: tracer})
			rc := newReceiver(b, nil)
			p.subscribe(rc.URL, subscription.Input{})
			in := calendar.EventInput{Summary: ptr("Booking"), Start: ptr("2026-12-01T15:00:00"), End: ptr("2026-12-03T10:00:00")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ctx := context.Background()
				var span trace.Span
				if tracer != nil {
					// As the API's middleware does for a write.
					ctx, span = tracer.Start(ctx, "POST /v1/calendars/{calendarId}/events", trace.WithSpanKind(trace.SpanKindServer))
					ctx = store.WithTrace(ctx, tracing.Parent(ctx))
				}
				_, err := p.cals.CreateEvent(ctx, p.acct, p.cal, in)
				if span != nil {
					span.End()
				}
				if err != nil {
					b.Fatalf("create event: %v", err)
				}
				got := rc.wait(b, 10*time.Second)
				if has := got.header.Get("traceparent") != ""; has != (tracer != nil) {
					b.Fatalf("traceparent %q with tracing %s", got.header.Get("traceparent"), mode)
				}
			}
		})
	}
}
