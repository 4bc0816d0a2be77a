package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// standardMesh starts the mesh the issue describes: a direct ingress (US),
// an HK ingress whose own provider URLs point at a closed port (so every
// success proves the tunnel carried it), two wnam egress nodes and one weur.
func standardMesh(t *testing.T) (m *mesh, us, hk *node.Node) {
	t.Helper()
	m = newMesh(t)
	rules := []config.Rule{{Locs: []string{"HK", "CN"}, Hint: "wnam"}}
	m.start(nodeSpec{role: role.Egress, name: "wnam-1", loc: "US", hint: "wnam"})
	m.start(nodeSpec{role: role.Egress, name: "wnam-2", loc: "US", hint: "wnam"})
	m.start(nodeSpec{role: role.Egress, name: "weur-1", loc: "DE", hint: "weur"})
	us = m.start(nodeSpec{role: role.Ingress, name: "us-1", loc: "US", hint: "enam", rules: rules})
	hk = m.start(nodeSpec{role: role.Ingress, name: "hk-1", loc: "HK", hint: "apac", rules: rules,
		providerURL: closedURL(t), clientHint: true})
	m.waitMembers(hk, "wnam-1", "wnam-2", "weur-1", "us-1")
	m.waitMembers(us, "wnam-1", "wnam-2", "weur-1", "hk-1")
	return m, us, hk
}

// routeRecorder is SDK middleware that keeps the last response's mesh headers.
type routeRecorder struct{ route, egress, hint string }

func (r *routeRecorder) openai() option.RequestOption {
	return option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if resp != nil {
			r.route, r.egress, r.hint = resp.Header.Get("X-Mesh-Route"), resp.Header.Get("X-Mesh-Egress"), resp.Header.Get("X-Mesh-Hint")
		}
		return resp, err
	})
}

func (r *routeRecorder) anthropic() anthropicopt.RequestOption {
	return anthropicopt.WithMiddleware(func(req *http.Request, next anthropicopt.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if resp != nil {
			r.route, r.egress, r.hint = resp.Header.Get("X-Mesh-Route"), resp.Header.Get("X-Mesh-Egress"), resp.Header.Get("X-Mesh-Hint")
		}
		return resp, err
	})
}

func (r *routeRecorder) check(t *testing.T, wantRoute string) {
	t.Helper()
	if r.route != wantRoute {
		t.Fatalf("X-Mesh-Route = %q, want %q", r.route, wantRoute)
	}
	if wantRoute == "egress" && (r.hint != "wnam" || !strings.HasPrefix(r.egress, "wnam-")) {
		t.Fatalf("egress %q hint %q, want a wnam egress", r.egress, r.hint)
	}
}

func TestSDKs(t *testing.T) {
	_, us, hk := standardMesh(t)
	for _, tc := range []struct {
		path  string
		n     *node.Node
		route string
	}{
		{"direct", us, "direct"},
		{"tunnel", hk, "egress"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rec := &routeRecorder{}
			oc := openai.NewClient(option.WithBaseURL(baseURL(tc.n)+"/openai/v1"), option.WithAPIKey("sk-test"),
				option.WithMaxRetries(0), rec.openai())
			params := openai.ChatCompletionNewParams{
				Model:    "fake-gpt",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
			}

			t.Run("openai", func(t *testing.T) {
				c, err := oc.Chat.Completions.New(ctx, params, option.WithHeader("X-Fake-Chunks", "4"))
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Choices[0].Message.Content; got != fakeprovider.Text(4) {
					t.Fatalf("content %q", got)
				}
				rec.check(t, tc.route)
			})

			t.Run("openai-stream", func(t *testing.T) {
				stream := oc.Chat.Completions.NewStreaming(ctx, params, option.WithHeader("X-Fake-Chunks", "5"))
				acc := openai.ChatCompletionAccumulator{}
				events := 0
				for stream.Next() {
					acc.AddChunk(stream.Current())
					events++
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if got := acc.Choices[0].Message.Content; got != fakeprovider.Text(5) || events < 5 {
					t.Fatalf("content %q after %d events", got, events)
				}
				rec.check(t, tc.route)
			})

			t.Run("openai-error", func(t *testing.T) {
				_, err := oc.Chat.Completions.New(ctx, params, option.WithHeader("X-Fake-Status", "429"))
				var apiErr *openai.Error
				if !errorsAs(err, &apiErr) || apiErr.StatusCode != 429 {
					t.Fatalf("err = %v, want a 429 *openai.Error", err)
				}
			})

			t.Run("openrouter", func(t *testing.T) {
				or := openai.NewClient(option.WithBaseURL(baseURL(tc.n)+"/openrouter/v1"), option.WithAPIKey("sk-or"),
					option.WithMaxRetries(0), rec.openai())
				c, err := or.Chat.Completions.New(ctx, params)
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Choices[0].Message.Content; got != fakeprovider.Text(fakeprovider.DefaultChunks) {
					t.Fatalf("content %q", got)
				}
				rec.check(t, tc.route)
			})

			ac := anthropic.NewClient(anthropicopt.WithBaseURL(baseURL(tc.n)+"/anthropic"), anthropicopt.WithAPIKey("sk-ant"),
				anthropicopt.WithMaxRetries(0), rec.anthropic())
			msg := anthropic.MessageNewParams{
				Model:     "fake-claude",
				MaxTokens: 64,
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
			}

			t.Run("anthropic", func(t *testing.T) {
				m, err := ac.Messages.New(ctx, msg, anthropicopt.WithHeader("X-Fake-Chunks", "3"))
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Content) == 0 || m.Content[0].Text != fakeprovider.Text(3) {
					t.Fatalf("content %+v", m.Content)
				}
				rec.check(t, tc.route)
			})

			t.Run("anthropic-stream", func(t *testing.T) {
				stream := ac.Messages.NewStreaming(ctx, msg, anthropicopt.WithHeader("X-Fake-Chunks", "6"))
				acc := anthropic.Message{}
				for stream.Next() {
					if err := acc.Accumulate(stream.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if len(acc.Content) == 0 || acc.Content[0].Text != fakeprovider.Text(6) {
					t.Fatalf("content %+v", acc.Content)
				}
				rec.check(t, tc.route)
			})
		})
	}
}
