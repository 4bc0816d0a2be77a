package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/provider"
)

// A small body of known length reaches the provider with its head in one
// write. (Both must fit the transport's write buffer, 4 KiB, as most chat
// requests do.)
func TestSmallBodyOneWrite(t *testing.T) {
	checkLeaks(t)
	got := make(chan string, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	})
	var writes atomic.Int64
	tr := NewTransport(2*time.Second, 10*time.Second)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{c, &writes}, err
	}
	t.Cleanup(tr.CloseIdleConnections)
	p := newProvider(t, "p", up.URL, provider.StyleOpenAI, 1<<20)
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Transport: tr, BodyIdleTimeout: 30 * time.Second, MinBodyRate: 4096})
	srv, client := front(t, h)
	body := strings.Repeat("b", 3<<10)
	resp, err := client.Post(srv.URL+"/p/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b := recv(t, got, 5*time.Second, "the provider"); b != body || resp.StatusCode != 200 {
		t.Fatalf("status %d, the provider got %d bytes", resp.StatusCode, len(b))
	}
	if n := writes.Load(); n != 1 {
		t.Errorf("the request took %d writes to the provider, want 1", n)
	}
}

// countingConn counts its writes.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A small body that stops arriving gets 408, and the provider never hears
// of the request: nothing is sent until the whole body is in. On HTTP/1.1
// and h2c.
func TestSmallBodyStalled(t *testing.T) {
	checkLeaks(t)
	for name, serve := range map[string]func(testing.TB, http.Handler) (*httptest.Server, *http.Client){"HTTP/1.1": front, "h2c": h2cFront} {
		t.Run(name, func(t *testing.T) {
			called := make(chan struct{}, 1)
			up := upstream(t, func(w http.ResponseWriter, r *http.Request) { called <- struct{}{} })
			p := newProvider(t, "anthropic", up.URL, provider.StyleAnthropic, 0)
			h := newHandler(t, Config{Providers: provider.NewRegistry(p), BodyIdleTimeout: 200 * time.Millisecond, MinBodyRate: 1})
			srv, client := serve(t, h)
			srv.Config.ErrorLog = quietLog()
			resp, err := stalledClient(t, client, srv.URL+"/anthropic/v1/messages", 1000, 999)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Mesh-Error") != "request_body_timeout" {
				t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("X-Mesh-Error"))
			}
			select {
			case <-called:
				t.Error("the provider was called with an incomplete small body")
			default:
			}
		})
	}
}

// A body shorter than its Content-Length fails before anything is sent.
func TestReadSmallBody(t *testing.T) {
	tests := []struct {
		body     string
		declared int64
		wantErr  bool
		inMemory bool
	}{
		{"hello", 5, false, true},
		{"hell", 5, true, false},
		{"", 0, false, false},
		{strings.Repeat("x", SmallBody+1), SmallBody + 1, false, false},
	}
	for _, tt := range tests {
		original := io.NopCloser(strings.NewReader(tt.body))
		req, _ := http.NewRequest("POST", "http://x/", original)
		req.ContentLength = tt.declared
		if tt.declared == 0 {
			req.Body = http.NoBody
		}
		err := readSmallBody(req)
		if (err != nil) != tt.wantErr {
			t.Errorf("%d of %d bytes: err %v", len(tt.body), tt.declared, err)
			continue
		}
		if err != nil {
			continue
		}
		if got, _ := io.ReadAll(req.Body); string(got) != tt.body {
			t.Errorf("%d bytes: read back %d", len(tt.body), len(got))
		}
		if isMemory := req.Body != original && req.Body != http.NoBody; isMemory != tt.inMemory {
			t.Errorf("%d bytes: in memory %v, want %v", len(tt.body), isMemory, tt.inMemory)
		}
	}
}
