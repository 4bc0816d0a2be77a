package fakeprovider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// generating is one generating route, with what it needs to succeed.
type generating struct {
	name   string
	path   string
	body   string
	header map[string]string
}

func generatingRoutes() []generating {
	openaiBody := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	anthropicBody := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	anthropicHeader := map[string]string{"anthropic-version": "2023-06-01", "x-api-key": "k"}
	geminiHeader := map[string]string{"x-goog-api-key": "k"}
	streamed := func(b string) string { return strings.Replace(b, `{`, `{"stream":true,`, 1) }
	return []generating{
		{"openai", "/v1/chat/completions", openaiBody, nil},
		{"openai stream", "/v1/chat/completions", streamed(openaiBody), nil},
		{"openrouter stream", "/api/v1/chat/completions", streamed(openaiBody), nil},
		{"anthropic", "/v1/messages", anthropicBody, anthropicHeader},
		{"anthropic stream", "/v1/messages", streamed(anthropicBody), anthropicHeader},
		{"gemini", "/v1beta/models/m:generateContent", geminiBody, geminiHeader},
		{"gemini sse", "/v1beta/models/m:streamGenerateContent?alt=sse", geminiBody, geminiHeader},
		{"gemini array", "/v1beta/models/m:streamGenerateContent", geminiBody, geminiHeader},
	}
}

func withHeader(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestGeneratingRoutes(t *testing.T) {
	srv := start(t)
	for _, g := range generatingRoutes() {
		t.Run(g.name, func(t *testing.T) {
			res := do(t, http.MethodPost, srv.URL+g.path, g.body, withHeader(g.header, HeaderChunks, "6"))
			b, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, err %v, body %s", res.StatusCode, err, b)
			}
			// Chunk texts appear in order whatever the framing.
			body := string(b)
			for i := range 6 {
				j := strings.Index(body, Chunk(i))
				if j < 0 {
					t.Fatalf("chunk %d missing from %s", i, b)
				}
				body = body[j:]
			}
			if strings.Contains(string(b), Chunk(6)) {
				t.Errorf("more than 6 chunks in %s", b)
			}

			res = do(t, http.MethodPost, srv.URL+g.path, g.body, withHeader(g.header, HeaderChunks, "0"))
			b, err = io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK || strings.Contains(string(b), Chunk(0)) {
				t.Errorf("no chunks: status %d, err %v, body %s", res.StatusCode, err, b)
			}
		})
	}
}

func TestStatusShapes(t *testing.T) {
	srv := start(t)
	for _, g := range generatingRoutes() {
		t.Run(g.name, func(t *testing.T) {
			res := do(t, http.MethodPost, srv.URL+g.path, g.body, withHeader(g.header, HeaderStatus, "429"))
			if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("status %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
			}
			v := decodeBody(t, res)
			var ok bool
			switch {
			case strings.HasPrefix(g.name, "anthropic"):
				ok = get(v, "type") == "error" && get(v, "error", "type") == "rate_limit_error" && get(v, "error", "message") != nil
			case strings.HasPrefix(g.name, "gemini"):
				ok = get(v, "error", "code") == float64(429) && get(v, "error", "status") == "RESOURCE_EXHAUSTED" && get(v, "error", "message") != nil
			default:
				ok = get(v, "error", "type") == "rate_limit_error" && get(v, "error", "code") == "rate_limit_exceeded" && get(v, "error", "message") != nil
			}
			if !ok {
				t.Errorf("body %v", v)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := start(t)
	for _, g := range generatingRoutes() {
		t.Run(g.name, func(t *testing.T) {
			cases := []struct {
				method, body string
				header       map[string]string
				status       int
			}{
				{http.MethodPost, g.body, withHeader(g.header, HeaderDelay, "soon"), http.StatusBadRequest},
				{http.MethodPost, "not json", g.header, http.StatusBadRequest},
				{http.MethodGet, "", g.header, http.StatusMethodNotAllowed},
			}
			for _, c := range cases {
				res := do(t, c.method, srv.URL+g.path, c.body, c.header)
				if res.StatusCode != c.status {
					t.Errorf("%s %q: status %d, want %d", c.method, c.body, res.StatusCode, c.status)
				}
				if v := decodeBody(t, res); v["error"] == nil {
					t.Errorf("%s %q: body %v", c.method, c.body, v)
				}
			}
		})
	}
}

func TestFailAfter(t *testing.T) {
	srv := start(t)
	for _, g := range generatingRoutes() {
		for _, after := range []string{"0", "2", "9"} {
			t.Run(g.name+"/"+after, func(t *testing.T) {
				res := do(t, http.MethodPost, srv.URL+g.path, g.body, withHeader(g.header, HeaderChunks, "4", HeaderFailAfter, after))
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d", res.StatusCode)
				}
				b, err := io.ReadAll(res.Body)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read err = %v (body %q), want unexpected EOF", err, b)
				}
				if !strings.Contains(g.name, " ") { // non-streaming: half a body
					return
				}
				n := min(4, int(after[0]-'0'))
				if n > 0 && !strings.Contains(string(b), Chunk(n-1)) || strings.Contains(string(b), Chunk(n)) {
					t.Errorf("want exactly %d chunks before the break, got %q", n, b)
				}
			})
		}
	}
	if c := srv.Stats().Canceled; c != 0 {
		t.Errorf("aborts counted as %d cancellations", c)
	}
}

func TestHeaderDelayCancel(t *testing.T) {
	srv := start(t)
	for i, g := range generatingRoutes() {
		t.Run(g.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+g.path, strings.NewReader(g.body))
			for k, v := range withHeader(g.header, HeaderHeaderDelay, "1m") {
				req.Header.Set(k, v)
			}
			errc := make(chan error, 1)
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					res.Body.Close()
				}
				errc <- err
			}()
			wait.Until(t, 5*time.Second, "the handler to start", func() bool { return srv.Stats().Active == 1 })
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("client err = %v", err)
			}
			wait.Until(t, 5*time.Second, "the cancellation to be counted", func() bool {
				s := srv.Stats()
				return s.Canceled == i+1 && s.Active == 0
			})
		})
	}
}

func TestDelayCancelMidStream(t *testing.T) {
	srv := start(t)
	res := do(t, http.MethodPost, srv.URL+"/v1/chat/completions", `{"model":"m","stream":true}`,
		map[string]string{HeaderChunks: "1000", HeaderDelay: "20ms"})
	buf := make([]byte, 64)
	if _, err := io.ReadAtLeast(res.Body, buf, 1); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wait.Until(t, 5*time.Second, "the cancellation to be counted", func() bool {
		s := srv.Stats()
		return s.Canceled == 1 && s.Active == 0
	})
}

func TestDelayPacesChunks(t *testing.T) {
	srv := start(t)
	begin := time.Now()
	res := do(t, http.MethodPost, srv.URL+"/v1/chat/completions", `{"model":"m"}`,
		map[string]string{HeaderChunks: "3", HeaderDelay: "30ms"})
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 90*time.Millisecond {
		t.Errorf("answered after %v, want at least 3 × 30ms", d)
	}
}

func TestRecording(t *testing.T) {
	srv := start(t)
	body := `{"model":"m","messages":[]}`
	do(t, http.MethodPost, srv.URL+"/v1/chat/completions?x=1", body, map[string]string{"Authorization": "Bearer sk-1"})
	do(t, http.MethodGet, srv.URL+"/nowhere", "", nil)

	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded, want 2", len(reqs))
	}
	sum := sha256.Sum256([]byte(body))
	got := reqs[0]
	if got.Method != http.MethodPost || got.Path != "/v1/chat/completions" || got.RawQuery != "x=1" ||
		got.Host != strings.TrimPrefix(srv.URL, "http://") || got.Header.Get("Authorization") != "Bearer sk-1" ||
		got.BodyBytes != int64(len(body)) || got.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("recorded %+v", got)
	}
	if reqs[1].Path != "/nowhere" || reqs[1].BodyBytes != 0 {
		t.Errorf("recorded %+v", reqs[1])
	}
	// Requests returns a copy.
	reqs[0].Header.Set("Authorization", "changed")
	if srv.Requests()[0].Header.Get("Authorization") != "Bearer sk-1" {
		t.Error("Requests shares headers with the recorder")
	}
	if s := srv.Stats(); s.Requests != 2 || s.Active != 0 {
		t.Errorf("stats %+v", s)
	}
	srv.Reset()
	if s := srv.Stats(); s != (Stats{}) || len(srv.Requests()) != 0 {
		t.Errorf("after Reset: stats %+v, %d requests", s, len(srv.Requests()))
	}
}

// A bare Provider works behind any server, here a ResponseRecorder.
func TestProviderHandler(t *testing.T) {
	p := New()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.HasSuffix(rec.Body.String(), "data: [DONE]\n\n") || !rec.Flushed {
		t.Errorf("status %d, flushed %v, body %q", rec.Code, rec.Flushed, rec.Body.String())
	}
	if len(p.Requests()) != 1 {
		t.Errorf("%d requests recorded", len(p.Requests()))
	}
}

func TestCloseEndsHandlers(t *testing.T) {
	srv, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		req.Header.Set(HeaderHeaderDelay, "1m")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	wait.Until(t, 5*time.Second, "the handler to start", func() bool { return srv.Stats().Active == 1 })
	srv.Close() // returns only once the handler has
	if s := srv.Stats(); s.Active != 0 || s.Canceled != 1 {
		t.Errorf("after Close: %+v", s)
	}
	if err := <-errc; err == nil {
		t.Error("client got an answer from a closed server")
	}
	srv.Close() // idempotent
}
