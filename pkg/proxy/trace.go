package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmesh/llmesh/pkg/tunnel"
)

// W3C trace context: a client's traceparent header at the ingress, the
// tunnel's metadata at the egress.
var traceContext = propagation.TraceContext{}

// startSpan starts the request's span. An ingress continues the client's
// trace (its traceparent header, if any); an egress continues the
// ingress's, from the tunnel's metadata, never from the client's headers
// that the ingress forwarded.
func (h *Handler) startSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := r.Context()
	if h.cfg.Relay {
		tc := tunnel.TraceContextFrom(ctx)
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": tc.Parent, "tracestate": tc.State})
	} else {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	name := "ingress"
	if h.cfg.Relay {
		name = "egress"
	}
	ctx, span := h.cfg.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method)))
	return r.WithContext(ctx), span
}

// traceContextOf is the trace context of ctx's span, for the tunnel.
func traceContextOf(ctx context.Context) tunnel.TraceContext {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return tunnel.TraceContext{Parent: c["traceparent"], State: c["tracestate"]}
}

// endSpan records how the request went and ends its span.
func endSpan(span trace.Span, provider string, route Route, t Target, attempts, status int) {
	span.SetAttributes(
		attribute.String("llmesh.provider", provider),
		attribute.String("llmesh.route", string(route)),
		attribute.String("llmesh.egress", t.Egress),
		attribute.String("llmesh.hint", t.Hint),
		attribute.String("llmesh.reason", string(t.Reason)),
		attribute.Int("llmesh.attempts", attempts),
		attribute.Int("llmesh.retries", max(attempts-1, 0)),
		attribute.Int("http.response.status_code", status),
	)
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
