package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Service describes the node for the trace resource.
type Service struct {
	Name    string // default service.name (OTEL_SERVICE_NAME overrides it)
	Node    string // node name: service.instance.id
	Version string
}

// Tracing is a node's tracer and the provider behind it.
type Tracing struct {
	Tracer   trace.Tracer
	Exporter string // "otlp (grpc)" or "otlp (http/protobuf)", for the log
	provider *sdktrace.TracerProvider
}

// Setup reads the environment (getenv: os.Getenv) and returns nil when
// tracing is off: OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none, or
// neither OTEL_TRACES_EXPORTER=otlp nor an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set.
// The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL: grpc, or http/protobuf (the default). The
// exporter, the sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on),
// the batching (OTEL_BSP_*) and the resource (OTEL_RESOURCE_ATTRIBUTES)
// read their own variables, as the SDK documents them.
func Setup(ctx context.Context, getenv func(string) string, svc Service) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if exporter == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	switch exporter {
	case "", "none":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: this build exports traces by otlp only (or none)", exporter)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(
		attribute.String("service.name", svc.Name),
		attribute.String("service.instance.id", svc.Node),
		attribute.String("service.version", svc.Version),
	), resource.Environment()) // the environment's values win
	if err != nil {
		exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{
		Tracer:   tp.Tracer("github.com/llmesh/llmesh"),
		Exporter: "otlp (" + protocol + ")",
		provider: tp,
	}, nil
}

// TracerOf is t's tracer; nil when tracing is off (t nil).
func (t *Tracing) TracerOf() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.Tracer
}

// Shutdown exports the spans still buffered, until ctx ends, and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
