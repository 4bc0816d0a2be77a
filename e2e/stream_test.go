package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
)

// TestStreamingIsNotBufferedAndCancelPropagates: the fake provider sends the
// opening events of an Anthropic stream and then thinks for ten minutes. The
// client must get those events at once (nothing buffers them), and when it
// hangs up, the provider's request must end within 2 s, through the tunnel too.
func TestStreamingIsNotBufferedAndCancelPropagates(t *testing.T) {
	m, us, hk := standardMesh(t)
	for _, tc := range []struct{ name, base string }{{"direct", baseURL(us)}, {"tunnel", baseURL(hk)}} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.provider.Stats()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ac := anthropic.NewClient(anthropicopt.WithBaseURL(tc.base+"/anthropic"), anthropicopt.WithAPIKey("sk-ant"), anthropicopt.WithMaxRetries(0))
			stream := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
				Model: "fake-claude", MaxTokens: 64,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("think hard"))},
			}, anthropicopt.WithHeader("X-Fake-Delay", "10m"), anthropicopt.WithHeader("X-Fake-Chunks", "2"))
			got := make(chan string, 1)
			go func() {
				if stream.Next() {
					got <- stream.Current().Type
				} else {
					got <- "error: " + fmt.Sprint(stream.Err())
				}
			}()
			select {
			case typ := <-got:
				if typ != "message_start" {
					t.Fatalf("first event %q, want message_start", typ)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the first event did not arrive while the provider was still generating: the stream is buffered")
			}
			wait.For(t, 5*time.Second, func() error {
				if s := m.provider.Stats(); s.Active != before.Active+1 {
					return fmt.Errorf("provider has %d active requests", s.Active)
				}
				return nil
			})
			hungUp := time.Now()
			cancel()
			stream.Close()
			wait.For(t, 2*time.Second, func() error {
				if s := m.provider.Stats(); s.Canceled <= before.Canceled {
					return fmt.Errorf("provider request not cancelled %s after the client hung up", time.Since(hungUp))
				}
				return nil
			})
		})
	}
}

// TestMidStreamFailureAborts: a provider that breaks off mid-stream must
// break the client's response too, never end it cleanly.
func TestMidStreamFailureAborts(t *testing.T) {
	_, us, hk := standardMesh(t)
	body := `{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct{ name, base string }{{"direct", baseURL(us)}, {"tunnel", baseURL(hk)}} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, "POST", tc.base+"/openai/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("X-Fake-Chunks", "5")
			req.Header.Set("X-Fake-Fail-After", "2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("read the whole body without error (%d bytes): a broken stream ended cleanly:\n%s", len(b), b)
			}
			if !strings.Contains(string(b), fakeprovider.Chunk(1)) {
				t.Fatalf("the chunks before the failure did not arrive: %q", b)
			}
		})
	}
}

// TestHeaderPolicy checks, at the provider, what crossed the mesh.
func TestHeaderPolicy(t *testing.T) {
	_, us, hk := standardMesh(t)
	keep := map[string]string{
		"Authorization": "Bearer sk-user", "X-Api-Key": "sk-ant-user", "Anthropic-Version": "2023-06-01",
		"Anthropic-Beta": "prompt-caching-2024-07-31", "Openai-Organization": "org-1", "Openai-Project": "proj-1",
		"X-Stainless-Lang": "go", "X-Stainless-Retry-Count": "0", "User-Agent": "OpenAI/Go 3.0", "Accept": "application/json",
		"Idempotency-Key": "idem-1", "X-Custom-Thing": "kept",
	}
	drop := []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip",
		"Cf-Connecting-Ip", "True-Client-Ip", "Cf-Ipcountry", "Via", "X-Hop", "X-Mesh-Hint", "Proxy-Authorization"}
	for _, tc := range []struct{ name, base string }{{"direct", baseURL(us)}, {"tunnel", baseURL(hk)}} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, "GET", tc.base+"/openai/v1/echo/headers?a=1&b=%20x", nil)
			for k, v := range keep {
				req.Header.Set(k, v)
			}
			for _, k := range drop {
				req.Header.Set(k, "203.0.113.7")
			}
			req.Header.Set("X-Mesh-Hint", "wnam")
			req.Header.Set("Connection", "X-Hop")
			resp, body := do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var echo struct {
				Path     string              `json:"path"`
				RawQuery string              `json:"raw_query"`
				Host     string              `json:"host"`
				Headers  map[string][]string `json:"headers"`
			}
			if err := json.Unmarshal([]byte(body), &echo); err != nil {
				t.Fatal(err)
			}
			for k, v := range keep {
				if got := echo.Headers[strings.ToLower(k)]; len(got) != 1 || got[0] != v {
					t.Errorf("%s reached the provider as %q, want %q", k, got, v)
				}
			}
			for _, k := range drop {
				if got, ok := echo.Headers[strings.ToLower(k)]; ok {
					t.Errorf("%s reached the provider: %q", k, got)
				}
			}
			if echo.Path != "/v1/echo/headers" || echo.RawQuery != "a=1&b=%20x" {
				t.Errorf("provider saw path %v query %v", echo.Path, echo.RawQuery)
			}
			if !strings.HasPrefix(echo.Host, "127.0.0.1:") {
				t.Errorf("Host %q is not the provider's", echo.Host)
			}
		})
	}
}

// TestGzipPassesThroughTunnel: compressed bytes and Content-Encoding arrive
// untouched (no decompression in the mesh).
func TestGzipPassesThroughTunnel(t *testing.T) {
	_, us, hk := standardMesh(t)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tc := range []struct{ name, base string }{{"direct", baseURL(us)}, {"tunnel", baseURL(hk)}} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, "GET", tc.base+"/openai/v1/echo/gzip", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			plain, err := gunzip(raw)
			if err != nil {
				t.Fatalf("body is not the provider's gzip stream: %v", err)
			}
			if !bytes.Equal(plain, fakeprovider.GzipPayload) {
				t.Fatalf("payload differs")
			}
		})
	}
}

// TestLargeUploadThroughTunnel streams a 20 MiB multipart upload through the
// tunnel and checks the provider got every byte.
func TestLargeUploadThroughTunnel(t *testing.T) {
	_, _, hk := standardMesh(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("purpose", "fine-tune")
	fw, _ := mw.CreateFormFile("file", "data.jsonl")
	io.CopyN(fw, rand.Reader, 20<<20)
	mw.Close()
	sum := sha256.Sum256(body.Bytes())
	size := body.Len()

	req := newRequest(t, "POST", baseURL(hk)+"/openai/v1/files/echo/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, out := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "egress" {
		t.Fatalf("status %d route %q: %s", resp.StatusCode, resp.Header.Get("X-Mesh-Route"), out)
	}
	var got struct {
		Bytes       int    `json:"bytes"`
		SHA256      string `json:"sha256"`
		ContentType string `json:"content_type"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Bytes != size || got.SHA256 != hex.EncodeToString(sum[:]) || got.ContentType != mw.FormDataContentType() {
		t.Fatalf("provider got %d bytes sha %s type %q; sent %d bytes sha %x", got.Bytes, got.SHA256, got.ContentType, size, sum)
	}
}

// TestGeminiSSE reads Gemini's SSE stream event by event through the tunnel.
func TestGeminiSSE(t *testing.T) {
	m, _, hk := standardMesh(t)
	req := newRequest(t, "POST", baseURL(hk)+"/gemini/v1beta/models/fake-gemini:streamGenerateContent?alt=sse&key=gm-key",
		strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	req.Header.Set("X-Fake-Chunks", "4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Candidates []struct {
				Content struct {
					Parts []struct{ Text string }
				}
			}
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		for _, c := range ev.Candidates {
			for _, p := range c.Content.Parts {
				text.WriteString(p.Text)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != fakeprovider.Text(4) {
		t.Fatalf("text %q", text.String())
	}
	reqs := m.provider.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/v1beta/models/fake-gemini:streamGenerateContent" || last.RawQuery != "alt=sse&key=gm-key" {
		t.Fatalf("provider saw %s?%s", last.Path, last.RawQuery)
	}
}
