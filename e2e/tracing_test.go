package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// otlpReceiver is an in-process OTLP trace receiver, over HTTP or gRPC.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []recordedSpan
}

type recordedSpan struct {
	service string
	span    *tracepb.Span
}

func (r *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, recordedSpan{service, s})
			}
		}
	}
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var msg coltracepb.ExportTraceServiceRequest
	if req.URL.Path != "/v1/traces" || proto.Unmarshal(b, &msg) != nil {
		http.Error(w, "bad export", 400)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// startReceiver serves r with protocol ("grpc" or "http/protobuf") and
// returns its endpoint URL.
func (r *otlpReceiver) start(t *testing.T, protocol string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if protocol == "grpc" {
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, r)
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
	} else {
		srv := &http.Server{Handler: r}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	return "http://" + ln.Addr().String()
}

func (r *otlpReceiver) find(name, traceID string) *recordedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.spans {
		if s.span.Name == name && hex.EncodeToString(s.span.TraceId) == traceID {
			return &r.spans[i]
		}
	}
	return nil
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			switch v := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_IntValue:
				return fmt.Sprint(v.IntValue)
			}
		}
	}
	return ""
}

// TestTracingAcrossMesh turns tracing on through the OTEL_* environment,
// exports to an in-process OTLP receiver over each protocol, and follows
// one request from a client's traceparent through an ingress and an egress.
func TestTracingAcrossMesh(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) {
			recv := &otlpReceiver{}
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.start(t, protocol))
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")

			m := newMesh(t)
			m.start(nodeSpec{role: role.Egress, name: "wnam-1", loc: "US", hint: "wnam"})
			hk := m.start(nodeSpec{role: role.Ingress, name: "hk-1", loc: "HK", hint: "apac",
				rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}})
			m.waitMembers(hk, "wnam-1")

			const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			req := newRequest(t, "POST", baseURL(hk)+"/openai/v1/chat/completions",
				bytes.NewReader([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
			resp, body := do(t, req)
			if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "wnam-1" {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}

			var in, eg *recordedSpan
			wait.For(t, 10*time.Second, func() error {
				if in, eg = recv.find("ingress", traceID), recv.find("egress", traceID); in == nil || eg == nil {
					return fmt.Errorf("spans of trace %s not exported yet (ingress %v, egress %v)", traceID, in != nil, eg != nil)
				}
				return nil
			})
			if got := hex.EncodeToString(in.span.ParentSpanId); got != clientSpan {
				t.Errorf("ingress span's parent is %q, want the client's span %s", got, clientSpan)
			}
			if !bytes.Equal(eg.span.ParentSpanId, in.span.SpanId) {
				t.Errorf("egress span's parent is %x, want the ingress span %x", eg.span.ParentSpanId, in.span.SpanId)
			}
			if in.service != "llmesh-ingress" || eg.service != "llmesh-egress" {
				t.Errorf("services %q and %q", in.service, eg.service)
			}
			for key, want := range map[string]string{
				"llmesh.route": "egress", "llmesh.provider": "openai", "llmesh.egress": "wnam-1", "llmesh.hint": "wnam",
				"llmesh.retries": "0", "llmesh.attempts": "1", "http.response.status_code": "200", "http.request.method": "POST",
			} {
				if got := attr(in.span.Attributes, key); got != want {
					t.Errorf("ingress span %s = %q, want %q", key, got, want)
				}
			}
			if got := attr(eg.span.Attributes, "llmesh.route"); got != "relay" {
				t.Errorf("egress span llmesh.route = %q, want relay", got)
			}
			if line := m.accessLog(t, "hk-1", resp); !strings.Contains(line, "trace_id="+traceID) {
				t.Errorf("the access log line has no trace_id=%s:\n%s", traceID, line)
			}
			if line := m.accessLog(t, "wnam-1", resp); !strings.Contains(line, "trace_id="+traceID) {
				t.Errorf("the egress's access log line has no trace_id=%s:\n%s", traceID, line)
			}
		})
	}
}

// TestTracingOffByDefault: without OTEL_* variables, no span is made and
// the log line has no trace id.
func TestTracingOffByDefault(t *testing.T) {
	for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(v, "")
	}
	m := newMesh(t)
	us := m.start(nodeSpec{role: role.Ingress, name: "us-1", loc: "US", hint: "enam"})
	req := newRequest(t, "GET", baseURL(us)+"/openai/v1/models", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, _ := do(t, req)
	if line := m.accessLog(t, "us-1", resp); strings.Contains(line, "trace_id") {
		t.Errorf("tracing is off but the log line has a trace id:\n%s", line)
	}
}
