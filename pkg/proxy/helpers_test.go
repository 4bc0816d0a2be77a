package proxy

import (
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmesh/llmesh/pkg/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkLeaks fails t if goroutines outlive it. Registered first, it runs
// after every other cleanup (servers closed, idle connections dropped).
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

type routerFunc func(*http.Request, *provider.Provider) (Target, error)

func (f routerFunc) Route(r *http.Request, p *provider.Provider) (Target, error) { return f(r, p) }

// routeTo always answers t.
func routeTo(t Target) Router {
	return routerFunc(func(*http.Request, *provider.Provider) (Target, error) { return t, nil })
}

// upstream starts a provider that runs h.
func upstream(tb testing.TB, h http.HandlerFunc) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s
}

func newProvider(tb testing.TB, name, base string, style provider.Style, maxBody int64) *provider.Provider {
	tb.Helper()
	p, err := provider.New(name, base, style, maxBody)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newHandler returns a proxy handler with a direct transport that is
// closed when the test ends.
func newHandler(tb testing.TB, cfg Config) *Handler {
	tb.Helper()
	if cfg.Transport == nil {
		tr := NewTransport(2*time.Second, 10*time.Second)
		tb.Cleanup(tr.CloseIdleConnections)
		cfg.Transport = tr
	}
	return New(cfg)
}

// front serves h as a real HTTP server and returns a client for it that
// never follows redirects.
func front(tb testing.TB, h http.Handler) (*httptest.Server, *http.Client) {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	tr := &http.Transport{DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return s, &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// meshError is the union of the three error shapes.
type meshError struct {
	Type  string `json:"type"` // anthropic
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`   // openai, anthropic
		Code    any    `json:"code"`   // openai: string, gemini: number
		Status  string `json:"status"` // gemini
	} `json:"error"`
}

func decodeError(tb testing.TB, body io.Reader) meshError {
	tb.Helper()
	var e meshError
	if err := json.NewDecoder(body).Decode(&e); err != nil {
		tb.Fatalf("decoding the error body: %v", err)
	}
	return e
}

// quietLog is a server error log for tests that break connections on purpose.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

func recv[T any](tb testing.TB, ch <-chan T, d time.Duration, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		tb.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}
