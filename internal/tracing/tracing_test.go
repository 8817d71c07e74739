package tracing_test

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/calhook/calhook/internal/tracing"
)

func TestEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "calhook"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false},
	}
	for _, tt := range tests {
		if got := tracing.Enabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Enabled(%v) = %v; want %v", tt.env, got, tt.want)
		}
	}
}

func TestSetupOff(t *testing.T) {
	t.Parallel()
	tp, err := tracing.Setup(context.Background(), func(string) string { return "" }, "test")
	if tp != nil || err != nil {
		t.Errorf("Setup with no OTEL_* = %v, %v; want nil, nil", tp, err)
	}
	if tr := tracing.New(nil); tr != nil {
		t.Errorf("New(nil) = %v; want nil (tracing off)", tr)
	}
}

// TestTraceContextTravels checks that a span's traceparent, stored as a
// string, brings a later span into the same trace as its child, and
// reaches an outgoing request.
func TestTraceContextTravels(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.New(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	if got := tracing.Parent(context.Background()); got != "" {
		t.Errorf("Parent(no span) = %q; want \"\"", got)
	}
	ctx, write := tr.Start(context.Background(), "write")
	tp := tracing.Parent(ctx)
	write.End()
	if _, ok := tracing.Link(tp); !ok {
		t.Fatalf("Link(%q) is not valid", tp)
	}
	if _, ok := tracing.Link("garbage"); ok {
		t.Error("Link(garbage) is valid; want not")
	}
	dctx, deliver := tr.Start(tracing.Remote(context.Background(), tp), "deliver")
	h := http.Header{}
	tracing.Inject(dctx, h)
	deliver.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() ||
		spans[1].SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
		t.Fatalf("spans = %+v; want deliver a child of write", spans)
	}
	if want := tracing.Parent(dctx); h.Get("traceparent") != want || want == "" {
		t.Errorf("injected traceparent = %q; want %q", h.Get("traceparent"), want)
	}
}
