// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables: off unless they ask for it, and then an OTLP
// exporter (gRPC or HTTP) behind a batching span processor. The request
// spans themselves are made by the proxy (pkg/proxy).
package tracing
