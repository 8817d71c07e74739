// Package tracing is calhook's OpenTelemetry tracing: a Tracer that is
// nil when tracing is off, so that every instrumented path costs one nil
// check then, and the W3C trace context that travels with a change
// through the change log (store.WithTrace) to its fan-out and deliveries.
//
// Tracing is on only when the standard OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is not
// true, OTEL_TRACES_EXPORTER not "none"); spans then go out over OTLP/HTTP,
// configured by the other OTEL_* variables the SDK reads (headers,
// sampler, service name, resource attributes).
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Enabled reports whether getenv asks for tracing.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns the TracerProvider the environment asks for, exporting
// over OTLP/HTTP, or nil when tracing is off. Shut the provider down to
// send the spans it holds.
func Setup(ctx context.Context, getenv func(string) string, version string) (*sdktrace.TracerProvider, error) {
	if !Enabled(getenv) {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "calhook"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// Tracer starts calhook's spans. A nil *Tracer is tracing off: callers
// check for nil and skip all tracing work.
type Tracer struct {
	t trace.Tracer
}

// New returns a Tracer of tp, or nil when tp is nil.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer("github.com/calhook/calhook")}
}

// Start starts a span.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.t.Start(ctx, name, opts...)
}

// propagator reads and writes the W3C traceparent.
var propagator = propagation.TraceContext{}

// Parent returns the W3C traceparent of the span in ctx, or "" when
// there is none.
func Parent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c.Get("traceparent")
}

// Remote returns ctx with the span context of traceparent as its remote
// parent, or ctx as it is when traceparent is empty or malformed.
func Remote(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Link returns a link to the span of traceparent, and whether it is one.
func Link(traceparent string) (trace.Link, bool) {
	sc := trace.SpanContextFromContext(Remote(context.Background(), traceparent))
	return trace.Link{SpanContext: sc}, sc.IsValid()
}

// FromRequest returns ctx with the trace context of r's traceparent
// header, so that a client's trace continues in calhook's spans.
func FromRequest(ctx context.Context, r *http.Request) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
}

// Inject sets the traceparent header of the span in ctx on h, so that a
// receiver can continue the trace.
func Inject(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
