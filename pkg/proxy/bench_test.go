package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/llmesh/llmesh/internal/bench/floor"
	"github.com/llmesh/llmesh/internal/benchcpu"
	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
)

// benchProxy serves a proxy for provider "p" at up and returns its URL and
// a client; everything is loopback HTTP/1.1 with keep-alive.
func benchProxy(b testing.TB, up http.HandlerFunc, edits ...func(*Config)) (string, *http.Client) {
	b.Helper()
	u := upstream(b, up)
	cfg := Config{
		Providers: provider.NewRegistry(newProvider(b, "p", u.URL, provider.StyleOpenAI, 1<<20)),
		Router:    routeTo(Target{Route: "direct"}),
		// Metrics on, as on every node.
		Metrics: metrics.New("ingress", "bench"),
		// The node's defaults (http.body_idle_timeout, http.min_body_rate):
		// the body's pace is on every request's path.
		BodyIdleTimeout: benchIdle,
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

// BenchmarkProxyDirectLogged is BenchmarkProxyDirect with the access log
// on, formatted as a node formats it (the text handler at info).
func BenchmarkProxyDirectLogged(b *testing.B) {
	benchDirect(b, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
}

// BenchmarkFloorDirect is BenchmarkProxyDirect through make bench's Go
// floor (httputil.ReverseProxy and nothing more) instead: the difference
// in cpu-µs/op is what llmesh's own work costs per request.
func BenchmarkFloorDirect(b *testing.B) {
	srv, client := floorTo(b, upstream(b, chatReply).URL)
	measureChats(b, client, srv.URL)
}

// BenchmarkFloorTwoHop is BenchmarkFloorDirect through two floors chained:
// beside BenchmarkProxyTunnel, what the tunnel and the egress cost above a
// plain HTTP/1.1 hop and a second floor.
func BenchmarkFloorTwoHop(b *testing.B) {
	second, _ := floorTo(b, upstream(b, chatReply).URL)
	first, client := floorTo(b, second.URL)
	measureChats(b, client, first.URL)
}

// floorTo serves a Go floor to target and returns it with a client.
func floorTo(b *testing.B, target string) (*httptest.Server, *http.Client) {
	return front(b, floorFor(b, target))
}

// floorFor is a Go floor (make bench's) to target.
func floorFor(b *testing.B, target string) http.Handler {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	return floor.New(u)
}

func benchDirect(b *testing.B, edits ...func(*Config)) {
	url, client := benchProxy(b, chatReply, edits...)
	measureChats(b, client, url)
}

// measureChats sends chat completions to url for b's loop, reporting
// allocations and CPU time per request (both ends and the provider).
func measureChats(b *testing.B, client *http.Client, url string) {
	b.ReportAllocs()
	report := benchcpu.Start(b)
	for b.Loop() {
		chat(b, client, url)
	}
	report()
}

// chatReply answers a non-streamed chat completion, as a provider does.
func chatReply(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Write(chatAnswer)
}

var (
	chatAnswer  = []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	chatRequest = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`)
)

// chat sends one non-streamed chat completion to the proxy at url.
func chat(tb testing.TB, client *http.Client, url string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/p/v1/chat/completions", bytes.NewReader(chatRequest))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-bench")
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("status %d", resp.StatusCode)
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

// benchMesh serves an ingress proxy whose requests cross a real loopback
// tunnel to an egress proxy in front of up, both with the node's default
// body pace, and returns the ingress's URL and a client.
func benchMesh(tb testing.TB, up http.HandlerFunc) (string, *http.Client) {
	tb.Helper()
	u := upstream(tb, up)
	egress := newHandler(tb, Config{
		Providers:       provider.NewRegistry(newProvider(tb, "p", u.URL, provider.StyleOpenAI, 1<<20)),
		MetricsRoute:    RouteRelay,
		Relay:           true,
		Metrics:         metrics.New("egress", "bench"),
		BodyIdleTimeout: benchIdle,
		MinBodyRate:     4096,
	})
	return benchMeshTo(tb, egress)
}

// benchMeshTo is benchMesh with egress serving the tunnelled requests.
func benchMeshTo(tb testing.TB, egress http.Handler) (string, *http.Client) {
	tb.Helper()
	conn := dialEgress(tb, egress)
	ingress := newHandler(tb, Config{
		Providers:       provider.NewRegistry(newProvider(tb, "p", "http://"+closedAddr(tb), provider.StyleOpenAI, 1<<20)),
		Router:          routeTo(Target{Transport: conn, Tunnel: true, Route: RouteEgress, Egress: "e1", Hint: "eu"}),
		Metrics:         metrics.New("ingress", "bench"),
		BodyIdleTimeout: benchIdle,
		MinBodyRate:     4096,
	})
	srv, client := front(tb, ingress)
	return srv.URL, client
}

func BenchmarkProxyTunnel(b *testing.B) {
	url, client := benchMesh(b, chatReply)
	measureChats(b, client, url)
}

// BenchmarkProxyTunnelToFloor is BenchmarkProxyTunnel with a Go floor
// behind the tunnel instead of llmesh's egress handler: beside
// BenchmarkProxyTunnel it prices the egress's own work, beside
// BenchmarkFloorTwoHop the tunnel against an HTTP/1.1 hop.
func BenchmarkProxyTunnelToFloor(b *testing.B) {
	url, client := benchMeshTo(b, floorFor(b, upstream(b, chatReply).URL))
	measureChats(b, client, url)
}

// BenchmarkProxyDirectToFloor is BenchmarkProxyDirect with a Go floor
// between the ingress and the provider: beside BenchmarkProxyTunnelToFloor,
// the tunnel against an HTTP/1.1 hop, with the same nodes on both sides.
func BenchmarkProxyDirectToFloor(b *testing.B) {
	url, client := benchProxy(b, floorFor(b, upstream(b, chatReply).URL).ServeHTTP)
	measureChats(b, client, url)
}

var benchIdle = 30 * time.Second
