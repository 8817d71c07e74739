package store

import "context"

// traceKey is the context key of WithTrace.
type traceKey struct{}

// WithTrace returns ctx carrying traceparent, the W3C trace context of
// the span a write belongs to: the store keeps it with the changes the
// write makes (Change.Trace), so that the fan-out and the deliveries of
// those changes link to the write's span. Storage adapters know nothing
// of tracing beyond this string.
func WithTrace(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// TraceFrom returns the traceparent WithTrace put in ctx, or "".
func TraceFrom(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}
