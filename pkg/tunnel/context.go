package tunnel

import "context"

// Values a request carries across the tunnel: the ingress puts them in the
// request's context, the tunnel sends them in the request head, and the
// egress puts them back in the context of the request it serves.

type requestIDKeyType struct{}

// WithRequestID returns ctx carrying the request id the tunnel forwards.
func WithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDContext{ctx, id}
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKeyType{}).(*requestIDContext); ok {
		return c.id
	}
	return ""
}

// requestIDContext carries a request id in one allocation, where
// context.WithValue takes two (the context and the boxed string). Its
// Value for the key is itself: reading the id boxes nothing either.
type requestIDContext struct {
	context.Context
	id string
}

func (c *requestIDContext) Value(key any) any {
	if _, ok := key.(requestIDKeyType); ok {
		return c
	}
	return c.Context.Value(key)
}

type injectKeyType struct{}

// WithInjectKey marks ctx's request as one whose client credentials the
// ingress checked and removed: the egress injects its own provider key.
func WithInjectKey(ctx context.Context) context.Context {
	return context.WithValue(ctx, injectKeyType{}, true)
}

// InjectKey reports whether ctx's request asks for the provider key to be injected.
func InjectKey(ctx context.Context) bool {
	v, _ := ctx.Value(injectKeyType{}).(bool)
	return v
}

type traceKeyType struct{}

// TraceContext is a W3C trace context: the traceparent and tracestate
// header values.
type TraceContext struct{ Parent, State string }

// WithTraceContext returns ctx carrying tc, which the tunnel sends to the
// egress in the stream's gRPC metadata (traceparent, tracestate).
func WithTraceContext(ctx context.Context, tc TraceContext) context.Context {
	return context.WithValue(ctx, traceKeyType{}, tc)
}

// TraceContextFrom returns the trace context in ctx; zero when none.
func TraceContextFrom(ctx context.Context) TraceContext {
	tc, _ := ctx.Value(traceKeyType{}).(TraceContext)
	return tc
}
