package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
)

// benchProxy serves a proxy for provider "p" at up and returns its URL and
// a client; everything is loopback HTTP/1.1 with keep-alive.
func benchProxy(b *testing.B, up http.HandlerFunc, edits ...func(*Config)) (string, *http.Client) {
	b.Helper()
	u := upstream(b, up)
	cfg := Config{
		Providers: provider.NewRegistry(newProvider(b, "p", u.URL, provider.StyleOpenAI, 1<<20)),
		Router:    routeTo(Target{Route: "direct"}),
		// Metrics on, as on every node.
		Metrics: metrics.New("ingress", "bench"),
		// The node's defaults (http.body_idle_timeout, http.min_body_rate):
		// the body's pace is on every request's path.
		BodyIdleTimeout: 30 * time.Second,
		MinBodyRate:     4096,
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	srv, client := front(b, newHandler(b, cfg))
	return srv.URL, client
}

func BenchmarkProxyDirect(b *testing.B) { benchDirect(b) }

// BenchmarkProxyDirectTraced is BenchmarkProxyDirect with tracing on: a
// span per request, batched to an exporter that drops them.
func BenchmarkProxyDirectTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	benchDirect(b, func(c *Config) { c.Tracer = tp.Tracer("bench") })
}

func benchDirect(b *testing.B, edits ...func(*Config)) {
	reply := []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	url, client := benchProxy(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}, edits...)
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, url+"/p/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk-bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkProxySSE(b *testing.B) {
	event := []byte(`data: {"id":"chatcmpl-1","choices":[{"delta":{"content":"token"}}]}` + "\n\n")
	url, client := benchProxy(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for range 20 {
			w.Write(event)
			rc.Flush()
		}
	})
	b.SetBytes(int64(20 * len(event)))
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, url+"/p/v1/chat/completions", bytes.NewReader([]byte(`{"stream":true}`)))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(20*len(event)) {
			b.Fatalf("read %d bytes", n)
		}
	}
}
