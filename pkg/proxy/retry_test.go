package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// retrier routes to first, retries to second, and reroutes region refusals
// to second as well.
type retrier struct {
	first, second Target
	mu            sync.Mutex
	retried       [][]string
}

func (r *retrier) Route(*http.Request, *provider.Provider) (Target, error) { return r.first, nil }

func (r *retrier) Retry(_ *http.Request, _ *provider.Provider, tried []string) (Target, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retried = append(r.retried, tried)
	return r.second, true
}

func (r *retrier) RegionRefused(*http.Request, *provider.Provider) (Target, bool) {
	return r.second, true
}

// refusing is a tunnel that the egress never accepted.
type refusing struct{ calls int }

func (f *refusing) RoundTrip(req *http.Request) (*http.Response, error) {
	f.calls++
	if req.Body != nil {
		io.Copy(io.Discard, req.Body) // a refused stream may have consumed the body
		req.Body.Close()
	}
	return nil, &tunnel.NotSentError{Egress: "refuser", Err: tunnel.ErrUnavailable}
}

// recording answers 200 with the body it got, and the credentials it saw.
type recording struct {
	mu     sync.Mutex
	bodies []string
	urls   []string
	auth   []string
}

func (f *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, string(b))
	f.urls = append(f.urls, req.URL.String())
	f.auth = append(f.auth, req.Header.Get("Authorization"))
	f.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
}

func TestRetryKeepsSmallBodiesOnly(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
		retried bool
	}{
		{"small body", strings.Repeat("a", 50), false, true},
		{"small chunked body", strings.Repeat("b", 50), true, true},
		{"no body", "", false, true},
		{"large body", strings.Repeat("c", 500), false, false},
		{"large chunked body", strings.Repeat("d", 500), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, rec := &refusing{}, &recording{}
			rt := &retrier{
				first:  Target{Transport: ref, Tunnel: true, Route: "egress", Egress: "refuser", Hint: "wnam"},
				second: Target{Transport: rec, Tunnel: true, Route: "egress", Egress: "taker", Hint: "wnam"},
			}
			h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // unknown length
				}
			}
			req := httptest.NewRequest("POST", "/openai/v1/chat/completions", body)
			if tc.chunked {
				req.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if ref.calls != 1 {
				t.Fatalf("refusing egress called %d times", ref.calls)
			}
			if !tc.retried {
				if w.Code != http.StatusBadGateway || len(rec.bodies) != 0 {
					t.Fatalf("a body above retry_body_bytes was retried: %d, %d calls", w.Code, len(rec.bodies))
				}
				return
			}
			if w.Code != 200 || len(rec.bodies) != 1 || rec.bodies[0] != tc.body {
				t.Fatalf("status %d, retried bodies %q, want one %q", w.Code, rec.bodies, tc.body)
			}
			if w.Header().Get(HeaderEgress) != "taker" || len(rt.retried) != 1 || rt.retried[0][0] != "refuser" {
				t.Fatalf("egress header %q, retries %v", w.Header().Get(HeaderEgress), rt.retried)
			}
			if !strings.HasPrefix(rec.urls[0], "llmesh://openai/v1/chat/completions") {
				t.Fatalf("retried URL %s", rec.urls[0])
			}
		})
	}
}

// TestRetryNeverAfterAcceptance: an error that is not NotSentError (the
// egress took the exchange) is final.
func TestRetryNeverAfterAcceptance(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	rec := &recording{}
	broken := roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.Join(tunnel.ErrAborted, errors.New("connection reset"))
	})
	rt := &retrier{first: Target{Transport: broken, Tunnel: true, Route: "egress", Egress: "e1"}, second: Target{Transport: rec, Tunnel: true}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/openai/v1/x", strings.NewReader("{}")))
	if w.Code != http.StatusBadGateway || len(rec.bodies) != 0 || len(rt.retried) != 0 {
		t.Fatalf("status %d, retried %d times", w.Code, len(rec.bodies))
	}
}

// TestRegionRefusalReroutesWithoutTheRealKey: a direct region refusal is
// retried through the tunnel; the real key injected for the direct try is
// stripped before the tunnel, and a refusal of a body that was not kept
// reaches the client as it is.
func TestRegionRefusalReroutesWithoutTheRealKey(t *testing.T) {
	checkLeaks(t)
	refusal := `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`
	blocked := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, refusal)
	})
	p := newProvider(t, "openai", blocked.URL, provider.StyleOpenAI, 1<<20)
	p.Managed, p.APIKey = true, "sk-real"
	rec := &recording{}
	rt := &retrier{first: Target{Route: "direct"}, second: Target{Transport: rec, Tunnel: true, Route: "egress", Egress: "e1", Hint: "wnam", Reroute: "region-block"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100, RegionReroute: true, AccessKeys: []AccessKey{{Key: "ak"}}})

	req := httptest.NewRequest("POST", "/openai/v1/chat/completions", strings.NewReader(`{"m":1}`))
	req.Header.Set("Authorization", "Bearer ak")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || w.Header().Get(HeaderReroute) != "region-block" || len(rec.bodies) != 1 || rec.bodies[0] != `{"m":1}` {
		t.Fatalf("status %d reroute %q bodies %q", w.Code, w.Header().Get(HeaderReroute), rec.bodies)
	}
	if rec.auth[0] != "" {
		t.Fatalf("the real key crossed the tunnel: %q", rec.auth[0])
	}

	// A body too large to keep: the refusal is the answer, byte for byte.
	req = httptest.NewRequest("POST", "/openai/v1/chat/completions", strings.NewReader(strings.Repeat("x", 500)))
	req.Header.Set("Authorization", "Bearer ak")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || w.Body.String() != refusal || len(rec.bodies) != 1 {
		t.Fatalf("status %d body %q, %d reroutes", w.Code, w.Body.String(), len(rec.bodies))
	}
}

// TestRetryToDirectNeedsALocalKey: a managed request refused by the egress
// is not sent direct when this node holds no key to inject.
func TestRetryToDirectNeedsALocalKey(t *testing.T) {
	checkLeaks(t)
	called := false
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { called = true })
	p := newProvider(t, "openai", up.URL, provider.StyleOpenAI, 1<<20)
	p.Managed = true // the real key lives on the egress only
	rt := &retrier{first: Target{Transport: &refusing{}, Tunnel: true, Route: "egress", Egress: "refuser"}, second: Target{Route: "direct"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100, AccessKeys: []AccessKey{{Key: "ak"}}})
	req := httptest.NewRequest("POST", "/openai/v1/x", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer ak")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusBadGateway || called {
		t.Fatalf("status %d, provider called %v", w.Code, called)
	}
}
