package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/provider"
)

// seen is what the provider observed of a request.
type seen struct {
	method, escapedPath, rawQuery, host string
	header                              http.Header
	body                                string
}

// record reads r whole and says what the provider saw of it.
func record(r *http.Request) seen {
	b, _ := io.ReadAll(r.Body)
	return seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Host, r.Header.Clone(), string(b)}
}

func TestDirect(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		got <- record(r)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("X-Mesh-Route", "forged")
		h.Set("X-Mesh-Egress", "forged")
		h.Set("X-Mesh-Request-Id", "forged")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "X-Secret")
		h.Set("Connection", "X-Hop-Resp")
		h.Set("X-Hop-Resp", "1")
		h.Set("X-Request-Id", "req_provider")
		h.Set("Openai-Processing-Ms", "12")
		w.Write([]byte("data: hi\n\n"))
	})
	openai := newProvider(t, "openai", up.URL+"/base/", provider.StyleOpenAI, 1<<20)
	h := newHandler(t, Config{Providers: provider.NewRegistry(openai), Router: routeTo(Target{Route: "direct"})})
	srv, client := front(t, h)

	kept := map[string]string{
		"Authorization":       "Bearer sk-test",
		"Anthropic-Beta":      "tools-2024",
		"Anthropic-Version":   "2023-06-01",
		"Openai-Organization": "org-1",
		"Openai-Project":      "proj-1",
		"X-Stainless-Lang":    "js",
		"User-Agent":          "OpenAI/JS 4.0",
		"Accept":              "text/event-stream",
		"Accept-Encoding":     "gzip, br",
		"Idempotency-Key":     "idem-1",
		"Content-Type":        "application/json",
		"X-Custom":            "custom",
	}
	removed := map[string]string{
		"X-Forwarded-For":   "10.0.0.1",
		"X-Forwarded-Host":  "client.example",
		"X-Forwarded-Proto": "https",
		"Forwarded":         "for=10.0.0.1",
		"X-Real-Ip":         "10.0.0.1",
		"Cf-Connecting-Ip":  "10.0.0.1",
		"True-Client-Ip":    "10.0.0.1",
		"Cf-Ipcountry":      "DE",
		"Via":               "1.1 cdn",
		"X-Mesh-Hint":       "eu",
		"X-Mesh-Anything":   "x",
		"Proxy-Connection":  "keep-alive",
		"Keep-Alive":        "timeout=5",
		"X-Named-Hop":       "1", // named in Connection
	}
	body := `{"model":"gpt-4o","stream":true}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/openai/v1/chat/completions?x=1&key=a%2Fb", strings.NewReader(body))
	req.Host = "mesh.example"
	for k, v := range kept {
		req.Header.Set(k, v)
	}
	for k, v := range removed {
		req.Header.Set(k, v)
	}
	req.Header.Set("Connection", "X-Named-Hop")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := recv(t, got, 5*time.Second, "the provider")

	if s.method != http.MethodPost || s.escapedPath != "/base/v1/chat/completions" || s.rawQuery != "x=1&key=a%2Fb" {
		t.Errorf("provider saw %s %s ? %s", s.method, s.escapedPath, s.rawQuery)
	}
	if want := strings.TrimPrefix(up.URL, "http://"); s.host != want {
		t.Errorf("provider saw Host %q, want %q", s.host, want)
	}
	for k, v := range kept {
		if got := s.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	for k := range removed {
		if v, ok := s.header[k]; ok {
			t.Errorf("header %s reached the provider: %q", k, v)
		}
	}
	for _, k := range []string{"Connection", "Te", "Trailer", "Upgrade"} {
		if v, ok := s.header[k]; ok {
			t.Errorf("hop-by-hop %s reached the provider: %q", k, v)
		}
	}
	if s.body != body {
		t.Errorf("provider body = %q", s.body)
	}

	rh := resp.Header
	if v := rh.Get(HeaderRoute); v != "direct" {
		t.Errorf("%s = %q, want direct", HeaderRoute, v)
	}
	if v, ok := rh[HeaderEgress]; ok {
		t.Errorf("%s = %q on the direct path", HeaderEgress, v)
	}
	if ids := rh.Values(HeaderRequestID); len(ids) != 1 || ids[0] == "forged" || ids[0] == "" {
		t.Errorf("%s = %q, want the mesh's own", HeaderRequestID, ids)
	}
	if v := rh.Get("X-Accel-Buffering"); v != "no" {
		t.Errorf("X-Accel-Buffering = %q on SSE", v)
	}
	for k := range rh {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("provider CORS header %s reached the client", k)
		}
	}
	if _, ok := rh["X-Hop-Resp"]; ok {
		t.Error("a header the provider named in Connection reached the client")
	}
	if rh.Get("X-Request-Id") != "req_provider" || rh.Get("Openai-Processing-Ms") != "12" {
		t.Errorf("provider headers lost: %v", rh)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "data: hi\n\n" {
		t.Errorf("body = %q, %v", b, err)
	}
}

func TestURLMapping(t *testing.T) {
	checkLeaks(t)
	got := make(chan seen, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{escapedPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	reg := provider.NewRegistry(
		newProvider(t, "openai", up.URL+"/base", provider.StyleOpenAI, 0),
		newProvider(t, "root", up.URL, provider.StyleOpenAI, 0),
	)
	h := newHandler(t, Config{Providers: reg})
	tests := []struct{ in, path, query string }{
		{"/openai/v1/chat/completions?x=1", "/base/v1/chat/completions", "x=1"},
		{"/openai/v1/files/a%20b%2Cc", "/base/v1/files/a%20b%2Cc", ""},
		{"/openai/v1/models/", "/base/v1/models/", ""},
		{"/openai/v1/x@evil.com", "/base/v1/x@evil.com", ""},
		{"/openai", "/base", ""},
		{"/root/v1beta/models/gemini:streamGenerateContent?alt=sse&key=k", "/v1beta/models/gemini:streamGenerateContent", "alt=sse&key=k"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.in, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d: %s", tt.in, rec.Code, rec.Body)
			continue
		}
		s := recv(t, got, 5*time.Second, "the provider")
		if s.escapedPath != tt.path || s.rawQuery != tt.query {
			t.Errorf("%s → %s?%s, want %s?%s", tt.in, s.escapedPath, s.rawQuery, tt.path, tt.query)
		}
		if v := rec.Header().Get("X-Accel-Buffering"); v != "" {
			t.Errorf("%s: X-Accel-Buffering = %q on JSON", tt.in, v)
		}
		if v, ok := rec.Header()[HeaderRoute]; ok {
			t.Errorf("%s: %s = %q with no route set", tt.in, HeaderRoute, v)
		}
	}
}

// Requests the mesh refuses itself: the provider never hears of them, and
// the answer is in the JSON shape of the provider they were meant for.
func TestRefusals(t *testing.T) {
	checkLeaks(t)
	var hits atomic.Int64
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	reg := provider.NewRegistry(
		newProvider(t, "openai", up.URL, provider.StyleOpenAI, 1<<20),
		newProvider(t, "anthropic", up.URL, provider.StyleAnthropic, 16),
		newProvider(t, "gemini", up.URL, provider.StyleGemini, 1<<20),
	)
	h := newHandler(t, Config{Providers: reg, Router: routeTo(Target{Route: "direct"})})

	req := func(method, target string, tweak func(*http.Request)) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(method, target, nil)
			if tweak != nil {
				tweak(r)
			}
			return r
		}
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string // X-Mesh-Error
		style  provider.Style
	}{
		{"unknown provider", req("GET", "/nope/v1/x", nil), 404, "unknown_provider", provider.StyleOpenAI},
		{"empty first segment", req("GET", "//x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"double slash", req("GET", "/openai/v1//x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"dot dot", req("GET", "/openai/../x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"dot", req("GET", "/openai/./x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"encoded dot dot", req("GET", "/openai/%2e%2e/x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"mixed-case encoded dot dot", req("GET", "/openai/%2E./x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"encoded slash", req("GET", "/openai/a%2fb", nil), 400, "bad_path", provider.StyleOpenAI},
		{"encoded backslash", req("GET", "/openai/a%5Cb", nil), 400, "bad_path", provider.StyleOpenAI},
		{"backslash", req("GET", `/openai/a\b`, nil), 400, "bad_path", provider.StyleOpenAI},
		{"encoded NUL", req("GET", "/openai/a%00b", nil), 400, "bad_path", provider.StyleOpenAI},
		{"encoded CRLF", req("GET", "/openai/a%0d%0aHost:x", nil), 400, "bad_path", provider.StyleOpenAI},
		{"raw control char", req("GET", "/openai/x", func(r *http.Request) { r.URL.Path = "/openai/a\x01b" }), 400, "bad_path", provider.StyleOpenAI},
		{"raw DEL", req("GET", "/openai/x", func(r *http.Request) { r.URL.Path = "/openai/a\x7f" }), 400, "bad_path", provider.StyleOpenAI},
		{"bad path, anthropic shape", req("GET", "/anthropic/../x", nil), 400, "bad_path", provider.StyleAnthropic},
		{"CONNECT", req("CONNECT", "/openai/v1/x", nil), 405, "method_not_allowed", provider.StyleOpenAI},
		{"TRACE", req("TRACE", "/openai/v1/x", nil), 405, "method_not_allowed", provider.StyleOpenAI},
		{"TRACE, gemini shape", req("TRACE", "/gemini/v1/x", nil), 405, "method_not_allowed", provider.StyleGemini},
		{"absolute form", req("GET", "/openai/v1/x", func(r *http.Request) {
			r.URL.Scheme, r.URL.Host = "http", "evil.example"
		}), 400, "bad_request_target", provider.StyleOpenAI},
		{"host without scheme", req("GET", "/openai/v1/x", func(r *http.Request) { r.URL.Host = "evil.example" }), 400, "bad_request_target", provider.StyleOpenAI},
		{"asterisk form", req("OPTIONS", "*", nil), 400, "bad_request_target", provider.StyleOpenAI},
		{"control char in query", req("GET", "/openai/v1/x", func(r *http.Request) { r.URL.RawQuery = "a=\x01" }), 400, "bad_query", provider.StyleOpenAI},
		{"space in query", req("GET", "/openai/v1/x", func(r *http.Request) { r.URL.RawQuery = "a=b c" }), 400, "bad_query", provider.StyleOpenAI},
		{"fragment in query", req("GET", "/openai/v1/x", func(r *http.Request) { r.URL.RawQuery = "a=b#c" }), 400, "bad_query", provider.StyleOpenAI},
		{"declared body over the limit", func() *http.Request {
			return httptest.NewRequest("POST", "/anthropic/v1/messages", strings.NewReader(strings.Repeat("x", 17)))
		}, 413, "body_too_large", provider.StyleAnthropic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req())
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if c := rec.Header().Get("X-Mesh-Error"); c != tt.code {
				t.Errorf("X-Mesh-Error = %q, want %q", c, tt.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if rec.Header().Get(HeaderRequestID) == "" {
				t.Error("no request id on a refusal")
			}
			checkShape(t, decodeError(t, rec.Body), tt.style, tt.status, tt.code)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the provider was called %d times for refused requests", n)
	}
}

// checkShape checks e is in the JSON shape of style.
func checkShape(t *testing.T, e meshError, style provider.Style, status int, code string) {
	t.Helper()
	if e.Error.Message == "" {
		t.Error("empty error message")
	}
	switch style {
	case provider.StyleAnthropic:
		if e.Type != "error" || e.Error.Type == "" || e.Error.Code != nil || e.Error.Status != "" {
			t.Errorf("not the Anthropic shape: %+v", e)
		}
	case provider.StyleGemini:
		if c, ok := e.Error.Code.(float64); !ok || int(c) != status || e.Error.Status == "" || e.Type != "" {
			t.Errorf("not the Gemini shape: %+v", e)
		}
	default:
		if c, ok := e.Error.Code.(string); !ok || c != code || e.Error.Type == "" || e.Type != "" {
			t.Errorf("not the OpenAI shape: %+v", e)
		}
	}
}

func TestUnknownProviderListsProviders(t *testing.T) {
	checkLeaks(t)
	reg := provider.NewRegistry(
		newProvider(t, "openai", "https://api.openai.com", "", 0),
		newProvider(t, "anthropic", "https://api.anthropic.com", provider.StyleAnthropic, 0),
	)
	h := newHandler(t, Config{Providers: reg})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/mistral/v1/chat/completions", nil))
	e := decodeError(t, rec.Body)
	if rec.Code != 404 || e.Error.Type != "not_found_error" || !strings.Contains(e.Error.Message, "anthropic, openai") || !strings.Contains(e.Error.Message, `"mistral"`) {
		t.Errorf("%d %+v", rec.Code, e)
	}
}

func TestBodyLimit(t *testing.T) {
	checkLeaks(t)
	var hits atomic.Int64
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	anthropic := newProvider(t, "anthropic", up.URL, provider.StyleAnthropic, 16)
	h := newHandler(t, Config{Providers: provider.NewRegistry(anthropic)})
	srv, client := front(t, h)

	tests := []struct {
		name     string
		body     io.Reader
		provider bool // whether the provider may see the request start
	}{
		{"declared length", strings.NewReader(strings.Repeat("x", 100)), false},
		// An unknown length is only caught while the body streams.
		{"chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 10)), strings.NewReader(strings.Repeat("y", 90))), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/anthropic/v1/messages", tt.body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d: %s", resp.StatusCode, b)
			}
			e := decodeError(t, resp.Body)
			checkShape(t, e, provider.StyleAnthropic, 413, "body_too_large")
			if e.Error.Type != "request_too_large" || !strings.Contains(e.Error.Message, "16 bytes") {
				t.Errorf("error = %+v", e)
			}
			if !tt.provider && hits.Load() != before {
				t.Error("the provider was called for a body declared too large")
			}
		})
	}
	// Under the limit passes.
	resp, err := client.Post(srv.URL+"/anthropic/v1/messages", "application/json", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("small body: status %d", resp.StatusCode)
	}
}

func TestUpstreamFailures(t *testing.T) {
	checkLeaks(t)
	slowReleased := make(chan struct{})
	slow := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		close(slowReleased)
	})
	reg := provider.NewRegistry(
		newProvider(t, "down", "http://"+closedAddr(t), provider.StyleOpenAI, 0),
		newProvider(t, "slow", slow.URL, provider.StyleAnthropic, 0),
	)
	tr := NewTransport(time.Second, 200*time.Millisecond)
	t.Cleanup(tr.CloseIdleConnections)
	h := newHandler(t, Config{Providers: reg, Transport: tr, Router: routeTo(Target{Route: "direct"})})

	tests := []struct {
		path   string
		status int
		code   string
		style  provider.Style
	}{
		{"/down/v1/x", 502, "upstream_unreachable", provider.StyleOpenAI},
		{"/slow/v1/messages", 504, "upstream_timeout", provider.StyleAnthropic},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.status || rec.Header().Get("X-Mesh-Error") != tt.code {
			t.Errorf("%s: %d %q, want %d %q: %s", tt.path, rec.Code, rec.Header().Get("X-Mesh-Error"), tt.status, tt.code, rec.Body)
			continue
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v", tt.path, d)
		}
		if v := rec.Header().Get(HeaderRoute); v != "direct" {
			t.Errorf("%s: %s = %q on an error", tt.path, HeaderRoute, v)
		}
		checkShape(t, decodeError(t, rec.Body), tt.style, tt.status, tt.code)
	}
	// The timed-out provider call was cancelled, not left running.
	recv(t, slowReleased, 2*time.Second, "the slow provider's request to be cancelled")
}

func TestRouterErrors(t *testing.T) {
	checkLeaks(t)
	gemini := newProvider(t, "gemini", "http://"+closedAddr(t), provider.StyleGemini, 0)
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"provider error", &provider.Error{Status: 503, Code: "no_egress", Message: "no egress serves hint eu"}, 503, "no_egress"},
		{"wrapped provider error", errors.Join(errors.New("ctx"), &provider.Error{Status: 429, Code: "busy", Message: "busy"}), 429, "busy"},
		{"plain error", errors.New("boom"), 500, "routing_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			router := routerFunc(func(*http.Request, *provider.Provider) (Target, error) { return Target{}, tt.err })
			h := newHandler(t, Config{Providers: provider.NewRegistry(gemini), Router: router})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/gemini/v1beta/models/x:generateContent", strings.NewReader("{}")))
			if rec.Code != tt.status || rec.Header().Get("X-Mesh-Error") != tt.code {
				t.Fatalf("%d %q: %s", rec.Code, rec.Header().Get("X-Mesh-Error"), rec.Body)
			}
			e := decodeError(t, rec.Body)
			checkShape(t, e, provider.StyleGemini, tt.status, tt.code)
			if tt.status == 503 {
				if e.Error.Status != "UNAVAILABLE" || e.Error.Message != "no egress serves hint eu" {
					t.Errorf("error = %+v", e)
				}
				if rec.Header().Get("Retry-After") == "" {
					t.Error("no Retry-After on 503")
				}
			}
		})
	}
}

// A provider that breaks after the response head: the client must see a
// failed read, never a clean end it would take for a complete answer.
func TestUpstreamBreaksMidBody(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		h    http.HandlerFunc
		// headless: the break may come before the mesh sent its response
		// head (a declared length is not flushed early): then the request
		// itself fails, which is as good.
		headless bool
	}{
		{"abort", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: partial\n\n"))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}, false},
		{"hijack and close", func(w http.ResponseWriter, r *http.Request) {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			bw.WriteString("f\r\ndata: partial\n\n\r\n")
			bw.Flush()
		}, false},
		{"short content length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte("data: partial\n\n"))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := upstream(t, tt.h)
			up.Config.ErrorLog = quietLog()
			h := newHandler(t, Config{Providers: provider.NewRegistry(newProvider(t, "p", up.URL, "", 0))})
			srv, client := front(t, h)
			srv.Config.ErrorLog = quietLog()
			resp, err := client.Get(srv.URL + "/p/v1/stream")
			if err != nil {
				if !tt.headless {
					t.Fatal(err)
				}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("read %q and a clean end, want an error", b)
			}
			if !tt.headless && !strings.HasPrefix(string(b), "data: partial") {
				t.Errorf("body before the break = %q", b)
			}
		})
	}
}

func TestRedirectsPassThrough(t *testing.T) {
	checkLeaks(t)
	var targetHits atomic.Int64
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) })
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusFound
		if r.Method == http.MethodPost {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, target.URL+"/landing?key=secret", code)
	})
	h := newHandler(t, Config{Providers: provider.NewRegistry(newProvider(t, "p", up.URL, "", 0))})
	srv, client := front(t, h)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+"/p/v1/files/1", strings.NewReader("body"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != target.URL+"/landing?key=secret" {
			t.Errorf("%s: %d, Location %q", method, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("the redirect target was called %d times", n)
	}
}

func TestScrub(t *testing.T) {
	ue := &url.Error{Op: "Post", URL: "https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSECRET", Err: errors.New("dial tcp 10.0.0.1:443: connect: connection refused")}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), "plain"},
		{ue, "Post: dial tcp 10.0.0.1:443: connect: connection refused"},
		{errors.Join(errors.New("outer"), ue), "Post: dial tcp 10.0.0.1:443: connect: connection refused"},
		{&url.Error{Op: "Get", URL: "http://x/?key=AIzaSECRET", Err: &url.Error{Op: "Get", URL: "http://y/?key=AIzaSECRET", Err: context.DeadlineExceeded}}, "Get: Get: context deadline exceeded"},
	}
	for _, tt := range tests {
		got := scrub(tt.err)
		if got != tt.want {
			t.Errorf("scrub(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if strings.Contains(got, "SECRET") || strings.Contains(got, "://") {
			t.Errorf("scrub left a URL: %q", got)
		}
	}
	// A real client error from a failed call carries the URL; scrub drops it.
	_, err := http.Get("http://" + closedAddr(t) + "/v1?key=AIzaSECRET")
	if err == nil {
		t.Fatal("call to a closed port succeeded")
	}
	if s := scrub(err); strings.Contains(s, "SECRET") || !strings.Contains(err.Error(), "SECRET") {
		t.Errorf("scrub(%q) = %q", err, s)
	}
}

// Hanging up on the mesh cancels the provider call, before or after its
// response head.
func TestClientDisconnectCancelsProvider(t *testing.T) {
	checkLeaks(t)
	for _, afterHead := range []bool{false, true} {
		name := "before head"
		if afterHead {
			name = "after head"
		}
		t.Run(name, func(t *testing.T) {
			started := make(chan struct{})
			ended := make(chan error, 1)
			up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				// A provider reads the request before it thinks; Go's server
				// notices a hang-up only once the body is consumed.
				io.ReadAll(r.Body)
				if afterHead {
					w.Header().Set("Content-Type", "text/event-stream")
					w.Write([]byte("data: thinking\n\n"))
					http.NewResponseController(w).Flush()
				}
				close(started)
				select {
				case <-r.Context().Done():
					ended <- r.Context().Err()
				case <-time.After(10 * time.Second):
					ended <- errors.New("provider context never ended")
				}
			})
			h := newHandler(t, Config{Providers: provider.NewRegistry(newProvider(t, "p", up.URL, "", 0))})
			srv, client := front(t, h)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/p/v1/chat/completions", strings.NewReader("{}"))
			done := make(chan error, 1)
			go func() {
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
			recv(t, started, 5*time.Second, "the provider to get the request")
			cancel()
			if err := recv(t, ended, 2*time.Second, "the provider's context to end"); !errors.Is(err, context.Canceled) {
				t.Errorf("provider context: %v", err)
			}
			if err := recv(t, done, 2*time.Second, "the client to return"); !errors.Is(err, context.Canceled) {
				t.Errorf("client: %v", err)
			}
		})
	}
}

// The handler streams SSE: each event reaches the client as the provider
// flushes it.
func TestSSEStreams(t *testing.T) {
	checkLeaks(t)
	next := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
			w.Write([]byte("data: event\n\n"))
			http.NewResponseController(w).Flush()
		}
	})
	h := newHandler(t, Config{Providers: provider.NewRegistry(newProvider(t, "p", up.URL, "", 0))})
	srv, client := front(t, h)
	resp, err := client.Get(srv.URL + "/p/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line := make(chan string, 1)
		go func() {
			s, _ := br.ReadString('\n')
			br.ReadString('\n')
			line <- s
		}()
		if s := recv(t, line, 5*time.Second, "an event while the provider waits"); s != "data: event\n" {
			t.Fatalf("event %d = %q", i, s)
		}
		if i < 2 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the events: %q, %v", rest, err)
	}
}

func TestStatusWriterUnwraps(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &statusWriter{ResponseWriter: rec}
	if err := http.NewResponseController(sw).Flush(); err != nil {
		t.Errorf("flush through statusWriter: %v", err)
	}
	if !rec.Flushed {
		t.Error("the flush did not reach the underlying writer")
	}
	sw.WriteHeader(http.StatusContinue)
	sw.WriteHeader(http.StatusTeapot)
	sw.Write([]byte("abc"))
	if sw.code() != http.StatusTeapot || sw.bytes != 3 {
		t.Errorf("status %d, bytes %d", sw.code(), sw.bytes)
	}
	if rec.Body.String() != "abc" {
		t.Errorf("body %q", rec.Body)
	}
}
