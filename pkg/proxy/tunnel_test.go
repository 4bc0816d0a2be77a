package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// Every way a round trip can fail maps to one status and code.
func TestClassify(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "p", "http://"+closedAddr(t), provider.StyleOpenAI, 0)
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", tunnel.ErrUnauthenticated), 502, "tunnel_unauthenticated"},
		{fmt.Errorf("x: %w", tunnel.ErrOverloaded), 503, "egress_overloaded"},
		{fmt.Errorf("x: %w", tunnel.ErrUnavailable), 502, "egress_unavailable"},
		{fmt.Errorf("x: %w", tunnel.ErrProtocol), 502, "tunnel_protocol"},
		{fmt.Errorf("x: %w", tunnel.ErrAborted), 502, "upstream_unreachable"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 504, "upstream_timeout"},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, 504, "upstream_timeout"},
		{&http.MaxBytesError{Limit: 7}, 413, "body_too_large"},
		{errors.New("connection refused"), 502, "upstream_unreachable"},
	}
	for _, tt := range tests {
		fail := roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, tt.err })
		h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: routeTo(Target{Transport: fail, Tunnel: true, Route: "egress", Egress: "e1", Hint: "eu"})})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/p/v1/x", nil))
		if rec.Code != tt.status || rec.Header().Get("X-Mesh-Error") != tt.code {
			t.Errorf("%v: %d %q, want %d %q", tt.err, rec.Code, rec.Header().Get("X-Mesh-Error"), tt.status, tt.code)
		}
		if rec.Header().Get(HeaderEgress) != "e1" || rec.Header().Get(HeaderHint) != "eu" {
			t.Errorf("%v: route headers missing on the error: %v", tt.err, rec.Header())
		}
		if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: no Retry-After", tt.err)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// dialEgress serves egress as a tunnel server on loopback and returns an
// ingress's connection to it; both end with the test.
func dialEgress(tb testing.TB, egress http.Handler) *tunnel.Conn {
	tb.Helper()
	g := tunnel.NewServer(tunnel.ServerConfig{Handler: egress, Token: "tok"}).GRPCServer()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		g.Serve(lis)
	}()
	tb.Cleanup(func() {
		g.Stop()
		<-served
	})
	conn, err := tunnel.Dial("e1", lis.Addr().String(), tunnel.DialConfig{Token: "tok"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// meshPair is an ingress proxy whose requests go through a real tunnel to
// an egress proxy in front of the provider.
type meshPair struct {
	ingress   *httptest.Server
	client    *http.Client
	egressIDs chan string // request ids the egress saw
}

func newMeshPair(t *testing.T, up string, maxBody int64) *meshPair {
	t.Helper()
	m := &meshPair{egressIDs: make(chan string, 8)}
	egressReg := provider.NewRegistry(newProvider(t, "openai", up+"/base", provider.StyleOpenAI, maxBody))
	egress := newHandler(t, Config{Providers: egressReg, MetricsRoute: "relay",
		Router: routerFunc(func(r *http.Request, _ *provider.Provider) (Target, error) {
			m.egressIDs <- tunnel.RequestID(r.Context())
			return Target{}, nil
		})})
	conn := dialEgress(t, egress)

	// The ingress knows the provider by name only; its base URL is unused.
	ingressReg := provider.NewRegistry(newProvider(t, "openai", "http://"+closedAddr(t), provider.StyleOpenAI, maxBody))
	ingress := newHandler(t, Config{Providers: ingressReg,
		Router: routeTo(Target{Transport: conn, Tunnel: true, Route: "egress", Egress: "e1", Hint: "eu"})})
	m.ingress, m.client = front(t, ingress)
	m.ingress.Config.ErrorLog = quietLog()
	return m
}

func TestTunnelledPath(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		got <- record(r)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Mesh-Route", "forged")
		w.Write([]byte("data: hi\n\n"))
	})
	m := newMeshPair(t, up.URL, 1<<20)

	req, _ := http.NewRequestWithContext(t.Context(), "POST", m.ingress.URL+"/openai/v1/files/a%20b?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("Authorization", "Bearer sk")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-Mesh-Hint", "eu")
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "data: hi\n\n" {
		t.Fatalf("body %q, %v", b, err)
	}
	s := recv(t, got, 5*time.Second, "the provider")
	if s.escapedPath != "/base/v1/files/a%20b" || s.rawQuery != "x=1" || s.body != `{"a":1}` {
		t.Errorf("provider saw %s ? %s with %q", s.escapedPath, s.rawQuery, s.body)
	}
	if s.header.Get("Authorization") != "Bearer sk" || s.header.Get("X-Forwarded-For") != "" || s.header.Get("X-Mesh-Hint") != "" {
		t.Errorf("provider headers: %v", s.header)
	}
	h := resp.Header
	if h.Get(HeaderRoute) != "egress" || h.Get(HeaderEgress) != "e1" || h.Get(HeaderHint) != "eu" || h.Get("X-Accel-Buffering") != "no" {
		t.Errorf("response headers: %v", h)
	}
	if id := recv(t, m.egressIDs, time.Second, "the egress's request id"); id == "" || id != h.Get(HeaderRequestID) {
		t.Errorf("egress saw request id %q, client got %q", id, h.Get(HeaderRequestID))
	}
}

// The ingress and the egress both enforce the body limit; a chunked body
// over it is a 413 even though it fails mid-stream, inside the tunnel.
func TestTunnelledBodyLimit(t *testing.T) {
	checkLeaks(t)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	m := newMeshPair(t, up.URL, 16)
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 10)), strings.NewReader(strings.Repeat("y", 90)))
	req, _ := http.NewRequestWithContext(t.Context(), "POST", m.ingress.URL+"/openai/v1/x", body)
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("X-Mesh-Error") != "body_too_large" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
}

// A provider that breaks mid-body through the tunnel still breaks the
// client's response.
func TestTunnelledUpstreamBreak(t *testing.T) {
	checkLeaks(t)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: partial\n\n"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
	up.Config.ErrorLog = quietLog()
	m := newMeshPair(t, up.URL, 0)
	resp, err := m.client.Get(m.ingress.URL + "/openai/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %q and a clean end, want an error", b)
	}
	if string(b) != "data: partial\n\n" {
		t.Errorf("body before the break = %q", b)
	}
}
