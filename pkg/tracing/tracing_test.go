package tracing

import (
	"context"
	"strings"
	"testing"
)

func TestSetupFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		exporter string
		err      string
	}{
		{name: "nothing set: off"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "otlp: http by default", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, exporter: "otlp (http/protobuf)"},
		{name: "an endpoint alone", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true, exporter: "otlp (http/protobuf)"},
		{name: "a traces endpoint alone", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true, exporter: "otlp (http/protobuf)"},
		{name: "grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, exporter: "otlp (grpc)"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, on: true, exporter: "otlp (grpc)"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "otlp only"},
		{name: "http/json", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: "grpc or http/protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Setup(context.Background(), func(k string) string { return tc.env[k] }, Service{Name: "llmesh-ingress", Node: "n1"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if (tr != nil) != tc.on {
				t.Fatalf("on = %v, want %v", tr != nil, tc.on)
			}
			if tr == nil {
				if tr.TracerOf() != nil {
					t.Error("off, but a tracer")
				}
				return
			}
			if tr.Exporter != tc.exporter || tr.TracerOf() == nil {
				t.Errorf("exporter %q, want %q", tr.Exporter, tc.exporter)
			}
		})
	}
}
