package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestRegionBlockReroute: a provider that refuses the ingress's region is
// retried through the on_region_block pool before anything reaches the
// client, and later requests go straight to the pool.
func TestRegionBlockReroute(t *testing.T) {
	m := newMesh(t)
	blocked, err := fakeprovider.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocked.Close()
	blocked.SetRegionBlocked(true)
	m.start(nodeSpec{role: role.Egress, name: "rb-wnam", loc: "US", hint: "wnam"})
	in := m.start(nodeSpec{role: role.Ingress, name: "rb-hk", loc: "HK", providerURL: blocked.URL,
		edit: func(c *config.Config) { c.Routing.OnRegionBlock = "wnam" }})
	m.waitMembers(in, "rb-wnam")

	for _, tc := range []struct{ name, path, body string }{
		{"openai", "/openai/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"hi"}]}`},
		{"anthropic", "/anthropic/v1/messages", `{"model":"fake-claude","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`},
		{"gemini", "/gemini/v1beta/models/fake-gemini:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 {
				blockedBefore, goodBefore := blocked.Stats().Requests, m.provider.Stats().Requests
				req := newRequest(t, "POST", baseURL(in)+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer sk-user")
				req.Header.Set("X-Api-Key", "sk-user")
				req.Header.Set("X-Goog-Api-Key", "sk-user")
				req.Header.Set("Anthropic-Version", "2023-06-01")
				resp, body := do(t, req)
				if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "egress" || resp.Header.Get("X-Mesh-Reroute") != "region-block" {
					t.Fatalf("request %d: %d route %q reroute %q: %s", i, resp.StatusCode, resp.Header.Get("X-Mesh-Route"), resp.Header.Get("X-Mesh-Reroute"), body)
				}
				wantBlocked := 1 // the first request meets the refusal; the next go straight to the pool
				if i > 0 {
					wantBlocked = 0
				}
				if got := blocked.Stats().Requests - blockedBefore; got != wantBlocked {
					t.Fatalf("request %d: the refusing provider saw %d requests, want %d", i, got, wantBlocked)
				}
				if got := m.provider.Stats().Requests - goodBefore; got != 1 {
					t.Fatalf("request %d: the provider behind the egress saw %d requests, want 1", i, got)
				}
				last := m.provider.Requests()[len(m.provider.Requests())-1]
				if int(last.BodyBytes) != len(tc.body) {
					t.Fatalf("the replayed body has %d bytes, want %d", last.BodyBytes, len(tc.body))
				}
			}
		})
	}
}

// TestRollingRestartUnderLoad restarts every egress of the pool, one after
// the other, while clients keep sending short requests and long SSE streams.
// No request may fail, no stream may be cut, and the provider must see each
// request exactly once.
func TestRollingRestartUnderLoad(t *testing.T) {
	m := newMesh(t)
	m.start(nodeSpec{role: role.Egress, name: "rr-1", loc: "US", hint: "wnam"})
	m.start(nodeSpec{role: role.Egress, name: "rr-2", loc: "US", hint: "wnam"})
	hk := m.start(nodeSpec{role: role.Ingress, name: "rr-hk", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}, providerURL: closedURL(t)})
	m.waitMembers(hk, "rr-1", "rr-2")
	before := m.provider.Stats().Requests

	client := openai.NewClient(option.WithBaseURL(baseURL(hk)+"/openai/v1"), option.WithAPIKey("sk"), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "fake-gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	traffic := startLoad(t, 4, func(w, i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if (w+i)%2 == 0 {
			// A stream of 8 chunks, 100 ms apart: it spans the restarts.
			s := client.Chat.Completions.NewStreaming(ctx, params, option.WithHeader("X-Fake-Chunks", "8"), option.WithHeader("X-Fake-Delay", "100ms"))
			acc := openai.ChatCompletionAccumulator{}
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				return err
			}
			if len(acc.Choices) == 0 || acc.Choices[0].Message.Content != fakeprovider.Text(8) {
				return fmt.Errorf("stream cut: %+v", acc.Choices)
			}
			return nil
		}
		c, err := client.Chat.Completions.New(ctx, params)
		if err == nil && c.Choices[0].Message.Content != fakeprovider.Text(3) {
			err = fmt.Errorf("content %q", c.Choices[0].Message.Content)
		}
		return err
	})
	traffic.progress(t, 10, 20*time.Second)
	m.stop("rr-1")
	m.start(nodeSpec{role: role.Egress, name: "rr-1b", loc: "US", hint: "wnam"})
	m.waitMembers(hk, "rr-1b")
	traffic.progress(t, 10, 20*time.Second)
	m.stop("rr-2")
	m.start(nodeSpec{role: role.Egress, name: "rr-2b", loc: "US", hint: "wnam"})
	m.waitMembers(hk, "rr-2b")
	traffic.progress(t, 10, 20*time.Second)
	sent := traffic.finish(t)
	if got := int64(m.provider.Stats().Requests - before); got != sent {
		t.Fatalf("clients sent %d requests, the provider saw %d", sent, got)
	}
}

// TestAllEgressDownThenRecovery: with the whole pool gone the ingress fails
// fast with 503; when an egress returns, requests flow again.
func TestAllEgressDownThenRecovery(t *testing.T) {
	m := newMesh(t)
	m.start(nodeSpec{role: role.Egress, name: "ad-1", loc: "US", hint: "wnam"})
	hk := m.start(nodeSpec{role: role.Ingress, name: "ad-hk", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}, providerURL: closedURL(t)})
	m.waitMembers(hk, "ad-1")
	if resp, _ := get(t, baseURL(hk)+"/openai/v1/models"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	m.stop("ad-1")
	wait.For(t, 5*time.Second, func() error {
		start := time.Now()
		resp, body := get(t, baseURL(hk)+"/openai/v1/models")
		if resp.StatusCode != 503 || resp.Header.Get("X-Mesh-Error") != "no_egress" {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the 503 took %s", d)
		}
		return nil
	})
	m.start(nodeSpec{role: role.Egress, name: "ad-2", loc: "US", hint: "wnam"})
	wait.For(t, 10*time.Second, func() error {
		resp, body := get(t, baseURL(hk)+"/openai/v1/models")
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "ad-2" {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// TestSSEKeepalive: with http.sse_keepalive, a silent stream carries SSE
// comments between events, and the SDK still parses it.
func TestSSEKeepalive(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "ka", loc: "US", edit: func(c *config.Config) { c.HTTP.SSEKeepalive = 50 * time.Millisecond }})
	req := newRequest(t, "POST", baseURL(n)+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("X-Fake-Chunks", "3")
	req.Header.Set("X-Fake-Delay", "300ms")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var comments, events int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == ": keep-alive":
			comments++
		case strings.HasPrefix(line, "data: "):
			events++
		case line == "":
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	if comments == 0 || events < 4 {
		t.Fatalf("%d keep-alive comments, %d events", comments, events)
	}
	client := openai.NewClient(option.WithBaseURL(baseURL(n)+"/openai/v1"), option.WithAPIKey("sk"), option.WithMaxRetries(0))
	s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithHeader("X-Fake-Delay", "200ms"))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil || acc.Choices[0].Message.Content != fakeprovider.Text(3) {
		t.Fatalf("SDK over keep-alives: %v %+v", err, acc.Choices)
	}
}
